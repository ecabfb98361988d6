import Foundation

/// Which cgroup manager a host gets: topo writing the tree itself, or systemd delegating a subtree.
public enum CgroupManagerKind: String, Equatable, Sendable, CaseIterable, Codable {
    case cgroupfs, systemd

    /// systemd when it is PID 1 and booted the host (`/run/systemd/system`, as sd_booted checks), else cgroupfs.
    public static func detect(_ files: HostFiles = HostFiles(root: "/")) -> CgroupManagerKind {
        files.read("proc/1/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) == "systemd"
            && files.exists("run/systemd/system") ? .systemd : .cgroupfs
    }
}

/// The cgroup manager for a host whose tree systemd owns. Each applied profile is a transient scope,
/// `topo-PROFILE.scope` in `topo.slice`, with `Delegate=yes`, made with `systemd-run --scope` around a
/// process that holds it (a `sleep infinity` moved into `topo.hold`, so that the scope's own cgroup has
/// no processes and may enable controllers for the workloads' cgroups beside it). topo writes only
/// below the scope: never the root's `cgroup.subtree_control` nor anything systemd made; systemd enables
/// the controllers along the path for a delegated unit itself. `down` stops the unit, which kills what
/// runs in it and removes its cgroups. Everything below the scope is the cgroupfs manager's work.
public struct SystemdManager: CgroupManager {
    public var inner: CgroupfsManager
    /// Runs systemctl; CommandRunner on a host.
    public var systemctl: @Sendable ([String]) -> CommandResult

    public static let slice = Layout.systemdSlice
    public static let holder = "topo.hold"
    public static func unit(_ profile: String) -> String { Layout.systemdScope(profile) }
    public static func description(_ profile: String) -> String { "topo profile \(profile)" }

    public init(
        inner: CgroupfsManager, systemctl: @escaping @Sendable ([String]) -> CommandResult = CommandRunner.systemctl
    ) {
        self.inner = inner
        self.systemctl = systemctl
    }

    public var description: String { "systemd (a delegated scope per profile in \(Self.slice)) at \(inner.fs.root)" }

    /// The hierarchy as for cgroupfs, the plan's cgroups in the profile's scope, and no partition: topo
    /// writes only below the delegated scope, where a cpuset partition has no partition root for a parent.
    public func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings {
        var refusals = hierarchyProblems(context, underSlice: true)
        for w in context.plan.workloads where w.isolation == .partition {
            refusals.append(
                "workload \(w.name) is isolation: partition, and under the systemd cgroup manager topo may write only below its delegated scope, where a cpuset partition needs a partition root as its parent (Linux 6.7's cpuset.cpus.exclusive would lift that; topo does not use it yet); use --cgroup-manager cgroupfs, or isolation: exclusive with AllowedCPUs= keeping the rest of the system off its CPUs"
            )
        }
        return Findings(refusals: refusals)
    }
    public func path(_ cgroup: String) -> String { inner.path(cgroup) }
    public func procsPath(_ cgroup: String) -> String { inner.procsPath(cgroup) }
    public func exists(_ cgroup: String) -> Bool { inner.exists(cgroup) }
    public func offeredControllers() -> [String] { inner.offeredControllers() }
    public func read(_ cgroup: String, _ file: String) -> String? { inner.read(cgroup, file) }
    public func threads(_ cgroup: String) -> [Int32] { inner.threads(cgroup) }
    public func processes(_ cgroup: String) -> [Int32] { inner.processes(cgroup) }
    public func hierarchyPath(_ cgroup: String) -> String { inner.hierarchyPath(cgroup) }
    public func recordRootControllers(_ added: Set<String>) throws(TopoFailure) {
        try inner.recordRootControllers(added)
    }
    public func stopAll(_ cgroups: [(cgroup: String, owner: String)]) -> [TopoFailure?] { inner.stopAll(cgroups) }

    static var systemdRun: String {
        ["/usr/bin/systemd-run", "/bin/systemd-run"].first { Sys.access($0, X_OK) } ?? "/usr/bin/systemd-run"
    }
    static var sleep: String { ["/usr/bin/sleep", "/bin/sleep"].first { Sys.access($0, X_OK) } ?? "/bin/sleep" }

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        inner.applyEach(batch) { r in
            switch r {
            case .cgroupRoot: try reachable()
            case .cgroup(let c) where c.workload == nil: return try startScope(c)
            case .cgroup(let c): try inner.create(c)
            case .cgroupSetting(let s): try inner.write(s)
            default: throw TopoFailure(.applyFailed, "the cgroup manager does not make \(r.summary)")
            }
            return Facts()
        }
    }

    /// systemd answers on its private socket (topo needs no D-Bus daemon).
    func reachable() throws(TopoFailure) {
        let r = systemctl(["show", "-P", "Version"])
        guard r.status == 0, !r.stdout.isEmpty else {
            throw TopoFailure(
                .hostCannot,
                "systemd does not answer (systemctl show: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))); use --cgroup-manager cgroupfs on a host systemd does not manage"
            )
        }
    }

    func unitProperty(_ unit: String, _ name: String) -> String {
        systemctl(["show", "-P", name, unit]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The profile's scope: started around a holder, marked, the holder moved into `topo.hold`, the
    /// controllers enabled for the workloads.
    func startScope(_ c: CgroupResource) throws -> Facts {
        let unit = Self.unit(c.owner)
        if inner.fs.exists(c.path) || unitProperty(unit, "LoadState") == "loaded" {
            throw TopoFailure(
                .hostCannot,
                "systemd unit \(unit) already exists and is not in this apply's journal; topo will not adopt it (systemctl stop \(unit), or run `topo down \(c.owner)`)"
            )
        }
        let log = "\(inner.state.profileDir(c.owner))/systemd-run.log"
        let argv = [
            Self.systemdRun, "--scope", "--quiet", "--unit=\(unit)",
            "--slice=\(Self.slice.replacingOccurrences(of: ".slice", with: ""))",
            "--description=\(Self.description(c.owner))", "--property=Delegate=yes", "--", Self.sleep, "infinity",
        ]
        let pid: pid_t
        switch Spawn.child(argv, output: log, detached: true) {
        case .success(let p): pid = p
        case .failure(let f): throw TopoFailure(.applyFailed, "start systemd scope \(unit): \(f.description)")
        }
        // systemd-run makes the scope with its own pid, then execs the holder.
        var waited = 0.0
        while !(inner.fs.exists(c.path) && inner.fs.allProcs(c.path).contains(pid)) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let said = ((try? Sys.read(log)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                throw TopoFailure(
                    .applyFailed,
                    "systemd-run could not start scope \(unit) (exit \(status >> 8)): \(said.isEmpty ? "no message" : said)"
                )
            }
            guard waited < 10 else {
                throw TopoFailure(
                    .applyFailed, "systemd scope \(unit) did not appear at \(inner.fs.path(c.path)) within 10 s")
            }
            usleep(10_000)
            waited += 0.01
        }
        do {
            try Sys.setxattr(inner.fs.path(c.path), CgroupFS.ownerAttribute, c.owner)
            try inner.fs.create("\(c.path)/\(Self.holder)", owner: c.owner)
            try inner.fs.write("\(c.path)/\(Self.holder)", "cgroup.procs", String(pid))
            try inner.fs.enable(c.enable.map(\.rawValue), below: c.path)
        } catch {
            throw TopoFailure(.applyFailed, "\(error)")
        }
        return Facts(pid: pid)
    }

    public func describe(_ r: Resource) -> [String] {
        switch r {
        case .cgroupRoot:
            return [
                "systemd owns the cgroup root: nothing is written there; each profile gets a delegated scope in \(Self.slice)"
            ]
        case .cgroup(let c) where c.workload == nil:
            var lines = [
                "systemd-run --scope --unit=\(Self.unit(c.owner)) --slice=topo --property=Delegate=yes -- sleep infinity: the scope \(inner.fs.path(c.path)), marked \(CgroupFS.ownerAttribute)=\(c.owner)",
                "mkdir \(inner.fs.path("\(c.path)/\(Self.holder)")) and move the scope's sleep into it",
            ]
            if !c.enable.isEmpty {
                lines.append(
                    "write \"\(c.enable.map { "+\($0.rawValue)" }.joined(separator: " "))\" to \(inner.fs.path(c.path, "cgroup.subtree_control"))"
                )
            }
            return lines
        default:
            return inner.describe(r)
        }
    }

    // MARK: undo

    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        switch resource {
        case .cgroupRoot(let r): return try releaseSlice(r)
        case .cgroup(let c) where c.workload == nil: return try stopScope(c)
        default: return try inner.undo(resource, done: done, facts: facts)
        }
    }

    /// When no other profile is applied, stops `topo.slice` (systemd made it for topo's scopes and keeps
    /// it loaded, and its cgroup, until it is stopped). A slice with units in it stays.
    /// And the host-wide record, as the cgroupfs manager does.
    func releaseSlice(_ r: CgroupRootResource) throws(TopoFailure) -> Undone {
        guard inner.state.profiles().allSatisfy({ $0 == r.profile }) else { return .nothing }
        inner.state.forgetHostChanges()  // systemd enables the controllers along the path; topo never turns them off
        var notes: [String] = []
        var outcome = Undone.nothing
        if inner.fs.exists(r.path) {
            if inner.fs.children(r.path).isEmpty {
                _ = systemctl(["stop", Self.slice])
                if !inner.fs.exists(r.path) { outcome = .removed("systemd slice \(Self.slice)") }
            } else {
                notes.append("\(Self.slice) has units in it that are not topo's, left in place")
            }
        }
        if !notes.isEmpty, case .nothing = outcome { return .leftAlone(notes.joined(separator: "; ")) }
        return outcome
    }

    /// Stops the profile's scope when it is provably topo's: its cgroup carries the profile's mark, or
    /// (apply killed before marking it) the unit has topo's description for the profile.
    func stopScope(_ c: CgroupResource) throws(TopoFailure) -> Undone {
        let unit = Self.unit(c.owner)
        let marked = inner.fs.exists(c.path) && inner.fs.owner(c.path) == c.owner
        let loaded = unitProperty(unit, "LoadState") == "loaded"
        let described = loaded && unitProperty(unit, "Description") == Self.description(c.owner)
        guard marked || described else {
            if inner.fs.exists(c.path) || loaded {
                return .leftAlone("systemd unit \(unit): not made by topo for \(c.owner), left alone")
            }
            return .nothing
        }
        let stop = systemctl(["stop", unit])
        if stop.status != 0 && loaded {
            throw TopoFailure(
                .hostCannot, "systemctl stop \(unit): \(stop.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        _ = systemctl(["reset-failed", unit])
        // systemd removes the scope's cgroup; what it left (a cgroup it did not know of) goes the cgroupfs way.
        var waited = 0
        while inner.fs.exists(c.path) && waited < 500 {
            usleep(10_000)
            waited += 1
        }
        if inner.fs.exists(c.path) {
            try inner.stopAll(in: c.path, owner: c.owner)
            do { try inner.fs.removeTree(c.path) } catch { throw TopoFailure(.hostCannot, "\(error)") }
        }
        return .removed("systemd scope \(unit) (\(inner.fs.path(c.path)))")
    }

    // MARK: observe

    public func observe(_ batch: [Resource]) -> [Observation] { batch.map { observe($0) } }

    public func observe(_ resource: Resource) -> Observation {
        switch resource {
        case .cgroupRoot(let r):
            return Observation(resource, found: inner.fs.exists(r.path), kernel: "systemd slice \(Self.slice)")
        case .cgroup(let c) where c.workload == nil:
            var o = inner.observe(resource)
            o.kernel = "systemd scope \(Self.unit(c.owner))"
            return o
        default:
            return inner.observe(resource)
        }
    }
}
