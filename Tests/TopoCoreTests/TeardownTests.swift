import Foundation
import Testing

@testable import TopoCore

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
