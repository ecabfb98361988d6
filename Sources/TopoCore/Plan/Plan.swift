/// The immutable result of resolving a profile against a host: every CPU, node and kernel value decided.
/// Apply consumes it; nothing in it needs the profile or the host again.
public struct Plan: Equatable, Sendable, Codable {
    public var name: String
    public var workloads: [PlannedWorkload]  // profile order
    public var links: [PlannedLink]  // profile order
    /// CPUs the profile keeps for housekeeping.
    public var reserved: CPUSet
    /// Sibling threads left idle so that no core is split (`smt: whole-cores` with an odd count).
    public var idle: CPUSet
    public var smt: SMTPolicy
    public var warnings: [String]

    public func workload(named name: String) -> PlannedWorkload? { workloads.first { $0.name == name } }
}

public struct PlannedWorkload: Equatable, Sendable, Codable {
    public var name: String
    public var cpus: CPUSet
    /// cpuset.mems: the nodes the workload may allocate from.
    public var mems: CPUSet
    public var memoryPolicy: MemoryPolicy
    /// The nodes handed to the NUMA policy (set_mempolicy); empty for `local`.
    public var policyNodes: CPUSet
    /// The NUMA nodes that hold the workload's CPUs.
    public var cpuNodes: CPUSet
    public var isolation: Isolation
    /// cgroup v2 interface files and the values to write, in the order to write them.
    public var cgroup: [CgroupSetting]
    /// What to start, if anything (a workload without `run` only gets its cgroup).
    public var run: PlannedRun?
    /// The workload's own network namespace, when it is linked to another workload.
    public var netns: String?
    /// Its addresses, CIDR (`10.77.0.1/30`), one per link.
    public var addresses: [String]
    /// The workloads it is linked to and their addresses (plain, e.g. `10.77.0.2`), for its hosts file and environment.
    public var peers: [Peer]

    public struct Peer: Equatable, Sendable, Codable {
        public var name: String
        public var address: String
    }

    /// The cgroup v2 controllers the settings need, in the order `cgroup.subtree_control` takes them.
    public var controllers: [String] {
        var result: [String] = []
        for s in cgroup {
            let c = String(s.file.prefix { $0 != "." })
            if !result.contains(c) { result.append(c) }
        }
        return result
    }
}

/// The process a workload runs, as the launcher needs it.
public struct PlannedRun: Equatable, Sendable, Codable {
    public var command: [String]
    /// `NAME=value`, in profile order.
    public var env: [String]
    public var workdir: String?
    public var user: String?
    public var capabilities: [String]
    public var runtime: Runtime
    public var image: String?

    init(_ r: RunSpec) {
        command = r.command
        env = r.env.map { "\($0.0)=\($0.1)" }
        workdir = r.workdir
        user = r.user
        capabilities = r.capabilities
        runtime = r.runtime
        image = r.image
    }
}

/// One write to a cgroup interface file, e.g. `memory.max` ← `4294967296`.
public struct CgroupSetting: Equatable, Sendable, Codable {
    public var file: String
    public var value: String
    public init(_ file: String, _ value: String) { self.file = file; self.value = value }
}

public struct PlannedLink: Equatable, Sendable, Codable {
    public var between: [String]
    public var subnet: IPv4Subnet
    /// Whether the subnet was chosen by topo (the profile left it out).
    public var subnetChosen: Bool
    public var mtu: Int
    /// The two ends, in `between` order: the first gets the subnet's first host address.
    public var ends: [End]
    /// Shaping per direction: each entry shapes packets leaving `from` (a netem qdisc on its interface).
    public var shaping: [Shaping]

    public struct End: Equatable, Sendable, Codable {
        public var workload: String
        public var netns: String
        /// The veth's name inside the workload's namespace: `to-PEER` (at most 15 bytes).
        public var interface: String
        /// CIDR, e.g. `10.77.0.1/30`.
        public var address: String
    }

    public struct Shaping: Equatable, Sendable, Codable {
        public var from: String
        public var to: String
        public var netns: String
        public var interface: String
        public var netem: Netem
    }

    public func end(_ workload: String) -> End? { ends.first { $0.workload == workload } }
}

/// One netem qdisc's settings, with the queue limit always decided.
public struct Netem: Equatable, Sendable, Codable {
    public var delay: Duration?
    public var jitter: Duration?
    public var distribution: NetemDistribution?
    public var loss: Percent?
    public var duplicate: Percent?
    public var reorder: Percent?
    public var corrupt: Percent?
    public var rate: BitRate?
    /// Packets netem may queue.
    public var limit: Int
    /// Whether `limit` was computed by topo rather than given.
    public var limitChosen: Bool

    /// In tc's order and words: `delay 200us 200us rate 1gbit limit 3334`.
    public var summary: String {
        var parts: [String] = []
        if let delay { parts.append("delay \(delay)" + (jitter.map { " \($0)" } ?? "")) }
        if let distribution { parts.append("distribution \(distribution.rawValue)") }
        if let loss { parts.append("loss \(loss)") }
        if let duplicate { parts.append("duplicate \(duplicate)") }
        if let reorder { parts.append("reorder \(reorder)") }
        if let corrupt { parts.append("corrupt \(corrupt)") }
        if let rate { parts.append("rate \(rate)") }
        parts.append("limit \(limit)")
        return parts.joined(separator: " ")
    }
}

extension IPv4Subnet: UnitCodable {}

/// Why a profile cannot be placed on this host: every reason, each saying what the host has.
public struct PlanFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}
