/// The host as topo sees it: CPUs, cores, NUMA nodes and the kernel features topo relies on.
public struct HostTopology: Equatable, Sendable, Codable {
    public struct CPU: Equatable, Sendable, Codable {
        public var id: Int
        public var online: Bool
        public var node: Int?
        public var package: Int?
        public var coreID: Int?
        /// The hardware threads of this CPU's physical core, itself included.
        public var siblings: CPUSet
    }

    public struct Node: Equatable, Sendable, Codable {
        public var id: Int
        /// Online CPUs of the node; empty for a memory-only node.
        public var cpus: CPUSet
        public var memTotal: Bytes?
        /// Distance to every node in `HostTopology.nodes` order, as node/nodeN/distance lists them.
        public var distances: [Int]
        public var isMemoryOnly: Bool { cpus.isEmpty }

        enum CodingKeys: String, CodingKey { case id, cpus, memTotal, distances }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(cpus, forKey: .cpus)
            try c.encodeIfPresent(memTotal?.value, forKey: .memTotal)
            try c.encode(distances, forKey: .distances)
        }
        public init(id: Int, cpus: CPUSet, memTotal: Bytes?, distances: [Int]) {
            self.id = id
            self.cpus = cpus
            self.memTotal = memTotal
            self.distances = distances
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(Int.self, forKey: .id)
            cpus = try c.decode(CPUSet.self, forKey: .cpus)
            memTotal = try c.decodeIfPresent(UInt64.self, forKey: .memTotal).map(Bytes.init)
            distances = try c.decode([Int].self, forKey: .distances)
        }
    }

    public var cpus: [CPU] { didSet { derived = Derived(cpus, nodes) } }  // by id
    public var nodes: [Node] { didSet { derived = Derived(cpus, nodes) } }  // by id
    public var cgroup: CgroupInfo
    public var netem: Feature
    /// Where the topology was read from (`/sys` or a fixture directory).
    public var source: String
    /// Disagreements between sysfs and libnuma, and other things worth a look.
    public var notes: [String] = []
    /// What follows from `cpus`, worked out once when they are set: the planner asks for the cores and
    /// the online CPUs once per CPU it places, and a host has up to 8,192.
    private var derived: Derived

    enum CodingKeys: String, CodingKey { case cpus, nodes, cgroup, netem, source, notes }

    public init(
        cpus: [CPU], nodes: [Node], cgroup: CgroupInfo = .unknown("not probed"),
        netem: Feature = .unknown("not probed"), source: String
    ) {
        let sorted = cpus.sorted { $0.id < $1.id }
        self.cpus = sorted
        self.nodes = nodes.sorted { $0.id < $1.id }
        self.cgroup = cgroup
        self.netem = netem
        self.source = source
        derived = Derived(sorted, self.nodes)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            cpus: try c.decode([CPU].self, forKey: .cpus), nodes: try c.decode([Node].self, forKey: .nodes),
            cgroup: try c.decode(CgroupInfo.self, forKey: .cgroup), netem: try c.decode(Feature.self, forKey: .netem),
            source: try c.decode(String.self, forKey: .source))
        notes = try c.decodeIfPresent([String].self, forKey: .notes) ?? []
    }

    struct Derived: Equatable, Sendable {
        var online: CPUSet
        var all: CPUSet
        var cores: [CPUSet]
        /// CPU id → its index in `cpus`.
        var index: [Int: Int]
        /// Node id → the cores whose threads are all among its CPUs.
        var coresOfNode: [Int: [CPUSet]]

        init(_ cpus: [CPU], _ nodes: [Node]) {
            online = CPUSet(cpus.filter(\.online).map(\.id))
            all = CPUSet(cpus.map(\.id))
            index = Dictionary(cpus.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
            var seen = Set<CPUSet>()
            var result: [CPUSet] = []
            for cpu in cpus where cpu.online {
                let core = cpu.siblings.intersection(online)
                if seen.insert(core).inserted { result.append(core) }
            }
            cores = result.sorted { ($0.ids.first ?? 0) < ($1.ids.first ?? 0) }
            var byNode: [Int: [CPUSet]] = [:]
            for node in nodes where !node.cpus.isEmpty {
                byNode[node.id] = cores.filter { $0.isSubset(of: node.cpus) }
            }
            coresOfNode = byNode
        }
    }

    public var onlineCPUs: CPUSet { derived.online }
    public var allCPUs: CPUSet { derived.all }
    public func cpu(_ id: Int) -> CPU? { derived.index[id].map { cpus[$0] } }
    public func node(_ id: Int) -> Node? { nodes.first { $0.id == id } }

    /// Physical cores (sibling sets of online CPUs), each once, ordered by their lowest CPU id.
    public var cores: [CPUSet] { derived.cores }

    /// The cores of node `id` (whose threads are all among its CPUs), ordered as `cores`.
    public func cores(ofNode id: Int) -> [CPUSet] { derived.coresOfNode[id] ?? [] }

    /// True when some core has more than one online thread.
    public var hasSMT: Bool { cores.contains { $0.count > 1 } }
}

/// A kernel feature's availability, honest about what could not be told.
public enum Feature: Equatable, Sendable, Codable, CustomStringConvertible {
    case available(String)
    case unavailable(String)
    case unknown(String)

    public var description: String {
        switch self {
        case .available(let why): return "available (\(why))"
        case .unavailable(let why): return "unavailable (\(why))"
        case .unknown(let why): return "unknown (\(why))"
        }
    }

    public var isAvailable: Bool { if case .available = self { return true } else { return false } }

    enum CodingKeys: String, CodingKey { case state, detail }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .available(let d):
            try c.encode("available", forKey: .state)
            try c.encode(d, forKey: .detail)
        case .unavailable(let d):
            try c.encode("unavailable", forKey: .state)
            try c.encode(d, forKey: .detail)
        case .unknown(let d):
            try c.encode("unknown", forKey: .state)
            try c.encode(d, forKey: .detail)
        }
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = try c.decode(String.self, forKey: .detail)
        switch try c.decode(String.self, forKey: .state) {
        case "available": self = .available(d)
        case "unavailable": self = .unavailable(d)
        default: self = .unknown(d)
        }
    }
}

/// How cgroups are mounted: which hierarchy holds the controllers.
public struct CgroupInfo: Equatable, Sendable, Codable {
    public enum Mode: String, Sendable, Codable {
        /// cgroup2 alone, at /sys/fs/cgroup: what topo needs.
        case unified
        /// v1 controllers with a cgroup2 mount beside them (systemd's "hybrid").
        case hybrid
        /// v1 controllers only.
        case legacy
        case none
        case unknown
    }

    public var mode: Mode
    /// The cgroup2 mount point, if any.
    public var mountPoint: String?
    /// Controllers the cgroup2 root offers (its cgroup.controllers).
    public var controllers: [String]
    public var detail: String

    public static func unknown(_ why: String) -> CgroupInfo {
        CgroupInfo(mode: .unknown, mountPoint: nil, controllers: [], detail: why)
    }
}
