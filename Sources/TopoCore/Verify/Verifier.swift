import Foundation

/// One verification: a stable id, what it is about, and what was expected and found.
public struct Check: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable, Comparable {
        case pass, warn, fail
        public static func < (a: Status, b: Status) -> Bool {
            [pass, warn, fail].firstIndex(of: a)! < [pass, warn, fail].firstIndex(of: b)!
        }
    }
    public var id: String
    /// `workload NAME`, `link A<->B`, or the profile.
    public var subject: String
    public var status: Status
    public var expected: String
    public var found: String
    public var message: String
}

/// The static checks of `topo verify`: each reads what the kernel reports — the observe loop for the
/// plan's objects, cgroup files the kernel derives, and every task's /proc entries, found through the
/// cgroup (never through a pid list) — and compares it with the plan.
public struct Verifier: Sendable {
    public var state: StateStore
    public var drivers: Drivers
    /// `/proc`, or a directory shaped like it in tests.
    public var proc: String

    /// The plan and the launched pids, decoded once while their files stay the same (`--watch` rounds).
    public let cache = Cache()

    public init(state: StateStore, drivers: Drivers, proc: String = "/proc") {
        self.state = state
        self.drivers = drivers
        self.proc = proc
    }

    /// A profile's plan and the pids its journal records for each launch, kept while `plan.json` and
    /// the journal keep their inode, size and modification time: a watch round then decodes no JSON.
    public final class Cache: @unchecked Sendable {
        struct Entry {
            var stamps: [String]
            var plan: Plan
            var launched: [(String, Int32)]
        }
        private let lock = NSLock()
        private var entries: [String: Entry] = [:]

        static func stamp(_ path: String) -> String {
            guard let st = Sys.stat(path) else { return "missing" }
            return "\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        }

        func read(
            _ profile: String, _ state: StateStore
        ) -> Result<(plan: Plan, launched: [(String, Int32)]), TopoFailure> {
            let stamps = [Self.stamp(state.planPath(profile)), Self.stamp(state.journalPath(profile))]
            lock.lock()
            let cached = entries[profile]
            lock.unlock()
            if let cached, cached.stamps == stamps { return .success((cached.plan, cached.launched)) }
            let plan: Plan
            switch state.plan(profile) {
            case .success(let p): plan = p
            case .failure(let f): return .failure(f)
            }
            let launched = Journal.read(state.journalPath(profile)).steps.compactMap { step -> (String, Int32)? in
                guard case .launch(let l) = step.resource, let pid = step.facts.pid else { return nil }
                return (l.workload, pid)
            }
            lock.lock()
            entries[profile] = Entry(stamps: stamps, plan: plan, launched: launched)
            lock.unlock()
            return .success((plan, launched))
        }
    }

    public struct ProfileResult: Codable, Equatable, Sendable {
        public var name: String
        public var checks: [Check]
        public var summary: [String: Int]

        public init(name: String, checks: [Check], summary: [String: Int]) {
            self.name = name
            self.checks = checks
            self.summary = summary
        }
    }

    /// The static checks of an applied profile; with `active`, the probes of `ActiveChecks` after them.
    public func verify(_ profile: String, online: CPUSet, active: Bool = false) -> Result<ProfileResult, TopoFailure> {
        guard state.profiles().contains(profile) else {
            return .failure(TopoFailure(.hostCannot, "profile \(profile) is not applied (see topo status)"))
        }
        let plan: Plan
        let launched: [(String, Int32)]
        switch cache.read(profile, state) {
        case .success(let read): (plan, launched) = (read.plan, read.launched)
        case .failure(let f): return .failure(f)
        }
        let observed = ResourceLoop(drivers: drivers).observe(plan.resources)
        // Each workload's checks read its own files: all workloads at once.
        var byWorkload: [String: [Observation]] = [:]
        for o in observed where o.resource.kind == .cgroup || o.resource.kind == .cgroupSetting {
            if let w = o.resource.workload { byWorkload[w, default: []].append(o) }
        }
        let cgroupObservations = byWorkload
        // The controllers topo enabled for the profile's workloads: a counter file of another one is not there to read.
        let controllers = Set(plan.workloads.flatMap(\.controllers))
        // Where topo's cgroup root is in the hierarchy: read from the mount table once a round.
        let hierarchy = drivers.cgroups.hierarchyPath("")
        let perWorkload = concurrentMap(plan.workloads) { [self] w in
            workloadChecks(
                w, cgroupObservations[w.name] ?? [], launched: launched.filter { $0.0 == w.name }.map(\.1),
                controllers: controllers,
                hierarchy: hierarchy)
        }
        var checks = perWorkload.flatMap { $0 }
        checks += linkChecks(plan, observed)
        checks += tuneChecks(observed)
        checks += otherChecks(observed)
        checks += intruderChecks(plan, online: online)
        if active { checks += ActiveChecks(state: state, drivers: drivers).checks(plan, profile: profile) }
        var summary = ["pass": 0, "warn": 0, "fail": 0]
        for c in checks { summary[c.status.rawValue, default: 0] += 1 }
        return .success(ProfileResult(name: profile, checks: checks, summary: summary))
    }

    // MARK: per workload

    /// `hierarchy`: topo's cgroup root as `/proc/PID/cgroup` names it (`CgroupManager.hierarchyPath("")`).
    func workloadChecks(
        _ w: PlannedWorkload, _ observed: [Observation], launched: [Int32],
        controllers: Set<Controller> = Set(Controller.allCases),
        hierarchy: String = "/"
    ) -> [Check] {
        let subject = "workload \(w.name)"
        let cgroups = drivers.cgroups
        var checks: [Check] = []
        // cgroup.settings: the planned values, as the observe step reads and compares them; and the CPUs
        // the kernel actually gives (anything less than planned means it took some away).
        let diffs = observed.flatMap(\.differences)
        let effective = cgroups.read(w.cgroupPath, "cpuset.cpus.effective").flatMap { try? CPUSet.parse($0).get() }
        var settingProblems = diffs
        if effective != w.cpus {
            settingProblems.append(
                "cpuset.cpus.effective: planned \(w.cpus), kernel has \(effective?.description ?? "nothing")")
        }
        checks.append(
            Check(
                id: "cgroup.settings", subject: subject, status: settingProblems.isEmpty ? .pass : .fail,
                expected: w.cgroup.map { "\($0.file)=\($0.humanValue)" }.joined(separator: " "),
                found: settingProblems.isEmpty ? "as planned" : settingProblems.joined(separator: "; "),
                message: settingProblems.isEmpty ? "every setting holds" : settingProblems.joined(separator: "; ")))
        // The observe step has read the workload's cgroup: whether it is there, and its processes.
        let own = observed.first { if case .cgroup = $0.resource { true } else { false } }
        guard own?.found ?? cgroups.exists(w.cgroupPath) else { return checks }
        // tasks.cpus, tasks.mems: every thread, found through the cgroup.
        let threads = cgroups.threads(w.cgroupPath)
        var wrongCPUs: [String] = []
        var wrongMems: [String] = []
        for tid in threads {
            guard let status = try? Sys.read("\(proc)/\(tid)/status") else { continue }  // gone meanwhile
            let fields = Self.fields(status)
            if let cpus = fields["Cpus_allowed_list"].flatMap({ try? CPUSet.parse($0).get() }),
                !cpus.isSubset(of: w.cpus)
            {
                wrongCPUs.append("\(tid) (\(fields["Name"] ?? "?")) allowed on \(cpus)")
            }
            if let mems = fields["Mems_allowed_list"].flatMap({ try? CPUSet.parse($0).get() }),
                !mems.isSubset(of: w.mems)
            {
                wrongMems.append("\(tid) (\(fields["Name"] ?? "?")) allowed on nodes \(mems)")
            }
        }
        checks.append(
            Check(
                id: "tasks.cpus", subject: subject, status: wrongCPUs.isEmpty ? .pass : .fail,
                expected: "within \(w.cpus)",
                found: wrongCPUs.isEmpty
                    ? "\(threads.count) thread\(threads.count == 1 ? "" : "s") within \(w.cpus)"
                    : wrongCPUs.joined(separator: "; "),
                message: wrongCPUs.isEmpty
                    ? "every thread on its CPUs"
                    : "threads allowed off the workload's CPUs: " + wrongCPUs.joined(separator: "; ")))
        checks.append(
            Check(
                id: "tasks.mems", subject: subject, status: wrongMems.isEmpty ? .pass : .fail,
                expected: "within nodes \(w.mems)",
                found: wrongMems.isEmpty
                    ? "\(threads.count) thread\(threads.count == 1 ? "" : "s") within nodes \(w.mems)"
                    : wrongMems.joined(separator: "; "),
                message: wrongMems.isEmpty
                    ? "every thread on its memory nodes"
                    : "threads allowed off the workload's nodes: " + wrongMems.joined(separator: "; ")))
        // tasks.policy: each process's memory policy, as numa_maps shows it for its first mapping (the
        // program's text, which takes the process's policy; a region the program mbind()s itself may differ).
        let expectedPolicy = Self.numaMapsPolicy(w.memoryPolicy, w.policyNodes)
        var wrongPolicy: [String] = []
        for pid in own?.pids ?? cgroups.processes(w.cgroupPath) {
            guard let policy = Self.memoryPolicy(of: pid, proc: proc) else { continue }
            if !expectedPolicy.contains(policy) {
                let name =
                    (try? Sys.read("\(proc)/\(pid)/comm"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                wrongPolicy.append("\(pid) (\(name)) has \(policy)")
            }
        }
        checks.append(
            Check(
                id: "tasks.policy", subject: subject, status: wrongPolicy.isEmpty ? .pass : .fail,
                expected: expectedPolicy.joined(separator: " or "),
                found: wrongPolicy.isEmpty ? expectedPolicy[0] : wrongPolicy.joined(separator: "; "),
                message: wrongPolicy.isEmpty
                    ? "every process has the planned memory policy"
                    : "processes without the planned memory policy: " + wrongPolicy.joined(separator: "; ")))
        // tasks.escaped: the process apply started, alive but no longer below the workload's cgroup.
        // /proc/PID/cgroup names a cgroup from the hierarchy's root, which is above topo's cgroup root
        // when that is a cgroup itself (--cgroup-root /sys/fs/cgroup/lab).
        var escaped: [String] = []
        let home = (hierarchy == "/" ? "" : hierarchy) + "/" + w.cgroupPath
        for pid in launched {
            guard
                let line = (try? Sys.read("\(proc)/\(pid)/cgroup"))?.split(separator: "\n").first(where: {
                    $0.hasPrefix("0::")
                })
            else { continue }
            let path = String(line.dropFirst(3))
            if path != home && !path.hasPrefix(home + "/") { escaped.append("\(pid) is in \(path)") }
        }
        checks.append(
            Check(
                id: "tasks.escaped", subject: subject, status: escaped.isEmpty ? .pass : .fail,
                expected: "below \(home)",
                found: escaped.isEmpty ? "below \(home)" : escaped.joined(separator: "; "),
                message: escaped.isEmpty
                    ? "what apply started is still in its cgroup"
                    : "left its cgroup: " + escaped.joined(separator: "; ")))
        // partition.state: still a valid partition, and the cgroup root no longer holds its CPUs.
        if w.isolation == .partition {
            let partition = cgroups.read(w.cgroupPath, "cpuset.cpus.partition") ?? "unreadable"
            let rootCPUs = cgroups.read("", "cpuset.cpus.effective").flatMap { try? CPUSet.parse($0).get() } ?? .empty
            let shared = rootCPUs.intersection(w.cpus)
            let ok = partition == "root" && shared.isEmpty
            checks.append(
                Check(
                    id: "partition.state", subject: subject, status: ok ? .pass : .fail,
                    expected: "root, CPUs \(w.cpus) outside the cgroup root",
                    found: "\(partition)\(shared.isEmpty ? "" : ", the cgroup root still has CPU \(shared)")",
                    message: ok
                        ? "the partition holds"
                        : "the partition does not hold: \(partition)\(shared.isEmpty ? "" : "; the cgroup root has CPU \(shared)")"
                ))
        }
        // counters: what the kernel counted against the limits; an OOM kill is a warning.
        var counters: [String] = []
        var oomKills = 0
        if let stat = cgroups.read(w.cgroupPath, "cpu.stat") {
            let f = Self.pairs(stat)
            counters.append("nr_throttled=\(f["nr_throttled"] ?? "0") throttled_usec=\(f["throttled_usec"] ?? "0")")
        }
        if controllers.contains(.memory), let events = cgroups.read(w.cgroupPath, "memory.events") {
            let f = Self.pairs(events)
            oomKills = Int(f["oom_kill"] ?? "0") ?? 0
            counters.append(
                ["high", "max", "oom", "oom_kill"].map { "memory.\($0)=\(f[$0] ?? "0")" }.joined(separator: " "))
        }
        if controllers.contains(.pids), let events = cgroups.read(w.cgroupPath, "pids.events") {
            counters.append("pids.max=\(Self.pairs(events)["max"] ?? "0")")
        }
        checks.append(
            Check(
                id: "counters", subject: subject, status: oomKills > 0 ? .warn : .pass, expected: "no OOM kill",
                found: counters.joined(separator: " "),
                message: oomKills > 0
                    ? "the kernel OOM-killed \(oomKills) process\(oomKills == 1 ? "" : "es") in the workload"
                    : counters.joined(separator: " ")))
        return checks
    }

    /// A process's memory policy as numa_maps shows it for its first mapping; nil when unreadable.
    static func memoryPolicy(of pid: Int32, proc: String = "/proc") -> String? {
        // Only the first line is needed: a process with a million mappings has a numa_maps of hundreds of MiB.
        guard let maps = try? GuardedFile.prefix("\(proc)/\(pid)/numa_maps", bytes: 4096) else { return nil }
        return maps.split(separator: "\n").first?.split(separator: " ").dropFirst().first.map(String.init)
    }

    /// How numa_maps may name a policy (mm/mempolicy.c, mpol_to_str): `bind:0-1`, `interleave:0-1`,
    /// `prefer:0`; local allocation is `local`, or `default` where libnuma sets it as the default policy.
    static func numaMapsPolicy(_ policy: MemoryPolicy, _ nodes: CPUSet) -> [String] {
        switch policy {
        case .bind: ["bind:\(nodes)"]
        case .interleave: ["interleave:\(nodes)"]
        case .preferred: ["prefer:\(nodes)"]
        case .local: ["local", "default"]
        }
    }

    // MARK: links

    func linkChecks(_ plan: Plan, _ observed: [Observation]) -> [Check] {
        // The link objects by the namespace they are in (a veth by both of its): each link takes its own
        // from its two namespaces, so a round costs the same per link however many there are.
        var inNamespace: [String: [Observation]] = [:]
        for o in observed {
            switch o.resource {
            case .namespace(let n): inNamespace[n.name, default: []].append(o)
            case .veth(let v): inNamespace[v.ends[0].netns, default: []].append(o)
            case .address(let a): inNamespace[a.netns, default: []].append(o)
            case .qdisc(let q): inNamespace[q.netns, default: []].append(o)
            default: break
            }
        }
        return plan.links.map { link in
            let names = Set(link.ends.map(\.netns))
            let mine = names.sorted().flatMap { inNamespace[$0] ?? [] }.filter { o in
                switch o.resource {
                case .namespace: true
                case .veth(let v): Set(v.ends.map(\.netns)) == names
                case .address(let a): link.ends.contains { $0.netns == a.netns && $0.interface == a.interface }
                case .qdisc(let q): link.shaping.contains { $0.netns == q.netns && $0.interface == q.interface }
                default: false
                }
            }
            let problems = mine.flatMap(\.differences)
            return Check(
                id: "links", subject: "link \(link.between[0])<->\(link.between[1])",
                status: problems.isEmpty ? .pass : .fail,
                expected: "\(link.subnet), mtu \(link.mtu)"
                    + link.shaping.map { "; \($0.from)→\($0.to) \($0.netem.summary)" }.joined(),
                found: problems.isEmpty ? "as planned" : problems.joined(separator: "; "),
                message: problems.isEmpty
                    ? "namespaces, veth, addresses and qdiscs as planned" : problems.joined(separator: "; "))
        }
    }

    // MARK: host.tune

    /// Each `host.tune` setting still reads what topo wrote. A changed sysctl, governor or huge-page
    /// setting fails; interrupts, workqueues and kernel threads back on the quiet CPUs warn here (for a
    /// partition workload, `irqs.affinity` and `cpus.intruders` fail); under `bestEffort`, so does
    /// everything, and a setting this host cannot make is a warning.
    func tuneChecks(_ observed: [Observation]) -> [Check] {
        observed.compactMap { o -> Check? in
            guard case .hostTune(let t) = o.resource else { return nil }
            let problems = o.differences
            let soft: Bool
            switch t.setting {
            case .irqsAway, .workqueuesAway, .kernelThreadsAway: soft = true
            default: soft = t.bestEffort
            }
            return Check(
                id: "host.tune", subject: "host.tune.\(t.setting.name)",
                status: problems.isEmpty ? .pass : soft ? .warn : .fail,
                expected: t.setting.value,
                found: problems.isEmpty ? "as set (\(o.kernel ?? ""))" : Problems.list(problems, limit: 8),
                message: problems.isEmpty ? "holds" : "no longer holds: " + Problems.list(problems, limit: 8))
        }
    }

    // MARK: any other kind

    /// The kinds the checks above read: a kind added later is verified by `otherChecks` until it has
    /// checks of its own, so that it needs no change here.
    static let kindsWithChecks: Set<Resource.Kind> = [
        .cgroupRoot, .cgroup, .cgroupSetting, .namespace, .veth, .address, .qdisc,
        .hostsFile, .hostTune, .launch,
    ]

    /// Each observed resource of another kind holds as its driver observed it: found, and no difference
    /// from the plan (`resource.KIND`, failing otherwise).
    func otherChecks(_ observed: [Observation]) -> [Check] {
        observed.filter { !Self.kindsWithChecks.contains($0.resource.kind) }.map { o in
            let problems = o.differences
            return Check(
                id: "resource.\(o.resource.kind.rawValue)", subject: o.resource.summary,
                status: problems.isEmpty ? .pass : .fail,
                expected: "as planned",
                found: problems.isEmpty ? (o.kernel ?? "as planned") : Problems.list(problems, limit: 8),
                message: problems.isEmpty ? "holds" : "differs from the plan: " + Problems.list(problems, limit: 8))
        }
    }

    // MARK: intruders

    /// Tasks outside the profile's workloads pinned onto an exclusive or partition workload's CPUs (their
    /// allowed CPUs are fewer than the online ones and include one of the workload's), and interrupts whose
    /// effective affinity includes one: warnings for `exclusive`, failures for `partition`. Per-CPU kernel
    /// threads are counted apart and never fail.
    func intruderChecks(_ plan: Plan, online: CPUSet) -> [Check] {
        let strict = plan.workloads.filter { $0.isolation != .shared }
        guard !strict.isEmpty else { return [] }
        let ours = Set(plan.workloads.flatMap { drivers.cgroups.threads($0.cgroupPath) })
        struct Task {
            var tid: Int32
            var name: String
            var cpus: CPUSet
            var kernel: Bool
        }
        var tasks: [Task] = []
        for pid in Sys.entries(proc).compactMap(Int32.init) {
            for tid in Sys.entries("\(proc)/\(pid)/task").compactMap(Int32.init) where !ours.contains(tid) {
                guard let status = try? Sys.read("\(proc)/\(pid)/task/\(tid)/status") else { continue }
                let f = Self.fields(status)
                guard let cpus = f["Cpus_allowed_list"].flatMap({ try? CPUSet.parse($0).get() }),
                    cpus.count < online.count
                else { continue }
                // Kernel threads have no memory map (no VmSize line).
                tasks.append(Task(tid: tid, name: f["Name"] ?? "?", cpus: cpus, kernel: f["VmSize"] == nil))
            }
        }
        // Each interrupt's effective CPUs and the CPUs asked of it (smp_affinity_list).
        var irqs: [(irq: String, cpus: CPUSet, requested: CPUSet?)] = []
        for irq in Sys.entries("\(proc)/irq") where Int(irq) != nil {
            if let text = try? Sys.read("\(proc)/irq/\(irq)/effective_affinity_list"),
                let cpus = try? CPUSet.parse(text).get()
            {
                let requested = (try? Sys.read("\(proc)/irq/\(irq)/smp_affinity_list")).flatMap {
                    try? CPUSet.parse($0).get()
                }
                irqs.append((irq, cpus, requested))
            }
        }
        var checks: [Check] = []
        for w in strict {
            let bad: Check.Status = w.isolation == .partition ? .fail : .warn
            let pinned = tasks.filter { !$0.cpus.intersection(w.cpus).isEmpty }
            let users = pinned.filter { !$0.kernel }
            let kernels = pinned.filter(\.kernel)
            let listed =
                users.prefix(20).map { "\($0.tid) (\($0.name)) on \($0.cpus)" }.joined(separator: "; ")
                + (users.count > 20 ? "; \(users.count - 20) more" : "")
            checks.append(
                Check(
                    id: "cpus.intruders", subject: "workload \(w.name)", status: users.isEmpty ? .pass : bad,
                    expected: "no other task pinned onto \(w.cpus)",
                    found:
                        "\(users.count) pinned task\(users.count == 1 ? "" : "s")\(users.isEmpty ? "" : ": " + listed); \(kernels.count) per-CPU kernel thread\(kernels.count == 1 ? "" : "s")",
                    message: users.isEmpty
                        ? "no other task is pinned onto its CPUs" : "tasks pinned onto its CPUs: " + listed))
            // On its CPUs: delivered there, or asked to go nowhere else. An interrupt asked off them but
            // still delivered there moves at its next interrupt (the kernel defers the move of many): a warning.
            var onIt: [String] = []
            var pending: [String] = []
            for i in irqs {
                let delivered = !i.cpus.intersection(w.cpus).isEmpty
                let pinned = i.requested.map { !$0.isEmpty && $0.isSubset(of: w.cpus) } ?? false
                let askedOff = i.requested.map { $0.intersection(w.cpus).isEmpty } ?? false
                if pinned || (delivered && !askedOff) {
                    onIt.append("IRQ \(i.irq) on \(i.cpus)")
                } else if delivered {
                    pending.append("IRQ \(i.irq) on \(i.cpus), asked onto \(i.requested!)")
                }
            }
            let status: Check.Status = !onIt.isEmpty ? bad : pending.isEmpty ? .pass : .warn
            let found = (onIt + pending.map { "\($0) (moves at its next interrupt)" }).joined(separator: "; ")
            checks.append(
                Check(
                    id: "irqs.affinity", subject: "workload \(w.name)", status: status,
                    expected: "no interrupt on \(w.cpus)",
                    found: found.isEmpty ? "none" : found,
                    message: !onIt.isEmpty
                        ? "interrupts delivered to its CPUs: " + onIt.joined(separator: "; ")
                        : pending.isEmpty
                            ? "no interrupt is delivered to its CPUs"
                            : "interrupts asked off its CPUs, still delivered there until their next interrupt: "
                                + pending.joined(separator: "; ")))
        }
        return checks
    }

    // MARK: parsing

    /// `Key:\tvalue` lines of /proc/PID/status.
    static func fields(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    /// `key value` lines of cgroup event and stat files.
    static func pairs(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: " ", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }
}
