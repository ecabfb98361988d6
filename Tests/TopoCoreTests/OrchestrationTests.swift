import Foundation
import Testing

@testable import TopoCore

/// A state directory and fake drivers in a temporary directory, and a profile file in it.
private struct Bench {
    let fake: FakeRoot
    let host = FakeHost()
    let selection: DriverSelection
    let drivers: Drivers

    init() throws {
        fake = try FakeRoot()
        selection = DriverSelection(
            stateRoot: "\(fake.path)/run", cgroupRoot: "\(fake.path)/cg", etcNetns: "\(fake.path)/etc-netns",
            executable: "/nonexistent/topo")
        drivers = Drivers.fake(selection, host)
    }

    /// The profile written to `NAME.yaml` in the bench; its path.
    func write(_ yaml: String, as name: String = "demo") throws -> String {
        try fake.seed("\(name).yaml", yaml)
        return "\(fake.path)/\(name).yaml"
    }

    func prepare(
        _ yaml: String, capable: @escaping @Sendable (String) -> Bool = { _ in true }
    ) throws -> Result<Preparation, TopoFailure> {
        let path = try write(yaml)
        let drivers = self.drivers
        return Preparation.prepare(
            path, locked: false, layout: selection.layout, host: { .success(try! fixtureHost("1n-2c")) },
            preflight: { Preflight(host: $0, drivers: drivers, veth: .available("a fake host"), capable: capable) },
            warn: { _ in })
    }

    func run(
        _ yaml: String, _ action: BenchmarkRun.Action, report: String? = nil,
        perform: ((BenchmarkRun, BenchmarkRun.Action, [String: Int32]) -> Int32?)? = nil
    ) throws -> (BenchmarkRun, Result<BenchmarkRun.Outcome, TopoFailure>) {
        let prepared = try prepare(yaml).get()
        var run = BenchmarkRun(
            prepared: prepared, profilePath: "demo.yaml", selection: selection, drivers: drivers, action: action,
            version: "test")
        run.interrupts = RunInterrupts()
        run.reportPath = report
        if let perform { run.perform = perform }
        return (run, run.run())
    }
}

private let twoWorkloads = """
    version: 1
    name: demo
    workloads:
      server: { cpus: "0", memory: { max: 64M } }
      client: { cpus: "1", run: { command: ["/bin/sh", "-c", "exit 5"] } }
    """

@Suite struct PreparationTests {
    @Test func aHostThatLacksAPrivilegeRefusesWithNothingChanged() throws {
        let bench = try Bench()
        guard case .failure(let f) = try bench.prepare(twoWorkloads, capable: { $0 != "CAP_KILL" }) else {
            Issue.record("preflight without CAP_KILL passed")
            return
        }
        #expect(f.status == .hostCannot)
        #expect(f.message.contains("cannot apply demo on this host; nothing was changed"), "\(f.message)")
        #expect(f.message.contains("CAP_KILL (to stop workloads on down)"), "\(f.message)")
        #expect(bench.host.cgroupCount == 0 && !bench.fake.exists("run"))
    }

    @Test func aPreparedPlanIsThePlannersOnTheHostItFound() throws {
        let bench = try Bench()
        let prepared = try bench.prepare(twoWorkloads).get()
        #expect(prepared.plan.workload(named: "server")?.cpus == CPUSet([0]))
        #expect(prepared.plan.workloads.allSatisfy { $0.cgroupPath.hasPrefix("topo/demo/") })
        #expect(prepared.text.contains("exit 5"))
    }

    /// The profile is read before the host: an invalid profile is exit 2 even where the host cannot be read.
    @Test func anInvalidProfileIsExit2BeforeTheHostIsAsked() throws {
        let bench = try Bench()
        let path = try bench.write("version: 1\nname: demo\nworkloads: { a: { cpus: nine } }")
        var asked = false
        let result = Preparation.plan(
            path, locked: false, layout: bench.selection.layout,
            host: {
                asked = true
                return .failure(TopoFailure(.hostCannot, "no host"))
            }, warn: { _ in })
        guard case .failure(let f) = result else {
            Issue.record("an invalid profile was planned")
            return
        }
        #expect(f.status == .invalid && !asked, "\(f.message)")
    }
}

@Suite struct BenchmarkRunTests {
    /// apply → verify → the command → verify → report → down: the command's status is the run's, the
    /// report has both verifies and the status, and nothing of the profile is left.
    @Test func aRunEndsWithTheCommandsStatusAndNothingLeft() throws {
        let bench = try Bench()
        let report = "\(bench.fake.path)/report.json"
        let (_, result) = try bench.run(
            twoWorkloads, .command(["/bin/sh", "-c", "exit 3"], inWorkload: nil), report: report)
        let outcome = try result.get()
        #expect(outcome.status == 3)
        #expect(try outcome.conclusion.get() == 3)
        #expect(outcome.before != nil && outcome.after != nil)
        #expect(bench.selection.state.profiles().isEmpty && bench.host.cgroupCount == 0)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        let run = try #require(json["run"] as? [String: Any])
        #expect(run["exitStatus"] as? Int == 3)
        #expect((run["command"] as? [String])?.last == "exit 3")
    }

    /// --wait: the workload's own command is the run's status (a process workload is topo's child).
    @Test func aWaitedWorkloadsExitStatusIsTheRuns() throws {
        let bench = try Bench()
        let (_, result) = try bench.run(twoWorkloads, .wait("client"))
        #expect(try result.get().conclusion.get() == 5)
        #expect(bench.selection.state.profiles().isEmpty)
    }

    /// A signal during the benchmark: the teardown still runs, and the status is 128+N.
    @Test func aSignalDuringTheBenchmarkTearsDownAndExits128PlusN() throws {
        let bench = try Bench()
        let (_, result) = try bench.run(twoWorkloads, .command(["/bin/true"], inWorkload: nil)) { run, _, _ in
            run.interrupts.deliver(SIGTERM)
            return nil
        }
        let outcome = try result.get()
        #expect(outcome.interrupted == SIGTERM)
        #expect(try outcome.conclusion.get() == 128 + SIGTERM)
        #expect(bench.selection.state.profiles().isEmpty && bench.host.cgroupCount == 0)
    }

    /// A signal before the benchmark starts: it never starts.
    @Test func aSignalBeforeTheBenchmarkSkipsIt() throws {
        let bench = try Bench()
        let prepared = try bench.prepare(twoWorkloads).get()
        var run = BenchmarkRun(
            prepared: prepared, profilePath: "demo.yaml", selection: bench.selection, drivers: bench.drivers,
            action: .command(["/bin/true"], inWorkload: nil), version: "test")
        run.interrupts = RunInterrupts()
        run.interrupts.deliver(SIGINT)
        let ran = Flag()
        run.perform = { _, _, _ in
            ran.set()
            return 0
        }
        #expect(try run.run().get().conclusion.get() == 128 + SIGINT)
        #expect(!ran.value)
    }

    /// A teardown that leaves something is exit 3 naming it, whatever the command did; the state stays
    /// for `topo down`.
    @Test func aTeardownThatLeavesSomethingIsExit3AndKeepsTheState() throws {
        let bench = try Bench()
        bench.host.failUndo = "topo/demo/server"
        let (_, result) = try bench.run(twoWorkloads, .command(["/bin/true"], inWorkload: nil))
        guard case .failure(let f) = try result.get().conclusion else {
            Issue.record("a failed teardown passed")
            return
        }
        #expect(f.status == .hostCannot && f.message.contains("could not tear everything down"), "\(f.message)")
        #expect(f.message.contains("topo/demo/server cannot be removed"), "\(f.message)")
        #expect(bench.selection.state.profiles() == ["demo"])
    }

    /// Refusals before anything is applied: a workload the run names that the profile lacks, a
    /// --wait for a workload without a command, a profile applied already.
    @Test func whatCannotRunIsRefusedBeforeAnythingIsApplied() throws {
        let bench = try Bench()
        for (action, words) in [
            (BenchmarkRun.Action.wait("nosuch"), "has no workload nosuch"),
            (.command(["/bin/true"], inWorkload: "nosuch"), "has no workload nosuch"),
            (.wait("server"), "has no command to wait for"),
        ] {
            let (_, result) = try bench.run(twoWorkloads, action)
            guard case .failure(let f) = result else {
                Issue.record("\(action) ran")
                continue
            }
            #expect(f.status == .invalid && f.message.contains(words), "\(f.message)")
            #expect(bench.host.cgroupCount == 0)
        }
        let prepared = try bench.prepare(twoWorkloads).get()
        _ = try Applier(state: bench.selection.state, drivers: bench.drivers).apply(prepared.plan).get()
        let (_, again) = try bench.run(twoWorkloads, .command(["/bin/true"], inWorkload: nil))
        guard case .failure(let f) = again else {
            Issue.record("a run of an applied profile ran")
            return
        }
        #expect(f.status == .hostCannot && f.message.contains("already applied"), "\(f.message)")
        #expect(bench.selection.state.profiles() == ["demo"], "the run must not take down what it did not apply")
    }
}

@Suite struct WatchLoopTests {
    /// Rounds on the interval until `count`; a profile taken down meanwhile is a `gone` change, and
    /// the watch goes on with nothing applied.
    @Test func aProfileTakenDownDuringTheWatchIsAChange() throws {
        let bench = try Bench()
        let prepared = try bench.prepare(twoWorkloads).get()
        let state = bench.selection.state
        _ = try Applier(state: state, drivers: bench.drivers).apply(prepared.plan).get()
        var loop = Watch.Loop(
            verifier: Verifier(state: state, drivers: bench.drivers), online: prepared.host.onlineCPUs,
            named: nil, interval: 0.05, count: 3, stop: { false })
        loop.pin = false
        var rounds: [Watch.Round] = []
        let summary = try loop.run(
            started: { #expect($0 == nil) },
            each: { round in
                rounds.append(round)
                if round.number == 1 {
                    try? state.withLock { _ = Teardown(state: state, drivers: bench.drivers).remove("demo") }
                }
            }
        ).get()
        #expect(summary.rounds == 3 && rounds.map(\.number) == [1, 2, 3])
        #expect(rounds[0].results.map(\.name) == ["demo"])
        #expect(
            !rounds[0].changes.isEmpty && rounds[0].changes.allSatisfy { $0.check != nil && $0.previous == nil },
            "round 1: every check is new")
        #expect(rounds[1].changes.map(\.event) == ["gone"] && rounds[1].results.isEmpty)
        #expect(rounds[2].changes.isEmpty)
        #expect(summary.changes == 1)
    }

    /// A profile named on the command line that goes away ends the watch with "not applied".
    @Test func aNamedProfileThatGoesAwayEndsTheWatch() throws {
        let bench = try Bench()
        let state = bench.selection.state
        var loop = Watch.Loop(
            verifier: Verifier(state: state, drivers: bench.drivers), online: CPUSet([0, 1]),
            named: ["demo"], interval: 0.05, count: nil, stop: { false })
        loop.pin = false
        guard case .failure(let f) = loop.run(started: { _ in }, each: { _ in }) else {
            Issue.record("the watch went on")
            return
        }
        #expect(f.status == .hostCannot && f.message.contains("profile demo is not applied"), "\(f.message)")
    }

    /// `stop` ends the watch before the next round, also while it waits for one.
    @Test func stopEndsTheWatchBetweenRounds() throws {
        let bench = try Bench()
        let stopped = Flag()
        var loop = Watch.Loop(
            verifier: Verifier(state: bench.selection.state, drivers: bench.drivers), online: CPUSet([0, 1]),
            named: nil, interval: 30, count: nil, stop: { stopped.value })
        loop.pin = false
        let clock = ContinuousClock()
        let start = clock.now
        let summary = try loop.run(started: { _ in }, each: { _ in stopped.set() }).get()
        #expect(summary.rounds == 1 && !summary.failed)
        #expect(clock.now - start < .seconds(5), "the 30 s wait should end at the stop")
    }
}

/// A flag set from a closure that must be Sendable.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    func set() { lock.withLock { on = true } }
    var value: Bool { lock.withLock { on } }
}

@Suite struct DriverSelectionTests {
    private func choose(
        stateDir: String? = nil, cgroupRoot: String? = nil, manager: String? = nil,
        _ environment: [String: String] = [:],
        pid1: CgroupManagerKind = .systemd
    ) -> Result<DriverSelection, TopoFailure> {
        DriverSelection.choose(
            stateDir: stateDir, cgroupRoot: cgroupRoot, manager: manager, environment: environment, detect: { pid1 })
    }

    /// auto is systemd where it is PID 1, unless a cgroup root is given (by option or variable); the
    /// option wins over the variable; the layout and the drivers follow the one choice.
    @Test func theManagerIsChosenOnceAndTheLayoutAndDriversFollowIt() throws {
        #expect(try choose().get().manager == .systemd)
        #expect(try choose(pid1: .cgroupfs).get().manager == .cgroupfs)
        #expect(try choose(cgroupRoot: "/sys/fs/cgroup/lab").get().manager == .cgroupfs)
        #expect(try choose(["TOPO_CGROUP_ROOT": "/sys/fs/cgroup/lab"]).get().manager == .cgroupfs)
        #expect(try choose(["TOPO_CGROUP_ROOT": ""]).get().manager == .systemd, "an empty variable is unset")
        #expect(try choose(manager: "cgroupfs", ["TOPO_CGROUP_MANAGER": "systemd"]).get().manager == .cgroupfs)
        let systemd = try choose(stateDir: "/tmp/s", manager: "systemd").get()
        #expect(systemd.layout.manager == .systemd && systemd.layout.stateRoot == "/tmp/s")
        #expect(systemd.drivers.cgroups.description.hasPrefix("systemd"))
        let cgroupfs = try choose(cgroupRoot: "/sys/fs/cgroup/lab").get()
        #expect(cgroupfs.drivers.cgroups.path("topo") == "/sys/fs/cgroup/lab/topo")
        #expect(cgroupfs.layout.topoCgroup == "topo")
    }

    @Test func aBadPathOrManagerIsAUsageErrorNamingItsSource() {
        for (result, words) in [
            (choose(manager: "docker"), "--cgroup-manager takes auto, systemd or cgroupfs, not \"docker\""),
            (choose(["TOPO_CGROUP_MANAGER": "x"]), "TOPO_CGROUP_MANAGER takes"),
            (choose(stateDir: "run/topo"), "--state-dir must be an absolute path"),
            (choose(["TOPO_CGROUP_ROOT": "/sys/../x"]), "TOPO_CGROUP_ROOT must be an absolute path without '..'"),
        ] {
            guard case .failure(let f) = result else {
                Issue.record("\(words): chosen")
                continue
            }
            #expect(f.status == .invalid && f.message.contains(words), "\(f.message)")
        }
    }
}
