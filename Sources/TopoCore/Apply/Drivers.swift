import Foundation

/// What apply learned about an object as it made it: journaled with the step's done line and handed
/// back to undo, which needs nothing else.
public struct Facts: Codable, Equatable, Sendable {
    /// A launched workload's pid.
    public var pid: Int32?
    /// A network namespace's nsfs inode right after topo made it.
    public var inode: UInt64?
    /// What apply left as it was and why (an interrupt the kernel will not move), for people.
    public var note: String?
    /// A container's own mark (a nonce in its bundle's annotations): undo deletes only the container
    /// that carries it.
    public var mark: String?

    public init(pid: Int32? = nil, inode: UInt64? = nil, note: String? = nil, mark: String? = nil) {
        self.pid = pid
        self.inode = inode
        self.note = note
        self.mark = mark
    }
}

/// What undoing one resource did.
public enum Undone: Equatable, Sendable {
    /// Removed; the text names it (`/sys/fs/cgroup/topo/demo/app`).
    case removed(String)
    /// Nothing to remove: never made, already gone, or it goes with another object (an address with its namespace).
    case nothing
    /// Left in place, and why: it is not topo's, or something else still uses it.
    case leftAlone(String)
}

/// The kernel's side of one resource, compared with the plan.
public struct Observation: Equatable, Sendable {
    public var resource: Resource
    /// Whether the object is there.
    public var found: Bool
    /// Where the kernel differs from the plan, after the kernel's own normalisations; empty when it matches.
    public var differences: [String]
    /// The kernel's value in its own words, where it says more than `found` (a partition's state, an interface's addresses).
    public var kernel: String?
    /// The processes in a cgroup or a launched workload's cgroup.
    public var pids: [Int32]

    public init(
        _ resource: Resource, found: Bool, differences: [String] = [], kernel: String? = nil, pids: [Int32] = []
    ) {
        self.resource = resource
        self.found = found
        self.differences = found ? differences : ["missing: \(resource.summary)"]
        self.kernel = kernel
        self.pids = pids
    }
}

/// What must hold on this host before apply makes a driver's resources, as that driver sees it:
/// refusals (exit 3, nothing made) and warnings (said, and apply goes ahead).
public struct Findings: Equatable, Sendable {
    public var refusals: [String]
    public var warnings: [String]

    public init(refusals: [String] = [], warnings: [String] = []) {
        self.refusals = refusals
        self.warnings = warnings
    }

    public static func + (a: Findings, b: Findings) -> Findings {
        Findings(refusals: a.refusals + b.refusals, warnings: a.warnings + b.warnings)
    }
}

/// What preflight knows that a driver may need to judge its resources: the host, the whole plan, and
/// the features probed from the kernel's module files.
public struct PreflightContext: Sendable {
    public var host: HostTopology
    public var plan: Plan
    /// Whether veth pairs can be made (probed like netem, from the kernel's module files).
    public var veth: Feature
    /// Whether this process has a capability (`Preflight.capable`).
    public var capable: @Sendable (String) -> Bool

    public init(
        host: HostTopology, plan: Plan, veth: Feature,
        capable: @escaping @Sendable (String) -> Bool = Capabilities.effective
    ) {
        self.host = host
        self.plan = plan
        self.veth = veth
        self.capable = capable
    }
}

/// The shape every driver has, for each resource kind it owns: what must hold before apply
/// (preflight, conflicts), apply, undo from the journal record alone, observe.
public protocol ResourceDriver: Sendable {
    /// What this host lacks to make `resources` — every resource of the plan this driver owns, in plan
    /// order — or should be told first: programs, kernel features, files, users. Nothing is changed.
    func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings
    /// Objects of these resources that exist already and are not topo's (a namespace, a hosts file, a
    /// container of the same name), or values another applied profile holds otherwise: each one
    /// refuses the apply. Checked under the state lock, right before the first step.
    func conflicts(_ resources: [Resource]) -> [String]
    /// Makes `batch` — consecutive resources of the plan that this driver owns, in plan order — and returns
    /// one result per resource, in order: the facts to journal, the failure, or nil when it was not tried
    /// because an earlier one failed. A driver may make the batch at once (one `ip -batch`) or concurrently.
    func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?]
    /// Undoes one resource from its journal record: the resource, whether apply marked it done, and the
    /// facts it journaled. Objects already gone are fine; objects that are not topo's are left alone.
    func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone
    /// Undoes several records — consecutive in undo order (last step first), none of them shared — and
    /// returns one result per record, in order. A driver whose objects are independent of each other may
    /// undo them at once; the default undoes them one after another.
    func undo(_ batch: [JournalStep]) -> [Result<Undone, TopoFailure>]
    /// What applying the resource does, one line per object made or file written, in the kernel's
    /// terms (the paths and values it writes): `apply --dry-run` prints it without touching anything,
    /// `apply -v` as each step is done.
    func describe(_ resource: Resource) -> [String]
    /// Reads the kernel's side of one resource.
    func observe(_ resource: Resource) -> Observation
    /// Reads the kernel's side of several, in order; a driver may share one read among them (one
    /// `ip -j addr show` for every object in a namespace).
    func observe(_ batch: [Resource]) -> [Observation]
}

extension ResourceDriver {
    public func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings { Findings() }
    public func conflicts(_ resources: [Resource]) -> [String] { [] }

    public func observe(_ batch: [Resource]) -> [Observation] { batch.map { observe($0) } }

    public func undo(_ batch: [JournalStep]) -> [Result<Undone, TopoFailure>] { batch.map(undo) }

    /// One record undone, as a result (what a batch's undo returns for it).
    func undo(_ step: JournalStep) -> Result<Undone, TopoFailure> {
        Result { () throws(TopoFailure) -> Undone in try undo(step.resource, done: step.done, facts: step.facts) }
    }

    /// `apply` for a driver that makes its resources one after another: each through `make`, stopping
    /// at the first failure (the rest are not tried).
    func applyEach(_ batch: [Resource], _ make: (Resource) throws -> Facts) -> [Result<Facts, TopoFailure>?] {
        var results: [Result<Facts, TopoFailure>?] = Array(repeating: nil, count: batch.count)
        for (i, r) in batch.enumerated() {
            do {
                results[i] = .success(try make(r))
            } catch {
                results[i] = .failure(error as? TopoFailure ?? TopoFailure(.applyFailed, "\(error)"))
                break
            }
        }
        return results
    }
}

/// Cgroups, their owner mark and their interface files: cgroupfs v2 written by topo (`CgroupfsManager`),
/// or a scope systemd delegates to topo (`SystemdManager`).
public protocol CgroupManager: ResourceDriver {
    /// What the driver works on, for messages: `cgroupfs at /sys/fs/cgroup`.
    var description: String { get }
    /// Absolute path of a cgroup, as status shows it.
    func path(_ cgroup: String) -> String
    /// The file a process writes `0` to, to move itself into `cgroup`.
    func procsPath(_ cgroup: String) -> String
    func exists(_ cgroup: String) -> Bool
    /// Kills every process in each cgroup and below, if the cgroup carries its owner's mark, and waits
    /// until it is empty: every one is killed before any is waited for. One failure or nil per cgroup, in order.
    func stopAll(_ cgroups: [(cgroup: String, owner: String)]) -> [TopoFailure?]
    /// The controllers the cgroup root offers.
    func offeredControllers() -> [String]
    /// An interface file's contents, trimmed; nil when it cannot be read (verify reads what the kernel
    /// derives: `cpuset.cpus.effective`, `cpu.stat`, `memory.events`).
    func read(_ cgroup: String, _ file: String) -> String?
    /// Every thread id in the cgroup and below (`cgroup.threads`).
    func threads(_ cgroup: String) -> [Int32]
    /// Every process id in the cgroup and below (`cgroup.procs`).
    func processes(_ cgroup: String) -> [Int32]
    /// The cgroup as `/proc/PID/cgroup` names it: its path from the hierarchy's root, which is not the
    /// cgroup root topo works in when that is a cgroup below it (`--cgroup-root /sys/fs/cgroup/lab`).
    func hierarchyPath(_ cgroup: String) -> String
    /// Records controllers something topo started (a container runtime) enabled at the cgroup root, in
    /// this manager's host-wide record, for the last `down` to turn off as it does its own.
    func recordRootControllers(_ added: Set<String>) throws(TopoFailure)
}

extension CgroupManager {
    /// The cgroup v2 hierarchy where this manager works (the mount point, or with --cgroup-root another
    /// mount of it or a cgroup below it) offers every controller the plan needs; and the plan puts its
    /// cgroups where this manager does (a lock written under the other manager does not).
    func hierarchyProblems(_ context: PreflightContext, underSlice expected: Bool) -> [String] {
        var problems: [String] = []
        let info = context.host.cgroup
        let root = path("")
        switch info.mode {
        case .unified where info.mountPoint == root || Sys.isCgroup2(root):
            let offered = offeredControllers()
            for c in Controller.ordered(context.plan.workloads.flatMap(\.controllers)).map(\.rawValue)
            where !offered.contains(c) {
                problems.append(
                    "the cgroup v2 root \(root) does not offer the \(c) controller (it offers: \(offered.joined(separator: " "))); a controller still used by cgroup v1 must be released there first"
                )
            }
        case .unified:
            problems.append(
                "\(root) is not a directory of a cgroup v2 filesystem (cgroup v2 is mounted at \(info.mountPoint ?? "?")); give --cgroup-root a cgroup2 mount or a cgroup below one"
            )
        case .hybrid, .legacy:
            problems.append(
                "this host runs cgroup v1 (\(info.mode.rawValue)): \(info.detail). topo needs the unified cgroup v2 hierarchy. Until then, try the profile in the lab: scripts/lab -- .build/debug/topo apply PROFILE"
            )
        case .none, .unknown:
            problems.append(
                "no cgroup v2 hierarchy found (\(info.detail)); mount one at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)"
            )
        }
        let underSlice = context.plan.resources.contains {
            if case .cgroup(let c) = $0 { c.path.hasPrefix(SystemdManager.slice + "/") } else { false }
        }
        if underSlice != expected {
            let made = underSlice ? "systemd" : "cgroupfs"
            problems.append(
                "the plan puts its cgroups where the \(made) cgroup manager does, and this host uses \(description); run with --cgroup-manager \(made), or plan (and lock) again here"
            )
        }
        return problems
    }

    /// `stopAll` of one cgroup.
    public func stopAll(in cgroup: String, owner: String) throws(TopoFailure) {
        if let failure = stopAll([(cgroup, owner)])[0] { throw failure }
    }
}

/// Network namespaces, veth pairs, addresses and qdiscs: rtnetlink in-process (`NetlinkLinks`).
public protocol LinkDriver: ResourceDriver {}

extension LinkDriver {
    /// Links need veth pairs, shaped links netem, and a delay distribution other than uniform the table
    /// iproute2 ships (`tc` reads the same file); where the module files cannot tell, both are tried
    /// for real in a throwaway namespace.
    public func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings {
        let plan = context.plan
        guard !plan.links.isEmpty else { return Findings() }
        var problems: [String] = []
        let distributions = Set(
            plan.links.flatMap(\.shaping).compactMap { s in
                s.netem.jitter.map { $0 > .zero } == true ? s.netem.distribution : nil
            })
        for d in distributions.sorted(by: { $0.rawValue < $1.rawValue })
        where d != .uniform && NetemWire.tablePath(d) == nil {
            problems.append(
                "netem distribution \(d.rawValue) needs iproute2's table \(d.rawValue).dist, which this host lacks (looked in \(NetemWire.tableDirectories.joined(separator: ", "))); apt-get install iproute2"
            )
        }
        let shapes = plan.links.contains { !$0.shaping.isEmpty }
        if case .unavailable(let why) = context.veth { problems.append("links need veth pairs, and \(why)") }
        if shapes, case .unavailable(let why) = context.host.netem {
            problems.append("the profile shapes links with netem, and \(why)")
        }
        let unknown: (Feature) -> Bool = { if case .unknown = $0 { return true } else { return false } }
        if problems.isEmpty && (unknown(context.veth) || (shapes && unknown(context.host.netem)))
            && context.capable("CAP_NET_ADMIN")
        {
            problems += LinkProbe().problems(netem: shapes)
        }
        return Findings(refusals: problems)
    }

    /// A namespace of a planned name that is there already is someone else's: topo never adopts it.
    public func conflicts(_ resources: [Resource]) -> [String] {
        observe(resources.filter { $0.kind == .namespace }).compactMap { seen in
            guard seen.found, case .namespace(let n) = seen.resource else { return nil }
            return
                "network namespace \(n.name) already exists and is not in a journal of topo's; topo will not adopt it (ip netns del \(n.name), if it is stale)"
        }
    }

    /// The same objects whichever driver makes them.
    public func describe(_ r: Resource) -> [String] {
        switch r {
        case .namespace(let n):
            [
                "create network namespace \(n.name), bound at \(NetlinkLinks.netnsDirectory)/\(n.name), with lo up and aliased topo:\(n.owner)"
            ]
        case .veth(let v):
            [
                "create veth pair \(v.ends[0].interface) in \(v.ends[0].netns) ↔ \(v.ends[1].interface) in \(v.ends[1].netns), mtu \(v.mtu)"
            ]
        case .address(let a):
            ["add address \(a.address) to \(a.interface) in \(a.netns), and set \(a.interface) up"]
        case .qdisc(let q):
            ["add root qdisc netem on \(q.interface) in \(q.netns) (\(q.from) → \(q.to)): \(q.netem.summary)"]
        default:
            ["\(r.summary): not a link object"]
        }
    }
}

/// Starts workloads, stops them, reads them back: the built-in process runtime today (`ProcessRuntime`); OCI runtimes later.
public protocol WorkloadRuntime: ResourceDriver {
    /// Runs a command inside a workload in the caller's session and terminal (`topo exec`); its exit status.
    func runInForeground(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure>
    /// Starts a command inside a workload detached from the caller: a session of its own, stdin
    /// /dev/null, stdout and stderr to `launch.logPath`. Returns its pid once the command runs; the
    /// caller waits for it (`verify --active` probes).
    func start(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure>
    /// What this host lacks to start the launch (a runtime's binary, an image), for preflight.
    func problems(_ launch: LaunchResource) -> [String]
    /// How the runtime starts a launch, for `describe`: `start workload app: /usr/bin/app --flag (clone3 into …)`.
    func startedBy(_ launch: LaunchResource) -> String
    /// Where the running topo binary is seen inside the workload, when not at its own path (a
    /// container's): `verify --active` starts its probes as that.
    var probeExecutable: String? { get }
    /// Where the launch's program and workdir are looked up before apply: `""` for the host's own
    /// root, an image's directory, or nil when they are known only once the container has its root
    /// (an image layout, an image in podman's storage: the runtime reports a missing program then).
    func filesystemRoot(_ launch: LaunchResource) -> String?
}

extension WorkloadRuntime {
    /// A launch: how this runtime starts it, then where the workload runs.
    public func describe(_ r: Resource) -> [String] {
        guard case .launch(let l) = r else { return ["\(r.summary): not a workload launch"] }
        return [startedBy(l)] + l.placementLines
    }

    public func problems(_ launch: LaunchResource) -> [String] { [] }
    public var probeExecutable: String? { nil }
    public func filesystemRoot(_ launch: LaunchResource) -> String? { "" }

    /// Each launch: what the runtime lacks (`problems`), then its program, workdir and user, looked up
    /// where the command will find them (`filesystemRoot`).
    public func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings {
        var refusals: [String] = []
        for case .launch(let l) in resources {
            refusals += problems(l).map { "workload \(l.workload): \($0)" }
            if let root = filesystemRoot(l) {
                let within = root.isEmpty ? "on this host" : "in image \(root)"
                if let program = l.command.first, Self.resolve(program, root: root) == nil {
                    refusals.append(
                        "workload \(l.workload) runs \(program), which \(program.contains("/") ? "is not an executable file" : "is not found in \(Planner.defaultPath)") \(within)"
                    )
                }
                if let dir = l.workdir, !Sys.isDirectory(root + dir, followingLinks: true) {
                    refusals.append("workload \(l.workload): workdir \(dir) is not a directory \(within)")
                }
            }
            if let user = l.user, let name = user.split(separator: ":").first, UInt32(name) == nil,
                Sys.user(named: String(name)) == nil
            {
                refusals.append("workload \(l.workload): no user named \(name) on this host")
            }
        }
        return Findings(refusals: refusals)
    }

    /// The executable a command names, searched in the workloads' PATH as the launcher's execvpe will.
    static func resolve(_ program: String, root: String = "") -> String? {
        if program.contains("/") { return Sys.access(root + program, X_OK) ? program : nil }
        for dir in Planner.defaultPath.split(separator: ":") {
            let candidate = "\(root)\(dir)/\(program)"
            if Sys.access(candidate, X_OK) && !Sys.isDirectory(candidate) { return candidate }
        }
        return nil
    }
}

/// The drivers for one host, chosen in one place (`Drivers.host`). The loops reach every driver through here.
public struct Drivers: Sendable {
    public var cgroups: any CgroupManager
    public var links: any LinkDriver
    public var files: NetnsHostsFiles
    public var runtimes: [Runtime: any WorkloadRuntime]
    public var tuner: HostTuner

    public init(
        cgroups: any CgroupManager, links: any LinkDriver, files: NetnsHostsFiles,
        runtimes: [Runtime: any WorkloadRuntime], tuner: HostTuner
    ) {
        self.cgroups = cgroups
        self.links = links
        self.files = files
        self.runtimes = runtimes
        self.tuner = tuner
    }

    /// The drivers a selection names (the one place a driver type is chosen): cgroupfs v2 at its cgroup
    /// root (through a delegated systemd scope per profile with `manager: .systemd`), rtnetlink, hosts
    /// files below its `etcNetns`, the built-in process runtime (topo starts workload processes
    /// itself), the container runtimes crun, runc and podman (each binding `executable` in for the
    /// probes), and the host tuner on procfs and sysfs below `hostRoot`.
    public static func host(_ selection: DriverSelection) -> Drivers {
        let state = selection.state
        let cgroupfs = CgroupfsManager(fs: CgroupFS(root: selection.cgroupRoot), state: state)
        let cgroups: any CgroupManager = selection.manager == .systemd ? SystemdManager(inner: cgroupfs) : cgroupfs
        let executable = selection.executable
        return Drivers(
            cgroups: cgroups, links: NetlinkLinks(), files: NetnsHostsFiles(state: state, etcNetns: selection.etcNetns),
            runtimes: [
                .process: ProcessRuntime(
                    cgroups: cgroups, state: state,
                    protected: [state.root, selection.etcNetns, NetlinkLinks.netnsDirectory]),
                .crun: OCIRuntime(
                    .crun, binary: OCIRuntime.binaries[.crun]!, cgroups: cgroups, state: state, executable: executable),
                .runc: OCIRuntime(
                    .runc, binary: OCIRuntime.binaries[.runc]!, cgroups: cgroups, state: state, executable: executable),
                .podman: PodmanRuntime(cgroups: cgroups, state: state, executable: executable),
            ],
            tuner: HostTuner(files: HostFiles(root: selection.hostRoot), state: state))
    }

    /// `host` of a selection given piece by piece (tests, with their own roots).
    public static func host(
        state: StateStore, cgroupRoot: String = CgroupFS().root, etcNetns: String = Layout.standard.etcNetns,
        executable: String = Spawn.selfExecutable, hostRoot: String = "/", manager: CgroupManagerKind = .cgroupfs
    ) -> Drivers {
        host(
            DriverSelection(
                stateRoot: state.root, cgroupRoot: cgroupRoot, manager: manager, etcNetns: etcNetns,
                executable: executable, hostRoot: hostRoot))
    }

    /// Which driver owns a resource; the loops batch consecutive resources with the same key.
    public enum Key: Hashable, Sendable {
        case cgroups, links, files, tuner, runtime(Runtime)
    }

    static func key(_ r: Resource) -> Key {
        switch r {
        case .cgroupRoot, .cgroup, .cgroupSetting: .cgroups
        case .namespace, .veth, .address, .qdisc: .links
        case .hostsFile: .files
        case .hostTune: .tuner
        case .launch(let l): .runtime(l.runtime)
        }
    }

    func driver(_ key: Key) -> (any ResourceDriver)? {
        switch key {
        case .cgroups: cgroups
        case .links: links
        case .files: files
        case .tuner: tuner
        case .runtime(let r): runtimes[r]
        }
    }

    func driver(for r: Resource) -> (any ResourceDriver)? { driver(Self.key(r)) }

    /// Every resource of `resources` grouped by the driver that owns it, in order of first appearance.
    static func byDriver(_ resources: [Resource]) -> [(key: Key, resources: [Resource])] {
        var groups: [(key: Key, resources: [Resource])] = []
        var index: [Key: Int] = [:]
        for r in resources {
            let k = key(r)
            if let i = index[k] {
                groups[i].resources.append(r)
            } else {
                index[k] = groups.count
                groups.append((k, [r]))
            }
        }
        return groups
    }

    /// What each driver finds before apply makes the plan's resources (`ResourceDriver.preflight`), in
    /// the order the plan first names each driver's; `only` narrows it to some drivers. A launch whose
    /// runtime no driver here makes is a refusal that says why.
    public func preflight(_ context: PreflightContext, only: (Key) -> Bool = { _ in true }) -> Findings {
        var out = Findings()
        for (key, resources) in Self.byDriver(context.plan.resources) where only(key) {
            if let d = driver(key) {
                out = out + d.preflight(resources, context)
            } else if case .runtime(let r) = key, case .failure(let f) = runtime(r) {
                out.refusals += resources.compactMap {
                    if case .launch(let l) = $0 { "workload \(l.workload): \(f.message)" } else { nil }
                }
            }
        }
        return out
    }

    /// What each driver finds in the way of the plan's resources (`ResourceDriver.conflicts`).
    public func conflicts(_ plan: Plan) -> [String] {
        Self.byDriver(plan.resources).flatMap { key, resources in driver(key)?.conflicts(resources) ?? [] }
    }

    /// What `topo host` shows of the settings host.tune changes, and what topo holds now.
    public func hostTuningState() -> HostTuner.State { tuner.currentState() }

    /// What applying `r` does, as its driver says (`ResourceDriver.describe`).
    public func describe(_ r: Resource) -> [String] {
        driver(for: r)?.describe(r) ?? ["\(r.summary): no driver on this host makes it"]
    }

    func runtime(_ r: Runtime) -> Result<any WorkloadRuntime, TopoFailure> {
        guard let runtime = runtimes[r] else {
            return .failure(
                TopoFailure(
                    .hostCannot,
                    "runtime \(r.rawValue) is not supported by this topo; use runtime: process, crun, runc or podman"))
        }
        return .success(runtime)
    }
}
