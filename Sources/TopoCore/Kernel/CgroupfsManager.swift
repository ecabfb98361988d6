import Foundation

/// The cgroup manager for a cgroup v2 hierarchy that topo writes itself (cgroupfs), through `CgroupFS`.
/// The kernel's encodings of every setting are made and parsed here, and nowhere else.
public struct CgroupfsManager: CgroupManager {
    public var fs: CgroupFS
    /// Host-wide records of what topo changed outside its own cgroups.
    public var state: StateStore
    /// The kernel rounds memory limits down to whole pages.
    public var pageSize = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 1))

    public init(fs: CgroupFS, state: StateStore) {
        self.fs = fs
        self.state = state
    }

    public var description: String { "cgroupfs at \(fs.root)" }

    public func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings {
        Findings(refusals: hierarchyProblems(context, underSlice: false))
    }
    public func path(_ cgroup: String) -> String { fs.path(cgroup) }
    public func procsPath(_ cgroup: String) -> String { fs.path(cgroup, "cgroup.procs") }
    public func exists(_ cgroup: String) -> Bool { fs.exists(cgroup) }
    public func offeredControllers() -> [String] { fs.controllers("") }
    public func read(_ cgroup: String, _ file: String) -> String? {
        (try? fs.read(cgroup, file))?.trimmedASCIIWhitespace
    }
    public func processes(_ cgroup: String) -> [Int32] { fs.allProcs(cgroup) }

    public func hierarchyPath(_ cgroup: String) -> String { fs.hierarchyPath(cgroup) }

    public func threads(_ cgroup: String) -> [Int32] {
        ((try? fs.read(cgroup, "cgroup.threads")) ?? "").split(separator: "\n").compactMap { Int32($0) }
            + fs.children(cgroup).flatMap { threads($0) }
    }

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            switch r {
            case .cgroupRoot(let root): try prepareRoot(root)
            case .cgroup(let c): try create(c)
            case .cgroupSetting(let s): try write(s)
            default: throw TopoFailure(.applyFailed, "the cgroup manager does not make \(r.summary)")
            }
            return Facts()
        }
    }

    /// The topo root cgroup and the controllers along the path to it. What this changes outside
    /// topo's own cgroups is recorded host-wide before it is done, for the last `down` to restore.
    func prepareRoot(_ r: CgroupRootResource) throws {
        let names = r.controllers.map(\.rawValue)
        var changes = try state.hostChanges()
        if !fs.exists(r.path) {
            changes.createdRoot = true
            try state.record(changes)
            try fs.create(r.path, owner: "topo")
        } else if fs.owner(r.path) == nil {
            throw TopoFailure(
                .hostCannot,
                "\(fs.path(r.path)) exists but was not made by topo (no \(CgroupFS.ownerAttribute) mark); topo will not adopt it"
            )
        }
        let missing = names.filter { !fs.subtreeControl("").contains($0) }
        if !missing.isEmpty {
            changes.rootControllers = Array(Set(changes.rootControllers + missing)).sorted()
            try state.record(changes)
            try fs.enable(missing, below: "")
        }
        try fs.enable(names, below: r.path)
    }

    func create(_ c: CgroupResource) throws {
        if fs.exists(c.path) {
            throw TopoFailure(
                .hostCannot,
                "\(fs.path(c.path)) already exists and is not in this apply's journal; topo will not adopt it (remove it, or run `topo down \(c.owner)`)"
            )
        }
        try fs.create(c.path, owner: c.owner)
        try fs.enable(c.enable.map(\.rawValue), below: c.path)
    }

    func write(_ s: CgroupSettingResource) throws {
        try fs.write(s.cgroup, s.setting.file, s.setting.kernelValue)
        if case .partition = s.setting { try checkPartition(s.cgroup) }
    }

    /// The kernel accepts any partition write and says in the file whether the partition is valid:
    /// `root invalid (Parent unable to distribute cpu downstream)` is a failure, not a partition.
    func checkPartition(_ cgroup: String) throws {
        let state = try fs.read(cgroup, "cpuset.cpus.partition").trimmingCharacters(in: "\n")
        guard state == "root" else {
            throw TopoFailure(
                .applyFailed,
                "\(fs.path(cgroup, "cpuset.cpus.partition")) reads back \"\(state)\": the kernel did not make a partition. "
                    + "A partition's CPUs must be listed in no other cgroup's cpuset.cpus at the cgroup root, and the root must keep at least one CPU for the rest of the host"
            )
        }
    }

    public func describe(_ r: Resource) -> [String] {
        func controllers(_ list: [Controller]) -> String { list.map { "+\($0.rawValue)" }.joined(separator: " ") }
        switch r {
        case .cgroupRoot(let root):
            var lines = [
                "mkdir \(fs.path(root.path)), marked \(CgroupFS.ownerAttribute)=topo (unless topo made it before)"
            ]
            if !root.controllers.isEmpty {
                lines.append(
                    "write \"\(controllers(root.controllers))\" to \(fs.path("", "cgroup.subtree_control")) — conditional: only the controllers not enabled there yet, recorded for the last `topo down` to disable"
                )
                lines.append(
                    "write \"\(controllers(root.controllers))\" to \(fs.path(root.path, "cgroup.subtree_control"))")
            }
            return lines
        case .cgroup(let c):
            var lines = ["mkdir \(fs.path(c.path)), marked \(CgroupFS.ownerAttribute)=\(c.owner)"]
            if !c.enable.isEmpty {
                lines.append("write \"\(controllers(c.enable))\" to \(fs.path(c.path, "cgroup.subtree_control"))")
            }
            return lines
        case .cgroupSetting(let s):
            var lines = ["write \"\(s.setting.kernelValue)\" to \(fs.path(s.cgroup, s.setting.file))"]
            if case .partition = s.setting {
                lines.append("read \(fs.path(s.cgroup, s.setting.file)) back: it must say root")
            }
            return lines
        default:
            return ["\(r.summary): not a cgroup"]
        }
    }

    // MARK: undo

    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        switch resource {
        case .cgroupRoot(let r): return try releaseRoot(r)
        case .cgroup(let c): return try remove(c)
        default: return .nothing  // settings go with their cgroup
        }
    }

    /// Every marked, populated cgroup is killed (`cgroup.kill`) before the first is waited for, so
    /// their processes exit together: `down` of many workloads waits about as long as for one. They
    /// share one 10 s deadline.
    public func stopAll(_ cgroups: [(cgroup: String, owner: String)]) -> [TopoFailure?] {
        var failures = [TopoFailure?](repeating: nil, count: cgroups.count)
        var killed: [Int] = []
        for (i, c) in cgroups.enumerated()
        where fs.exists(c.cgroup) && fs.owner(c.cgroup) == c.owner && fs.isPopulated(c.cgroup) {
            do {
                try fs.killAll(c.cgroup)
                killed.append(i)
            } catch {
                failures[i] = TopoFailure(.hostCannot, "\(error)")
            }
        }
        let deadline = Date().addingTimeInterval(10)
        for i in killed where !fs.waitEmpty(cgroups[i].cgroup, timeout: max(0, deadline.timeIntervalSinceNow)) {
            failures[i] = TopoFailure(
                .hostCannot,
                "\(fs.path(cgroups[i].cgroup)): processes \(fs.allProcs(cgroups[i].cgroup)) still there 10s after SIGKILL"
            )
        }
        return failures
    }

    /// Stops what runs in the cgroup (a `topo exec`, a workload's children) and removes it with every
    /// cgroup below it — only when it carries the owner's mark.
    func remove(_ c: CgroupResource) throws(TopoFailure) -> Undone {
        guard fs.exists(c.path) else { return .nothing }
        guard fs.owner(c.path) == c.owner else {
            return .leftAlone("\(fs.path(c.path)): not made by topo for \(c.owner), left alone")
        }
        try stopAll(in: c.path, owner: c.owner)
        do {
            try fs.removeTree(c.path)
        } catch {
            throw TopoFailure(.hostCannot, "\(error)")
        }
        return .removed(fs.path(c.path))
    }

    /// When no other profile is applied: remove the topo root if topo made it and restore the root's
    /// `cgroup.subtree_control` (a controller something else has started to use since, EBUSY, stays).
    /// Then forget the host-wide record (this manager's alone).
    func releaseRoot(_ r: CgroupRootResource) throws(TopoFailure) -> Undone {
        guard state.profiles().allSatisfy({ $0 == r.profile }) else { return .nothing }
        let changes: StateStore.HostChanges
        do { changes = try state.hostChanges() } catch { throw TopoFailure(.hostCannot, "\(error)") }
        var outcome = Undone.nothing
        var notes: [String] = []
        if changes.createdRoot && fs.exists(r.path) && fs.owner(r.path) == "topo" {
            if fs.children(r.path).isEmpty {
                do { try fs.removeTree(r.path) } catch { throw TopoFailure(.hostCannot, "\(error)") }
                outcome = .removed(fs.path(r.path))
            } else {
                notes.append("\(fs.path(r.path)): still has cgroups in it, left in place")
            }
        }
        for c in changes.rootControllers where fs.subtreeControl("").contains(c) {
            do {
                try fs.write("", "cgroup.subtree_control", "-\(c)")
            } catch {
                notes.append("controller \(c) stays enabled at the cgroup root: \(error)")
            }
        }
        state.forgetHostChanges()
        if !notes.isEmpty, case .nothing = outcome { return .leftAlone(notes.joined(separator: "; ")) }
        return outcome
    }

    public func recordRootControllers(_ added: Set<String>) throws(TopoFailure) {
        var changes = try state.hostChanges()
        changes.rootControllers = Array(Set(changes.rootControllers).union(added)).sorted()
        do { try state.record(changes) } catch { throw TopoFailure(.applyFailed, "\(error)") }
    }

    // MARK: observe

    /// Each resource reads its own files: a large batch is read on every CPU at once.
    public func observe(_ batch: [Resource]) -> [Observation] {
        batch.count < 16 ? batch.map { observe($0) } : concurrentMap(batch) { observe($0) }
    }

    public func observe(_ resource: Resource) -> Observation {
        switch resource {
        case .cgroupRoot(let r):
            let offered = fs.subtreeControl(r.path)
            let missing = r.controllers.map(\.rawValue).filter { !offered.contains($0) }
            return Observation(
                resource, found: fs.exists(r.path),
                differences: missing.map {
                    "controller \($0) is not enabled in \(fs.path(r.path, "cgroup.subtree_control"))"
                })
        case .cgroup(let c):
            let exists = fs.exists(c.path)
            var diffs: [String] = []
            if exists && fs.owner(c.path) != c.owner {
                diffs.append("\(fs.path(c.path)) lacks topo's mark for \(c.owner)")
            }
            let enabled = c.enable.isEmpty ? [] : fs.subtreeControl(c.path)  // a workload's cgroup enables none
            diffs += c.enable.map(\.rawValue).filter { !enabled.contains($0) }.map {
                "controller \($0) is not enabled in \(fs.path(c.path, "cgroup.subtree_control"))"
            }
            return Observation(
                resource, found: exists, differences: diffs, pids: exists ? fs.allProcs(c.path).sorted() : [])
        case .cgroupSetting(let s):
            guard let text = try? fs.read(s.cgroup, s.setting.file) else { return Observation(resource, found: false) }
            let kernel = text.trimmedASCIIWhitespace
            return Observation(
                resource, found: true, differences: s.setting.differences(kernel: kernel, pageSize: pageSize),
                kernel: kernel)
        default:
            return Observation(resource, found: false, kernel: "not a cgroup resource")
        }
    }
}

// MARK: - The kernel's encodings (Documentation/admin-guide/cgroup-v2.rst)

extension CgroupSetting {
    /// The value as the interface file takes it.
    var kernelValue: String {
        switch self {
        case .cpus(let s), .mems(let s): s.description
        case .partition: "root"
        // "$MAX $PERIOD", both in microseconds.
        case .cpuMax(let quota, let period): "\(quota.microseconds) \(period.microseconds)"
        case .cpuWeight(let w): String(w)
        case .memoryMax(let l), .memoryHigh(let l), .swapMax(let l): Self.kernel(l) { String($0.value) }
        case .pidsMax(let l): Self.kernel(l) { String($0) }
        // "MAJ:MIN key=value ...", only the keys the profile sets (the kernel keeps the others).
        case .ioMax(let io):
            ([io.device.description] + Self.ioKeys(io).compactMap { k, v in v.map { "\(k)=\($0)" } }).joined(
                separator: " ")
        }
    }

    static func kernel<V>(_ l: Limit<V>, _ value: (V) -> String) -> String {
        if case .value(let v) = l { return value(v) }
        return "max"
    }

    /// io.max's four keys, in the kernel's order, with the profile's values in the kernel's units.
    static func ioKeys(_ io: IOLimit) -> [(String, String?)] {
        [
            ("rbps", io.rbps.map { kernel($0) { String($0.value) } }),
            ("wbps", io.wbps.map { kernel($0) { String($0.value) } }),
            ("riops", io.riops.map { kernel($0) { String($0) } }),
            ("wiops", io.wiops.map { kernel($0) { String($0) } }),
        ]
    }

    /// Where the kernel's value (the file's contents, trimmed) differs from this setting, after the
    /// kernel's normalisations: CPU lists in any order or grouping; memory limits rounded down to whole
    /// pages; `cpu.max` as quota and period in microseconds; `io.max` printing all four keys (unset ones
    /// `max`) on the device's line, and no line at all when every key is `max`.
    func differences(kernel: String, pageSize: UInt64) -> [String] {
        func differ(_ want: String) -> [String] { ["\(file): planned \(want), kernel has \"\(kernel)\""] }
        switch self {
        case .cpus(let planned), .mems(let planned):
            guard case .success(let got) = CPUSet.parse(kernel) else {
                return kernel.isEmpty && planned.isEmpty ? [] : differ(planned.description)
            }
            return got == planned ? [] : differ(planned.description)
        case .partition:
            return kernel == "root" ? [] : differ("root")
        case .cpuMax(let quota, let period):
            let parts = kernel.split(separator: " ")
            return parts.count == 2 && UInt64(parts[0]) == quota.microseconds && UInt64(parts[1]) == period.microseconds
                ? [] : differ(kernelValue)
        case .cpuWeight(let w):
            return Int(kernel) == w ? [] : differ(String(w))
        case .memoryMax(let l), .memoryHigh(let l), .swapMax(let l):
            switch l {
            case .max: return kernel == "max" ? [] : differ("max")
            case .value(let b):
                return UInt64(kernel) == b.value / pageSize * pageSize ? [] : differ("\(b.value) bytes (\(b))")
            }
        case .pidsMax:
            return kernel == kernelValue ? [] : differ(kernelValue)
        case .ioMax(let io):
            let line = kernel.split(separator: "\n").first {
                $0.split(separator: " ").first.map(String.init) == io.device.description
            }
            var got: [String: String] = [:]
            for field in (line ?? "").split(separator: " ").dropFirst() {
                let kv = field.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { got[String(kv[0])] = String(kv[1]) }
            }
            let wrong = Self.ioKeys(io).filter { key, want in (got[key] ?? "max") != (want ?? "max") }
            return wrong.isEmpty ? [] : differ(kernelValue)
        }
    }
}
