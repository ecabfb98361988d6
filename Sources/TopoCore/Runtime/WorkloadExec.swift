import Foundation

/// `topo exec`: a command run inside an applied workload's cgroup, CPUs, memory policy and network namespace,
/// through the same launcher as the workload itself, in the caller's session and terminal.
public enum WorkloadExec {
    /// The command's exit status, or why it could not start.
    public static func run(profile: String, workload: String, command: [String], state: StateStore, cgroups: CgroupFS,
                           etcNetns: String = Links.etcNetnsDirectory) -> Result<Int32, TopoFailure> {
        guard let plan = state.plan(profile) else { return .failure(TopoFailure(.invalid, "profile \(profile) is not applied (see topo status)")) }
        guard let w = plan.workload(named: workload) else {
            return .failure(TopoFailure(.invalid, "profile \(profile) has no workload \(workload) (it has \(plan.workloads.map(\.name).joined(separator: ", ")))"))
        }
        let cg = Applier.workloadCgroup(profile, w)
        guard cgroups.exists(cg) else {
            return .failure(TopoFailure(.hostCannot, "\(cgroups.path(cg)) is gone; run topo down \(profile) and apply it again"))
        }
        let hosts = w.netns.map { "\(etcNetns)/\($0)/hosts" } ?? ""
        var spec = LaunchSpec.forWorkload(w, profile: profile, cgroupProcs: cgroups.path(cg, "cgroup.procs"), logPath: nil,
                                          hostsFile: !hosts.isEmpty && Sys.exists(hosts) ? hosts : nil)
        spec.command = command
        spec.newSession = false
        let specPath = "\(state.profileDir(profile))/launch/exec-\(getpid()).json"
        defer { try? Sys.unlink(specPath) }
        switch Spawn.launch(spec, specPath: specPath) {
        case .failure(let f): return .failure(TopoFailure(.hostCannot, "\(f)"))
        case .success(let pid): return .success(Spawn.wait(pid))
        }
    }
}
