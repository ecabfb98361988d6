import ArgumentParser
import TopoCore

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract:
            "Make the profile real: cgroups with their limits, links, and workloads pinned and NUMA-bound inside them.",
        usage:
            "topo apply [--dry-run [--sysfs <dir>]] [-v] [--locked] [--json] <profile>\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Checks everything first (privileges, cgroup v2 and its controllers, CPUs, nodes, programs, users) and changes nothing when a check fails (exit 3). Then creates /sys/fs/cgroup/topo/PROFILE/WORKLOAD for each workload, writes its limits, makes its links, and starts its command there: on its CPUs, with its memory policy, output appended to /run/topo/PROFILE/logs/WORKLOAD.log (topo logs). Workloads outlive topo. Every step is journaled in /run/topo/PROFILE; if one fails, what was made is removed (exit 4). Applying an unchanged, applied profile again changes nothing (exit 0); a changed one is refused until `topo down` (exit 3).

            --dry-run prints every step apply would take (each cgroup, file and value, namespace, veth, address, qdisc and command with its CPUs, policy, user and capabilities) and touches nothing. It needs no root and runs on any host (also cgroup v1): it skips the host checks and says so. -v prints the same lines as the steps are done.

            Examples:
              topo apply Profiles/quickstart.yaml
              topo apply --dry-run Profiles/api-gateway.yaml \\
                  --sysfs Tests/Fixtures/hosts/2s-8c-ht
              topo apply -v Profiles/api-gateway.yaml
            """
    )

    @Argument(
        help: "The profile to apply (YAML; - for standard input).", completion: .file(extensions: ["yaml", "yml"]))
    var profile: String

    @Flag(help: "Print the applied profile's status as JSON (with --dry-run: every step as data).")
    var json = false

    @Flag(
        help:
            "Apply the profile on the CPUs and link subnets PROFILE.lock.json pins (topo plan --lock); refuse when the profile, the host or anything else in the lock changed since."
    )
    var locked = false

    @Flag(help: "Print every step apply would take, and change nothing (no root needed).")
    var dryRun = false

    @Flag(name: .shortAndLong, help: "Print each step as it is done.")
    var verbose = false

    @Option(
        help: ArgumentHelp(
            "With --dry-run: plan for the host in this sysfs tree (topo host --export) instead of this one.",
            valueName: "dir"))
    var sysfs: String?

    @OptionGroup var paths: PathOptions
    @OptionGroup var color: ColorOptions

    func validate() throws {
        if locked && profile == ProfileDecoder.standardInput {
            throw ValidationError(
                "--locked reads the lock beside the profile's file; it cannot go with - (standard input)")
        }
        if sysfs != nil && !dryRun {
            throw ValidationError("--sysfs plans for another machine; it goes with --dry-run only")
        }
        if dryRun && locked && sysfs != nil {
            throw ValidationError("--locked plans on the lock's placement for this host; it cannot go with --sysfs")
        }
    }

    func run() throws {
        if dryRun { return try printDryRun() }
        let selection = paths.selection
        let state = selection.state
        let drivers = selection.drivers
        let prepared = try Preparation.prepare(
            profile, locked: locked, layout: selection.layout, host: { Loading.host(sysfs: "/sys") },
            preflight: { Preflight(host: $0, drivers: drivers) }, warn: printError
        ).get()
        let (plan, text) = (prepared.plan, prepared.text)
        let style = color.style
        let json = self.json
        let outcome = try Applier(state: state, drivers: drivers).apply(
            plan, profileText: text,
            done: verbose
                ? { n, resource in
                    // stdout is the JSON's
                    Self.printStep(n, drivers.describe(resource), style: json ? .plain : style, toStderr: json)
                } : nil
        ).get()
        if json {
            var report = StatusReport.read(state: state, drivers: drivers)
            report.profiles = report.profiles.filter { $0.name == plan.name }
            print(JSONOutput.encode(.status, report))
            return
        }
        switch outcome {
        case .unchanged:
            print("\(plan.name) is already applied with this plan; nothing changed")
        case .applied(let pids, let notes):
            for note in notes { printError("note: \(note)") }
            print("applied \(plan.name): \(plan.workloads.count) workload\(plan.workloads.count == 1 ? "" : "s")")
            for (i, w) in plan.workloads.enumerated() {
                let pid = pids[w.name].map { "pid \($0)" } ?? "no command"
                print(
                    "  \(style.workload(w.name, index: i)): CPUs \(w.cpus), memory \(w.memoryPolicy.rawValue) \(w.mems), \(pid)"
                )
            }
            print("see `topo status`; remove with `topo down \(plan.name)`")
        }
    }

    /// One step as dry run and -v print it: `  7. write "0-1" to /sys/fs/cgroup/topo/demo/app/cpuset.cpus`.
    static func printStep(_ n: Int, _ lines: [String], style: TextStyle, toStderr: Bool = false) {
        for (i, line) in lines.enumerated() {
            let text = i == 0 ? "\(style.dim(String(format: "%4d.", n))) \(line)" : "      \(line)"
            if toStderr { printError(text) } else { print(text) }
        }
    }

    /// The steps, planned against this host or `--sysfs`, with the paths given; nothing is checked or touched.
    func printDryRun() throws {
        let plan = try Preparation.plan(
            profile, locked: locked, layout: paths.layout, host: { Loading.host(sysfs: sysfs ?? "/sys") },
            warn: printError
        ).get().plan
        for w in plan.warnings { printError("warning: \(w)") }
        let drivers = paths.drivers
        if json {
            let steps = plan.resources.enumerated().map { i, r in
                DryRun.Step(step: i + 1, kind: r.kind.rawValue, resource: r, does: drivers.describe(r))
            }
            print(JSONOutput.encode(.dryRun, DryRun(profile: plan.name, host: sysfs ?? "/sys", steps: steps)))
            return
        }
        print(
            "dry run of \(plan.name) on \(sysfs.map { "the host in \($0)" } ?? "this host"): nothing is changed; the host checks (privileges, cgroup v2, controllers, programs, users) are skipped"
        )
        for (i, r) in plan.resources.enumerated() { Self.printStep(i + 1, drivers.describe(r), style: color.style) }
        print(
            "\(plan.resources.count) steps; each is journaled in \(paths.state.profileDir(plan.name)) before it is made"
        )
    }

    /// `apply --dry-run --json`: every step as data — its number, kind, the resource as the plan holds
    /// it, and what applying it does (the lines the text dry run prints).
    struct DryRun: Encodable {
        var profile: String
        /// The sysfs tree planned for.
        var host: String
        var steps: [Step]

        struct Step: Encodable {
            var step: Int
            var kind: String
            var resource: Resource
            var does: [String]
        }
    }
}
