/// The immutable result of resolving a profile against a host: every CPU, node and kernel value decided.
/// Apply consumes it; nothing in it needs the profile or the host again.
public struct Plan: Equatable, Sendable, Codable {
    /// The version of this JSON layout (`topo plan --json`, the applied `plan.json`): `topo-plan/3`.
    /// 3 names every field of a resource (2 wrote `_0` for an unlabelled value; still read); before
    /// `topo-plan/3` the format was a bare number, which is still read.
    public var format = Plan.currentFormat
    public static let currentFormat = DocumentFormat.plan
    public var name: String
    public var workloads: [PlannedWorkload]  // profile order
    public var links: [PlannedLink]  // profile order
    /// CPUs the profile keeps for housekeeping.
    public var reserved: CPUSet
    /// Sibling threads left idle so that no core is split (`smt: whole-cores` with an odd count).
    public var idle: CPUSet
    public var smt: SMTPolicy
    public var warnings: [String]
    /// Every object apply makes, in the order it makes them; `down` undoes them in reverse.
    public var resources: [Resource]

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
    /// Its cgroup, relative to the cgroup root (`topo/PROFILE/WORKLOAD`; a partition: `topo.PROFILE.WORKLOAD`).
    public var cgroupPath: String
    /// cgroup v2 interface settings, in the order to write them.
    public var cgroup: [CgroupSetting]
    /// What to start, if anything (a workload without `run` only gets its cgroup).
    public var run: PlannedRun?
    /// The workload's own network namespace, when it is linked to another workload.
    public var netns: String?
    /// Its addresses, one per link.
    public var addresses: [IPv4Interface]
    /// The workloads it is linked to and their addresses, for its hosts file and environment.
    public var peers: [Peer]
    /// What its processes (and `topo exec`) get as their environment, `NAME=value`.
    public var environment: [String]
    /// Its hosts file, bind-mounted over /etc/hosts, when it is linked.
    public var hostsFile: String?

    public struct Peer: Equatable, Sendable, Codable {
        public var name: String
        public var address: IPv4Address
    }

    /// The cgroup v2 controllers the settings need, in enabling order.
    public var controllers: [Controller] { Controller.ordered(cgroup.map(\.controller)) }
}

/// Where topo keeps what it makes on a host. The planner writes these paths into the plan; tests plan
/// with a temporary layout.
public struct Layout: Equatable, Sendable {
    /// topo's state: `/run/topo` (StateStore).
    public var stateRoot: String
    /// Per-namespace files `ip netns exec` binds over /etc (iproute2's convention).
    public var etcNetns: String
    /// The cgroup under which every profile's subtree lives, relative to the cgroup root.
    public var topoCgroup: String
    /// Who owns the cgroup tree above topo's subtree: topo itself, or systemd (a delegated unit per profile).
    public var manager: CgroupManagerKind

    public init(
        stateRoot: String = "/run/topo", etcNetns: String = "/etc/netns", topoCgroup: String? = nil,
        manager: CgroupManagerKind = .cgroupfs
    ) {
        self.stateRoot = stateRoot
        self.etcNetns = etcNetns
        self.manager = manager
        self.topoCgroup = topoCgroup ?? (manager == .systemd ? Self.systemdSlice : "topo")
    }

    /// Under systemd, the slice every profile's scope is in, and a profile's scope (the names systemd
    /// gives their cgroups; `SystemdManager` makes them).
    public static let systemdSlice = "topo.slice"
    public static func systemdScope(_ profile: String) -> String { "topo-\(profile).scope" }

    public static let standard = Layout()

    /// A profile's cgroup: `topo/PROFILE`, or under systemd its delegated scope `topo.slice/topo-PROFILE.scope`.
    public func profileCgroup(_ profile: String) -> String {
        manager == .systemd ? "\(topoCgroup)/\(Self.systemdScope(profile))" : "\(topoCgroup)/\(profile)"
    }

    /// Where a workload's cgroup lives: `topo/<profile>/<workload>`, or for `isolation: partition`
    /// `topo.<profile>.<workload>` right below the cgroup root. The kernel makes a cpuset partition only
    /// in a child of a valid partition root (before Linux 6.7 always; after it, without
    /// `cpuset.cpus.exclusive` on every ancestor); the cgroup root is one and topo's own cgroups are not,
    /// since making them partitions would take their CPUs from the host. Names have no dots, so
    /// `topo.<profile>.<workload>` is unambiguous. Under systemd every workload is in the profile's
    /// scope (preflight refuses a partition there).
    public func workloadCgroup(_ profile: String, _ workload: String, _ isolation: Isolation) -> String {
        if manager == .systemd { return "\(profileCgroup(profile))/\(workload)" }
        return isolation == .partition ? "\(topoCgroup).\(profile).\(workload)" : "\(topoCgroup)/\(profile)/\(workload)"
    }

    public func hostsDirectory(_ netns: String) -> String { "\(etcNetns)/\(netns)" }
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
        user = r.user ?? RunSpec.defaultUser
        capabilities = r.capabilities
        runtime = r.runtime
        image = r.image
    }
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
        public var address: IPv4Interface
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

extension PlanFailure {
    /// The problems as people read them (`Problems.collapse`).
    public var collapsed: [String] { Problems.collapse(problems) }
}
