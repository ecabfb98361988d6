// The resources a plan is made of. Each holds every name, path and value apply will use, typed;
// the kernel's encodings are produced only by the driver that writes them (Kernel/, Runtime/).
// Apply makes them in plan order, `down` undoes them from their journal records in reverse, status
// and verify observe them: docs/ARCHITECTURE.md.

/// One object apply makes, in the order apply makes it.
public enum Resource: Equatable, Sendable {
    /// topo's root cgroup and the controllers it needs at the cgroup root (shared by every profile;
    /// what it changes outside topo's own cgroups is recorded host-wide, for the last `down`).
    case cgroupRoot(CgroupRootResource)
    /// A cgroup topo makes and marks as its own.
    case cgroup(CgroupResource)
    /// One interface file written in a topo cgroup.
    case cgroupSetting(CgroupSettingResource)
    /// A network namespace (`ip netns`), loopback up.
    case namespace(NamespaceResource)
    /// A veth pair made straight into its two namespaces.
    case veth(VethResource)
    /// An IPv4 address on one end of a veth, the interface up.
    case address(AddressResource)
    /// A netem root qdisc on one end of a veth.
    case qdisc(QdiscResource)
    /// `/etc/netns/NS/hosts`, naming a linked workload's peers.
    case hostsFile(HostsFileResource)
    /// One `host.tune` setting, its previous value recorded host-wide first.
    case hostTune(TuneResource)
    /// A workload's command started inside its cgroup, CPUs, memory policy and namespace.
    case launch(LaunchResource)

    /// The kind, as journals, `topo plan --json` and messages name it.
    public var kind: Kind {
        switch self {
        case .cgroupRoot: .cgroupRoot
        case .cgroup: .cgroup
        case .cgroupSetting: .cgroupSetting
        case .namespace: .namespace
        case .veth: .veth
        case .address: .address
        case .qdisc: .qdisc
        case .hostsFile: .hostsFile
        case .hostTune: .hostTune
        case .launch: .launch
        }
    }

    public enum Kind: String, Equatable, Sendable, CaseIterable, Codable {
        case cgroupRoot, cgroup, cgroupSetting, namespace, veth, address, qdisc, hostsFile, hostTune, launch

        /// How `down` names what it removed, e.g. "2 cgroups".
        public var noun: String {
            switch self {
            case .cgroupRoot: "topo root cgroup"
            case .cgroup: "cgroup"
            case .cgroupSetting: "cgroup setting"
            case .namespace: "network namespace"
            case .veth: "veth pair"
            case .address: "address"
            case .qdisc: "qdisc"
            case .hostsFile: "hosts file"
            case .hostTune: "host setting"
            case .launch: "workload"
            }
        }
    }

    /// Whether every applied profile shares the object (topo's root cgroup and what it changed at the
    /// cgroup root): undo releases it only when nothing before it was left undone, or the record of what
    /// to restore would go while the journal that needs it stays.
    public var isShared: Bool {
        if case .cgroupRoot = self { return true }
        return false
    }

    /// The workload the resource belongs to, if one does (status groups observations by it).
    public var workload: String? {
        switch self {
        case .cgroupRoot, .veth, .hostTune: nil
        case .cgroup(let c): c.workload
        case .cgroupSetting(let s): s.workload
        case .namespace(let n): n.workload
        case .address(let a): a.workload
        case .qdisc(let q): q.from
        case .hostsFile(let h): h.workload
        case .launch(let l): l.workload
        }
    }

    /// One line for people: `cgroup topo/demo/app`, `memory.max 256M in topo/demo/app`.
    public var summary: String {
        switch self {
        case .cgroupRoot(let r):
            "cgroup root \(r.path) (controllers \(r.controllers.map(\.rawValue).joined(separator: " ")))"
        case .cgroup(let c): "cgroup \(c.path)"
        case .cgroupSetting(let s): "\(s.setting.file) \(s.setting.humanValue) in \(s.cgroup)"
        case .namespace(let n): "network namespace \(n.name)"
        case .veth(let v): "veth \(v.ends[0].interface)@\(v.ends[0].netns) ↔ \(v.ends[1].interface)@\(v.ends[1].netns)"
        case .address(let a): "address \(a.address) on \(a.interface) in \(a.netns)"
        case .qdisc(let q): "netem \(q.netem.summary) on \(q.interface) in \(q.netns)"
        case .hostsFile(let h): "hosts file \(h.path)"
        case .hostTune(let t): "host.tune.\(t.setting.name) \(t.setting.value)"
        case .launch(let l): "workload \(l.workload): \(l.command.joined(separator: " "))"
        }
    }
}

/// A cgroup v2 controller. `allCases` is the order topo enables them in.
public enum Controller: String, Equatable, Hashable, Sendable, CaseIterable, Codable {
    case cpuset, cpu, io, memory, pids

    /// The controllers among `used`, in enabling order.
    public static func ordered<S: Sequence>(_ used: S) -> [Controller] where S.Element == Controller {
        let set = Set(used)
        return allCases.filter { set.contains($0) }
    }
}

public struct CgroupRootResource: Equatable, Sendable, Codable {
    /// Relative to the cgroup root: `topo`.
    public var path: String
    /// The profile whose journal holds this record; the last profile to leave releases the root.
    public var profile: String
    /// Controllers enabled at the cgroup root and in `path`'s `cgroup.subtree_control`.
    public var controllers: [Controller]
}

public struct CgroupResource: Equatable, Sendable, Codable {
    /// Relative to the cgroup root, e.g. `topo/demo/app` or `topo.demo.app` (a partition).
    public var path: String
    /// The value of topo's owner mark: the profile's name. `down` removes only cgroups that carry it.
    public var owner: String
    /// The workload, for a workload's cgroup; nil for the profile's own.
    public var workload: String?
    /// Controllers enabled in its `cgroup.subtree_control`, for its children.
    public var enable: [Controller]
}

public struct CgroupSettingResource: Equatable, Sendable, Codable {
    public var cgroup: String
    public var workload: String?
    public var setting: CgroupSetting
}

/// One cgroup v2 interface file and its value, typed. `CgroupfsManager` writes and parses the kernel's encoding.
public enum CgroupSetting: Equatable, Sendable {
    case cpus(CPUSet)
    case mems(CPUSet)
    /// `cpuset.cpus.partition` ← `root`.
    case partition
    /// `cpu.max`: at most `quota` of CPU time in every `period`.
    case cpuMax(quota: Duration, period: Duration)
    case cpuWeight(Int)
    case memoryMax(Limit<Bytes>)
    case memoryHigh(Limit<Bytes>)
    case swapMax(Limit<Bytes>)
    case pidsMax(Limit<Int>)
    case ioMax(IOLimit)

    public var file: String {
        switch self {
        case .cpus: "cpuset.cpus"
        case .mems: "cpuset.mems"
        case .partition: "cpuset.cpus.partition"
        case .cpuMax: "cpu.max"
        case .cpuWeight: "cpu.weight"
        case .memoryMax: "memory.max"
        case .memoryHigh: "memory.high"
        case .swapMax: "memory.swap.max"
        case .pidsMax: "pids.max"
        case .ioMax: "io.max"
        }
    }

    public var controller: Controller {
        switch self {
        case .cpus, .mems, .partition: .cpuset
        case .cpuMax, .cpuWeight: .cpu
        case .memoryMax, .memoryHigh, .swapMax: .memory
        case .pidsMax: .pids
        case .ioMax: .io
        }
    }

    /// The value in a profile's words, for people: `256M`, `0.5 CPU per 100ms`, `8:0 rbps=200M`.
    public var humanValue: String {
        switch self {
        case .cpus(let s), .mems(let s): s.description
        case .partition: "root"
        case .cpuMax(let quota, let period): "\(quota) per \(period)"
        case .cpuWeight(let w): String(w)
        case .memoryMax(let l), .memoryHigh(let l), .swapMax(let l): l.description
        case .pidsMax(let l): l.description
        case .ioMax(let io): io.description
        }
    }
}

public struct NamespaceResource: Equatable, Sendable, Codable {
    /// As `ip netns` lists it: `topo.PROFILE.WORKLOAD`.
    public var name: String
    public var workload: String
    /// The profile: topo marks the namespace as its own with it (its loopback's alias), and `down`
    /// deletes only a namespace that carries that mark.
    public var owner: String
}

public struct VethResource: Equatable, Sendable, Codable {
    public struct End: Equatable, Sendable, Codable {
        public var netns: String
        public var interface: String
    }
    /// Exactly two ends.
    public var ends: [End]
    public var mtu: Int
}

public struct AddressResource: Equatable, Sendable, Codable {
    public var netns: String
    public var interface: String
    public var workload: String
    public var address: IPv4Interface
}

public struct QdiscResource: Equatable, Sendable, Codable {
    public var netns: String
    public var interface: String
    /// The workload whose packets it shapes (they leave through `interface`) and their destination.
    public var from: String
    public var to: String
    public var netem: Netem
}

public struct HostsFileResource: Equatable, Sendable, Codable {
    public var netns: String
    public var workload: String
    /// The profile: the directory carries topo's owner mark with it.
    public var owner: String
    /// `/etc/netns/NS`: made by topo, removed by `down` when only topo's file is in it.
    public var directory: String
    public var contents: String
    /// Mode of the file: world-readable, since a workload may run as any user.
    public static let mode: UInt16 = 0o644
    public var path: String { "\(directory)/hosts" }
    /// `/etc/netns`, which topo makes when it is missing and removes with the last profile.
    public var parent: String { String(directory[..<(directory.lastIndex(of: "/") ?? directory.endIndex)]) }
}

/// Everything a workload runtime needs to start one workload.
public struct LaunchResource: Equatable, Sendable, Codable {
    /// The profile: its cgroups carry its name as their owner mark.
    public var profile: String
    public var workload: String
    public var runtime: Runtime
    public var image: String?
    public var command: [String]
    /// `NAME=value`: topo's variables, then the profile's (a profile's value replaces topo's of the same name).
    public var environment: [String]
    public var workdir: String?
    public var user: String?
    /// Capabilities kept (`CAP_NET_RAW`); every other one is dropped.
    public var capabilities: [String]
    /// The workload's cgroup, relative to the cgroup root.
    public var cgroup: String
    public var cpus: CPUSet
    public var memoryPolicy: MemoryPolicy
    public var policyNodes: CPUSet
    /// stdout and stderr are appended here; nil keeps the caller's (`topo exec`).
    public var logPath: String?
    /// The network namespace to enter, by name.
    public var netns: String?
    /// Bind-mounted over /etc/hosts in the workload's own mount namespace.
    public var hostsFile: String?
    /// The workload cgroup's settings: a front-end that makes its own cgroup below it (podman) is
    /// given them in its own options too.
    public var settings: [CgroupSetting]? = nil
}

extension LaunchResource {
    /// Where the workload runs and what it keeps, for `apply --dry-run`: CPUs, memory policy, namespace,
    /// user, capabilities, environment and output.
    public var placementLines: [String] {
        var lines = [
            "  CPUs \(cpus.isEmpty ? "any" : cpus.description), memory policy \(memoryPolicy.rawValue)\(memoryPolicy == .local ? "" : " on nodes \(policyNodes)"), cgroup \(cgroup)"
        ]
        if let netns {
            lines.append("  network namespace \(netns)\(hostsFile.map { ", \($0) bound over /etc/hosts" } ?? "")")
        }
        lines.append(
            "  as user \(user ?? RunSpec.defaultUser), capabilities kept: \(capabilities.isEmpty ? "none" : capabilities.joined(separator: " ")) (every other one dropped), no new privileges"
        )
        if Self.isRoot(user) && runtime == .process {
            lines.append(
                "  as root: /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus, /proc/fs and /sys read-only, the kernel's memory, key and timer files masked, a fresh /run"
            )
        }
        if let workdir { lines.append("  in \(workdir)") }
        lines.append(
            "  environment: "
                + environment.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 }.joined(
                    separator: " "))
        lines.append("  output appended to \(logPath ?? "the caller's terminal")")
        return lines
    }

    /// Whether a user names root: `root`, `0` or `0:GID`.
    public static func isRoot(_ user: String?) -> Bool {
        guard let user else { return false }
        let name = user.split(separator: ":", omittingEmptySubsequences: false).first.map(String.init) ?? user
        return name == "root" || name == "0" || Sys.user(named: name)?.uid == 0
    }

    /// The command as a shell would show it, each argument quoted where it needs to be.
    public var commandLine: String {
        command.map { arg in
            arg.isEmpty || arg.contains(where: { " \t\n'\"\\$`;&|<>()*?[]#~!{}".contains($0) })
                ? "'" + arg.replacingOccurrences(of: "'", with: "'\\''") + "'" : arg
        }.joined(separator: " ")
    }
}

/// An interface address: an IPv4 address and its prefix length, spelled `10.77.0.1/30`.
public struct IPv4Interface: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefix: Int
    public init(address: IPv4Address, prefix: Int) {
        self.address = address
        self.prefix = prefix
    }
    public var description: String { "\(address)/\(prefix)" }

    public static func parse(_ text: String) -> Result<IPv4Interface, UnitError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count <= 2, let prefix = Int(parts[1]), (0...32).contains(prefix),
            case .success(let a) = IPv4Address.parse(String(parts[0]))
        else {
            return .failure(
                UnitError(
                    "\"\(text)\" is not an IPv4 interface address",
                    fix: "write an address and prefix, e.g. 10.77.0.1/30"))
        }
        return .success(IPv4Interface(address: a, prefix: prefix))
    }
}

/// An IPv4 address, spelled dotted (`10.77.0.1`).
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }
    public var description: String { IPv4Subnet.dotted(value) }

    public static func parse(_ text: String) -> Result<IPv4Address, UnitError> {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        var value: UInt32 = 0
        guard octets.count == 4 else {
            return .failure(
                UnitError("\"\(text)\" is not an IPv4 address", fix: "write four numbers from 0 to 255, e.g. 10.77.0.1")
            )
        }
        for o in octets {
            guard (1...3).contains(o.count), o.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt32(o), v <= 255
            else {
                return .failure(
                    UnitError(
                        "\"\(text)\" is not an IPv4 address", fix: "write four numbers from 0 to 255, e.g. 10.77.0.1"))
            }
            value = value << 8 | v
        }
        return .success(IPv4Address(value))
    }
}

extension IPv4Interface: UnitCodable {}
extension IPv4Address: UnitCodable {}

extension IPv4Subnet {
    /// The n-th host address (1-based) with the subnet's prefix: `10.77.0.1/30`.
    public func host(_ n: UInt32) -> IPv4Interface { IPv4Interface(address: IPv4Address(address + n), prefix: prefix) }
}

extension Limit: CustomStringConvertible where Value: CustomStringConvertible {
    /// The profile's spelling: the value, or `max`.
    public var description: String {
        if case .value(let v) = self { return v.description }
        return "max"
    }
}

/// Limits travel in JSON as `"max"` or their value (a size in its spelling, a count as a number).
extension Limit: Codable where Value: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let text = try? c.decode(String.self), text == "max" {
            self = .max
        } else {
            self = .value(try c.decode(Value.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .max: try c.encode("max")
        case .value(let v): try c.encode(v)
        }
    }
}

extension IOLimit: CustomStringConvertible {
    /// `8:0 rbps=200M wiops=5000`: the device and each limit that is set, in io.max's key order.
    public var description: String {
        var parts = [device.description]
        for (key, limit) in [("rbps", rbps), ("wbps", wbps)] { if let limit { parts.append("\(key)=\(limit)") } }
        for (key, limit) in [("riops", riops), ("wiops", wiops)] { if let limit { parts.append("\(key)=\(limit)") } }
        return parts.joined(separator: " ")
    }
}

/// One `host.tune` setting of one profile. The driver (`HostTuner`) finds the files it means on the host.
public struct TuneResource: Equatable, Sendable, Codable {
    public var profile: String
    public var setting: TuneSetting
    /// A host that cannot make it warns instead of refusing.
    public var bestEffort: Bool
}

/// A `host.tune` setting, typed; the CPU sets are decided by the planner.
public enum TuneSetting: Equatable, Sendable {
    /// irqbalance's systemd unit stopped while the profile is applied.
    case irqbalanceStopped
    /// Every movable interrupt off these CPUs.
    case irqsAway(CPUSet)
    /// Unbound workqueues off these CPUs.
    case workqueuesAway(CPUSet)
    /// Kernel threads that are not per-CPU off these CPUs.
    case kernelThreadsAway(CPUSet)
    case timerMigration(Switch)
    case statInterval(Int)
    case thp(THPMode)
    case governor(String, cpus: CPUSet)
    /// scaling_min_freq and scaling_max_freq (either may stay as it is).
    case frequency(min: Frequency?, max: Frequency?, cpus: CPUSet)
    case boost(Switch)
    case perfSampleRate(Int)
    case aslr(Switch)

    /// The profile key under `host.tune` (workqueues and kernel threads are both `kernelThreads`).
    public var name: String {
        switch self {
        case .irqbalanceStopped: "irqbalance"
        case .irqsAway: "irqs"
        case .workqueuesAway: "kernelThreads.workqueues"
        case .kernelThreadsAway: "kernelThreads"
        case .timerMigration: "timerMigration"
        case .statInterval: "statInterval"
        case .thp: "thp"
        case .governor: "governor"
        case .frequency: "frequency"
        case .boost: "boost"
        case .perfSampleRate: "perfSampleRate"
        case .aslr: "aslr"
        }
    }

    /// The value as the profile says it, with the CPUs it concerns.
    public var value: String {
        switch self {
        case .irqbalanceStopped: "stop"
        case .irqsAway(let c), .workqueuesAway(let c), .kernelThreadsAway(let c): "away from CPU \(c)"
        case .timerMigration(let v), .boost(let v), .aslr(let v): v.rawValue
        case .statInterval(let n): "\(n)s"
        case .thp(let m): m.rawValue
        case .governor(let g, let c): "\(g) on CPU \(c)"
        case .frequency(let lo, let hi, let c):
            "\(lo.map { "min \($0)" } ?? "")\(lo != nil && hi != nil ? ", " : "")\(hi.map { "max \($0)" } ?? "") on CPU \(c)"
        case .perfSampleRate(let n): String(n)
        }
    }
}

// MARK: JSON: every field named (CaseCoding.swift)

extension Resource: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let kind = try c.onlyCase(of: "resource")
        switch Kind(rawValue: kind) {
        case .cgroupRoot: self = .cgroupRoot(try c.single(CgroupRootResource.self, kind))
        case .cgroup: self = .cgroup(try c.single(CgroupResource.self, kind))
        case .cgroupSetting: self = .cgroupSetting(try c.single(CgroupSettingResource.self, kind))
        case .namespace: self = .namespace(try c.single(NamespaceResource.self, kind))
        case .veth: self = .veth(try c.single(VethResource.self, kind))
        case .address: self = .address(try c.single(AddressResource.self, kind))
        case .qdisc: self = .qdisc(try c.single(QdiscResource.self, kind))
        case .hostsFile: self = .hostsFile(try c.single(HostsFileResource.self, kind))
        case .hostTune: self = .hostTune(try c.single(TuneResource.self, kind))
        case .launch: self = .launch(try c.single(LaunchResource.self, kind))
        case nil:
            throw DecodingError.dataCorrupted(
                .init(codingPath: c.codingPath, debugDescription: "\(kind) is not a kind of resource this topo knows"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        let kind = self.kind.rawValue
        switch self {
        case .cgroupRoot(let r): try c.single(r, kind)
        case .cgroup(let r): try c.single(r, kind)
        case .cgroupSetting(let r): try c.single(r, kind)
        case .namespace(let r): try c.single(r, kind)
        case .veth(let r): try c.single(r, kind)
        case .address(let r): try c.single(r, kind)
        case .qdisc(let r): try c.single(r, kind)
        case .hostsFile(let r): try c.single(r, kind)
        case .hostTune(let r): try c.single(r, kind)
        case .launch(let r): try c.single(r, kind)
        }
    }
}

extension CgroupSetting: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let name = try c.onlyCase(of: "cgroup setting")
        switch name {
        case "cpus": self = .cpus(try c.single(CPUSet.self, name))
        case "mems": self = .mems(try c.single(CPUSet.self, name))
        case "partition": self = .partition
        case "cpuMax":
            self = .cpuMax(
                quota: try c.labelled(Duration.self, name, "quota"),
                period: try c.labelled(Duration.self, name, "period"))
        case "cpuWeight": self = .cpuWeight(try c.single(Int.self, name))
        case "memoryMax": self = .memoryMax(try c.single(Limit<Bytes>.self, name))
        case "memoryHigh": self = .memoryHigh(try c.single(Limit<Bytes>.self, name))
        case "swapMax": self = .swapMax(try c.single(Limit<Bytes>.self, name))
        case "pidsMax": self = .pidsMax(try c.single(Limit<Int>.self, name))
        case "ioMax": self = .ioMax(try c.single(IOLimit.self, name))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: c.codingPath, debugDescription: "\(name) is not a cgroup setting this topo knows"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .cpus(let s): try c.single(s, "cpus")
        case .mems(let s): try c.single(s, "mems")
        case .partition: try c.empty("partition")
        case .cpuMax(let quota, let period): try c.labelled("cpuMax", [("quota", quota), ("period", period)])
        case .cpuWeight(let w): try c.single(w, "cpuWeight")
        case .memoryMax(let l): try c.single(l, "memoryMax")
        case .memoryHigh(let l): try c.single(l, "memoryHigh")
        case .swapMax(let l): try c.single(l, "swapMax")
        case .pidsMax(let l): try c.single(l, "pidsMax")
        case .ioMax(let io): try c.single(io, "ioMax")
        }
    }
}

extension TuneSetting: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CaseKey.self)
        let name = try c.onlyCase(of: "host setting")
        switch name {
        case "irqbalanceStopped": self = .irqbalanceStopped
        case "irqsAway": self = .irqsAway(try c.single(CPUSet.self, name))
        case "workqueuesAway": self = .workqueuesAway(try c.single(CPUSet.self, name))
        case "kernelThreadsAway": self = .kernelThreadsAway(try c.single(CPUSet.self, name))
        case "timerMigration": self = .timerMigration(try c.single(Switch.self, name))
        case "statInterval": self = .statInterval(try c.single(Int.self, name))
        case "thp": self = .thp(try c.single(THPMode.self, name))
        case "governor":
            self = .governor(
                try c.labelled(String.self, name, "governor", legacy: "_0"),
                cpus: try c.labelled(CPUSet.self, name, "cpus"))
        case "frequency":
            self = .frequency(
                min: try c.labelledIfPresent(Frequency.self, name, "min"),
                max: try c.labelledIfPresent(Frequency.self, name, "max"),
                cpus: try c.labelled(CPUSet.self, name, "cpus"))
        case "boost": self = .boost(try c.single(Switch.self, name))
        case "perfSampleRate": self = .perfSampleRate(try c.single(Int.self, name))
        case "aslr": self = .aslr(try c.single(Switch.self, name))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: c.codingPath, debugDescription: "\(name) is not a host setting this topo knows"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CaseKey.self)
        switch self {
        case .irqbalanceStopped: try c.empty("irqbalanceStopped")
        case .irqsAway(let s): try c.single(s, "irqsAway")
        case .workqueuesAway(let s): try c.single(s, "workqueuesAway")
        case .kernelThreadsAway(let s): try c.single(s, "kernelThreadsAway")
        case .timerMigration(let v): try c.single(v, "timerMigration")
        case .statInterval(let n): try c.single(n, "statInterval")
        case .thp(let m): try c.single(m, "thp")
        case .governor(let g, let cpus): try c.labelled("governor", [("governor", g), ("cpus", cpus)])
        case .frequency(let lo, let hi, let cpus):
            try c.labelled("frequency", [("min", lo), ("max", hi), ("cpus", cpus)])
        case .boost(let v): try c.single(v, "boost")
        case .perfSampleRate(let n): try c.single(n, "perfSampleRate")
        case .aslr(let v): try c.single(v, "aslr")
        }
    }
}
