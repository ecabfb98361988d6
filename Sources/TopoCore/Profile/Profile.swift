// The decoded profile: plain values, checked for form but not yet against any host.

public struct Profile: Equatable, Sendable {
    public var version: Int
    public var name: String
    public var description: String?
    public var host: HostRequirements
    public var workloads: [Workload]  // in the file's order
    public var links: [LinkSpec]

    public func workload(named name: String) -> Workload? { workloads.first { $0.name == name } }
}

public struct HostRequirements: Equatable, Sendable {
    public var numaNodes: Int?
    public var cpus: Int?
    public var reserve: CPUSet = .empty
    public var smt: SMTPolicy = .wholeCores
    /// `host.tune`: the noise sources to quiet while the profile is applied.
    public var tune: HostTuning?
    public init() {}
}

/// `host.tune`: run-time settings that quiet a benchmark machine. Each is read and journaled before
/// topo changes it, and restored to exactly that value when the last profile that set it goes.
public struct HostTuning: Equatable, Sendable {
    /// Move movable interrupts off the CPUs of `exclusive` and `partition` workloads.
    public var irqsAway = false
    /// What to do about a running irqbalance, which would move them back.
    public var irqbalance: IrqbalanceAction = .warn
    /// Unbound workqueues and kernel threads that are not per-CPU, off those CPUs.
    public var kernelThreadsAway = false
    public var timerMigration: Switch?
    /// vm.stat_interval, in seconds.
    public var statInterval: Int?
    public var thp: THPMode?
    /// cpufreq's scaling_governor, for `scope`'s CPUs.
    public var governor: String?
    public var frequencyMin: Frequency?
    public var frequencyMax: Frequency?
    /// Which CPUs governor and frequency apply to.
    public var scope: TuneScope = .workloads
    public var boost: Switch?
    /// kernel.perf_event_max_sample_rate.
    public var perfSampleRate: Int?
    public var aslr: Switch?
    /// A setting the host cannot make is a warning instead of a refusal.
    public var bestEffort = false
    public init() {}

    public var isEmpty: Bool { self == HostTuning() }
}

public enum Switch: String, Equatable, Sendable, CaseIterable, Codable {
    case off, on
}

public enum IrqbalanceAction: String, Equatable, Sendable, CaseIterable, Codable {
    /// Warn in preflight and verify that a running irqbalance will move interrupts back.
    case warn
    /// Stop its systemd unit for the profile's lifetime, and start it again on `down`.
    case stop
}

/// /sys/kernel/mm/transparent_hugepage/enabled (and defrag).
public enum THPMode: String, Equatable, Sendable, CaseIterable, Codable {
    case never, madvise, always
}

public enum TuneScope: String, Equatable, Sendable, CaseIterable, Codable {
    /// The CPUs the profile's workloads hold.
    case workloads
    /// Every online CPU.
    case all
}

public enum SMTPolicy: String, Equatable, Sendable, CaseIterable, Codable {
    /// No physical core is ever split between two workloads.
    case wholeCores = "whole-cores"
    /// Threads of one core may go to different workloads.
    case any
}

public struct Workload: Equatable, Sendable {
    public var name: String
    public var cpus: CPURequest
    public var isolation: Isolation = .exclusive
    public var memory = MemorySpec()
    public var cpu = CPUSpec()
    public var pids: Limit<Int>?
    public var io: [IOLimit] = []
    public var run: RunSpec?

    public init(name: String, cpus: CPURequest) {
        self.name = name
        self.cpus = cpus
    }
}

public enum CPURequest: Equatable, Sendable {
    case list(CPUSet)
    case count(Int, node: NodeChoice)
}

public enum NodeChoice: Equatable, Sendable {
    case auto
    case node(Int)
}

public enum Isolation: String, Equatable, Sendable, CaseIterable, Codable {
    /// No other workload on these CPUs.
    case exclusive
    /// Other `shared` workloads may use the same CPUs.
    case shared
    /// A cgroup v2 cpuset partition root: nothing else on the host runs there.
    case partition
}

extension Isolation {
    /// Two workloads may have CPUs in common only when both are `shared`.
    public static func mayShareCPUs(_ a: Isolation, _ b: Isolation) -> Bool { a == .shared && b == .shared }

    /// Two workloads whose CPU lists overlap although one of them is not `shared`.
    public struct Conflict: Equatable, Sendable {
        public var earlier: Int
        public var later: Int
        public var overlap: CPUSet
        /// The one that is not shared (the later one when both are not).
        public var strict: Int
    }

    /// Every pair of explicit CPU lists that overlap where isolation forbids it, in list order, at most
    /// `limit` of them. Costs a few word operations per list, however many workloads share CPUs: the
    /// union of the shared lists and of the others is kept, and a list is compared one by one only
    /// with those it is known to overlap.
    public static func conflicts(_ lists: [(isolation: Isolation, cpus: CPUSet)], limit: Int = 200) -> [Conflict] {
        var found: [Conflict] = []
        var sharedUnion = CPUSet()
        var strictUnion = CPUSet()
        var shared: [Int] = []
        var strict: [Int] = []
        for (i, list) in lists.enumerated() {
            let isShared = list.isolation == .shared
            let candidates =
                (list.cpus.intersection(strictUnion).isEmpty ? [] : strict)
                + (isShared || list.cpus.intersection(sharedUnion).isEmpty ? [] : shared)
            for j in candidates.sorted() {
                let overlap = list.cpus.intersection(lists[j].cpus)
                guard !overlap.isEmpty else { continue }
                found.append(Conflict(earlier: j, later: i, overlap: overlap, strict: isShared ? j : i))
                if found.count >= limit { return found }
            }
            if isShared {
                shared.append(i)
                sharedUnion = sharedUnion.union(list.cpus)
            } else {
                strict.append(i)
                strictUnion = strictUnion.union(list.cpus)
            }
        }
        return found
    }

    /// The conflicts among named workloads' CPU lists, each as the later workload's index and a message
    /// that says how to fix it.
    public static func conflictMessages(
        _ workloads: [(name: String, isolation: Isolation, cpus: CPUSet)], limit: Int = 200
    ) -> [(later: Int, message: String)] {
        conflicts(workloads.map { ($0.isolation, $0.cpus) }, limit: limit).map { c in
            let (a, b, who) = (workloads[c.earlier], workloads[c.later], workloads[c.strict])
            return (
                c.later,
                "workloads \(a.name) and \(b.name) both ask for CPU \(c.overlap), but \(who.name) is \(who.isolation.rawValue); make both isolation: shared, or give them different CPUs"
            )
        }
    }
}

public enum MemoryPolicy: String, Equatable, Sendable, CaseIterable, Codable {
    case bind, preferred, interleave, local
}

/// A cgroup limit: a value or the kernel's `max`.
public enum Limit<Value: Equatable & Sendable>: Equatable, Sendable {
    case max
    case value(Value)
}

public struct MemorySpec: Equatable, Sendable {
    public var policy: MemoryPolicy = .bind
    public var nodes: CPUSet?
    public var max: Limit<Bytes>?
    public var high: Limit<Bytes>?
    public var swap: Limit<Bytes>?
    public init() {}
}

public struct CPUSpec: Equatable, Sendable {
    /// cpu.max as a number of CPUs; 4 means "400000 100000".
    public var quotaMicro: UInt64?  // millionths of a CPU
    public var weight: Int?
    public init() {}

    /// The default cpu.max period, 100 ms (kernel default, Documentation/admin-guide/cgroup-v2.rst).
    public static let period = Duration(nanoseconds: 100_000_000)
    /// `cpu.max` as a quota of CPU time per period: 2.5 CPUs is 250 ms every 100 ms.
    public var cpuMax: CgroupSetting? {
        quotaMicro.map {
            .cpuMax(quota: Duration(nanoseconds: $0 * CPUSpec.period.nanoseconds / 1_000_000), period: CPUSpec.period)
        }
    }
}

public struct IOLimit: Equatable, Sendable, Codable {
    public var device: DeviceNumber
    public var rbps: Limit<Bytes>?
    public var wbps: Limit<Bytes>?
    public var riops: Limit<Int>?
    public var wiops: Limit<Int>?
}

public struct DeviceNumber: Hashable, Sendable, Codable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var description: String { "\(major):\(minor)" }
}

public enum Runtime: String, Equatable, Sendable, CaseIterable, Codable {
    case process, crun, runc, podman
}

public struct RunSpec: Equatable, Sendable {
    public var command: [String]
    public var env: [(String, String)] = []
    public var workdir: String?
    /// `NAME`, `UID` or `UID:GID`; nil runs the workload as `defaultUser`. Root only when asked for (`root`, `0`).
    public var user: String?
    public var capabilities: [String] = []
    public var runtime: Runtime = .process
    public var image: String?

    public init(command: [String]) { self.command = command }

    /// Who a workload without `user:` runs as: the overflow user and group, 65534 (nobody, nogroup),
    /// which owns nothing on the host. uid 0 without capabilities would still own /proc/sys,
    /// /proc/sysrq-trigger, sysfs, the host's root-owned files and sockets, and could signal every
    /// root process: root is what a profile asks for by name (`user: root`), never what it gets by
    /// leaving the key out.
    public static let defaultUser = "65534:65534"

    public static func == (a: RunSpec, b: RunSpec) -> Bool {
        a.command == b.command && a.env.map { $0.0 } == b.env.map { $0.0 } && a.env.map { $0.1 } == b.env.map { $0.1 }
            && a.workdir == b.workdir && a.user == b.user && a.capabilities == b.capabilities
            && a.runtime == b.runtime && a.image == b.image
    }
}

public struct LinkSpec: Equatable, Sendable {
    public var between: [String]  // exactly two workload names
    public var subnet: IPv4Subnet?
    public var mtu: Int?
    public var netem: NetemSpec?
}

public struct NetemSpec: Equatable, Sendable {
    /// Restricts shaping to packets leaving this workload; nil shapes both directions.
    public var from: String?
    public var rate: BitRate?
    public var delay: Duration?
    public var jitter: Duration?
    public var distribution: NetemDistribution?
    public var loss: Percent?
    public var duplicate: Percent?
    public var reorder: Percent?
    public var corrupt: Percent?
    public var limit: Int?  // packets

    public init() {}

    /// The delay netem is given. Jitter without a delay means a mean delay equal to the jitter, so each
    /// packet waits between 0 and twice the jitter and no sample is negative (which netem clamps to 0).
    public var effectiveDelay: Duration? {
        if let delay { return delay }
        return jitter
    }
}

public enum NetemDistribution: String, Equatable, Sendable, CaseIterable, Codable {
    case uniform, normal, pareto, paretonormal
}

public struct IPv4Subnet: Hashable, Sendable, CustomStringConvertible {
    public var address: UInt32
    public var prefix: Int

    public static func parse(_ text: String) -> Result<IPv4Subnet, UnitError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), (0...32).contains(prefix), parts[1].count <= 2,
            case .success(let parsed) = IPv4Address.parse(String(parts[0]))
        else {
            return .failure(
                UnitError("\"\(text)\" is not an IPv4 subnet", fix: "write an address and prefix, e.g. 10.77.0.0/30"))
        }
        let address = parsed.value
        let subnet = IPv4Subnet(address: address, prefix: prefix)
        guard prefix <= 30 else {
            return .failure(
                UnitError("\(text) has no room for two host addresses", fix: "use a prefix of /30 or shorter"))
        }
        guard address & ~subnet.mask == 0 else {
            return .failure(
                UnitError(
                    "\(text) has host bits set",
                    fix: "write \(IPv4Subnet(address: address & subnet.mask, prefix: prefix))"))
        }
        return .success(subnet)
    }

    public var mask: UInt32 { prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix) }

    public static func dotted(_ a: UInt32) -> String {
        "\(a >> 24).\(a >> 16 & 255).\(a >> 8 & 255).\(a & 255)"
    }

    public var description: String { "\(IPv4Subnet.dotted(address))/\(prefix)" }

    public func overlaps(_ other: IPv4Subnet) -> Bool {
        let m = prefix < other.prefix ? mask : other.mask
        return address & m == other.address & m
    }
}
