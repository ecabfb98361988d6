import ArgumentParser
import TopoCore

struct Host: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Show the host's CPUs, cores and NUMA nodes, and whether cgroup v2 and netem are usable.",
        usage:
            "topo host [--sysfs <dir>] [--json]\n[--export <dir> | --suggest-cmdline <profile>]\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Each physical core is drawn as one cell with its sibling threads side by side. The topology is read from sysfs (--sysfs names another tree); cgroups and netem are probed only on the real host and are reported as unknown where topo cannot tell.

            --export DIR copies exactly the sysfs files the planner reads (a few KiB: CPU and node lists, core ids, node memory sizes and distances; nothing else) into DIR, so that another machine can plan for this one:
              lab$     topo host --export lab-host
              laptop$  topo plan Profiles/api-gateway.yaml --sysfs lab-host

            On this host (without --sysfs) it also shows the noise sources host.tune quiets (timer migration, vm.stat_interval, transparent huge pages, governors, boost, ASLR, the perf sample rate, the unbound workqueues' CPUs, how many interrupts are pinned, irqbalance), the isolation parameters on the kernel command line (isolcpus, nohz_full, rcu_nocbs, irqaffinity), and what topo holds changed now, with each value it will restore.

            --suggest-cmdline PROFILE prints the kernel command line that would isolate, at boot, the CPUs the profile's exclusive and partition workloads get here: what no run-time setting can do. topo never edits the boot loader.

            Examples:
              topo host
              topo host --json | jq '.nodes[].cpus'
              topo host --suggest-cmdline Profiles/api-gateway.yaml
            """
    )

    @Option(
        help: ArgumentHelp("Read the topology from this sysfs tree instead of /sys.", valueName: "dir"),
        completion: .directory)
    var sysfs = "/sys"

    @Option(
        help: ArgumentHelp(
            "Copy the files the planner reads into this new or empty directory, and print their names.",
            valueName: "dir"),
        completion: .directory)
    var export: String?

    @Option(
        help: ArgumentHelp(
            "Print the kernel command line that would isolate this profile's exclusive and partition CPUs at boot.",
            valueName: "profile"),
        completion: .file(extensions: ["yaml", "yml"]))
    var suggestCmdline: String?

    @Flag(help: "Print the host as JSON.")
    var json = false

    @OptionGroup var paths: PathOptions
    @OptionGroup var color: ColorOptions

    /// The topology, with the tuning state where it is this host's.
    struct Shown: Encodable {
        var topology: HostTopology
        var tuning: HostTuner.State?
        var cgroupManager: String?

        func encode(to encoder: Encoder) throws {
            try topology.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encodeIfPresent(tuning, forKey: .tuning)
            try c.encodeIfPresent(cgroupManager, forKey: .cgroupManager)
        }
        enum Key: String, CodingKey { case tuning, cgroupManager }
    }

    struct Suggestion: Encodable {
        var profile: String
        var isolation: BootIsolation?
        var current: [String: String]
    }

    struct Exported: Encodable {
        var directory: String
        var files: [String]
    }

    func run() throws {
        if let export {
            let files = try HostDiscovery.export(sysfsRoot: sysfs, to: export).mapError {
                TopoFailure(.hostCannot, "cannot export the host: \($0)")
            }.get()
            if json {
                print(JSONOutput.encode(.hostExport, Exported(directory: export, files: files)))
            } else {
                for f in files { print("\(export)/\(f)") }
                printError(
                    "exported \(files.count) files from \(sysfs) to \(export): plan for this host elsewhere with topo plan PROFILE --sysfs \(export)"
                )
            }
            return
        }
        let host = try Loading.host(sysfs: sysfs).get()
        let tuning = sysfs == "/sys" ? paths.drivers.hostTuningState() : nil
        if let suggestCmdline {
            try suggest(suggestCmdline, host: host, current: tuning?.commandLine ?? [:])
            return
        }
        if json {
            print(
                JSONOutput.encode(
                    .host,
                    Shown(
                        topology: host, tuning: tuning,
                        cgroupManager: sysfs == "/sys" ? paths.selection.manager.rawValue : nil)))
            return
        }
        let online = host.onlineCPUs
        print(
            "host (\(host.source)): \(host.nodes.count) NUMA node\(host.nodes.count == 1 ? "" : "s"), \(host.cores.count) cores, \(online.count) online CPUs (\(online))\(host.hasSMT ? ", SMT on" : "")"
        )
        print(
            "cgroup: \(host.cgroup.mode.rawValue) — \(host.cgroup.detail)\(host.cgroup.controllers.isEmpty ? "" : "; controllers: " + host.cgroup.controllers.joined(separator: " "))"
        )
        print("netem: \(host.netem)")
        if sysfs == "/sys" {
            let pid1 = CgroupManagerKind.detect() == .systemd ? "systemd is PID 1" : "systemd is not PID 1"
            print("cgroup manager: \(paths.drivers.cgroups.description) (\(pid1); --cgroup-manager chooses)")
        }
        for note in host.notes { print("note: \(note)") }
        if let tuning { printTuning(tuning) }
        print("")
        print(TopologyPicture.render(host: host, style: color.style))
    }

    func printTuning(_ t: HostTuner.State) {
        let settings = t.settings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        print("tuning: \(settings.isEmpty ? "nothing readable" : settings.joined(separator: ", "))")
        print(
            "interrupts: \(t.pinnedIRQs) of \(t.irqs) pinned to fewer than every online CPU; irqbalance \(t.irqbalance)"
        )
        let boot = t.commandLine.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? $0.key : "\($0.key)=\($0.value)" }
        print("boot isolation: \(boot.isEmpty ? "none on the kernel command line" : boot.joined(separator: " "))")
        for h in t.held { print("held by topo: \(h)") }
    }

    func suggest(_ profile: String, host: HostTopology, current: [String: String]) throws {
        let decoded = try Loading.profile(profile).get()
        for w in decoded.warnings { printError(w.description) }
        let plan = try Loading.plan(decoded.profile, on: host, layout: paths.layout).get()
        let isolation = BootIsolation.suggest(plan, online: host.onlineCPUs)
        if json {
            print(
                JSONOutput.encode(
                    .hostSuggestion, Suggestion(profile: plan.name, isolation: isolation, current: current)))
            return
        }
        guard let isolation else {
            print(
                "\(plan.name) has no exclusive or partition workload that leaves a CPU for the rest of the host here: nothing to isolate at boot"
            )
            return
        }
        print(
            "\(plan.name) gets CPU \(isolation.cpus) for its exclusive and partition workloads here; to isolate them at boot, add to the kernel command line:"
        )
        print("  \(isolation.parameters.joined(separator: " "))")
        for note in isolation.notes { print("note: \(note)") }
        if sysfs == "/sys" {
            let now = current.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? $0.key : "\($0.key)=\($0.value)" }
            print(
                "this host's command line has \(now.isEmpty ? "none of them now" : "now: " + now.joined(separator: " "))"
            )
        }
        print(
            "topo never edits the boot loader: on Debian, add them to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, and reboot"
        )
    }
}
