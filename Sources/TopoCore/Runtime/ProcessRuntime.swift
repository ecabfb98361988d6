import Foundation

/// The built-in runtime: a workload is a process that topo starts itself (`Launcher`), inside its
/// cgroup, CPUs, memory policy and namespace before it execs the command.
public struct ProcessRuntime: WorkloadRuntime {
    public var cgroups: any CgroupManager
    public var state: StateStore
    /// What a workload sees read-only besides its cgroup: topo's state and the namespaces' files.
    public var protected: [String]

    public init(cgroups: any CgroupManager, state: StateStore, protected: [String]) {
        self.cgroups = cgroups
        self.state = state
        self.protected = protected
    }

    /// What the launcher needs for a launch: inside its cgroup (a namespace of its own, read-only), with
    /// topo's files read-only, in a session of its own; `foreground` for `topo exec`, which keeps the
    /// caller's stdin unless `ExecStreams` replaces it.
    func spec(_ l: LaunchResource, foreground: Bool) -> LaunchSpec {
        LaunchSpec(
            l, cgroupProcs: cgroups.procsPath(l.cgroup), cgroupMount: cgroups.path(""), readOnly: protected,
            newSession: true, keepStdin: foreground)
    }

    public func startedBy(_ l: LaunchResource) -> String {
        "start workload \(l.workload): \(l.commandLine) (cloned straight into \(cgroups.path(l.cgroup)))"
    }

    /// Every workload process starts before any is waited for: their start-ups overlap (docs/benchmarks.md).
    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        var results: [Result<Facts, TopoFailure>?] = Array(repeating: nil, count: batch.count)
        var started: [(index: Int, workload: String, pending: Launcher.Pending)] = []
        for (i, r) in batch.enumerated() {
            guard case .launch(let l) = r else {
                results[i] = .failure(TopoFailure(.applyFailed, "the process runtime does not make \(r.summary)"))
                break
            }
            switch Launcher.start(spec(l, foreground: false)) {
            case .success(let pending): started.append((i, l.workload, pending))
            case .failure(let f):
                results[i] = .failure(TopoFailure(.applyFailed, "launch workload \(l.workload): \(f)"))
            }
            if results[i] != nil { break }
        }
        for s in started {
            switch Launcher.finish(s.pending) {
            case .success(let pid): results[s.index] = .success(Facts(pid: pid))
            case .failure(let f):
                results[s.index] = .failure(TopoFailure(.applyFailed, "launch workload \(s.workload): \(f)"))
            }
        }
        return results
    }

    /// A workload is stopped with everything it started: every process in its cgroup.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .launch(let l) = resource else { return .nothing }
        try cgroups.stopAll(in: l.cgroup, owner: l.profile)
        return .nothing
    }

    /// Every workload of the batch is killed before any is waited for.
    public func undo(_ batch: [JournalStep]) -> [Result<Undone, TopoFailure>] {
        let launches = batch.compactMap { if case .launch(let l) = $0.resource { l } else { nil } }
        guard launches.count == batch.count else { return batch.map(undo) }  // not launches only: one by one
        return cgroups.stopAll(launches.map { ($0.cgroup, $0.profile) }).map {
            $0.map { .failure($0) } ?? .success(.nothing)
        }
    }

    public func observe(_ resource: Resource) -> Observation { Self.observeLaunch(resource, cgroups) }

    /// A launched workload, whatever its runtime, is what runs in its cgroup and below.
    static func observeLaunch(_ resource: Resource, _ cgroups: any CgroupManager) -> Observation {
        guard case .launch(let l) = resource else { return Observation(resource, found: false, kernel: "not a launch") }
        guard cgroups.exists(l.cgroup) else { return Observation(resource, found: false) }
        let pids = cgroups.observe(
            .cgroup(CgroupResource(path: l.cgroup, owner: l.profile, workload: l.workload, enable: []))
        ).pids
        return Observation(
            resource, found: true, differences: pids.isEmpty ? ["workload \(l.workload) has exited"] : [],
            kernel: pids.isEmpty ? "exited" : "running", pids: pids)
    }

    public func start(_ launch: LaunchResource, profile: String) -> Result<pid_t, TopoFailure> {
        Launcher.launch(spec(launch, foreground: false))
            .mapError {
                TopoFailure(
                    .hostCannot, "start \(launch.command.joined(separator: " ")) in workload \(launch.workload): \($0)")
            }
    }

    public func runInForeground(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        ExecStreams.run { stdio in
            var spec = spec(launch, foreground: true)
            spec.stdio = stdio
            return Launcher.launch(spec).mapError { TopoFailure(.hostCannot, "\($0)") }
        }
    }
}
