import CTopoShim
import Foundation
import Synchronization

/// The signals that interrupt a run and where each is passed on. `process` is the one the signal
/// handlers reach (`installHandlers`); a test makes its own and calls `deliver`.
public final class RunInterrupts: Sendable {
    /// The first signal that came, and how many came.
    private let first = Atomic<Int32>(0)
    private let count = Atomic<Int32>(0)
    /// The process a signal is passed on to: the command, or the workload waited for (topo's own
    /// children: their pids are not reused before topo reaps them).
    private let child = Atomic<Int32>(0)
    /// A container waited for is not topo's child: a pidfd names exactly its process, so a signal never
    /// reaches a process that took its pid after it exited.
    private let pidfd = Atomic<Int32>(-1)

    public init() {}

    /// The interrupts of this process.
    public static let process = RunInterrupts()

    /// SIGINT, SIGTERM and SIGHUP, unblocked (or neither Ctrl-C nor a CI runner's SIGTERM reaches the
    /// teardown), each delivered to `process`.
    public static func installHandlers() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] {
            sigaddset(&set, s)
            signal(s) { sig in RunInterrupts.process.deliver(sig) }
        }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// A signal came: remembered (the first), and passed on to what the run waits for — the second
    /// and later ones as SIGKILL. Async-signal-safe: atomics, kill and pidfd_send_signal only.
    public func deliver(_ sig: Int32) {
        if count.add(1, ordering: .relaxed).newValue == 1 { first.store(sig, ordering: .relaxed) }
        let passed = count.load(ordering: .relaxed) > 1 ? SIGKILL : sig
        let fd = pidfd.load(ordering: .relaxed)
        if fd >= 0 {
            _ = topo_pidfd_send_signal(fd, passed)
            return
        }
        let pid = child.load(ordering: .relaxed)
        if pid > 0 { _ = kill(pid, passed) }
    }

    /// The first signal that came; 0 when none did.
    public var received: Int32 { first.load(ordering: .relaxed) }

    func passOn(toChild pid: Int32) { child.store(pid, ordering: .relaxed) }

    func passOn(toPidfd fd: Int32) { pidfd.store(fd, ordering: .relaxed) }

    /// Nothing to pass signals on to any more (the pidfd closed).
    func stopPassingOn() {
        child.store(0, ordering: .relaxed)
        let fd = pidfd.exchange(-1, ordering: .relaxed)
        if fd >= 0 { close(fd) }
    }

    public static func name(_ s: Int32) -> String {
        switch s {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(s)"
        }
    }
}

/// `topo run`: apply a prepared plan, verify it, run the benchmark (a command, on the host or in a
/// workload, or a wait for a workload's own command), verify again, make the report, and tear down —
/// on every path: a failing step, a signal, a verify that fails. What it did is an `Outcome`, which
/// says the exit status.
public struct BenchmarkRun {
    /// What the run waits on between the two verifies.
    public enum Action: Equatable, Sendable {
        /// A command on the host, or inside a workload (`topo exec`) when `inWorkload` names one.
        case command([String], inWorkload: String?)
        /// A workload's own command, until it exits.
        case wait(String)
    }

    public var prepared: Preparation
    /// The profile's path as given (the report names it).
    public var profilePath: String
    public var selection: DriverSelection
    public var drivers: Drivers
    public var action: Action
    /// Verify with the active probes too, before the action.
    public var active: Bool = false
    /// Where the report goes; nil for none.
    public var reportPath: String?
    /// topo's version, for the report.
    public var version: String
    public var interrupts: RunInterrupts = .process
    /// Lines for the operator (`topo run: removed …`).
    public var log: (String) -> Void = { _ in }
    /// The host's record for the report (`HostRecord.read`; a test gives a fixed one).
    public var hostRecord: (HostTopology, [Runtime]) -> HostRecord = { topology, runtimes in
        HostRecord.read(topology: topology, versions: HostRecord.toolVersions(runtimes: runtimes))
    }
    /// Runs the action and returns its exit status, nil when it cannot be known (`execute`; a test
    /// gives its own).
    public var perform: (BenchmarkRun, Action, _ pids: [String: Int32]) -> Int32? = { run, action, pids in
        run.execute(action, pids: pids)
    }

    public init(
        prepared: Preparation, profilePath: String, selection: DriverSelection, drivers: Drivers,
        action: Action, version: String
    ) {
        self.prepared = prepared
        self.profilePath = profilePath
        self.selection = selection
        self.drivers = drivers
        self.action = action
        self.version = version
    }

    /// What a run did; `conclusion` turns it into the exit status.
    public struct Outcome: Sendable {
        /// The action's exit status; nil when it did not run, or its status is not known.
        public var status: Int32?
        public var before: Verifier.ProfileResult?
        public var after: Verifier.ProfileResult?
        /// What the teardown could not remove (then topo's state stays for `topo down`).
        public var teardownProblems: [String] = []
        /// The report's path, when it could not be written there.
        public var reportFailure: String?
        /// The first signal that came; 0 when none did.
        public var interrupted: Int32 = 0
        /// A step between apply and the teardown that failed (the first verify).
        public var failure: TopoFailure?

        /// The exit status: a teardown that left something is exit 3, naming it (it hides the rest);
        /// then a failed step's status; a signal N is 128+N; then the action's status, or 1 when it
        /// succeeded and a verify failed; a report that could not be written turns a 0 into exit 3.
        public var conclusion: Result<Int32, TopoFailure> {
            if !teardownProblems.isEmpty {
                return .failure(
                    TopoFailure(
                        .hostCannot,
                        "topo run could not tear everything down:\n"
                            + teardownProblems.map { "  - \($0)" }.joined(separator: "\n")))
            }
            if let failure { return .failure(failure) }
            if interrupted != 0 { return .success(128 + interrupted) }
            let verifyFailed = [before, after].contains { $0?.checks.contains { $0.status == .fail } ?? false }
            let code = status ?? 0
            if code == 0 && verifyFailed { return .success(ExitStatus.verifyFailed.rawValue) }
            if code == 0, let reportFailure {
                return .failure(TopoFailure(.hostCannot, "topo run: the report was not written to \(reportFailure)"))
            }
            return .success(code)
        }
    }

    /// The whole run. A failure before anything is applied (a workload the action names is not in
    /// the profile, the profile is applied already, apply failed and rolled back) is returned as such;
    /// from a successful apply on, every path tears down and ends in an `Outcome`.
    public func run() -> Result<Outcome, TopoFailure> {
        let plan = prepared.plan
        let state = selection.state
        let host = prepared.host
        let named: [String] =
            switch action {
            case .command(_, let w?): [w]
            case .command: []
            case .wait(let w): [w]
            }
        for name in named where plan.workload(named: name) == nil {
            return .failure(
                TopoFailure(
                    .invalid,
                    "profile \(plan.name) has no workload \(name) (it has \(plan.workloads.map(\.name).joined(separator: ", ")))"
                ))
        }
        if case .wait(let w) = action, plan.workload(named: w)?.run == nil {
            return .failure(TopoFailure(.invalid, "workload \(w) has no command to wait for (run.command)"))
        }
        if state.profiles().contains(plan.name) {
            return .failure(
                TopoFailure(
                    .hostCannot,
                    "profile \(plan.name) is already applied; topo run tears down only what it applied: run `topo down \(plan.name)` first"
                ))
        }
        let pids: [String: Int32]
        switch Applier(state: state, drivers: drivers).apply(plan, profileText: prepared.text) {
        case .failure(let f): return .failure(f)
        case .success(.unchanged):
            return .failure(TopoFailure(.hostCannot, "profile \(plan.name) was applied by someone else meanwhile"))
        case .success(.applied(let p, _)): pids = p
        }
        let verifier = Verifier(state: state, drivers: drivers)
        let started = Date()
        var outcome = Outcome()
        switch verifier.verify(plan.name, online: host.onlineCPUs, active: active) {
        case .success(let before):
            outcome.before = before
            for c in before.checks where c.status == .fail { log("before: FAIL \(c.id) \(c.subject): \(c.message)") }
            if interrupts.received == 0 { outcome.status = perform(self, action, pids) }
        case .failure(let f):
            outcome.failure = f
        }
        // Every path ends here: verify again, the report, then the teardown.
        interrupts.stopPassingOn()
        outcome.after = try? verifier.verify(plan.name, online: host.onlineCPUs).get()
        outcome.interrupted = interrupts.received
        // The report is made while the profile is applied (it reads the kernel's side and the logs) and
        // written once it is torn down: a workload that planted a link at its path is gone by then, and
        // the file is a new one renamed there, never written through a link.
        let report = reportPath.map { _ in makeReport(outcome, wall: Date().timeIntervalSince(started)) }
        do {
            try state.withLock {
                let removed = Teardown(state: state, drivers: drivers).remove(plan.name)
                outcome.teardownProblems = removed.problems
                log("removed \(plan.name): \(removed.counts)")
            }
        } catch { outcome.teardownProblems.append("\(error)") }
        if let reportPath, let report {
            do { try Sys.writeReplacing(reportPath, JSONOutput.encode(report) + "\n", mode: 0o644) } catch {
                outcome.reportFailure = reportPath
                log("\(error)")
            }
        }
        if outcome.interrupted != 0 && outcome.teardownProblems.isEmpty {
            log("interrupted by \(RunInterrupts.name(outcome.interrupted)); torn down")
        }
        if outcome.failure == nil && outcome.teardownProblems.isEmpty && outcome.interrupted == 0 {
            for c in outcome.after?.checks ?? [] where c.status == .fail {
                log("after: FAIL \(c.id) \(c.subject): \(c.message)")
            }
        }
        return .success(outcome)
    }

    func makeReport(_ outcome: Outcome, wall: Double) -> Report {
        let plan = prepared.plan
        let state = selection.state
        let host = prepared.host
        let (command, inWorkload, waited): ([String]?, String?, String?) =
            switch action {
            case .command(let argv, let w): (argv, w, nil)
            case .wait(let w): (nil, nil, w)
            }
        let record = Report.RunRecord(
            command: command, inWorkload: inWorkload, waited: waited, exitStatus: outcome.status,
            interrupted: outcome.interrupted == 0 ? nil : RunInterrupts.name(outcome.interrupted), wallSeconds: wall,
            verifyBefore: outcome.before,
            logTails: Dictionary(
                uniqueKeysWithValues: plan.workloads.compactMap { w in
                    Report.tail(state.logPath(plan.name, w.name)).map { (w.name, $0) }
                }))
        return Report.make(
            version: version, host: hostRecord(host, plan.workloads.compactMap { $0.run?.runtime }),
            source: Report.Source(name: plan.name, path: profilePath, text: prepared.text), plan: plan,
            state: state, drivers: drivers, online: host.onlineCPUs, verified: outcome.after, run: record)
    }

    // MARK: The built-in action

    /// Runs the command (on the host, or through `topo exec` inside a workload) or waits for the
    /// workload; signals are passed on to what it waits for.
    public func execute(_ action: Action, pids: [String: Int32]) -> Int32? {
        switch action {
        case .command(let command, let inWorkload): runCommand(command, in: inWorkload)
        case .wait(let name): waitFor(name, pid: pids[name])
        }
    }

    /// The command's exit status; 127 when it cannot be started.
    func runCommand(_ command: [String], in workload: String?) -> Int32 {
        var argv = command
        if let workload {
            argv =
                [
                    selection.executable, "exec", "--state-dir", selection.stateRoot, "--cgroup-root",
                    selection.cgroupRoot,
                    "--cgroup-manager", selection.manager.rawValue, prepared.plan.name, workload, "--",
                ] + command
        } else if !argv[0].contains("/"), let found = Self.which(argv[0]) {
            argv[0] = found
        }
        switch Spawn.child(argv, output: nil, detached: false) {
        case .failure(let f):
            log(f.description)
            return 127
        case .success(let pid):
            interrupts.passOn(toChild: pid)
            return Spawn.wait(pid)
        }
    }

    /// Waits for a workload's command: a process workload is topo's own child (the launcher exec'd
    /// it), so its exit status is known; a container's is not, and the wait ends when its cgroup is empty.
    func waitFor(_ name: String, pid: Int32?) -> Int32? {
        guard let w = prepared.plan.workload(named: name) else { return nil }
        if (w.run?.runtime ?? .process) == .process, let pid {
            interrupts.passOn(toChild: pid)
            return Spawn.wait(pid)
        }
        // The container's process, by a pidfd opened while it is still in the workload's cgroup.
        if let pid {
            let fd = topo_pidfd_open(pid)
            if fd >= 0 {
                if drivers.cgroups.processes(w.cgroupPath).contains(pid) {  // the cgroup and below
                    interrupts.passOn(toPidfd: fd)
                } else {
                    close(fd)
                }
            }
        }
        while !drivers.cgroups.processes(w.cgroupPath).isEmpty && interrupts.received == 0 { usleep(100_000) }
        log("\(name) is a container: its exit status is not known to topo; the run's status is verify's")
        return nil
    }

    /// A program's path in `PATH`, as a shell finds it.
    static func which(_ program: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        {
            let candidate = "\(dir)/\(program)"
            if Sys.access(candidate, X_OK) && !Sys.isDirectory(candidate) { return candidate }
        }
        return nil
    }
}
