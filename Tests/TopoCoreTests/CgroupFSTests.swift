import Foundation
import Testing
@testable import TopoCore

/// The cgroupfs writer against a temporary directory seeded like a cgroup tree.
@Suite struct CgroupFSTests {
    @Test func aFailedWriteNamesPathValueKernelWordsAndTheMissingController() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.controllers", "cpuset cpu memory pids\n")
        try fake.seed("topo/x/cgroup.controllers", "cpu\n")
        let fs = CgroupFS(root: fake.path)
        do {
            try fs.write("topo/x", "memory.max", "4294967296")
            Issue.record("the write succeeded")
        } catch {
            #expect(error.description == "write \(fake.path)/topo/x/memory.max \"4294967296\": No such file or directory (the memory controller is not enabled for this cgroup: its parent's cgroup.subtree_control lacks it (the root offers: cpuset cpu memory pids))")
            #expect(error.errno == ENOENT)
        }
    }

    @Test func writesWithoutAControllerProblemAreNotRediagnosed() throws {
        let fake = try FakeRoot()
        try fake.mkdir("x")
        let fs = CgroupFS(root: fake.path)
        #expect(throws: SystemError.self) { try fs.write("x", "cgroup.procs", "1") }
        do { try fs.write("x", "cgroup.procs", "1") } catch { #expect(error.diagnosis == nil) }
    }

    @Test func enableWritesOnlyTheMissingControllers() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.subtree_control", "cpu\n")
        let fs = CgroupFS(root: fake.path)
        #expect(try fs.enable(["cpu", "memory", "pids"], below: "") == ["memory", "pids"])
        #expect(fake.read("cgroup.subtree_control") == "+memory +pids")
    }

    @Test func procsEventsAndChildren() throws {
        let fake = try FakeRoot()
        try fake.seed("a/cgroup.procs", "12\n34\n")
        try fake.seed("a/b/cgroup.procs", "56\n")
        try fake.seed("a/cgroup.events", "populated 1\nfrozen 0\n")
        let fs = CgroupFS(root: fake.path)
        #expect(fs.procs("a") == [12, 34])
        #expect(fs.allProcs("a") == [12, 34, 56])
        #expect(fs.children("a") == ["a/b"])
        #expect(fs.isPopulated("a"))
        #expect(!fs.isPopulated("a/b"))
    }

    @Test func removeTreeGoesDeepestFirstAndToleratesAbsence() throws {
        let fake = try FakeRoot()
        try fake.mkdir("t/w/own/deeper")
        try fake.mkdir("t/v")
        let fs = CgroupFS(root: fake.path)
        try fs.removeTree("t")
        #expect(!fake.exists("t"))
        try fs.removeTree("t")  // already gone
    }

    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs root and a filesystem with trusted.* attributes"))
    func createMarksOwnership() throws {
        let fake = try FakeRoot()
        let fs = CgroupFS(root: fake.path)
        try fs.create("topo", owner: "topo")
        #expect(fs.owner("topo") == "topo")
        try fake.mkdir("foreign")
        #expect(fs.owner("foreign") == nil)
        #expect(throws: SystemError.self) { try fs.create("topo", owner: "topo") }
    }
}

@Suite struct JournalTests {
    @Test func stepsReadBackWithTheirStateAndAPidForLaunches() throws {
        let fake = try FakeRoot()
        let journal = Journal(path: "\(fake.path)/journal.jsonl", failpoint: nil)
        try journal.begin(1, .prepareHost(controllers: ["cpu"]))
        try journal.done(1)
        try journal.begin(2, .createCgroup("topo/p"))
        try journal.done(2)
        try journal.begin(3, .launch(workload: "w", cgroup: "topo/p/w"))
        try journal.done(3, pid: 4242)
        try journal.begin(4, .createCgroup("topo/p/x"))
        let steps = Journal.read(journal.path)
        #expect(steps.map(\.number) == [1, 2, 3, 4])
        #expect(steps.map(\.done) == [true, true, true, false])
        #expect(steps[2].pid == 4242)
        #expect(steps[3].action == .createCgroup("topo/p/x"))
    }

    @Test func aLineCutShortByACrashIsIgnored() throws {
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Journal(path: path, failpoint: nil).begin(1, .createCgroup("topo/p"))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"action\":{\"createCgroup\":{\"_0\":\"to".utf8))
        try handle.close()
        #expect(Journal.read(path).map(\.action) == [.createCgroup("topo/p")])
    }

    @Test func failpointParsing() {
        #expect(Journal(path: "/x", failpoint: "after-step:7").killAfterStep == 7)
        #expect(Journal(path: "/x", failpoint: "before-step:7").killAfterStep == nil)
        #expect(Journal(path: "/x", failpoint: nil).killAfterStep == nil)
    }
}

@Suite struct StateAndTeardownTests {
    func samplePlan(_ name: String = "demo") throws -> Plan {
        try Planner(host: try fixtureHost("1n-2c")).plan(try profile("version: 1\nname: \(name)\nworkloads: { a: { cpus: \"0\", run: { command: [\"/bin/true\"], env: { PATH: /opt/bin, X: \"1\" } } } }")).get()
    }

    @Test func stateDirectoriesComeAndGoLeavingNothing() throws {
        let fake = try FakeRoot()
        let state = StateStore(root: "\(fake.path)/run-topo")
        let plan = try samplePlan()
        try state.withLock { try state.create(plan) }
        #expect(state.profiles() == ["demo"])
        #expect(state.plan("demo") == plan)
        var st = stat()
        #expect(stat(state.profileDir("demo"), &st) == 0 && st.st_mode & 0o777 == 0o700)
        try state.withLock { try state.remove("demo") }
        #expect(!fake.exists("run-topo"), "the state root should go with the last profile")
    }

    @Test func hostChangesAreRecordedAndForgotten() throws {
        let fake = try FakeRoot()
        let state = StateStore(root: "\(fake.path)/s")
        try state.record(.init(createdRoot: true, rootControllers: ["cpu", "memory"]))
        #expect(state.hostChanges() == .init(createdRoot: true, rootControllers: ["cpu", "memory"]))
        state.forgetHostChanges()
        #expect(state.hostChanges() == .init())
    }

    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs root and a filesystem with trusted.* attributes"))
    func teardownRemovesOnlyWhatTopoMadeForThisProfile() throws {
        let fake = try FakeRoot()
        let cgroups = CgroupFS(root: "\(fake.path)/cg")
        try fake.mkdir("cg")
        let state = StateStore(root: "\(fake.path)/run")
        let plan = try samplePlan()
        try state.create(plan)
        let journal = Journal(path: state.journalPath("demo"), failpoint: nil)
        try cgroups.create("topo", owner: "topo")
        try cgroups.create("topo/demo", owner: "demo")
        try cgroups.create("topo/demo/a", owner: "demo")
        try fake.mkdir("cg/topo/demo/a/own")  // made by the workload itself: goes with it
        try fake.mkdir("cg/topo/other")  // not topo's: stays
        try journal.begin(1, .createCgroup("topo/demo"))
        try journal.done(1)
        try journal.begin(2, .createCgroup("topo/demo/a"))
        try journal.done(2)
        try journal.begin(3, .createCgroup("topo/other"))  // a journal can never make topo remove a foreign cgroup
        let report = Teardown(cgroups: cgroups, state: state).remove("demo")
        #expect(report.problems == [])
        #expect(!fake.exists("cg/topo/demo"))
        #expect(fake.exists("cg/topo/other"))
        #expect(report.skipped.count == 1 && report.skipped[0].contains("not made by topo"))
        #expect(!fake.exists("run/demo"))
    }

    @Test func launchSpecCarriesTheWorkloadsEnvironmentAndPlacement() throws {
        let w = try #require(try samplePlan().workloads.first)
        let spec = LaunchSpec.forWorkload(w, profile: "demo", cgroupProcs: "/sys/fs/cgroup/topo/demo/a/cgroup.procs", logPath: "/run/topo/demo/logs/a.log")
        #expect(spec.command == ["/bin/true"])
        #expect(spec.environment == ["TOPO_PROFILE=demo", "TOPO_WORKLOAD=a", "PATH=/opt/bin", "X=1"])
        #expect(spec.cpus.description == "0" && spec.policyNodes.description == "0" && spec.memoryPolicy == .bind)
        #expect(spec.newSession && spec.capabilities.isEmpty)
    }
}

@Suite struct PreflightTests {
    func plan(_ yaml: String) throws -> Plan {
        try Planner(host: try fixtureHost("1n-2c")).plan(try profile(yaml)).get()
    }

    @Test func cgroupV1HostsAreToldToUseTheLab() throws {
        var host = try fixtureHost("1n-2c")
        host.cgroup = CgroupProbe.classify(mounts: "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
        let problems = Preflight(host: host, cgroups: CgroupFS()).kernelProblems(for: try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\" } }"))
        #expect(problems.count == 1)
        #expect(problems[0].contains("cgroup v1 (hybrid)") && problems[0].contains("scripts/lab"))
    }

    @Test func missingControllersAreNamed() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.controllers", "cpu pids\n")
        var host = try fixtureHost("1n-2c")
        host.cgroup = CgroupInfo(mode: .unified, mountPoint: fake.path, controllers: [], detail: "")
        let problems = Preflight(host: host, cgroups: CgroupFS(root: fake.path)).kernelProblems(for: try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { max: 1G } } }"))
        #expect(problems.map { $0.prefix(60) } == ["the cgroup v2 root \(fake.path) does not offer the cpuset controller".prefix(60),
                                                   "the cgroup v2 root \(fake.path) does not offer the memory controller".prefix(60)])
    }

    @Test func programsWorkdirsAndUsersMustExist() throws {
        let problems = Preflight(host: try fixtureHost("1n-2c"), cgroups: CgroupFS()).workloadProblems(for: try plan("""
            version: 1
            name: x
            workloads:
              a: { cpus: "0", run: { command: ["/no/such/program"], workdir: /no/such/dir, user: nosuchuser } }
              b: { cpus: "1", run: { command: ["sh", "-c", "true"] } }
            """))
        #expect(problems == [
            "workload a runs /no/such/program, which is not an executable file on this host",
            "workload a: workdir /no/such/dir is not a directory on this host",
            "workload a: no user named nosuchuser on this host",
        ])
    }
}

@Suite struct CgroupLayoutTests {
    /// A partition needs a partition root for a parent: the cgroup root, not topo's own cgroups.
    @Test func partitionsSitBelowTheCgroupRootOthersBelowTopo() throws {
        let plan = try Planner(host: try fixtureHost("2s-8c-ht")).plan(try profile("""
            version: 1
            name: lab
            workloads:
              a: { cpus: { count: 2 } }
              b: { cpus: { count: 2 }, isolation: partition }
            """)).get()
        let a = try #require(plan.workload(named: "a")), b = try #require(plan.workload(named: "b"))
        #expect(Applier.workloadCgroup("lab", a) == "topo/lab/a")
        #expect(Applier.workloadCgroup("lab", b) == "topo.lab.b")
    }

    /// Before rmdir a partition becomes a member, so its CPUs are back when `down` returns (the kernel
    /// would return them only when the removed cgroup goes offline, later).
    @Test func aPartitionIsMadeAMemberBeforeItIsRemoved() throws {
        let fake = try FakeRoot()
        try fake.seed("topo.lab.b/cpuset.cpus.partition", "root invalid (Parent unable to distribute cpu downstream)\n")
        let cgroups = CgroupFS(root: fake.path)
        cgroups.releasePartition("topo.lab.b")
        cgroups.releasePartition("topo/lab")  // no cpuset: nothing written
        // cgroupfs takes the write whole; a plain file keeps the old tail after it.
        #expect(fake.read("topo.lab.b/cpuset.cpus.partition")?.hasPrefix("member") == true)
        #expect(!fake.exists("topo/lab/cpuset.cpus.partition"))
    }
}

/// `/etc/netns/NS/hosts`: written for `ip netns exec`, refused when something else is there, removed
/// by teardown together with `/etc/netns` when topo made it.
@Suite struct NetnsHostsFileTests {
    func linkedPlan() throws -> Plan {
        try Planner(host: try fixtureHost("1n-2c")).plan(try profile("""
            version: 1
            name: demo
            workloads:
              a: { cpus: "0" }
              b: { cpus: "1" }
            links:
              - { between: [a, b] }
            """)).get()
    }

    @Test func aStaleDirectoryUnderEtcNetnsIsNotAdopted() throws {
        let fake = try FakeRoot()
        try fake.mkdir("etc-netns/topo-demo-b")
        var applier = Applier(cgroups: CgroupFS(root: "\(fake.path)/cg"), state: StateStore(root: "\(fake.path)/run"))
        applier.etcNetns = "\(fake.path)/etc-netns"
        guard case .failure(let f)? = applier.checkAgainstApplied(try linkedPlan()) else {
            Issue.record("a stale \(applier.etcNetns)/topo-demo-b must be refused")
            return
        }
        #expect(f.status == .hostCannot)
        #expect(f.message.contains("etc-netns/topo-demo-b already exists"), "\(f.message)")
    }

    /// An applied-looking profile in a temporary directory: state, a journal begun with prepareHost,
    /// and an applier and a teardown that use `etc-netns` in place of /etc/netns.
    struct Scene {
        let fake: FakeRoot
        let state: StateStore
        let plan: Plan
        let applier: Applier
        let journal: Journal

        init(_ plan: Plan) throws {
            fake = try FakeRoot()
            state = StateStore(root: "\(fake.path)/run")
            self.plan = plan
            try state.create(plan)
            var applier = Applier(cgroups: CgroupFS(root: "\(fake.path)/cg"), state: state)
            applier.etcNetns = "\(fake.path)/etc-netns"
            self.applier = applier
            journal = Journal(path: state.journalPath(plan.name), failpoint: nil)
            try journal.begin(1, .prepareHost(controllers: []))
        }

        func teardown() -> Teardown.Report {
            var teardown = Teardown(cgroups: applier.cgroups, state: state)
            teardown.etcNetns = applier.etcNetns
            return teardown.remove(plan.name)
        }
    }

    @Test func writtenWorldReadableAndRemovedWithTheDirectoryTopoMade() throws {
        let scene = try Scene(try linkedPlan())
        let (fake, state, plan, applier, journal) = (scene.fake, scene.state, scene.plan, scene.applier, scene.journal)
        for (i, w) in plan.workloads.enumerated() {
            let ns = try #require(w.netns)
            try journal.begin(i + 2, .hostsFile(netns: ns))
            try applier.writeHostsFile(ns, Applier.hostsFile(w))
        }
        #expect(state.hostChanges().createdEtcNetns)
        #expect(fake.read("etc-netns/topo-demo-a/hosts")?.contains("10.77.0.2\tb") == true)
        var st = stat()
        #expect(stat("\(fake.path)/etc-netns/topo-demo-a/hosts", &st) == 0 && st.st_mode & 0o777 == 0o644)
        try fake.seed("etc-netns/topo-demo-b/resolv.conf", "nameserver 10.0.0.1\n")  // not topo's: stays
        let report = scene.teardown()
        #expect(report.problems == [])
        #expect(!fake.exists("etc-netns/topo-demo-a"))
        #expect(!fake.exists("etc-netns/topo-demo-b/hosts") && fake.exists("etc-netns/topo-demo-b/resolv.conf"))
        #expect(fake.exists("etc-netns"), "a /etc/netns that is not empty stays")
        #expect(report.skipped.contains { $0.contains("topo-demo-b: holds files topo did not write") }, "\(report.skipped)")
    }

    @Test func anEmptyEtcNetnsTopoMadeGoesWithTheLastProfile() throws {
        let scene = try Scene(try linkedPlan())
        try scene.journal.begin(2, .hostsFile(netns: "topo-demo-a"))
        try scene.applier.writeHostsFile("topo-demo-a", "127.0.0.1\tlocalhost\n")
        let fake = scene.fake
        #expect(scene.teardown().problems == [])
        #expect(!fake.exists("etc-netns"))
    }
}
