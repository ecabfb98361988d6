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
            #expect(
                error.description
                    == "write \(fake.path)/topo/x/memory.max \"4294967296\": No such file or directory (the memory controller is not enabled for this cgroup: its parent's cgroup.subtree_control lacks it (the root offers: cpuset cpu memory pids))"
            )
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

    /// Child cgroups are the subdirectories, at any depth below; a cgroup without any is answered from
    /// its link count, and its files are never taken for children.
    @Test func childrenAreSubdirectoriesOnly() throws {
        let fake = try FakeRoot()
        try fake.seed("w/cgroup.procs", "7\n")
        try fake.seed("w/a/cgroup.procs", "8\n9\n")
        try fake.seed("w/a/deep/cgroup.procs", "10\n")
        try fake.seed("w/b/cgroup.procs", "")
        let fs = CgroupFS(root: fake.path)
        #expect(fs.children("w").sorted() == ["w/a", "w/b"])
        #expect(fs.children("w/a") == ["w/a/deep"] && fs.children("w/b") == [] && fs.children("w/gone") == [])
        #expect(fs.allProcs("w").sorted() == [7, 8, 9, 10])
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
    let cgroup = Resource.cgroup(CgroupResource(path: "topo/p", owner: "p", workload: nil, enable: [.cpu]))
    let launch = Resource.launch(
        LaunchResource(
            profile: "p", workload: "w", runtime: .process, image: nil, command: ["/bin/true"],
            environment: [], workdir: nil, user: nil, capabilities: [], cgroup: "topo/p/w",
            cpus: CPUSet([0]), memoryPolicy: .bind, policyNodes: CPUSet([0]), logPath: nil,
            netns: nil, hostsFile: nil))

    @Test func stepsReadBackWithTheirStateAndFacts() throws {
        let fake = try FakeRoot()
        let journal = Journal(path: "\(fake.path)/journal.jsonl", failpoint: nil)
        try journal.begin(1, cgroup)
        try journal.done(1)
        try journal.begin(2, launch)
        try journal.done(2, facts: Facts(pid: 4242))
        try journal.begin(3, cgroup)
        let read = Journal.read(journal.path)
        #expect(read.problems == [])
        #expect(read.steps.map(\.number) == [1, 2, 3])
        #expect(read.steps.map(\.done) == [true, true, false])
        #expect(read.steps[1].facts.pid == 4242)
        #expect(read.steps[2].resource == cgroup)
    }

    @Test func onlyALastLineWithoutItsNewlineCountsAsTornByACrash() throws {
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Journal(path: path, failpoint: nil).begin(1, cgroup)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"format\":2,\"resource\":{\"cgroup\":{\"_0\":{\"path\":\"to".utf8))
        try handle.close()
        let torn = Journal.read(path)
        #expect(torn.steps.map(\.resource) == [cgroup] && torn.problems == [])
        // The same line finished with a newline is no longer a torn write: it is a record topo cannot read.
        try Sys.appendDurably(path, "\n")
        let broken = Journal.read(path)
        #expect(broken.steps.map(\.resource) == [cgroup])
        #expect(
            broken.problems.count == 1 && broken.problems[0].contains("line 2: not a journal record"),
            "\(broken.problems)")
    }

    @Test func otherFormatsUnknownKindsAndStrayDoneLinesAreProblems() throws {
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Sys.appendDurably(path, #"{"format":1,"step":1,"action":{"createCgroup":{"_0":"topo/p"}}}"# + "\n")
        try Sys.appendDurably(path, #"{"format":2,"step":2,"resource":{"tapDevice":{"_0":{"name":"tap0"}}}}"# + "\n")
        try Sys.appendDurably(path, #"{"format":2,"step":7,"done":true}"# + "\n")
        let read = Journal.read(path)
        #expect(read.steps == [])
        #expect(read.problems.count == 3)
        #expect(read.problems[0].contains("line 1: journal format 1"))
        #expect(read.problems[1].contains("line 2: not a journal record"))
        #expect(read.problems[2].contains("line 3: marks step 7 done, but no line began it"))
        #expect(Journal.read("\(fake.path)/none.jsonl").problems.first?.contains("without its journal") == true)
    }

    /// Half a journal's lines say a step is done and nothing else: written and read without a JSON
    /// coder, byte for byte what the coder writes; any other line still goes through the coder.
    @Test func doneLinesAreTheCodersBytesAndReadWithoutIt() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for step in [1, 9, 10, 482, 123_456_789] {
            let record = JournalRecord(format: Journal.format, step: step, done: true)
            let line = try #require(record.doneLine)
            #expect(line == String(decoding: try encoder.encode(record), as: UTF8.self))
            let read = try #require(JournalRecord(doneLine: Substring(line)))
            #expect(
                read.step == step && read.format == Journal.format && read.done == true && read.resource == nil
                    && read.facts == nil)
        }
        #expect(JournalRecord(format: 2, step: 1, done: true, facts: Facts(pid: 7)).doneLine == nil)
        #expect(JournalRecord(format: 2, step: 1, resource: cgroup).doneLine == nil)
        for other in [
            #"{"done":true,"format":2,"step":07}"#, #"{"done":true,"format":2,"step":}"#,
            #"{"done":true,"format":2,"step":-1}"#,
            #"{"done":true,"format":2,"step":1234567890}"#, #"{"done": true,"format":2,"step":1}"#,
            #"{"done":true,"format":2,"step":1} "#,
            #"{"done":true,"format":2,"step":1,"facts":{"pid":3}}"#, #"{"done":true,"format":,"step":1}"#,
        ] {
            #expect(JournalRecord(doneLine: Substring(other)) == nil, "\(other)")
        }
        // A done line another writer spaced out is still a done line, read by the coder.
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Journal(path: path, failpoint: nil).begin(1, cgroup)
        try Sys.appendDurably(path, #"{ "done": true, "format": 2, "step": 1 }"# + "\n")
        let read = Journal.read(path)
        #expect(read.problems == [] && read.steps.map(\.done) == [true])
    }

    @Test func failpointParsing() {
        #expect(Journal(path: "/x", failpoint: "after-step:7").killAfterStep == 7)
        #expect(Journal(path: "/x", failpoint: "before-step:7").killAfterStep == nil)
        #expect(Journal(path: "/x", failpoint: nil).killAfterStep == nil)
    }
}

/// A temporary host for apply, teardown and status: cgroup root, state, /etc/netns, and a plan laid out there.
struct Scene {
    let fake: FakeRoot
    let state: StateStore
    let drivers: Drivers
    let layout: Layout

    init() throws {
        fake = try FakeRoot()
        try fake.mkdir("cg")
        state = StateStore(root: "\(fake.path)/run")
        layout = Layout(stateRoot: state.root, etcNetns: "\(fake.path)/etc-netns")
        drivers = Drivers.host(
            state: state, cgroupRoot: "\(fake.path)/cg", etcNetns: layout.etcNetns, executable: "/nonexistent/topo")
    }

    func plan(_ yaml: String, host: String = "1n-2c") throws -> Plan {
        try Planner(host: try fixtureHost(host), layout: layout).plan(try profile(yaml)).get()
    }

    var cgroups: CgroupFS { (drivers.cgroups as! CgroupfsManager).fs }
    var teardown: Teardown { Teardown(state: state, drivers: drivers) }
    var applier: Applier { Applier(state: state, drivers: drivers) }
}

@Suite struct StateAndTeardownTests {
    static let sample =
        "version: 1\nname: demo\nworkloads: { a: { cpus: \"0\", run: { command: [\"/bin/true\"], env: { PATH: /opt/bin, X: \"1\" } } } }"

    @Test func stateDirectoriesComeAndGoLeavingNothing() throws {
        let scene = try Scene()
        let state = scene.state
        let plan = try scene.plan(Self.sample)
        try state.withLock { try state.createApplied(plan) }
        #expect(state.profiles() == ["demo"])
        #expect(try state.plan("demo").get() == plan)
        #expect(Sys.stat(state.profileDir("demo")).map { $0.st_mode & 0o777 } == 0o700)
        try state.withLock { try state.remove("demo") }
        #expect(!scene.fake.exists("run"), "the state root should go with the last profile")
    }

    @Test func hostChangesAreRecordedAndForgotten() throws {
        let fake = try FakeRoot()
        let state = StateStore(root: "\(fake.path)/s")
        try state.record(.init(createdRoot: true, rootControllers: ["cpu", "memory"]))
        #expect(try state.hostChanges() == .init(createdRoot: true, rootControllers: ["cpu", "memory"]))
        state.forgetHostChanges()
        #expect(try state.hostChanges() == .init())
    }

    /// A corrupt record is an error that names the file, never "nothing was changed" or "no plan".
    @Test func corruptPlanAndHostRecordsAreErrorsNamingTheFile() throws {
        let scene = try Scene()
        let state = scene.state
        try state.createApplied(try scene.plan(Self.sample))
        try Sys.write(state.planPath("demo"), "{\"format\": 2, \"name\": 7}", flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard case .failure(let f) = state.plan("demo") else {
            Issue.record("a corrupt plan.json was read")
            return
        }
        #expect(f.message.contains("\(state.planPath("demo")) is not a plan this topo can read"), "\(f.message)")
        try Sys.write("\(state.root)/host.json", "{\"createdRoot\": \"yes\"}", flags: O_WRONLY | O_CREAT | O_CLOEXEC)
        #expect(throws: TopoFailure.self) { try state.hostChanges() }
        do { _ = try state.hostChanges() } catch {
            #expect(error.message.contains("\(state.root)/host.json is not a record"), "\(error.message)")
        }
        // An apply that must check overlaps with the unreadable plan refuses instead of skipping the check.
        let other = try scene.plan("version: 1\nname: other\nworkloads: { b: { cpus: \"1\" } }")
        guard case .failure(let refusal)? = scene.applier.checkAgainstApplied(other) else {
            Issue.record("the overlap check was skipped")
            return
        }
        #expect(refusal.message.contains("cannot check for overlaps with applied profile demo"))
    }

    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs root and a filesystem with trusted.* attributes"))
    func teardownRemovesOnlyWhatTopoMadeForThisProfile() throws {
        let scene = try Scene()
        let (fake, state, cgroups) = (scene.fake, scene.state, scene.cgroups)
        let plan = try scene.plan(Self.sample)
        try state.createApplied(plan)
        let journal = Journal(path: state.journalPath("demo"), failpoint: nil)
        try cgroups.create("topo", owner: "topo")
        try cgroups.create("topo/demo", owner: "demo")
        try cgroups.create("topo/demo/a", owner: "demo")
        try fake.mkdir("cg/topo/demo/a/own")  // made by the workload itself: goes with it
        try fake.mkdir("cg/topo/other")  // not topo's: stays
        func cgroup(_ path: String) -> Resource {
            .cgroup(CgroupResource(path: path, owner: "demo", workload: nil, enable: []))
        }
        try journal.begin(1, cgroup("topo/demo"))
        try journal.done(1)
        try journal.begin(2, cgroup("topo/demo/a"))
        try journal.done(2)
        try journal.begin(3, cgroup("topo/other"))  // a journal can never make topo remove a foreign cgroup
        let report = scene.teardown.remove("demo")
        #expect(report.problems == [])
        #expect(!fake.exists("cg/topo/demo"))
        #expect(fake.exists("cg/topo/other"))
        #expect(report.skipped.count == 1 && report.skipped[0].contains("not made by topo"))
        #expect(report.counts == "2 cgroups")
        #expect(!fake.exists("run/demo"))
    }

    /// A record `down` cannot understand, or an undo that fails, keeps the state and journal for a second `down`.
    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs root and a filesystem with trusted.* attributes"))
    func aRecordDownCannotUndoKeepsTheStateUntilItIsGone() throws {
        let scene = try Scene()
        let (fake, state, cgroups) = (scene.fake, scene.state, scene.cgroups)
        let plan = try scene.plan(Self.sample)
        try state.createApplied(plan)
        try cgroups.create("topo", owner: "topo")
        try cgroups.create("topo/demo", owner: "demo")
        let journal = Journal(path: state.journalPath("demo"), failpoint: nil)
        try journal.begin(1, .cgroup(CgroupResource(path: "topo/demo", owner: "demo", workload: nil, enable: [])))
        try journal.done(1)
        let good = try Sys.read(state.journalPath("demo"))
        try Sys.appendDurably(
            state.journalPath("demo"), #"{"format":2,"step":2,"resource":{"tapDevice":{"_0":{"name":"tap0"}}}}"# + "\n")
        let first = scene.teardown.remove("demo")
        #expect(
            first.problems.count == 1 && first.problems[0].contains("line 3: not a journal record"), "\(first.problems)"
        )
        #expect(!fake.exists("cg/topo/demo"), "what down understands is still undone")
        #expect(fake.exists("run/demo/journal.jsonl") && fake.exists("run/demo/plan.json"))
        #expect(first.skipped.contains { $0.contains("kept, with its journal") })
        try Sys.write(state.journalPath("demo"), good, flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
        let second = scene.teardown.remove("demo")
        #expect(second.problems == [])
        #expect(!fake.exists("run"))
    }

    /// apply writes `plan.json` after its last step (the plan is encoded meanwhile) and before the
    /// `applied` mark; an apply that fails part-way rolls back and leaves no state directory at all.
    @Test func thePlanIsRecordedOnceEveryStepIsMade() throws {
        let scene = try Scene()
        let state = scene.state
        let plan = try scene.plan("version: 1\nname: demo\nworkloads: { a: { cpus: \"0\" }, b: { cpus: \"1\" } }")
        let seen = StepLog()
        var drivers = scene.drivers
        drivers.cgroups = StepCgroups(state: state, log: seen, failAt: nil)
        let outcome = Applier(state: state, drivers: drivers).apply(plan)
        guard case .success(.applied(_, _)) = outcome else {
            Issue.record("apply of the plan failed: \(outcome)")
            return
        }
        #expect(
            seen.steps == plan.resources.count && seen.planDuring == [false],
            "plan.json was there during a step: \(seen.planDuring)")
        #expect(try state.plan("demo").get() == plan)
        #expect(Sys.exists("\(state.profileDir("demo"))/applied"))
        try state.withLock { try state.remove("demo") }

        let failing = StepLog()
        drivers.cgroups = StepCgroups(state: state, log: failing, failAt: 3)
        guard case .failure(let f) = Applier(state: state, drivers: drivers).apply(plan) else {
            Issue.record("a failing step applied")
            return
        }
        #expect(f.status == .applyFailed && f.message.contains("rolled back"), "\(f.message)")
        // every step begun (a batch is journaled at once) is undone
        #expect(failing.undone >= 3, "undone \(failing.undone)")
        #expect(!Sys.exists(state.profileDir("demo")))
    }

    /// Undo hands each driver its consecutive records at once, last first; a shared resource goes
    /// alone, after everything else, and is kept when anything before it was left undone.
    @Test func undoBatchesConsecutiveRecordsOfOneDriverAndKeepsTheSharedRootAlone() throws {
        let cgroup = { (path: String) in
            Resource.cgroup(CgroupResource(path: path, owner: "demo", workload: nil, enable: []))
        }
        let namespace = { (name: String) in
            Resource.namespace(NamespaceResource(name: name, workload: name, owner: "demo"))
        }
        let resources: [Resource] = [
            .cgroupRoot(CgroupRootResource(path: "topo", profile: "demo", controllers: [])), cgroup("topo/demo"),
            cgroup("topo/demo/a"), cgroup("topo/demo/b"), namespace("n.a"), namespace("n.b"),
        ]
        let steps = resources.enumerated().map {
            JournalStep(number: $0.offset + 1, resource: $0.element, done: true, facts: Facts())
        }
        #expect(ResourceLoop.undoBatches(steps.reversed()).map { $0.map(\.number) } == [[6, 5], [4, 3, 2], [1]])

        let scene = try Scene()
        let seen = StepLog()
        var drivers = scene.drivers
        drivers.cgroups = StepCgroups(state: scene.state, log: seen, failAt: nil, failUndo: "topo/demo/a")
        let report = ResourceLoop(drivers: drivers).undo(Array(steps.prefix(4)))
        #expect(seen.batches == [3], "the three cgroups in one batch: \(seen.batches)")
        #expect(report.problems.count == 1 && report.problems[0].contains("topo/demo/a"), "\(report.problems)")
        #expect(report.removed.map(\.1) == ["topo/demo/b", "topo/demo"])
        #expect(
            report.skipped.count == 1 && report.skipped[0].contains("kept, with its record"),
            "the root stays: \(report.skipped)")
    }

    /// `down` of many workloads kills every cgroup before waiting for the first to empty: here the
    /// "kernel" (a thread) empties them only once both were killed, so a one-by-one stop would wait 10 s
    /// for the first and fail.
    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs root and a filesystem with trusted.* attributes"))
    func workloadsAreAllKilledBeforeAnyIsWaitedFor() throws {
        let scene = try Scene()
        let (fake, cgroups) = (scene.fake, scene.cgroups)
        for c in ["topo", "topo/demo", "topo/demo/a", "topo/demo/b"] {
            try cgroups.create(c, owner: c == "topo" ? "topo" : "demo")
        }
        try cgroups.create("topo/demo/c", owner: "other")  // not this profile's: never killed
        for w in ["a", "b", "c"] {
            try fake.seed("cg/topo/demo/\(w)/cgroup.events", "populated 1\nfrozen 0\n")
            try fake.seed("cg/topo/demo/\(w)/cgroup.kill", "")
        }
        let demo = cgroups.path("topo/demo")
        let kernel = Thread {
            let deadline = Date().addingTimeInterval(8)
            while Date() < deadline && !["a", "b"].allSatisfy({ (try? Sys.read("\(demo)/\($0)/cgroup.kill")) == "1" }) {
                usleep(1000)
            }
            for w in ["a", "b"] {
                try? Sys.write(
                    "\(demo)/\(w)/cgroup.events", "populated 0\nfrozen 0\n", flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
            }
        }
        kernel.start()
        let started = Date()
        let failures = scene.drivers.cgroups.stopAll([
            ("topo/demo/a", "demo"), ("topo/demo/b", "demo"), ("topo/demo/c", "demo"),
        ])
        #expect(failures.map { $0 == nil } == [true, true, true], "\(failures)")
        #expect(Date().timeIntervalSince(started) < 4)
        #expect(fake.read("cg/topo/demo/c/cgroup.kill") == "")
    }

    @Test func aWorkloadsEnvironmentIsInThePlan() throws {
        let scene = try Scene()
        let w = try #require(try scene.plan(Self.sample).workloads.first)
        #expect(w.environment == ["TOPO_PROFILE=demo", "TOPO_WORKLOAD=a", "PATH=/opt/bin", "X=1"])
        let spec = LaunchSpec(
            Planner.launch(w, profile: "demo", command: ["/bin/true"], logPath: "/l"), cgroupProcs: "/p",
            cgroupMount: "/sys/fs/cgroup",
            readOnly: ["/run/topo"], newSession: true, keepStdin: false)
        #expect(spec.command == ["/bin/true"] && spec.environment == w.environment && spec.logPath == "/l")
        #expect(spec.cpus.description == "0" && spec.policyNodes.description == "0" && spec.memoryPolicy == .bind)
        #expect(spec.newSession && spec.capabilities.isEmpty)
    }
}

/// Removing topo's state never follows a link or crosses into another filesystem.
@Suite struct RemoveTreeTests {
    @Test func aTreeGoesButWhatItsLinksPointAtStays() throws {
        let base = NSTemporaryDirectory() + "topo-rmtree-\(getpid())"
        let outside = base + "-outside"
        try FileManager.default.createDirectory(atPath: base + "/a/b", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try "x".write(toFile: outside + "/keep", atomically: false, encoding: .utf8)
        try "y".write(toFile: base + "/a/b/file", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: base + "/a/link", withDestinationPath: outside)
        #expect(try Sys.removeTree(base) == [])
        #expect(!FileManager.default.fileExists(atPath: base))
        #expect(FileManager.default.fileExists(atPath: outside + "/keep"))
        #expect(try Sys.removeTree(base) == [])  // already gone
    }
}

@Suite struct PreflightTests {
    func plan(_ yaml: String) throws -> Plan {
        try Planner(host: try fixtureHost("1n-2c")).plan(try profile(yaml)).get()
    }

    func preflight(_ host: HostTopology, cgroupRoot: String = "/sys/fs/cgroup") -> Preflight {
        Preflight(host: host, drivers: .host(state: StateStore(root: "/nonexistent"), cgroupRoot: cgroupRoot))
    }

    @Test func cgroupV1HostsAreToldToUseTheLab() throws {
        var host = try fixtureHost("1n-2c")
        host.cgroup = CgroupProbe.classify(
            mounts: "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
        let problems = preflight(host).kernelProblems(
            for: try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\" } }"))
        #expect(problems.count == 1)
        #expect(problems[0].contains("cgroup v1 (hybrid)") && problems[0].contains("scripts/lab"))
    }

    @Test func missingControllersAreNamed() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.controllers", "cpu pids\n")
        var host = try fixtureHost("1n-2c")
        host.cgroup = CgroupInfo(mode: .unified, mountPoint: fake.path, controllers: [], detail: "")
        let problems = preflight(host, cgroupRoot: fake.path).kernelProblems(
            for: try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { max: 1G } } }"))
        #expect(
            problems.map { $0.prefix(60) } == [
                "the cgroup v2 root \(fake.path) does not offer the cpuset controller".prefix(60),
                "the cgroup v2 root \(fake.path) does not offer the memory controller".prefix(60),
            ])
    }

    @Test func programsWorkdirsUsersAndRuntimesMustExist() throws {
        let problems = preflight(try fixtureHost("1n-2c")).workloadProblems(
            for: try plan(
                """
                version: 1
                name: x
                workloads:
                  a: { cpus: "0", run: { command: ["/no/such/program"], workdir: /no/such/dir, user: nosuchuser } }
                  b: { cpus: "1", run: { command: ["sh", "-c", "true"] } }
                """))
        #expect(
            problems == [
                "workload a runs /no/such/program, which is not an executable file on this host",
                "workload a: workdir /no/such/dir is not a directory on this host",
                "workload a: no user named nosuchuser on this host",
            ])
    }

    /// Containers: the runtime must be installed, the image a directory (docker is refused when the
    /// profile is read: ProfileDecoderTests)
    /// saying why; the program and workdir are looked up in the image.
    @Test func containerRuntimesAndImagesMustExist() throws {
        let fake = try FakeRoot()
        try fake.mkdir("rootfs/bin")
        try fake.mkdir("layout")
        try fake.seed("layout/oci-layout", "{}")
        let problems = preflight(try fixtureHost("1n-2c")).workloadProblems(
            for: try plan(
                """
                version: 1
                name: x
                workloads:
                  b: { cpus: "0", isolation: shared, run: { command: ["/bin/true"], runtime: crun, image: \(fake.path)/rootfs } }
                  c: { cpus: "1", isolation: shared, run: { command: ["/bin/true"], runtime: runc, image: \(fake.path)/layout } }
                """))
        #expect(
            problems.contains("workload b runs /bin/true, which is not an executable file in image \(fake.path)/rootfs")
        )
        #expect(
            problems.contains(
                "workload c: image layout \(fake.path)/layout has no tagged image: name one, image: \(fake.path)/layout:TAG"
            ), "\(problems)")
        for (runtime, binary) in OCIRuntime.binaries where !FileManager.default.isExecutableFile(atPath: binary) {
            #expect(problems.contains { $0.contains("runtime \(runtime.rawValue) is not installed") })
        }
    }

    /// An OCI image layout is `DIR` (its only tag) or `DIR:TAG`.
    @Test func imageLayoutsAreNamedByDirectoryAndTag() throws {
        let fake = try FakeRoot()
        try fake.seed("one/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        try fake.seed(
            "one/index.json",
            #"{"schemaVersion":2,"manifests":[{"digest":"sha256:aa","annotations":{"org.opencontainers.image.ref.name":"t"}}]}"#
        )
        try fake.seed("two/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        try fake.seed(
            "two/index.json",
            #"{"schemaVersion":2,"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"a"}},{"annotations":{"org.opencontainers.image.ref.name":"b"}}]}"#
        )
        #expect(OCIRuntime.reference("\(fake.path)/one").reference == "\(fake.path)/one:t")
        #expect(OCIRuntime.reference("\(fake.path)/two:b").reference == "\(fake.path)/two:b")
        #expect(
            OCIRuntime.reference("\(fake.path)/two").problem
                == "image layout \(fake.path)/two has several tags (a, b): name one, image: \(fake.path)/two:TAG")
        #expect(
            OCIRuntime.reference("\(fake.path)/one:nope").problem
                == "image layout \(fake.path)/one has no tag nope (it has t)")
        #expect(OCIRuntime.layout("/") == nil && OCIRuntime.layout(fake.path) == nil)
    }

    /// A workdir that is a symbolic link to a directory is a directory to chdir(2), and so to preflight.
    @Test func aWorkdirThatLinksToADirectoryIsAccepted() throws {
        let fake = try FakeRoot()
        try fake.mkdir("real")
        #expect(symlink("\(fake.path)/real", "\(fake.path)/link") == 0)
        try fake.seed("file", "x")
        #expect(symlink("\(fake.path)/file", "\(fake.path)/filelink") == 0)
        let problems = preflight(try fixtureHost("1n-2c")).workloadProblems(
            for: try plan(
                """
                version: 1
                name: x
                workloads:
                  a: { cpus: "0", run: { command: ["/bin/true"], workdir: \(fake.path)/link } }
                  b: { cpus: "1", run: { command: ["/bin/true"], workdir: \(fake.path)/filelink } }
                """))
        #expect(problems == ["workload b: workdir \(fake.path)/filelink is not a directory on this host"])
    }
}

/// What `/proc/PID/cgroup` calls a cgroup, wherever topo's cgroup root is.
@Suite struct HierarchyPathTests {
    @Test func aCgroupRootBelowTheHierarchysRootIsPartOfThePath() {
        let mounts = [
            Mounts.Entry(point: "/sys/fs/cgroup", type: "cgroup2", root: "/"),
            Mounts.Entry(point: "/mnt/lab", type: "cgroup2", root: "/lab"),
            Mounts.Entry(point: "/sys", type: "sysfs", root: "/"),
        ]
        #expect(CgroupFS(root: "/sys/fs/cgroup").hierarchyPath("topo/p/w", mounts: mounts) == "/topo/p/w")
        #expect(
            CgroupFS(root: "/sys/fs/cgroup/somewhere").hierarchyPath("topo/p/w", mounts: mounts)
                == "/somewhere/topo/p/w")
        #expect(CgroupFS(root: "/sys/fs/cgroup/somewhere").hierarchyPath("", mounts: mounts) == "/somewhere")
        // A second mount of a cgroup below the root (its mountinfo root is that cgroup).
        #expect(CgroupFS(root: "/mnt/lab/x").hierarchyPath("topo/p/w", mounts: mounts) == "/lab/x/topo/p/w")
        #expect(CgroupFS(root: "/tmp/fake").hierarchyPath("topo/p/w", mounts: mounts) == "/topo/p/w")
        #expect(
            Mounts.parse(mountinfo: "30 24 0:26 /lab /mnt/lab rw - cgroup2 cgroup2 rw\n") == [
                Mounts.Entry(point: "/mnt/lab", type: "cgroup2", root: "/lab")
            ])
    }
}

@Suite struct CgroupLayoutTests {
    /// A partition needs a partition root for a parent: the cgroup root, not topo's own cgroups.
    @Test func partitionsSitBelowTheCgroupRootOthersBelowTopo() throws {
        let plan = try Planner(host: try fixtureHost("2s-8c-ht")).plan(
            try profile(
                """
                version: 1
                name: lab
                workloads:
                  a: { cpus: { count: 2 } }
                  b: { cpus: { count: 2 }, isolation: partition }
                """)
        ).get()
        #expect(plan.workloads.map(\.cgroupPath) == ["topo/lab/a", "topo.lab.b"])
        let cgroups = plan.resources.compactMap { if case .cgroup(let c) = $0 { c.path } else { nil } }
        #expect(cgroups == ["topo/lab", "topo/lab/a", "topo.lab.b"])
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

/// Typed settings: the kernel's encoding written, and the kernel's value read back and compared the
/// way the kernel normalises it.
@Suite struct CgroupSettingTests {
    let page: UInt64 = 4096

    @Test func kernelEncodings() {
        #expect(
            CgroupSetting.cpuMax(quota: Duration(nanoseconds: 150_000_000), period: CPUSpec.period).kernelValue
                == "150000 100000")
        #expect(CgroupSetting.memoryMax(.value(Bytes(1 << 30))).kernelValue == "1073741824")
        #expect(CgroupSetting.swapMax(.max).kernelValue == "max")
        let io = IOLimit(
            device: DeviceNumber(major: 8, minor: 0), rbps: .value(Bytes(1 << 20)), wbps: nil, riops: nil, wiops: .max)
        #expect(CgroupSetting.ioMax(io).kernelValue == "8:0 rbps=1048576 wiops=max")
    }

    @Test func readBackKnowsTheKernelsNormalisations() {
        // CPU lists in any order or grouping.
        #expect(CgroupSetting.cpus(CPUSet([0, 1, 2, 5])).differences(kernel: "0-2,5", pageSize: page) == [])
        #expect(
            CgroupSetting.cpus(CPUSet([0, 1])).differences(kernel: "0-2", pageSize: page) == [
                "cpuset.cpus: planned 0-1, kernel has \"0-2\""
            ])
        // Memory limits rounded down to whole pages.
        #expect(CgroupSetting.memoryMax(.value(Bytes(10_000))).differences(kernel: "8192", pageSize: page) == [])
        #expect(CgroupSetting.memoryMax(.value(Bytes(10_000))).differences(kernel: "max", pageSize: page).count == 1)
        #expect(CgroupSetting.memoryHigh(.max).differences(kernel: "max", pageSize: page) == [])
        // cpu.max with its period.
        let quota = CgroupSetting.cpuMax(quota: Duration(nanoseconds: 50_000_000), period: CPUSpec.period)
        #expect(quota.differences(kernel: "50000 100000", pageSize: page) == [])
        #expect(
            quota.differences(kernel: "max 100000", pageSize: page) == [
                "cpu.max: planned 50000 100000, kernel has \"max 100000\""
            ])
        // io.max prints all four keys on the device's line, and no line when all are max.
        let io = IOLimit(
            device: DeviceNumber(major: 8, minor: 0), rbps: .value(Bytes(1 << 20)), wbps: nil, riops: nil, wiops: nil)
        #expect(
            CgroupSetting.ioMax(io).differences(
                kernel: "8:16 rbps=1 wbps=max riops=max wiops=max\n8:0 rbps=1048576 wbps=max riops=max wiops=max",
                pageSize: page) == [])
        #expect(CgroupSetting.ioMax(io).differences(kernel: "", pageSize: page).count == 1)
        let none = IOLimit(device: DeviceNumber(major: 8, minor: 0), rbps: .max, wbps: nil, riops: nil, wiops: nil)
        #expect(CgroupSetting.ioMax(none).differences(kernel: "", pageSize: page) == [])
        // A partition the kernel invalidated is a difference, in its own words.
        #expect(
            CgroupSetting.partition.differences(
                kernel: "root invalid (Cpu list in cpuset.cpus not exclusive)", pageSize: page)
                == [
                    "cpuset.cpus.partition: planned root, kernel has \"root invalid (Cpu list in cpuset.cpus not exclusive)\""
                ])
        #expect(CgroupSetting.pidsMax(.value(64)).differences(kernel: "64", pageSize: page) == [])
    }

    /// Apply and observe through the cgroupfs manager against a directory seeded like a cgroup.
    @Test func theManagerWritesAndObservesSettings() throws {
        let scene = try Scene()
        // cgroupfs makes the file; a plain directory does not
        try scene.fake.seed("cg/topo/demo/a/memory.max", "max\n")
        let manager = try #require(scene.drivers.cgroups as? CgroupfsManager)
        let memory = Resource.cgroupSetting(
            CgroupSettingResource(cgroup: "topo/demo/a", workload: "a", setting: .memoryMax(.value(Bytes(268_435_456))))
        )
        #expect(manager.apply([memory]).count == 1)
        #expect(scene.fake.read("cg/topo/demo/a/memory.max") == "268435456")
        #expect(manager.observe(memory).differences == [])
        try scene.fake.seed("cg/topo/demo/a/memory.max", "max\n")
        #expect(
            manager.observe(memory).differences == ["memory.max: planned 268435456 bytes (256M), kernel has \"max\""])
        let missing = Resource.cgroupSetting(
            CgroupSettingResource(cgroup: "topo/demo/b", workload: "b", setting: .pidsMax(.max)))
        #expect(!manager.observe(missing).found)
    }
}

/// The verifier's readings of /proc and cgroup files.
@Suite struct VerifierParsingTests {
    @Test func procStatusAndCgroupCounters() {
        let status = "Name:\tsleep\nCpus_allowed_list:\t2-3\nMems_allowed_list:\t0\nVmSize:\t  8000 kB\n"
        #expect(Verifier.fields(status)["Cpus_allowed_list"] == "2-3" && Verifier.fields(status)["Name"] == "sleep")
        #expect(Verifier.pairs("low 0\nhigh 2\nmax 0\noom 1\noom_kill 1\n")["oom_kill"] == "1")
        #expect(Verifier.numaMapsPolicy(.bind, CPUSet([1])) == ["bind:1"])
        #expect(Verifier.numaMapsPolicy(.interleave, CPUSet([0, 1])) == ["interleave:0-1"])
        #expect(Verifier.numaMapsPolicy(.local, .empty).contains("default"))
    }
}

/// `verify --watch`: what counts as a change between two rounds, and where the watcher may run.
@Suite struct WatchTests {
    func check(_ id: String, _ status: Check.Status, found: String = "x") -> Check {
        Check(id: id, subject: "workload a", status: status, expected: "e", found: found, message: "m")
    }
    func result(_ name: String, _ checks: [Check]) -> Verifier.ProfileResult {
        .init(name: name, checks: checks, summary: [:])
    }

    @Test func onlyStatusChangesNewChecksAndMovingFailuresAreReported() {
        let before = [
            result(
                "p",
                [
                    check("cgroup.settings", .pass), check("counters", .pass, found: "nr_throttled=1"),
                    check("cpus.intruders", .warn, found: "1 (sleep)"),
                ]),
            result("gone", []),
        ]
        let after = [
            result(
                "p",
                [
                    check("cgroup.settings", .fail), check("counters", .pass, found: "nr_throttled=9"),
                    check("cpus.intruders", .warn, found: "2 (stress)"),
                    check("tasks.cpus", .pass),
                ]),
            result("new", [check("links", .pass)]),
        ]
        let changes = Watch.changes(round: 3, time: "t", from: before, to: after)
        #expect(
            changes.map { "\($0.profile) \($0.check?.id ?? $0.event ?? "") \($0.previous?.rawValue ?? "-")" } == [
                "p cgroup.settings pass", "p cpus.intruders warn", "p tasks.cpus -", "new applied -", "gone gone -",
            ])
        #expect(changes.allSatisfy { $0.round == 3 && $0.time == "t" })
        #expect(Watch.changes(round: 4, time: "t", from: after, to: after).isEmpty)
    }

    @Test func theWatcherRunsWhereNoExclusiveWorkloadDoes() throws {
        let host = try fixtureHost("2s-8c-ht")
        let plan = try Planner(host: host).plan(
            try profile(
                """
                version: 1
                name: w
                workloads:
                  a: { cpus: "1", isolation: exclusive }
                  b: { cpus: "2-3", isolation: shared }
                """)
        ).get()
        #expect(Watch.quietCPUs([plan], online: host.onlineCPUs) == host.onlineCPUs.subtracting(CPUSet([1])))
    }

    @Test func roundTimesAreUTCWithMilliseconds() {
        #expect(Watch.timestamp(Date(timeIntervalSince1970: 1_795_974_662.1234)) == "2026-11-29T17:51:02.123Z")
        #expect(Watch.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }
}

/// `verify --active`: how each probe's measurement is judged against the plan.
@Suite struct ActiveJudgingTests {
    func netem(delay ms: UInt64, jitter: UInt64 = 0, loss: Double? = nil, rate: UInt64? = nil) -> Netem {
        Netem(
            delay: Duration(nanoseconds: ms * 1_000_000),
            jitter: jitter == 0 ? nil : Duration(nanoseconds: jitter * 1_000), distribution: nil,
            loss: loss.map { Percent(micro: UInt64($0 * 1_000_000)) }, duplicate: nil, reorder: nil, corrupt: nil,
            rate: rate.map { BitRate(bitsPerSecond: $0) }, limit: 1000, limitChosen: true)
    }
    func link(
        _ medianMs: Double, sent: Int = 500, received: Int = 500, bps: Double? = nil, loopback: Double? = nil
    ) -> Probe.LinkResult {
        Probe.LinkResult(
            sent: sent, received: received, rttMicroseconds: [medianMs * 900, medianMs * 1000, medianMs * 1100],
            bitsPerSecond: bps, loopbackBitsPerSecond: loopback)
    }

    @Test func aTenMillisecondLinkPassesAtTheLabsRoundTripAndFailsAtSixty() {
        let e = ActiveChecks.expectedRoundTrip(netem(delay: 10), netem(delay: 10))
        #expect(e.rtt == 20_000 && e.jitter == 0)
        for measured in [21.0, 23.0] {
            #expect(ActiveChecks.judgeLatency(link(measured), expected: e, subject: "l").status == .pass)
        }
        let changed = ActiveChecks.judgeLatency(link(70), expected: e, subject: "link a<->b")
        #expect(changed.status == .fail && changed.message.contains("70.00 ms"))
        #expect(ActiveChecks.judgeLatency(link(5), expected: e, subject: "l").status == .fail)
        #expect(ActiveChecks.judgeLatency(link(0, received: 0), expected: e, subject: "l").status == .fail)
        // Jitter without a delay: the mean delay is the jitter (0.2 ms each way).
        let jittered = ActiveChecks.expectedRoundTrip(netem(delay: 0, jitter: 200), netem(delay: 0, jitter: 200))
        #expect(ActiveChecks.judgeLatency(link(0.9), expected: jittered, subject: "l").status == .pass)
    }

    @Test func lossIsComparedAsRoundTripLossWithinItsStatisticalSpread() {
        let p = ActiveChecks.roundTripLoss(netem(delay: 1, loss: 10), nil)
        #expect(abs(p - 0.1) < 1e-9)
        #expect(ActiveChecks.judgeLoss(link(1, received: 452), expected: p, subject: "l").status == .pass)  // 9.6 %
        #expect(ActiveChecks.judgeLoss(link(1, received: 350), expected: p, subject: "l").status == .fail)  // 30 %
        #expect(ActiveChecks.judgeLoss(link(1, received: 500), expected: 0, subject: "l").status == .pass)
        // 6 % on a lossless link
        #expect(ActiveChecks.judgeLoss(link(1, received: 470), expected: 0, subject: "l").status == .fail)
    }

    @Test func rateMustReachThePlanOrHalfOfWhatTheHostCarries() {
        let fifty = BitRate(bitsPerSecond: 50_000_000)
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 47.5e6, loopback: 2e9), planned: fifty, subject: "l").status == .pass)
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 9.5e6, loopback: 2e9), planned: fifty, subject: "l").status == .fail)
        #expect(ActiveChecks.judgeRate(link(1, bps: 90e6, loopback: 2e9), planned: fifty, subject: "l").status == .fail)
        // A host that carries 400 Mbit/s over its loopback cannot show 1 Gbit/s: half of that is the floor.
        let gigabit = BitRate(bitsPerSecond: 1_000_000_000)
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 250e6, loopback: 400e6), planned: gigabit, subject: "l").status == .pass
        )
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 9.5e6, loopback: 400e6), planned: gigabit, subject: "l").status == .fail
        )
    }

    @Test func pagesAreJudgedByPolicy() {
        let bound = Probe.MemoryResult(pages: 1000, nodes: ["1": 1000], unplaced: 0)
        #expect(
            ActiveChecks.judgeMemory(bound, policy: .bind, nodes: CPUSet([1]), subject: "w", expected: "").status
                == .pass)
        let strayed = Probe.MemoryResult(pages: 1000, nodes: ["0": 10, "1": 990], unplaced: 0)
        let check = ActiveChecks.judgeMemory(strayed, policy: .bind, nodes: CPUSet([1]), subject: "w", expected: "")
        #expect(check.status == .fail && check.message.contains("10 pages outside node 1"))
        #expect(
            ActiveChecks.judgeMemory(
                Probe.MemoryResult(pages: 1000, nodes: ["0": 520, "1": 480], unplaced: 0), policy: .interleave,
                nodes: CPUSet([0, 1]), subject: "w", expected: ""
            ).status == .pass)
        #expect(
            ActiveChecks.judgeMemory(
                Probe.MemoryResult(pages: 1000, nodes: ["0": 900, "1": 100], unplaced: 0), policy: .interleave,
                nodes: CPUSet([0, 1]), subject: "w", expected: ""
            ).status == .fail)
        #expect(
            ActiveChecks.judgeMemory(
                Probe.MemoryResult(pages: 1000, nodes: ["0": 700, "1": 300], unplaced: 0), policy: .preferred,
                nodes: CPUSet([0]), subject: "w", expected: ""
            ).status == .warn)
    }
}

/// What the fake cgroup manager saw: steps made, whether `plan.json` was there at each, steps undone.
private final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var made = 0, undoCount = 0
    private var planAt: Set<Bool> = []
    private var batchSizes: [Int] = []
    func step(planThere: Bool) -> Int {
        lock.lock()
        defer { lock.unlock() }
        made += 1
        planAt.insert(planThere)
        return made
    }
    func undo() {
        lock.lock()
        undoCount += 1
        lock.unlock()
    }
    func batch(_ n: Int) {
        lock.lock()
        batchSizes.append(n)
        lock.unlock()
    }
    var batches: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return batchSizes
    }
    var steps: Int {
        lock.lock()
        defer { lock.unlock() }
        return made
    }
    var undone: Int {
        lock.lock()
        defer { lock.unlock() }
        return undoCount
    }
    var planDuring: [Bool] {
        lock.lock()
        defer { lock.unlock() }
        return planAt.sorted { !$0 && $1 }
    }
}

/// A cgroup manager that makes nothing: it counts steps (failing the `failAt`th) and checks the state directory meanwhile.
private struct StepCgroups: CgroupManager {
    let state: StateStore
    let log: StepLog
    let failAt: Int?
    var failUndo: String? = nil
    var description: String { "steps only" }
    func path(_ cgroup: String) -> String { "/fake/\(cgroup)" }
    func procsPath(_ cgroup: String) -> String { "/fake/\(cgroup)/cgroup.procs" }
    func exists(_ cgroup: String) -> Bool { false }
    func stopAll(_ cgroups: [(cgroup: String, owner: String)]) -> [TopoFailure?] { cgroups.map { _ in nil } }
    func offeredControllers() -> [String] { [] }
    func read(_ cgroup: String, _ file: String) -> String? { nil }
    func threads(_ cgroup: String) -> [Int32] { [] }
    func processes(_ cgroup: String) -> [Int32] { [] }
    func hierarchyPath(_ cgroup: String) -> String { "/\(cgroup)" }
    func recordRootControllers(_ added: Set<String>) throws(TopoFailure) {}
    func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        var out: [Result<Facts, TopoFailure>?] = Array(repeating: nil, count: batch.count)
        for i in batch.indices {
            let n = log.step(planThere: Sys.exists(state.planPath("demo")))
            if n == failAt {
                out[i] = .failure(TopoFailure(.applyFailed, "step \(n) fails"))
                break
            }
            out[i] = .success(Facts())
        }
        return out
    }
    func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        log.undo()
        guard case .cgroup(let c) = resource else { return .nothing }
        if c.path == failUndo { throw TopoFailure(.hostCannot, "\(c.path) cannot be removed") }
        return .removed(c.path)
    }
    func undo(_ batch: [JournalStep]) -> [Result<Undone, TopoFailure>] {
        log.batch(batch.count)
        return batch.map { step in
            Result { () throws(TopoFailure) -> Undone in try undo(step.resource, done: step.done, facts: step.facts) }
        }
    }
    func describe(_ resource: Resource) -> [String] { [resource.summary] }
    func observe(_ resource: Resource) -> Observation { Observation(resource, found: false) }
}

extension StateStore {
    /// The state directory as apply leaves it once every step is made: the journal, then the plan.
    func createApplied(_ plan: Plan) throws {
        try create(plan.name, profileText: nil)
        try record(plan.name, planText: JSONOutput.encode(plan) + "\n")
    }
}
