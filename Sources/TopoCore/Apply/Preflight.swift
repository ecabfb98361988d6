import Foundation

/// Everything checked before apply touches the host. Privileges are checked apart from the host's
/// kernel features and from what the plan asks for; every problem is reported, each with its fix.
public struct Preflight: Sendable {
    public var host: HostTopology
    public var drivers: Drivers
    /// Whether veth pairs can be made (probed like netem, from the kernel's module files).
    public var veth: Feature
    /// Whether this process has a capability in its effective set (libcap's `cap_get_proc`; a test
    /// gives its own, so that preflight runs without root).
    public var capable: @Sendable (String) -> Bool

    public init(
        host: HostTopology, drivers: Drivers, veth: Feature = NetemProbe.probe(module: "veth", HostFiles(root: "/")),
        capable: @escaping @Sendable (String) -> Bool = Capabilities.effective
    ) {
        self.host = host
        self.drivers = drivers
        self.veth = veth
        self.capable = capable
    }

    /// Everything checked, once (a driver may try a kernel feature for real): refusals make applying
    /// `plan` impossible here (exit 3); warnings are what apply may do but should say first (a
    /// `host.tune` setting this host cannot make under `bestEffort`, a running irqbalance that
    /// `irqbalance: warn` leaves in place).
    public func check(_ plan: Plan) -> Findings {
        var found = drivers.preflight(context(plan))
        found.refusals = privilegeProblems(for: plan) + placementProblems(for: plan) + found.refusals
        return found
    }

    /// The refusals of `check`. Empty when apply may go ahead.
    public func problems(for plan: Plan) -> [String] { check(plan).refusals }

    func context(_ plan: Plan) -> PreflightContext {
        PreflightContext(host: host, plan: plan, veth: veth, capable: capable)
    }

    /// The capabilities apply needs, read from the effective set (`capable`).
    func privilegeProblems(for plan: Plan) -> [String] {
        var needed: [(String, String)] = [
            ("CAP_SYS_ADMIN", "to create cgroups and set their owner mark"),
            ("CAP_DAC_OVERRIDE", "to write cgroup interface files"),
            ("CAP_SETPCAP", "to drop workloads' capabilities"),
            ("CAP_KILL", "to stop workloads on down"),
        ]
        if plan.workloads.contains(where: { $0.run?.user != nil }) {
            needed += [
                ("CAP_SETUID", "to run workloads as their user"), ("CAP_SETGID", "to run workloads as their group"),
            ]
        }
        if !plan.links.isEmpty { needed.append(("CAP_NET_ADMIN", "to create network namespaces and links")) }
        if plan.resources.contains(where: {
            if case .hostTune(let t) = $0, case .kernelThreadsAway = t.setting { true } else { false }
        }) {
            needed.append(("CAP_SYS_NICE", "to move kernel threads (host.tune.kernelThreads)"))
        }
        let missing = needed.filter { !capable($0.0) }
        guard !missing.isEmpty else { return [] }
        return [
            "topo apply needs root or these capabilities, which this process lacks: "
                + missing.map { "\($0.0) (\($0.1))" }.joined(separator: ", ") + "; run it as root (e.g. with sudo)"
        ]
    }

    /// The placement's CPUs are online and its nodes present (a lock planned while they were).
    func placementProblems(for plan: Plan) -> [String] {
        var problems: [String] = []
        for w in plan.workloads {
            let offline = w.cpus.subtracting(host.onlineCPUs)
            if !offline.isEmpty { problems.append("workload \(w.name): CPU \(offline) is not online") }
            let absent = w.mems.subtracting(CPUSet(host.nodes.map(\.id)))
            if !absent.isEmpty { problems.append("workload \(w.name): NUMA node \(absent) is not present") }
        }
        return problems
    }

    /// What the cgroup manager and the link driver find: the cgroup v2 hierarchy and its controllers,
    /// veth, netem and its tables; and the placement.
    func kernelProblems(for plan: Plan) -> [String] {
        let c = context(plan)
        let mine = { (key: Drivers.Key) in plan.resources.filter { Drivers.key($0) == key } }
        return drivers.cgroups.preflight(mine(.cgroups), c).refusals + drivers.links.preflight(mine(.links), c).refusals
            + placementProblems(for: plan)
    }

    /// What the workload runtimes find: the runtime, its image, the program, workdir and user.
    func workloadProblems(for plan: Plan) -> [String] {
        drivers.preflight(context(plan), only: { if case .runtime = $0 { true } else { false } }).refusals
    }
}
