import Foundation

/// Reads the host's CPU and NUMA topology from sysfs, and probes cgroups and netem.
///
/// Only these sysfs files are read, so a directory holding just them is a complete fixture:
/// `devices/system/cpu/online`, `devices/system/cpu/cpuN/topology/{core_id,physical_package_id,thread_siblings_list}`,
/// `devices/system/node/online`, `devices/system/node/nodeN/{cpulist,meminfo,distance}`.
/// CPUs are the online ones plus any `cpuN` directory (an offline CPU keeps its directory but loses `topology/`).
public struct HostDiscovery: Sendable {
    public var sysfs: HostFiles
    /// Where mounts, modules and the cgroup root are looked up; nil skips those probes (fixtures).
    public var system: HostFiles?

    public init(sysfsRoot: String = "/sys", probeSystem: Bool? = nil) {
        sysfs = HostFiles(root: sysfsRoot)
        let isRealSysfs = sysfsRoot == "/sys" || sysfsRoot == "/sys/"
        system = (probeSystem ?? isRealSysfs) ? HostFiles(root: "/") : nil
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Copies exactly the sysfs files discovery reads (and the `cpuN` directories it lists) from
    /// `sysfsRoot` into `directory`, which must be new or empty: a fixture that plans like this host
    /// (`topo plan --sysfs DIR`). Of a node's `meminfo` only the `MemTotal` line is kept: the rest is
    /// this moment's usage, which planning never reads. Returns the files written, relative to `directory`.
    public static func export(sysfsRoot: String = "/sys", to directory: String) -> Result<[String], Failure> {
        if Sys.exists(directory) {
            guard Sys.isDirectory(directory, followingLinks: true) else {
                return .failure(Failure(description: "\(directory) exists and is not a directory"))
            }
            guard Sys.entries(directory).isEmpty else {
                return .failure(Failure(description: "\(directory) is not empty; export into a new or empty directory"))
            }
        }
        let log = HostFiles.ReadLog()
        var discovery = HostDiscovery(sysfsRoot: sysfsRoot, probeSystem: false)
        discovery.sysfs = HostFiles(root: sysfsRoot, log: log)
        if case .failure(let f) = discovery.discover() { return .failure(f) }
        let files = log.files.withLock { $0 }
        let directories = log.directories.withLock { $0 }
        do {
            try Sys.mkdirs(directory)
            for dir in directories.sorted() { try Sys.mkdirs("\(directory)/\(dir)") }
            for (relative, read) in files.sorted(by: { $0.key < $1.key }) {
                let path = "\(directory)/\(relative)"
                let text =
                    relative.hasSuffix("/meminfo")
                    ? read.split(separator: "\n").filter { $0.contains("MemTotal:") }.map { $0 + "\n" }.joined() : read
                try Sys.mkdirs(String(path[..<path.lastIndex(of: "/")!]))
                try Sys.write(
                    path, text, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644, operation: "create")
            }
        } catch {
            return .failure(Failure(description: "\(error)"))
        }
        return .success(files.keys.sorted())
    }

    public func discover() -> Result<HostTopology, Failure> {
        // A file that is there and cannot be read as a file ends discovery, naming it; a missing one is
        // read as the kernel's absence of it.
        var unreadable: SystemError?
        func read(_ relative: String) -> String? {
            switch sysfs.readIfPresent(relative) {
            case .success(let text): return text
            case .failure(let e):
                if unreadable == nil { unreadable = e }
                return nil
            }
        }
        guard let onlineText = read("devices/system/cpu/online") else {
            if let unreadable { return .failure(Failure(description: "\(unreadable)")) }
            return .failure(
                Failure(
                    description:
                        "read \(sysfs.path("devices/system/cpu/online")): no such file; is \(sysfs.root) a sysfs tree?")
            )
        }
        guard case .success(let online) = CPUSet.parse(onlineText) else {
            return .failure(
                Failure(
                    description:
                        "read \(sysfs.path("devices/system/cpu/online")): \"\(onlineText.trimmingCharacters(in: "\n"))\" is not a cpulist"
                ))
        }
        var present = online.ids
        for entry in sysfs.list("devices/system/cpu") where entry.hasPrefix("cpu") {
            if let id = Int(entry.dropFirst(3)), id <= CPUSet.maxID { present.append(id) }
        }

        // Nodes. A kernel without CONFIG_NUMA has no node directory: one node holding every CPU.
        var nodes: [HostTopology.Node] = []
        var nodeOfCPU: [Int: Int] = [:]
        if let nodeText = read("devices/system/node/online"), case .success(let nodeIDs) = CPUSet.parse(nodeText),
            !nodeIDs.isEmpty
        {
            for id in nodeIDs {
                let dir = "devices/system/node/node\(id)"
                let cpus = read("\(dir)/cpulist").flatMap { try? CPUSet.parse($0).get() } ?? .empty
                for cpu in cpus {
                    nodeOfCPU[cpu] = id
                    present.append(cpu)
                }
                let distances = (read("\(dir)/distance") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
                    .compactMap { Int($0) }
                nodes.append(
                    .init(
                        id: id, cpus: cpus.intersection(online),
                        memTotal: read("\(dir)/meminfo").flatMap(Self.memTotal), distances: distances))
            }
        } else {
            for cpu in online { nodeOfCPU[cpu] = 0 }
            nodes = [.init(id: 0, cpus: online, memTotal: nil, distances: [10])]
        }

        var cpus: [HostTopology.CPU] = []
        for id in CPUSet(present) {
            let topo = "devices/system/cpu/cpu\(id)/topology"
            let isOnline = online.contains(id)
            var siblings = CPUSet([id])
            if isOnline, let text = read("\(topo)/thread_siblings_list"), case .success(let s) = CPUSet.parse(text),
                s.contains(id)
            {
                siblings = s
            }
            cpus.append(
                .init(
                    id: id, online: isOnline, node: nodeOfCPU[id],
                    package: read("\(topo)/physical_package_id").flatMap { Int($0.trimmingCharacters(in: " \n")) },
                    coreID: read("\(topo)/core_id").flatMap { Int($0.trimmingCharacters(in: " \n")) },
                    siblings: siblings))
        }
        if let unreadable { return .failure(Failure(description: "\(unreadable)")) }
        var host = HostTopology(
            cpus: cpus, nodes: nodes, cgroup: .unknown("not probed: --sysfs names another machine's tree"),
            netem: .unknown("not probed: --sysfs names another machine's tree"), source: sysfs.root)
        for cpu in cpus where cpu.online && cpu.node == nil {
            host.notes.append("CPU \(cpu.id) is online but in no node's cpulist")
        }
        if let system {
            host.cgroup = CgroupProbe.probe(system)
            host.netem = NetemProbe.probe(system)
            if let counts = NUMALibrary.configuredCounts() {
                if counts.nodes != nodes.count {
                    host.notes.append(
                        "libnuma counts \(counts.nodes) configured nodes, sysfs lists \(nodes.count) online")
                }
                if counts.cpus != cpus.count {
                    host.notes.append("libnuma counts \(counts.cpus) configured CPUs, sysfs shows \(cpus.count)")
                }
            } else {
                host.notes.append("libnuma reports NUMA unavailable (numa_available() < 0)")
            }
        }
        return .success(host)
    }

    /// `Node 0 MemTotal:       16318508 kB` → bytes.
    static func memTotal(_ meminfo: String) -> Bytes? {
        for line in meminfo.split(separator: "\n") where line.contains("MemTotal:") {
            let fields = line.split(separator: " ")
            if let i = fields.firstIndex(of: "MemTotal:"), i + 1 < fields.count, let kb = UInt64(fields[i + 1]) {
                let (bytes, overflow) = kb.multipliedReportingOverflow(by: 1024)
                return overflow ? nil : Bytes(bytes)
            }
        }
        return nil
    }
}

/// Which cgroup hierarchy holds the controllers, read from the mount table.
public enum CgroupProbe {
    public static func probe(_ system: HostFiles) -> CgroupInfo {
        guard let mounts = system.read("proc/self/mounts") else { return .unknown("cannot read /proc/self/mounts") }
        var info = classify(mounts: mounts)
        if let mp = info.mountPoint, let text = system.read(String(mp.dropFirst()) + "/cgroup.controllers") {
            info.controllers = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        }
        return info
    }

    /// Classifies a mount table (the text of /proc/self/mounts).
    public static func classify(mounts: String) -> CgroupInfo {
        var v2: String?
        var v1: [String] = []
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 4 else { continue }
            let point = Mounts.unescape(String(f[1]))
            if f[2] == "cgroup2" { if v2 == nil || point == "/sys/fs/cgroup" { v2 = point } }
            if f[2] == "cgroup" {
                let controllers = f[3].split(separator: ",").filter {
                    !$0.hasPrefix("name=") && !["rw", "ro", "relatime", "nosuid", "nodev", "noexec"].contains($0)
                }
                v1.append(contentsOf: controllers.map(String.init))
            }
        }
        switch (v2, v1.isEmpty) {
        case (.some(let p), true):
            return CgroupInfo(
                mode: p == "/sys/fs/cgroup" ? .unified : .hybrid, mountPoint: p, controllers: [],
                detail: "cgroup2 at \(p)")
        case (.some(let p), false):
            return CgroupInfo(
                mode: .hybrid, mountPoint: p, controllers: [],
                detail:
                    "controllers \(v1.joined(separator: ",")) are on the v1 hierarchy; cgroup2 at \(p) has none of them. Boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) for the unified hierarchy"
            )
        case (nil, false):
            return CgroupInfo(
                mode: .legacy, mountPoint: nil, controllers: [],
                detail:
                    "only cgroup v1 is mounted. Boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) for the unified hierarchy"
            )
        case (nil, true):
            return CgroupInfo(mode: .none, mountPoint: nil, controllers: [], detail: "no cgroup filesystem is mounted")
        }
    }
}

/// Whether the netem queueing discipline (or another module, such as veth) can be used, from the kernel's module files.
public enum NetemProbe {
    public static func probe(_ system: HostFiles) -> Feature { probe(module: "sch_netem", system) }

    /// Whether a kernel module (sch_netem, veth) is loaded, built in, or loadable.
    public static func probe(module: String, _ system: HostFiles) -> Feature {
        if system.exists("sys/module/\(module)") { return .available("\(module) is loaded") }
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let modules = "lib/modules/\(release)"
        if let builtin = system.read("\(modules)/modules.builtin"), builtin.contains("/\(module).ko") {
            return .available("built into kernel \(release)")
        }
        if let dep = system.read("\(modules)/modules.dep") {
            return dep.contains("/\(module).ko")
                ? .available("module \(module) of kernel \(release), loaded on first use")
                : .unavailable("kernel \(release) has no \(module) module")
        }
        return .unknown("\(module) is not loaded and /lib/modules/\(release) is missing: it may be built in, or absent")
    }
}
