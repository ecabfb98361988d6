import Foundation

/// What is applied, read from topo's state and checked against the kernel.
public struct StatusReport: Codable, Equatable, Sendable {
    public var profiles: [ProfileStatus]

    public struct ProfileStatus: Codable, Equatable, Sendable {
        public var name: String
        /// `applied`, or `incomplete` when an apply was stopped part-way (run `topo down`).
        public var state: String
        public var workloads: [WorkloadStatus]
        /// Why the profile's plan cannot be read, when it cannot.
        public var problem: String?
        /// Each host.tune setting the profile holds, and where the kernel no longer reads what topo wrote.
        public var tuning: [TuneStatus]?
        /// The systemd unit that holds the profile's cgroups, under the systemd cgroup manager.
        public var unit: String?
    }

    public struct TuneStatus: Codable, Equatable, Sendable {
        public var setting: String
        public var value: String
        public var differences: [String]
    }

    public struct WorkloadStatus: Codable, Equatable, Sendable {
        public var name: String
        /// Absolute path of the workload's cgroup.
        public var cgroup: String
        public var pids: [Int32]
        public var cpus: CPUSet
        public var mems: CPUSet
        public var memoryPolicy: MemoryPolicy
        /// `running` (processes in the cgroup), `exited` (its command ended), `idle` (it has no command),
        /// `missing` (no cgroup).
        public var state: String
        public var log: String?
        /// For `isolation: partition`: the kernel's `cpuset.cpus.partition`, `root` when the partition
        /// holds, `root invalid (why)` when the kernel has since invalidated it.
        public var partition: String?
        /// The workload's network namespace, if it is linked.
        public var netns: String?
        /// Its IPv4 addresses as the kernel reports them inside its namespace, CIDR.
        public var addresses: [String]?
        /// Each netem qdisc on its side of a link, planned and as the kernel reports it.
        public var shaping: [ShapingStatus]?
        /// Where its cgroup settings, addresses or hosts file differ from the plan (the kernel's words); empty when none do.
        public var differences: [String] = []
        /// For a container workload: its runtime (`crun`, `runc`), container id and image.
        public var runtime: String?
        public var container: String?
        public var image: String?
    }

    public struct ShapingStatus: Codable, Equatable, Sendable {
        public var interface: String
        public var to: String
        public var planned: String
        /// Empty when the kernel's qdisc matches the plan; otherwise what differs (or that it is missing).
        public var differences: [String]
    }

    /// Every applied profile, each resource observed through its driver (all at once), then grouped by workload.
    public static func read(state: StateStore, drivers: Drivers) -> StatusReport {
        var profiles: [ProfileStatus] = []
        let loop = ResourceLoop(drivers: drivers)
        for name in state.profiles() {
            let complete = Sys.exists("\(state.profileDir(name))/applied")
            let plan: Plan
            switch state.plan(name) {
            case .success(let p): plan = p
            case .failure(let f):
                profiles.append(
                    ProfileStatus(
                        name: name, state: complete ? "unreadable" : "incomplete", workloads: [], problem: f.message))
                continue
            }
            let observed = loop.observe(plan.resources)
            let workloads = plan.workloads.map { w in
                workloadStatus(
                    w, profile: name, observed.filter { $0.resource.workload == w.name }, cgroups: drivers.cgroups)
            }
            let tuning = observed.compactMap { o -> TuneStatus? in
                guard case .hostTune(let t) = o.resource else { return nil }
                return TuneStatus(setting: t.setting.name, value: t.setting.value, differences: o.differences)
            }
            let unit = plan.resources.lazy.compactMap { r -> String? in
                guard case .cgroup(let c) = r, c.workload == nil, c.path.hasSuffix(".scope") else { return nil }
                return String(c.path.split(separator: "/").last!)
            }.first
            profiles.append(
                ProfileStatus(
                    name: name, state: complete ? "applied" : "incomplete", workloads: workloads,
                    tuning: tuning.isEmpty ? nil : tuning, unit: unit))
        }
        return StatusReport(profiles: profiles)
    }

    static func workloadStatus(
        _ w: PlannedWorkload, profile: String, _ observed: [Observation], cgroups: any CgroupManager
    ) -> WorkloadStatus {
        let cgroup = observed.first { if case .cgroup = $0.resource { true } else { false } }
        let exists = cgroup?.found ?? false
        let pids = cgroup?.pids ?? []
        let logPath = observed.compactMap { if case .launch(let l) = $0.resource { l.logPath } else { nil } }.first
        var status = WorkloadStatus(
            name: w.name, cgroup: cgroups.path(w.cgroupPath), pids: pids, cpus: w.cpus, mems: w.mems,
            memoryPolicy: w.memoryPolicy,
            state: !exists ? "missing" : !pids.isEmpty ? "running" : w.run == nil ? "idle" : "exited",
            log: logPath)
        if let run = w.run, run.runtime != .process,
            let l = observed.compactMap({ if case .launch(let l) = $0.resource { l } else { nil } }).first
        {
            status.runtime = run.runtime.rawValue
            status.container = OCIBundle.containerID(l)
            status.image = run.image ?? "/"
        }
        if w.isolation == .partition && exists {
            status.partition =
                observed.first {
                    if case .cgroupSetting(let s) = $0.resource, s.setting == .partition { true } else { false }
                }?.kernel
        }
        if let ns = w.netns {
            status.netns = ns
            status.addresses = observed.compactMap { o -> [String]? in
                guard case .address = o.resource, o.found, let k = o.kernel else { return nil }
                return k.split(separator: " ").map(String.init)
            }.flatMap { $0 }.sorted()
            status.shaping = observed.compactMap { o in
                guard case .qdisc(let q) = o.resource else { return nil }
                return ShapingStatus(
                    interface: q.interface, to: q.to, planned: q.netem.summary,
                    differences: o.found ? o.differences : ["no netem qdisc on \(q.interface) in \(q.netns)"])
            }
        }
        // Everything else that differs from the plan (limits, addresses, the hosts file), each in the kernel's words.
        let others = observed.filter { o in
            switch o.resource {
            case .qdisc, .launch, .cgroup: false
            default: true
            }
        }.flatMap(\.differences)
        status.differences = exists ? others : []
        return status
    }
}
