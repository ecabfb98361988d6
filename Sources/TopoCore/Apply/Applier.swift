import Foundation

/// Applies a plan: cgroups with their limits, then each workload launched inside them.
/// Every change is journaled before it is made; a failure part-way tears down what was made.
public struct Applier: Sendable {
    public var cgroups: CgroupFS
    public var state: StateStore
    /// The topo binary the launcher runs as (`topo __launch`).
    public var executable: String
    public var runner = CommandRunner()
    /// Where `ip netns exec` looks for per-namespace files (`/etc/netns`; a temporary directory in tests).
    public var etcNetns = Links.etcNetnsDirectory

    /// The cgroup under which every profile's subtree lives.
    public static let topoRoot = "topo"

    public init(cgroups: CgroupFS, state: StateStore, executable: String = Spawn.selfExecutable) {
        self.cgroups = cgroups
        self.state = state
        self.executable = executable
    }

    public static func profileCgroup(_ profile: String) -> String { "\(topoRoot)/\(profile)" }

    /// Where a workload's cgroup lives: `topo/<profile>/<workload>`, or for `isolation: partition`
    /// `topo.<profile>.<workload>` right below the cgroup root. The kernel makes a cpuset partition only
    /// in a child of a valid partition root (before Linux 6.7 always; after it, without
    /// `cpuset.cpus.exclusive` on every ancestor); the cgroup root is one and topo's own cgroups are not,
    /// since making them partitions would take their CPUs from the host. Names have no dots, so
    /// `topo.<profile>.<workload>` is unambiguous.
    public static func workloadCgroup(_ profile: String, _ w: PlannedWorkload) -> String {
        w.isolation == .partition ? "\(topoRoot).\(profile).\(w.name)" : "\(topoRoot)/\(profile)/\(w.name)"
    }

    public enum Outcome: Equatable, Sendable {
        case applied(pids: [String: Int32])
        case unchanged
    }

    /// Applies the plan under the state lock. Refuses (exit 3) a profile already applied with another
    /// plan, left half-made, or whose exclusive CPUs overlap another applied profile.
    public func apply(_ plan: Plan) -> Result<Outcome, TopoFailure> {
        do {
            return try state.withLock { () -> Result<Outcome, TopoFailure> in
                if let refusal = checkAgainstApplied(plan) { return refusal }
                return run(plan)
            }
        } catch {
            return .failure(TopoFailure(.hostCannot, "cannot take topo's state lock: \(error)"))
        }
    }

    func checkAgainstApplied(_ plan: Plan) -> Result<Outcome, TopoFailure>? {
        if Sys.exists(state.profileDir(plan.name)) {
            let complete = Sys.exists("\(state.profileDir(plan.name))/applied")
            if complete, let applied = state.plan(plan.name), applied == plan { return .success(.unchanged) }
            let why = complete ? "is applied with a different plan" : "was left half-applied (topo was stopped during apply)"
            return .failure(TopoFailure(.hostCannot, "profile \(plan.name) \(why); run `topo down \(plan.name)` first"))
        }
        var problems: [String] = []
        for ns in plan.workloads.compactMap(\.netns) {
            if Links.exists(ns) {
                problems.append("network namespace \(ns) already exists and is not in a journal of topo's; topo will not adopt it (ip netns del \(ns), if it is stale)")
            }
            if Sys.exists("\(etcNetns)/\(ns)") {
                problems.append("\(etcNetns)/\(ns) already exists and is not in a journal of topo's; topo will not adopt it (remove it, if it is stale)")
            }
        }
        for other in state.profiles() where other != plan.name {
            guard let applied = state.plan(other) else { continue }
            for w in plan.workloads {
                for o in applied.workloads {
                    let overlap = w.cpus.intersection(o.cpus)
                    if !overlap.isEmpty && !Isolation.mayShareCPUs(w.isolation, o.isolation) {
                        problems.append("workload \(w.name) would use CPU \(overlap), which applied profile \(other) gives \(o.isolation.rawValue) to its workload \(o.name)")
                    }
                }
            }
        }
        if problems.isEmpty { return nil }
        return .failure(TopoFailure(.hostCannot, problems.joined(separator: "\n")))
    }

    /// Makes everything, step by step. On failure, undoes what the journal says was made and exits 4.
    func run(_ plan: Plan) -> Result<Outcome, TopoFailure> {
        let journal = Journal(path: state.journalPath(plan.name))
        var step = 0
        var pids: [String: Int32] = [:]
        func perform(_ action: JournalAction, _ body: () throws -> Int32?) throws {
            step += 1
            try journal.begin(step, action)
            let pid = try body()
            var inodes: [String: UInt64]?
            if case .createNamespaces(let names) = action {
                inodes = Dictionary(uniqueKeysWithValues: names.compactMap { n in Links.inode(n).map { (n, $0) } })
            }
            try journal.done(step, pid: pid, inodes: inodes)
        }
        do {
            try state.create(plan)
        } catch {
            return .failure(TopoFailure(.applyFailed, "apply failed: \(error); nothing was changed"))
        }
        do {
            let controllers = Self.controllers(of: plan)
            try perform(.prepareHost(controllers: controllers)) { try prepareHost(controllers); return nil }
            let profileCgroup = Self.profileCgroup(plan.name)
            try perform(.createCgroup(profileCgroup)) { try createOwned(profileCgroup, owner: plan.name); return nil }
            try perform(.enableControllers(cgroup: profileCgroup, controllers: controllers)) {
                try cgroups.enable(controllers, below: profileCgroup); return nil
            }
            for w in plan.workloads {
                let cg = Self.workloadCgroup(plan.name, w)
                try perform(.createCgroup(cg)) { try createOwned(cg, owner: plan.name); return nil }
                for s in w.cgroup {
                    try perform(.write(cgroup: cg, file: s.file, value: s.value)) {
                        try cgroups.write(cg, s.file, s.value)
                        if s.file == "cpuset.cpus.partition" { try checkPartition(cg) }
                        return nil
                    }
                }
            }
            let namespaces = plan.workloads.compactMap(\.netns)
            if !namespaces.isEmpty {
                try perform(.createNamespaces(namespaces)) { try Links.runBatch(runner, [Links.ip], Links.createBatch(plan)); return nil }
                try configureNamespaces(namespaces, plan, journal, &step)
                for w in plan.workloads {
                    guard let ns = w.netns else { continue }
                    try perform(.hostsFile(netns: ns)) { try writeHostsFile(ns, Self.hostsFile(w)); return nil }
                }
            }
            // Every launcher starts before any is waited for: their start-ups overlap (see docs/benchmarks.md).
            var started: [(step: Int, workload: String, pending: Spawn.Pending)] = []
            defer { for s in started { _ = Spawn.finish(s.pending) } }  // after a failure: close what is left
            for w in plan.workloads where w.run != nil {
                let cg = Self.workloadCgroup(plan.name, w)
                step += 1
                try journal.begin(step, .launch(workload: w.name, cgroup: cg))
                started.append((step, w.name, try startLaunch(w, profile: plan.name, cgroup: cg)))
            }
            while !started.isEmpty {
                let s = started.removeFirst()
                switch Spawn.finish(s.pending) {
                case .success(let pid):
                    pids[s.workload] = pid
                    try journal.done(s.step, pid: pid)
                case .failure(let f):
                    step = s.step
                    throw TopoFailure(.applyFailed, "launch workload \(s.workload): \(f)")
                }
            }
            try Sys.write("\(state.profileDir(plan.name))/applied", "\(step)\n", flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
            return .success(.applied(pids: pids))
        } catch {
            var teardown = Teardown(cgroups: cgroups, state: state)
            teardown.etcNetns = etcNetns
            let rollback = teardown.remove(plan.name)
            var message = "apply of \(plan.name) failed at step \(step): \(error)\n"
            message += rollback.problems.isEmpty ? "rolled back: everything apply made is removed" :
                "rollback left problems:\n" + rollback.problems.map { "  - \($0)" }.joined(separator: "\n")
            return .failure(TopoFailure(.applyFailed, message))
        }
    }

    /// Inside each namespace its addresses and links (one `ip -n NS -batch`), then its qdiscs (one
    /// `tc -n NS -batch`). Namespaces do not depend on one another, so all are configured at once:
    /// every step is journaled before any starts and marked done in order once all have finished.
    func configureNamespaces(_ namespaces: [String], _ plan: Plan, _ journal: Journal, _ step: inout Int) throws {
        struct Work: Sendable { var ns: String; var configure: (step: Int, lines: [String]); var shape: (step: Int, lines: [String])? }
        var work: [Work] = []
        for ns in namespaces {
            step += 1
            try journal.begin(step, .configureNamespace(ns))
            var w = Work(ns: ns, configure: (step, Links.configureBatch(ns, plan)), shape: nil)
            let qdiscs = Links.qdiscBatch(ns, plan)
            if !qdiscs.isEmpty {
                step += 1
                try journal.begin(step, .shape(ns))
                w.shape = (step, qdiscs)
            }
            work.append(w)
        }
        let runner = self.runner
        let failures = concurrentMap(work) { w -> (step: Int, error: String)? in
            do { try Links.runBatch(runner, [Links.ip, "-n", w.ns], w.configure.lines) } catch { return (w.configure.step, "\(error)") }
            guard let shape = w.shape else { return nil }
            do { try Links.runBatch(runner, [Links.tc, "-n", w.ns], shape.lines) } catch { return (shape.step, "\(error)") }
            return nil
        }
        if let first = failures.compactMap({ $0 }).min(by: { $0.step < $1.step }) {
            step = first.step
            throw TopoFailure(.applyFailed, first.error)
        }
        for w in work {
            try journal.done(w.configure.step)
            if let shape = w.shape { try journal.done(shape.step) }
        }
    }

    /// The controllers a plan needs, in a fixed order.
    static func controllers(of plan: Plan) -> [String] {
        let used = Set(plan.workloads.flatMap(\.controllers))
        return ["cpuset", "cpu", "io", "memory", "pids"].filter { used.contains($0) }
    }

    /// The topo root cgroup and the controllers along the path to it. What this changes outside
    /// topo's own cgroups is recorded host-wide before it is done, for the last `down` to restore.
    func prepareHost(_ controllers: [String]) throws {
        var changes = state.hostChanges()
        if !cgroups.exists(Self.topoRoot) {
            changes.createdRoot = true
            try state.record(changes)
            try cgroups.create(Self.topoRoot, owner: "topo")
        } else if cgroups.owner(Self.topoRoot) == nil {
            throw TopoFailure(.hostCannot, "\(cgroups.path(Self.topoRoot)) exists but was not made by topo (no \(CgroupFS.ownerAttribute) mark); topo will not adopt it")
        }
        let missing = controllers.filter { !cgroups.subtreeControl("").contains($0) }
        if !missing.isEmpty {
            changes.rootControllers = Array(Set(changes.rootControllers + missing)).sorted()
            try state.record(changes)
            try cgroups.enable(missing, below: "")
        }
        try cgroups.enable(controllers, below: Self.topoRoot)
    }

    /// The /etc/hosts a linked workload sees: localhost, itself, and each peer by name.
    static func hostsFile(_ w: PlannedWorkload) -> String {
        var lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        if let own = w.addresses.first { lines.append("\(own.prefix { $0 != "/" })\t\(w.name)") }
        lines += w.peers.map { "\($0.address)\t\($0.name)" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The kernel accepts any partition write and says in the file whether the partition is valid:
    /// `root invalid (Parent unable to distribute cpu downstream)` is a failure, not a partition.
    func checkPartition(_ cgroup: String) throws {
        let state = try cgroups.read(cgroup, "cpuset.cpus.partition").trimmingCharacters(in: "\n")
        guard state == "root" else {
            throw TopoFailure(.applyFailed, "\(cgroups.path(cgroup, "cpuset.cpus.partition")) reads back \"\(state)\": the kernel did not make a partition. "
                + "A partition's CPUs must be listed in no other cgroup's cpuset.cpus at the cgroup root, and the root must keep at least one CPU for the rest of the host")
        }
    }

    /// `/etc/netns/NS/hosts`, world-readable (a workload may run as any user). `/etc/netns` itself is
    /// recorded host-wide when topo makes it, for the last `down` to remove.
    func writeHostsFile(_ ns: String, _ contents: String) throws {
        if !Sys.exists(etcNetns) {
            var changes = state.hostChanges()
            changes.createdEtcNetns = true
            try state.record(changes)
            if mkdir(etcNetns, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", etcNetns, errno: errno) }
        }
        if mkdir("\(etcNetns)/\(ns)", 0o755) != 0 {
            let e = errno
            if e == EEXIST { throw TopoFailure(.hostCannot, "\(etcNetns)/\(ns) appeared during apply and is not topo's; topo will not adopt it") }
            throw SystemError("mkdir", "\(etcNetns)/\(ns)", errno: e)
        }
        try Sys.write("\(etcNetns)/\(ns)/hosts", contents, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644, operation: "create")
    }

    func createOwned(_ cgroup: String, owner: String) throws {
        if cgroups.exists(cgroup) {
            throw TopoFailure(.hostCannot, "\(cgroups.path(cgroup)) already exists and is not in this apply's journal; topo will not adopt it (remove it, or run `topo down \(owner)`)")
        }
        try cgroups.create(cgroup, owner: owner)
    }

    func startLaunch(_ w: PlannedWorkload, profile: String, cgroup: String) throws -> Spawn.Pending {
        let spec = LaunchSpec.forWorkload(w, profile: profile, cgroupProcs: cgroups.path(cgroup, "cgroup.procs"),
                                          logPath: state.logPath(profile, w.name), hostsFile: w.netns.map { "\(etcNetns)/\($0)/hosts" })
        switch Spawn.start(spec, specPath: state.launchSpecPath(profile, w.name), executable: executable) {
        case .success(let pending): return pending
        case .failure(let f): throw TopoFailure(.applyFailed, "launch workload \(w.name): \(f)")
        }
    }
}
