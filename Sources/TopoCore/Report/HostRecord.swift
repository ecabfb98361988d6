import Foundation

/// What a benchmark result depends on in the host, as `topo report` records it and `topo diff` compares
/// it: at least what pyperf's metadata and BenchExec's system info hold, read from procfs and sysfs
/// (below `root`, a directory shaped like `/` in tests), plus the topology topo plans against.
public struct HostRecord: Codable, Equatable, Sendable {
    public struct Kernel: Codable, Equatable, Sendable {
        public var release: String
        public var version: String
        public var commandLine: String
        /// The boot parameters that change where and how work runs, by name ("" for a bare flag).
        public var parameters: [String: String]
    }

    /// One microcode revision for every CPU (a string in JSON), or one per CPU where they differ (a list).
    public enum Microcode: Codable, Equatable, Sendable {
        case same(String)
        case perCPU([String])

        public init(_ revisions: [String]) {
            self = Set(revisions).count <= 1 ? .same(revisions.first ?? "unknown") : .perCPU(revisions)
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .same(let s): try c.encode(s)
            case .perCPU(let l): try c.encode(l)
            }
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                self = .same(s)
            } else {
                self = .perCPU(try c.decode([String].self))
            }
        }
    }

    public struct CPUs: Codable, Equatable, Sendable {
        public var model: String
        public var microcode: Microcode
        public var sockets: Int
        public var cores: Int
        public var threads: Int
        public var smt: Bool
        public var online: CPUSet
    }

    /// CPUs sharing one frequency setting (consecutive CPUs with the same values are one entry).
    public struct Frequency: Codable, Equatable, Sendable {
        public var cpus: CPUSet
        public var driver: String?
        public var governor: String?
        public var minKHz: Int?
        public var maxKHz: Int?
    }

    public struct Cgroup: Codable, Equatable, Sendable {
        public var mode: String
        public var controllers: [String]
    }

    public var hostname: String
    public var kernel: Kernel
    public var cpu: CPUs
    public var numa: [HostTopology.Node]
    public var memoryBytes: UInt64?
    public var cgroup: Cgroup
    public var frequency: [Frequency]
    /// `on`, `off`, or nil where the host shows no boost control.
    public var boost: String?
    /// transparent_hugepage's `enabled` and `defrag`, the selected value of each.
    public var transparentHugePages: [String: String]
    public var irqbalance: Bool
    /// kernel.randomize_va_space.
    public var aslr: Int?
    /// kernel.numa_balancing.
    public var numaBalancing: Int?
    /// kernel.timer_migration, vm.stat_interval, kernel.perf_event_max_sample_rate (what host.tune sets).
    public var timerMigration: Int?
    public var statInterval: Int?
    public var perfSampleRate: Int?
    /// The CPUs unbound workqueues may run on (`/sys/devices/virtual/workqueue/cpumask`).
    public var workqueueCPUs: CPUSet?
    public var distribution: String?
    /// Versions of the tools topo drives (iproute2, libnuma, the container runtimes in use).
    public var versions: [String: String]

    /// The boot parameters recorded in `Kernel.parameters`.
    public static let parameterNames: Set<String> = [
        "isolcpus", "nohz_full", "nohz", "rcu_nocbs", "irqaffinity", "mitigations", "nosmt", "intel_pstate",
        "amd_pstate",
        "processor.max_cstate", "intel_idle.max_cstate", "idle", "transparent_hugepage", "default_hugepagesz",
        "hugepagesz",
        "hugepages", "numa_balancing", "skew_tick", "tsc", "clocksource", "cpufreq.default_governor",
    ]

    /// Reads the record from the host below `root` ("" for this host). `topology` is what discovery
    /// found (nodes, cores, cgroups); `versions` the tools' versions, read by the caller.
    public static func read(root: String = "", topology: HostTopology, versions: [String: String]) -> HostRecord {
        func text(_ path: String) -> String? {
            (try? Sys.read(root + path))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func int(_ path: String) -> Int? { text(path).flatMap { Int($0) } }
        let cpuinfo = text("/proc/cpuinfo") ?? ""
        let fields = cpuinfo.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (
                line[..<colon].trimmingCharacters(in: .whitespaces),
                line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            )
        }
        let model =
            fields.first { $0.0 == "model name" }?.1 ?? fields.first { $0.0 == "cpu model" || $0.0 == "Model" }?.1
            ?? "unknown"
        let online = topology.onlineCPUs
        let commandLine = text("/proc/cmdline") ?? ""
        var parameters: [String: String] = [:]
        for word in commandLine.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            if parameterNames.contains(name) { parameters[name] = parts.count > 1 ? String(parts[1]) : "" }
        }
        var frequency: [Frequency] = []
        for cpu in online.ids {
            let dir = "/sys/devices/system/cpu/cpu\(cpu)/cpufreq"
            let f = Frequency(
                cpus: CPUSet([cpu]), driver: text("\(dir)/scaling_driver"), governor: text("\(dir)/scaling_governor"),
                minKHz: int("\(dir)/scaling_min_freq"), maxKHz: int("\(dir)/scaling_max_freq"))
            // Online CPUs in order: the same setting as the one before joins its entry.
            if var last = frequency.last, last.driver == f.driver, last.governor == f.governor, last.minKHz == f.minKHz,
                last.maxKHz == f.maxKHz
            {
                last.cpus = last.cpus.union(f.cpus)
                frequency[frequency.count - 1] = last
            } else {
                frequency.append(f)
            }
        }
        frequency = frequency.filter { $0.driver != nil || $0.governor != nil || $0.minKHz != nil || $0.maxKHz != nil }
        let boost: String? =
            int("/sys/devices/system/cpu/cpufreq/boost").map { $0 == 1 ? "on" : "off" }
            ?? int("/sys/devices/system/cpu/intel_pstate/no_turbo").map { $0 == 1 ? "off" : "on" }
        var thp: [String: String] = [:]
        for key in ["enabled", "defrag"] {
            if let t = text("/sys/kernel/mm/transparent_hugepage/\(key)"), let open = t.firstIndex(of: "["),
                let close = t.firstIndex(of: "]"), open < close
            {
                thp[key] = String(t[t.index(after: open)..<close])
            }
        }
        let irqbalance = Sys.entries(root + "/proc").contains { name in
            name.first?.isNumber == true && text("/proc/\(name)/comm") == "irqbalance"
        }
        let memory = (text("/proc/meminfo") ?? "").split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } }.map { $0 * 1024 }
        let distribution = (text("/etc/os-release") ?? "").split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { $0.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        return HostRecord(
            hostname: text("/proc/sys/kernel/hostname") ?? "unknown",
            kernel: Kernel(
                release: text("/proc/sys/kernel/osrelease") ?? "unknown",
                version: text("/proc/sys/kernel/version") ?? "unknown",
                commandLine: commandLine, parameters: parameters),
            cpu: CPUs(
                model: model, microcode: Microcode(fields.filter { $0.0 == "microcode" }.map(\.1)),
                sockets: Set(topology.cpus.filter(\.online).compactMap(\.package)).count, cores: topology.cores.count,
                threads: online.count, smt: topology.hasSMT, online: online),
            numa: topology.nodes, memoryBytes: memory,
            cgroup: Cgroup(mode: topology.cgroup.mode.rawValue, controllers: topology.cgroup.controllers),
            frequency: frequency, boost: boost, transparentHugePages: thp, irqbalance: irqbalance,
            aslr: int("/proc/sys/kernel/randomize_va_space"), numaBalancing: int("/proc/sys/kernel/numa_balancing"),
            timerMigration: int("/proc/sys/kernel/timer_migration"), statInterval: int("/proc/sys/vm/stat_interval"),
            perfSampleRate: int("/proc/sys/kernel/perf_event_max_sample_rate"),
            workqueueCPUs: text("/sys/devices/virtual/workqueue/cpumask").flatMap(TuneValue.mask),
            distribution: distribution, versions: versions)
    }

    /// The versions of iproute2, libnuma and each named container runtime on this host (what is missing
    /// is left out). Runs `ip -V`, `dpkg-query` and `RUNTIME --version`.
    public static func toolVersions(runtimes: [Runtime], runner: CommandRunner = CommandRunner()) -> [String: String] {
        var versions: [String: String] = [:]
        func first(_ argv: [String]) -> String? {
            guard Sys.access(argv[0], X_OK) else { return nil }
            let r = runner.run(argv)
            guard r.status == 0 else { return nil }
            return (r.stdout + r.stderr).split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        versions["iproute2"] = first(["/usr/sbin/ip", "-V"]) ?? first(["/sbin/ip", "-V"])
        versions["libnuma"] = first(["/usr/bin/dpkg-query", "--showformat=${Version}", "--show", "libnuma1"])
        for runtime in Set(runtimes) {
            let binary: String? =
                switch runtime {
                case .crun, .runc: OCIRuntime.binaries[runtime]
                case .podman: PodmanRuntime.defaultBinary
                case .process: nil
                }
            if let binary { versions[runtime.rawValue] = first([binary, "--version"]) }
        }
        return versions
    }
}
