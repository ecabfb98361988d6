/// What is applied, read from topo's state and checked against the kernel.
public struct StatusReport: Codable, Equatable, Sendable {
    public var profiles: [ProfileStatus]

    public struct ProfileStatus: Codable, Equatable, Sendable {
        public var name: String
        /// `applied`, or `incomplete` when an apply was stopped part-way (run `topo down`).
        public var state: String
        public var workloads: [WorkloadStatus]
    }

    public struct WorkloadStatus: Codable, Equatable, Sendable {
        public var name: String
        /// Absolute path of the workload's cgroup.
        public var cgroup: String
        public var pids: [Int32]
        public var cpus: CPUSet
        public var mems: CPUSet
        public var memoryPolicy: MemoryPolicy
        /// `running` (processes in the cgroup), `exited` (cgroup empty), `missing` (no cgroup).
        public var state: String
        public var log: String?
    }

    public static func read(state: StateStore, cgroups: CgroupFS) -> StatusReport {
        var profiles: [ProfileStatus] = []
        for name in state.profiles() {
            let complete = Sys.exists("\(state.profileDir(name))/applied")
            let plan = state.plan(name)
            let workloads = (plan?.workloads ?? []).map { w -> WorkloadStatus in
                let cg = Applier.workloadCgroup(name, w.name)
                let exists = cgroups.exists(cg)
                let pids = exists ? cgroups.allProcs(cg).sorted() : []
                return WorkloadStatus(name: w.name, cgroup: cgroups.path(cg), pids: pids, cpus: w.cpus, mems: w.mems,
                                      memoryPolicy: w.memoryPolicy,
                                      state: !exists ? "missing" : pids.isEmpty ? "exited" : "running",
                                      log: w.run == nil ? nil : state.logPath(name, w.name))
            }
            profiles.append(ProfileStatus(name: name, state: complete ? "applied" : "incomplete", workloads: workloads))
        }
        return StatusReport(profiles: profiles)
    }
}
