/// `topo exec`: a command run inside an applied workload's cgroup, CPUs, memory policy and network namespace,
/// through the workload's own runtime, in the caller's session and terminal.
public enum WorkloadExec {
    /// The command's exit status, or why it could not start.
    public static func run(
        profile: String, workload: String, command: [String], state: StateStore, drivers: Drivers
    ) -> Result<Int32, TopoFailure> {
        guard state.profiles().contains(profile) else {
            return .failure(TopoFailure(.hostCannot, "profile \(profile) is not applied (see topo status)"))
        }
        let plan: Plan
        switch state.plan(profile) {
        case .success(let p): plan = p
        case .failure(let f): return .failure(f)
        }
        guard let w = plan.workload(named: workload) else {
            return .failure(
                TopoFailure(
                    .invalid,
                    "profile \(profile) has no workload \(workload) (it has \(plan.workloads.map(\.name).joined(separator: ", ")))"
                ))
        }
        guard drivers.cgroups.exists(w.cgroupPath) else {
            return .failure(
                TopoFailure(
                    .hostCannot,
                    "\(drivers.cgroups.path(w.cgroupPath)) is gone; run topo down \(profile) and apply it again"))
        }
        let launch = Self.launch(w, profile: profile, command: command, logPath: nil)
        return drivers.runtime(launch.runtime).flatMap { $0.runInForeground(launch, profile: profile) }
    }

    /// A command inside an applied workload, as its launch would start it (its hosts file only where
    /// apply wrote one). `exec` and the `verify --active` probes start theirs from here.
    public static func launch(
        _ w: PlannedWorkload, profile: String, command: [String], logPath: String?
    ) -> LaunchResource {
        var launch = Planner.launch(w, profile: profile, command: command, logPath: logPath)
        if let hosts = launch.hostsFile, !Sys.exists(hosts) { launch.hostsFile = nil }
        return launch
    }
}
