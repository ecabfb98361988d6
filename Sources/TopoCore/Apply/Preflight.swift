import Foundation

/// Everything checked before apply touches the host. Privileges are checked apart from the host's
/// kernel features and from what the plan asks for; every problem is reported, each with its fix.
public struct Preflight: Sendable {
    public var host: HostTopology
    public var drivers: Drivers
    /// Whether veth pairs can be made (probed like netem, from the kernel's module files).
    public var veth: Feature

    public init(host: HostTopology, drivers: Drivers, veth: Feature = NetemProbe.probe(module: "veth", HostFiles(root: "/"))) {
        self.host = host
        self.drivers = drivers
        self.veth = veth
    }

    /// Problems that make applying `plan` impossible here (exit 3). Empty when apply may go ahead.
    public func problems(for plan: Plan) -> [String] {
        privilegeProblems(for: plan) + kernelProblems(for: plan) + workloadProblems(for: plan) + tuneProblems(for: plan).refusals
    }

    /// What apply may do but should say first: `host.tune` settings this host cannot make under
    /// `bestEffort`, a running irqbalance that `irqbalance: warn` leaves in place.
    public func warnings(for plan: Plan) -> [String] { tuneProblems(for: plan).warnings }

    /// `host.tune` settings the host cannot make: refusals, or warnings under `bestEffort`.
    func tuneProblems(for plan: Plan) -> (refusals: [String], warnings: [String]) {
        var refusals: [String] = [], warnings: [String] = []
        let stops = plan.resources.contains { if case .hostTune(let t) = $0, case .irqbalanceStopped = t.setting { true } else { false } }
        for r in plan.resources {
            guard case .hostTune(let t) = r else { continue }
            let found = drivers.tuner.problems(t)
            if t.bestEffort { warnings += found.map { "\($0) (bestEffort: left as it is)" } } else { refusals += found }
            warnings += drivers.tuner.warnings(t, irqbalance: stops ? .stop : .warn)
        }
        return (refusals, warnings)
    }

    /// The capabilities apply needs, read from the effective set with libcap.
    func privilegeProblems(for plan: Plan) -> [String] {
        var needed: [(String, String)] = [
            ("CAP_SYS_ADMIN", "to create cgroups and set their owner mark"),
            ("CAP_DAC_OVERRIDE", "to write cgroup interface files"),
            ("CAP_SETPCAP", "to drop workloads' capabilities"),
            ("CAP_KILL", "to stop workloads on down"),
        ]
        if plan.workloads.contains(where: { $0.run?.user != nil }) {
            needed += [("CAP_SETUID", "to run workloads as their user"), ("CAP_SETGID", "to run workloads as their group")]
        }
        if !plan.links.isEmpty { needed.append(("CAP_NET_ADMIN", "to create network namespaces and links")) }
        if plan.resources.contains(where: { if case .hostTune(let t) = $0, case .kernelThreadsAway = t.setting { true } else { false } }) {
            needed.append(("CAP_SYS_NICE", "to move kernel threads (host.tune.kernelThreads)"))
        }
        let missing = needed.filter { !Capabilities.effective($0.0) }
        guard !missing.isEmpty else { return [] }
        return ["topo apply needs root or these capabilities, which this process lacks: "
            + missing.map { "\($0.0) (\($0.1))" }.joined(separator: ", ") + "; run it as root (e.g. with sudo)"]
    }

    func kernelProblems(for plan: Plan) -> [String] {
        var problems: [String] = []
        let info = host.cgroup
        switch info.mode {
        // The hierarchy where it is mounted, or (--cgroup-root) another mount of it or a cgroup below it.
        case .unified where info.mountPoint == drivers.cgroups.path("") || Sys.isCgroup2(drivers.cgroups.path("")):
            let offered = drivers.cgroups.offeredControllers()
            for c in Controller.ordered(plan.workloads.flatMap(\.controllers)).map(\.rawValue) where !offered.contains(c) {
                problems.append("the cgroup v2 root \(drivers.cgroups.path("")) does not offer the \(c) controller (it offers: \(offered.joined(separator: " "))); a controller still used by cgroup v1 must be released there first")
            }
        case .unified:
            problems.append("\(drivers.cgroups.path("")) is not a directory of a cgroup v2 filesystem (cgroup v2 is mounted at \(info.mountPoint ?? "?")); give --cgroup-root a cgroup2 mount or a cgroup below one")
        case .hybrid, .legacy:
            problems.append("this host runs cgroup v1 (\(info.mode.rawValue)): \(info.detail). topo needs the unified cgroup v2 hierarchy. Until then, try the profile in the lab: scripts/lab -- .build/debug/topo apply PROFILE")
        case .none, .unknown:
            problems.append("no cgroup v2 hierarchy found (\(info.detail)); mount one at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)")
        }
        // A plan made for the other manager (a lock written elsewhere) puts its cgroups where this one does not work.
        let underSlice = plan.resources.contains { if case .cgroup(let c) = $0 { c.path.hasPrefix(SystemdManager.slice + "/") } else { false } }
        if underSlice != (drivers.cgroups is SystemdManager) {
            let made = underSlice ? "systemd" : "cgroupfs"
            problems.append("the plan puts its cgroups where the \(made) cgroup manager does, and this host uses \(drivers.cgroups.description); run with --cgroup-manager \(made), or plan (and lock) again here")
        }
        if drivers.cgroups is SystemdManager {
            for w in plan.workloads where w.isolation == .partition {
                problems.append("workload \(w.name) is isolation: partition, and under the systemd cgroup manager topo may write only below its delegated scope, where a cpuset partition needs a partition root as its parent (Linux 6.7's cpuset.cpus.exclusive would lift that; topo does not use it yet); use --cgroup-manager cgroupfs, or isolation: exclusive with AllowedCPUs= keeping the rest of the system off its CPUs")
            }
        }
        if !plan.links.isEmpty {
            if drivers.links is IPRoute2Links {
                for tool in [IPRoute2Links.ip, IPRoute2Links.tc] where !Sys.access(tool, X_OK) {
                    problems.append("\(tool) is missing; the iproute2 link driver (TOPO_LINK_DRIVER=iproute2) needs iproute2 (apt-get install iproute2)")
                }
            }
            // A delay distribution other than uniform is a table iproute2 ships (`tc` reads the same file).
            let distributions = Set(plan.links.flatMap(\.shaping).compactMap { s in s.netem.jitter.map { $0 > .zero } == true ? s.netem.distribution : nil })
            for d in distributions.sorted(by: { $0.rawValue < $1.rawValue }) where d != .uniform && NetemWire.tablePath(d) == nil {
                problems.append("netem distribution \(d.rawValue) needs iproute2's table \(d.rawValue).dist, which this host lacks (looked in \(NetemWire.tableDirectories.joined(separator: ", "))); apt-get install iproute2")
            }
            let shapes = plan.links.contains { !$0.shaping.isEmpty }
            if case .unavailable(let why) = veth { problems.append("links need veth pairs, and \(why)") }
            if shapes, case .unavailable(let why) = host.netem { problems.append("the profile shapes links with netem, and \(why)") }
            // Where the module files cannot tell, try them for real in a throwaway namespace.
            let unknown: (Feature) -> Bool = { if case .unknown = $0 { return true } else { return false } }
            if problems.isEmpty && (unknown(veth) || (shapes && unknown(host.netem))) && Capabilities.effective("CAP_NET_ADMIN") {
                problems += LinkProbe().problems(netem: shapes)
            }
        }
        for w in plan.workloads {
            let offline = w.cpus.subtracting(host.onlineCPUs)
            if !offline.isEmpty { problems.append("workload \(w.name): CPU \(offline) is not online") }
            let absent = w.mems.subtracting(CPUSet(host.nodes.map(\.id)))
            if !absent.isEmpty { problems.append("workload \(w.name): NUMA node \(absent) is not present") }
        }
        return problems
    }

    /// The programs and users the workloads name must exist on this host.
    func workloadProblems(for plan: Plan) -> [String] {
        var problems: [String] = []
        for w in plan.workloads {
            guard let run = w.run else { continue }
            switch drivers.runtime(run.runtime) {
            case .failure(let f): problems.append("workload \(w.name): \(f.message)")
            case .success(let runtime):
                let launch = Planner.launch(w, profile: plan.name, command: run.command, logPath: nil)
                problems += runtime.problems(launch).map { "workload \(w.name): \($0)" }
            }
            // A container's program and workdir are looked up in its image; the host's root is image `/`.
            let root = run.runtime == .process || run.image == nil || run.image == "/" ? "" : run.image!
            let within = root.isEmpty ? "on this host" : "in image \(root)"
            // An image layout's files, and those of an image in podman's storage, are known once the
            // container has its root: the runtime reports a missing program then.
            let packed = run.runtime == .podman || (run.runtime != .process && OCIRuntime.layout(run.image) != nil)
            if !packed, let program = run.command.first, Self.resolve(program, root: root) == nil {
                problems.append("workload \(w.name) runs \(program), which \(program.contains("/") ? "is not an executable file" : "is not found in \(Planner.defaultPath)") \(within)")
            }
            if !packed, let dir = run.workdir, !Sys.isDirectory(root + dir, followingLinks: true) {
                problems.append("workload \(w.name): workdir \(dir) is not a directory \(within)")
            }
            if let user = run.user, let name = user.split(separator: ":").first, UInt32(name) == nil, Sys.user(named: String(name)) == nil {
                problems.append("workload \(w.name): no user named \(name) on this host")
            }
        }
        return problems
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
