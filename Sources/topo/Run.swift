import ArgumentParser
import Foundation
import Synchronization
import CTopoShim
import TopoCore

/// The first signal that interrupted `topo run`, and how many came.
private let runSignal = Atomic<Int32>(0)
private let runSignals = Atomic<Int32>(0)
/// The process a signal is passed on to: the command, or the workload waited for (topo's own
/// children: their pids are not reused before topo reaps them).
private let runChild = Atomic<Int32>(0)
/// A container waited for is not topo's child: a pidfd names exactly its process, so a signal never
/// reaches a process that took its pid after it exited.
private let runPidfd = Atomic<Int32>(-1)

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Apply, verify, run the benchmark, verify again, write a report, and tear everything down, on every path.",
        usage: "topo run [--locked] [--active] [--report <file>] <profile>\n    (--wait <workload> | [--in <workload>] -- <command> ...)\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            One command for CI: apply PROFILE (--locked: exactly its lock's plan), verify it (--active: with the probes), then either run COMMAND (on the host, or inside a workload with --in, as topo exec does) or wait for a workload's own command to exit (--wait), verify again, write the report (--report FILE: the host, plan, kernel's side, both verifies, the command's status and wall time, each workload's log tail), and tear everything down. Teardown happens after a failing step, Ctrl-C, SIGTERM and SIGHUP too: the signal is passed on to the command (a second one kills it at once), never skipping the teardown. A profile that is already applied is refused: run tears down only what it made. After a SIGKILL, `topo down --all` removes what is left.

            Exit status: the command's (or the waited workload's); 1 when it succeeded but a verify failed; 128+N when signal N interrupted the run (130 for Ctrl-C, 143 for SIGTERM); 2, 3 or 4 as apply.

            Examples:
              topo run Profiles/api-gateway.yaml --wait client --report result.json
              topo diff baseline.json result.json
            """
    )

    @Argument(help: "The profile to run (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var profile: String

    @Option(help: ArgumentHelp("Wait for this workload's own command to exit instead of running a command.", valueName: "workload"))
    var wait: String?

    @Option(name: .customLong("in"), help: ArgumentHelp("Run the command inside this workload, as topo exec does.", valueName: "workload"))
    var inWorkload: String?

    @Option(help: ArgumentHelp("Write the report (topo report --json) here.", valueName: "file"))
    var report: String?

    @Flag(help: "Verify with the active probes too, before the command.")
    var active = false

    @Flag(help: "Apply exactly the plan in PROFILE.lock.json (topo plan --lock).")
    var locked = false

    @Argument(parsing: .postTerminator, help: "The benchmark command, after --.")
    var command: [String] = []

    @OptionGroup var paths: PathOptions

    @OptionGroup var color: ColorOptions

    func validate() throws {
        if (wait == nil) == command.isEmpty { throw ValidationError("give a command after -- or --wait WORKLOAD (one of them)") }
        if inWorkload != nil && command.isEmpty { throw ValidationError("--in runs the command after -- inside a workload; give one") }
    }

    func run() throws {
        unblock([SIGINT, SIGTERM, SIGHUP])  // or neither Ctrl-C nor a CI runner's SIGTERM reaches the teardown
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s) { sig in
                if runSignals.add(1, ordering: .relaxed).newValue == 1 { runSignal.store(sig, ordering: .relaxed) }
                let signal = runSignals.load(ordering: .relaxed) > 1 ? SIGKILL : sig
                let pidfd = runPidfd.load(ordering: .relaxed)
                if pidfd >= 0 { _ = topo_pidfd_send_signal(pidfd, signal); return }
                let child = runChild.load(ordering: .relaxed)
                if child > 0 { _ = kill(child, signal) }
            }
        }
        let state = paths.state
        let drivers = paths.drivers
        let (plan, text) = try Apply.prepare(profile, locked: locked, paths: paths)
        for name in [wait, inWorkload].compactMap({ $0 }) where plan.workload(named: name) == nil {
            throw TopoFailure(.invalid, "profile \(plan.name) has no workload \(name) (it has \(plan.workloads.map(\.name).joined(separator: ", ")))")
        }
        if let wait, plan.workload(named: wait)?.run == nil { throw TopoFailure(.invalid, "workload \(wait) has no command to wait for (run.command)") }
        if state.profiles().contains(plan.name) {
            throw TopoFailure(.hostCannot, "profile \(plan.name) is already applied; topo run tears down only what it applied: run `topo down \(plan.name)` first")
        }
        let topology = try Loading.host(sysfs: "/sys").get()
        let outcome = try Applier(state: state, drivers: drivers).apply(plan, profileText: text).get()
        guard case .applied(let pids, _) = outcome else { throw TopoFailure(.hostCannot, "profile \(plan.name) was applied by someone else meanwhile") }
        let verifier = Verifier(state: state, drivers: drivers)
        let started = Date()
        var status: Int32? = nil, before: Verifier.ProfileResult? = nil, failure: Error? = nil
        do {
            before = try verifier.verify(plan.name, online: topology.onlineCPUs, active: active).get()
            for c in before!.checks where c.status == .fail { printError("topo run: before: FAIL \(c.id) \(c.subject): \(c.message)") }
            if runSignal.load(ordering: .relaxed) == 0 {
                status = wait.map { waitFor($0, plan: plan, pid: pids[$0], drivers: drivers) } ?? runCommand(profile: plan.name)
            }
        } catch { failure = error }
        // Every path ends here: verify again, the report, then the teardown.
        runChild.store(0, ordering: .relaxed)
        let pidfd = runPidfd.exchange(-1, ordering: .relaxed)
        if pidfd >= 0 { close(pidfd) }
        let after = try? verifier.verify(plan.name, online: topology.onlineCPUs).get()
        // The report is made while the profile is applied (it reads the kernel's side and the logs) and
        // written once it is torn down: a workload that planted a link at its path is gone by then, and
        // the file is a new one renamed there, never written through a link.
        var made: TopoCore.Report?
        if report != nil {
            let interrupted = runSignal.load(ordering: .relaxed)
            let record = TopoCore.Report.RunRecord(
                command: command.isEmpty ? nil : command, inWorkload: inWorkload, waited: wait, exitStatus: status,
                interrupted: interrupted == 0 ? nil : Self.signalName(interrupted), wallSeconds: Date().timeIntervalSince(started),
                verifyBefore: before, logTails: Dictionary(uniqueKeysWithValues: plan.workloads.compactMap { w in
                    TopoCore.Report.tail(state.logPath(plan.name, w.name)).map { (w.name, $0) }
                }))
            made = TopoCore.Report.make(version: Topo.configuration.version, host: Records.host(topology, runtimes: Records.runtimes(plan)),
                                        source: TopoCore.Report.Source(name: plan.name, path: profile, text: text), plan: plan,
                                        state: state, drivers: drivers, online: topology.onlineCPUs, verified: after, run: record)
        }
        var teardownProblems: [String] = []
        var reportFailed = false
        do {
            try state.withLock {
                let removed = Teardown(state: state, drivers: drivers).remove(plan.name)
                teardownProblems = removed.problems
                printError("topo run: removed \(plan.name): \(removed.counts)")
            }
        } catch { teardownProblems.append("\(error)") }
        if let report, let made {
            do { try Records.write(JSONOutput.encode(made), to: report) } catch {
                printError("topo run: \(error)")
                reportFailed = true
            }
        }
        if let failure, teardownProblems.isEmpty { throw failure }
        try finish(status, before, after, teardownProblems)
        if reportFailed { throw TopoFailure(.hostCannot, "topo run: the report was not written to \(report ?? "")") }
    }

    /// Maps the outcome to the exit status (after the teardown, which has run).
    func finish(_ status: Int32?, _ before: Verifier.ProfileResult?, _ after: Verifier.ProfileResult?, _ teardownProblems: [String]) throws {
        if !teardownProblems.isEmpty {
            throw TopoFailure(.hostCannot, "topo run could not tear everything down:\n" + teardownProblems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        let signal = runSignal.load(ordering: .relaxed)
        if signal != 0 {
            printError("topo run: interrupted by \(Self.signalName(signal)); torn down")
            throw ExitCode(128 + signal)
        }
        let verifyFailed = [before, after].contains { $0?.checks.contains { $0.status == .fail } ?? false }
        for c in after?.checks ?? [] where c.status == .fail { printError("topo run: after: FAIL \(c.id) \(c.subject): \(c.message)") }
        let code = status ?? 0
        if code == 0 && verifyFailed { throw ExitCode(ExitStatus.verifyFailed.rawValue) }
        if code != 0 { throw ExitCode(code) }
    }

    /// Runs the command on the host, or through `topo exec` inside a workload; its exit status.
    func runCommand(profile name: String) -> Int32 {
        var argv = command
        if let inWorkload {
            argv = [Spawn.selfExecutable, "exec", "--state-dir", paths.stateRoot, "--cgroup-root", paths.cgroupRootPath, name, inWorkload, "--"] + command
        }
        else if !argv[0].contains("/"), let found = Self.which(argv[0]) { argv[0] = found }
        switch Spawn.child(argv, output: nil, detached: false) {
        case .failure(let f):
            printError("topo run: \(f.description)")
            return 127
        case .success(let pid):
            runChild.store(pid, ordering: .relaxed)
            return Spawn.wait(pid)
        }
    }

    /// Waits for a workload's command: a process workload is topo's own child (the launcher exec'd
    /// it), so its exit status is known; a container's is not, and the wait ends when its cgroup is empty.
    func waitFor(_ name: String, plan: TopoCore.Plan, pid: Int32?, drivers: Drivers) -> Int32? {
        guard let w = plan.workload(named: name) else { return nil }
        if (w.run?.runtime ?? .process) == .process, let pid {
            runChild.store(pid, ordering: .relaxed)
            return Spawn.wait(pid)
        }
        // The container's process, by a pidfd opened while it is still in the workload's cgroup.
        if let pid {
            let fd = topo_pidfd_open(pid)
            if fd >= 0 {
                if drivers.cgroups.processes(w.cgroupPath).contains(pid) {  // the cgroup and below
                    runPidfd.store(fd, ordering: .relaxed)
                } else { close(fd) }
            }
        }
        while !drivers.cgroups.processes(w.cgroupPath).isEmpty && runSignal.load(ordering: .relaxed) == 0 { usleep(100_000) }
        printError("topo run: \(name) is a container: its exit status is not known to topo; the run's status is verify's")
        return nil
    }

    static func which(_ program: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(program)"
            if Sys.access(candidate, X_OK) && !Sys.isDirectory(candidate) { return candidate }
        }
        return nil
    }

    static func signalName(_ s: Int32) -> String {
        switch s {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(s)"
        }
    }
}
