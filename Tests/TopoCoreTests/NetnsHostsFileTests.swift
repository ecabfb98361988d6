import Foundation
import Testing

@testable import TopoCore

/// `/etc/netns/NS/hosts`: written for `ip netns exec`, refused when something else is there, removed
/// by teardown together with `/etc/netns` when topo made it.
@Suite struct NetnsHostsFileTests {
    static let linked = """
        version: 1
        name: demo
        workloads:
          a: { cpus: "0" }
          b: { cpus: "1" }
        links:
          - { between: [a, b] }
        """

    func hostsFiles(_ plan: Plan) -> [Resource] { plan.resources.filter { $0.kind == .hostsFile } }

    @Test func aStaleDirectoryUnderEtcNetnsIsNotAdopted() throws {
        let scene = try Scene()
        try scene.fake.mkdir("etc-netns/topo.demo.b")
        guard case .failure(let f)? = scene.applier.checkAgainstApplied(try scene.plan(Self.linked)) else {
            Issue.record("a stale etc-netns/topo.demo.b must be refused")
            return
        }
        #expect(f.status == .hostCannot)
        #expect(f.message.contains("etc-netns/topo.demo.b already exists"), "\(f.message)")
    }

    /// Writes the plan's hosts files as apply would (journaled), with a journal begun by the cgroup root.
    func write(_ scene: Scene, _ plan: Plan, _ resources: [Resource]) throws {
        try scene.state.createApplied(plan)
        let journal = Journal(path: scene.state.journalPath(plan.name), failpoint: nil)
        try journal.begin(1, plan.resources[0])
        for (i, r) in resources.enumerated() { try journal.begin(i + 2, r) }
        #expect(scene.drivers.files.apply(resources).allSatisfy { if case .success? = $0 { true } else { false } })
    }

    @Test func writtenWorldReadableWhateverTheUmaskAndRemovedWithTheDirectoryTopoMade() throws {
        let scene = try Scene()
        let plan = try scene.plan(Self.linked)
        let fake = scene.fake
        let old = umask(0o077)
        defer { umask(old) }
        try write(scene, plan, hostsFiles(plan))
        let made = try JSONDecoder().decode(
            NetnsHostsFiles.Made.self, from: Data((scene.fake.read("run/netns.json") ?? "").utf8))
        #expect(made.directory == "\(fake.path)/etc-netns")
        #expect(try scene.state.hostChanges() == .init(), "the cgroup manager's record is its own")
        #expect(fake.read("etc-netns/topo.demo.a/hosts")?.contains("10.77.0.2\tb") == true)
        #expect(Sys.stat("\(fake.path)/etc-netns/topo.demo.a/hosts").map { $0.st_mode & 0o777 } == 0o644)
        #expect(Sys.stat("\(fake.path)/etc-netns/topo.demo.a").map { $0.st_mode & 0o777 } == 0o755)
        try fake.seed("etc-netns/topo.demo.b/resolv.conf", "nameserver 10.0.0.1\n")  // not topo's: stays
        let report = scene.teardown.remove(plan.name)
        #expect(report.problems == [])
        #expect(!fake.exists("etc-netns/topo.demo.a"))
        #expect(!fake.exists("etc-netns/topo.demo.b/hosts") && fake.exists("etc-netns/topo.demo.b/resolv.conf"))
        #expect(fake.exists("etc-netns"), "a /etc/netns that is not empty stays")
        #expect(
            report.skipped.contains { $0.contains("topo.demo.b: holds files topo did not write") }, "\(report.skipped)")
    }

    /// /etc/netns is the hosts-file writer's alone: the undo that leaves it empty removes it when topo
    /// made it, and its record with it; a record an older topo kept in host.json is honoured the same way.
    @Test(arguments: [false, true])
    func etcNetnsTopoMadeGoesWithItsLastHostsFile(legacy: Bool) throws {
        let scene = try Scene()
        let plan = try scene.plan(Self.linked)
        try write(scene, plan, hostsFiles(plan))
        if legacy {
            try Sys.unlink("\(scene.state.root)/netns.json")
            try scene.state.record(
                StateStore.HostChanges(createdEtcNetns: true, etcNetns: "\(scene.fake.path)/etc-netns"))
        }
        let report = scene.teardown.remove(plan.name)
        #expect(report.problems == [])
        #expect(!scene.fake.exists("etc-netns"), "topo made /etc/netns and it is empty")
        #expect(!scene.fake.exists("run"), "no record is left")
    }

    /// A directory apply refused to adopt (it appeared between the check and mkdir) is begun in the
    /// journal but not topo's: the rollback leaves it and its file alone.
    @Test func aDirectoryApplyRefusedIsLeftAloneByTheRollback() throws {
        let scene = try Scene()
        let plan = try scene.plan(Self.linked)
        let b = hostsFiles(plan)[1]
        try scene.fake.seed("etc-netns/topo.demo.b/hosts", "10.0.0.9\tsomeone-elses\n")
        try scene.state.createApplied(plan)
        let journal = Journal(path: scene.state.journalPath(plan.name), failpoint: nil)
        try journal.begin(1, b)
        guard case .failure(let refused)? = scene.drivers.files.apply([b]).first else {
            Issue.record("apply adopted a foreign directory")
            return
        }
        #expect(refused.message.contains("appeared during apply and is not topo's"))
        let report = scene.teardown.remove(plan.name)
        #expect(report.problems == [])
        #expect(scene.fake.read("etc-netns/topo.demo.b/hosts") == "10.0.0.9\tsomeone-elses\n")
        #expect(report.skipped.contains { $0.contains("topo.demo.b: not made by topo for demo") }, "\(report.skipped)")
    }

    @Test func anEmptyEtcNetnsTopoMadeGoesWithTheLastProfile() throws {
        let scene = try Scene()
        let plan = try scene.plan(Self.linked)
        try write(scene, plan, Array(hostsFiles(plan).prefix(1)))
        let report = scene.teardown.remove(plan.name)
        #expect(report.problems == [])
        #expect(report.counts == "1 hosts file")
        #expect(!scene.fake.exists("etc-netns"))
    }
}
