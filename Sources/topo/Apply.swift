import ArgumentParser
import TopoCore

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the profile real: cgroups with their limits, workloads pinned and NUMA-bound inside them.",
        discussion: """
            Checks everything first (privileges, cgroup v2 and its controllers, CPUs, nodes, programs, users)
            and changes nothing when a check fails (exit 3). Then creates /sys/fs/cgroup/topo/PROFILE/WORKLOAD
            for each workload, writes its limits, and starts its command there: on its CPUs, with its memory
            policy, output appended to /run/topo/PROFILE/logs/WORKLOAD.log. Workloads outlive topo.
            Every step is journaled in /run/topo/PROFILE; if one fails, what was made is removed (exit 4).
            Applying an unchanged, applied profile again changes nothing (exit 0); a changed one is refused
            until `topo down` (exit 3).
            """
    )

    @Argument(help: "The profile to apply (YAML).")
    var profile: String

    @Flag(help: "Print the applied profile's status as JSON.")
    var json = false

    @Flag(help: "Apply exactly the plan in PROFILE.lock.json (topo plan --lock); refuse when the profile or the host changed since.")
    var locked = false

    func run() throws {
        let state = StateStore()
        let drivers = Drivers.host(state: state)
        let (plan, text) = try Self.prepare(profile, locked: locked, state: state, drivers: drivers)
        let outcome = try Applier(state: state, drivers: drivers).apply(plan, profileText: text).get()
        if json {
            var report = StatusReport.read(state: state, drivers: drivers)
            report.profiles = report.profiles.filter { $0.name == plan.name }
            print(JSONOutput.encode(report))
            return
        }
        switch outcome {
        case .unchanged:
            print("\(plan.name) is already applied with this plan; nothing changed")
        case .applied(let pids):
            print("applied \(plan.name): \(plan.workloads.count) workload\(plan.workloads.count == 1 ? "" : "s")")
            for w in plan.workloads {
                let pid = pids[w.name].map { "pid \($0)" } ?? "no command"
                print("  \(w.name): CPUs \(w.cpus), memory \(w.memoryPolicy.rawValue) \(w.mems), \(pid)")
            }
            print("see `topo status`; remove with `topo down \(plan.name)`")
        }
    }

    /// The plan to apply — the profile planned on this host, or its lock's plan — with the profile's
    /// text, after the host checks: what `apply` and `run` do before anything changes.
    static func prepare(_ profile: String, locked: Bool, state: StateStore, drivers: Drivers) throws -> (TopoCore.Plan, String?) {
        let decoded = try Loading.profile(profile).get()
        let host = try Loading.host(sysfs: "/sys").get()
        for w in decoded.warnings { printError(w.description) }
        let text = try? Sys.read(profile)
        let plan: TopoCore.Plan
        var problems: [String] = []
        var how = "on this host"
        if locked {
            let path = LockFile.path(forProfile: profile)
            let lock = try LockFile.read(path).get()
            problems = lock.problems(profileText: text ?? "", profileName: decoded.profile.name, host: HostRecord.read(topology: host, versions: [:]))
            plan = lock.plan
            how = "as locked in \(path)"
        } else {
            plan = try Loading.plan(decoded.profile, on: host).get()
        }
        problems += Preflight(host: host, drivers: drivers).problems(for: plan)
        if !problems.isEmpty {
            throw TopoFailure(.hostCannot, "cannot apply \(plan.name) \(how); nothing was changed:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        return (plan, text)
    }
}
