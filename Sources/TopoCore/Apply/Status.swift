import Foundation

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
    }

    public struct ShapingStatus: Codable, Equatable, Sendable {
        public var interface: String
        public var to: String
        public var planned: String
        /// Empty when the kernel's qdisc matches the plan; otherwise what differs (or that it is missing).
        public var differences: [String]
    }

    public static func read(state: StateStore, cgroups: CgroupFS, runner: CommandRunner = CommandRunner()) -> StatusReport {
        var profiles: [ProfileStatus] = []
        for name in state.profiles() {
            let complete = Sys.exists("\(state.profileDir(name))/applied")
            let plan = state.plan(name)
            // Each linked workload costs an `ip` and a `tc` process: all workloads are read at once.
            let workloads = concurrentMap(plan?.workloads ?? []) { w -> WorkloadStatus in
                let cg = Applier.workloadCgroup(name, w)
                let exists = cgroups.exists(cg)
                let pids = exists ? cgroups.allProcs(cg).sorted() : []
                var status = WorkloadStatus(name: w.name, cgroup: cgroups.path(cg), pids: pids, cpus: w.cpus, mems: w.mems,
                                            memoryPolicy: w.memoryPolicy,
                                            state: !exists ? "missing" : !pids.isEmpty ? "running" : w.run == nil ? "idle" : "exited",
                                            log: w.run == nil ? nil : state.logPath(name, w.name))
                if w.isolation == .partition && exists {
                    status.partition = (try? cgroups.read(cg, "cpuset.cpus.partition"))?.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                if let ns = w.netns, let plan {
                    status.netns = ns
                    status.addresses = Links.exists(ns) ? addresses(in: ns, runner) : []
                    status.shaping = plan.links.flatMap(\.shaping).filter { $0.from == w.name }.map { s in
                        let shown = runner.run([Links.tc, "-n", ns, "-j", "qdisc", "show", "dev", s.interface])
                        let diffs: [String]
                        if let options = NetemReadback.options(shown.stdout) {
                            diffs = NetemReadback.differences(planned: s.netem, kernel: options)
                        } else {
                            diffs = ["no netem qdisc on \(s.interface) in \(ns)"]
                        }
                        return ShapingStatus(interface: s.interface, to: s.to, planned: s.netem.summary, differences: diffs)
                    }
                }
                return status
            }
            profiles.append(ProfileStatus(name: name, state: complete ? "applied" : "incomplete", workloads: workloads))
        }
        return StatusReport(profiles: profiles)
    }

    /// IPv4 addresses in a namespace (loopback aside), from `ip -n NS -j -4 addr show`.
    static func addresses(in ns: String, _ runner: CommandRunner) -> [String] {
        let r = runner.run([Links.ip, "-n", ns, "-j", "-4", "addr", "show"])
        guard let list = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else { return [] }
        return list.filter { $0["ifname"] as? String != "lo" }.flatMap { iface in
            ((iface["addr_info"] as? [[String: Any]]) ?? []).compactMap { a in
                guard let local = a["local"] as? String, let len = a["prefixlen"] as? Int else { return nil }
                return "\(local)/\(len)"
            }
        }.sorted()
    }
}
