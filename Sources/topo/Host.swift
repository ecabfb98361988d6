import ArgumentParser
import TopoCore

struct Host: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Show the host's CPUs, cores and NUMA nodes, and whether cgroup v2 and netem are usable.",
        discussion: """
            Each physical core is drawn as one cell with its sibling threads side by side. The topology is read from sysfs (--sysfs names another tree); cgroups and netem are probed only on the real host and are reported as unknown where topo cannot tell.

            --export DIR copies exactly the sysfs files the planner reads (a few KiB: CPU and node lists, core ids, node memory sizes and distances; nothing else) into DIR, so that another machine can plan for this one:
              lab$     topo host --export lab-host
              laptop$  topo plan Profiles/api-gateway.yaml --sysfs lab-host

            Examples:  topo host
                       topo host --json | jq '.nodes[].cpus'
            """
    )

    @Option(help: ArgumentHelp("Read the topology from this sysfs tree instead of /sys.", valueName: "dir"), completion: .directory)
    var sysfs = "/sys"

    @Option(help: ArgumentHelp("Copy the files the planner reads into this new or empty directory, and print their names.", valueName: "dir"),
            completion: .directory)
    var export: String?

    @Flag(help: "Print the host as JSON.")
    var json = false

    @OptionGroup var color: ColorOptions

    struct Exported: Encodable {
        var directory: String
        var files: [String]
    }

    func run() throws {
        if let export {
            let files = try HostDiscovery.export(sysfsRoot: sysfs, to: export).mapError { TopoFailure(.hostCannot, "cannot export the host: \($0)") }.get()
            if json {
                print(JSONOutput.encode(Exported(directory: export, files: files)))
            } else {
                for f in files { print("\(export)/\(f)") }
                printError("exported \(files.count) files from \(sysfs) to \(export): plan for this host elsewhere with topo plan PROFILE --sysfs \(export)")
            }
            return
        }
        let host = try Loading.host(sysfs: sysfs).get()
        if json {
            print(JSONOutput.encode(host))
            return
        }
        let online = host.onlineCPUs
        print("host (\(host.source)): \(host.nodes.count) NUMA node\(host.nodes.count == 1 ? "" : "s"), \(host.cores.count) cores, \(online.count) online CPUs (\(online))\(host.hasSMT ? ", SMT on" : "")")
        print("cgroup: \(host.cgroup.mode.rawValue) — \(host.cgroup.detail)\(host.cgroup.controllers.isEmpty ? "" : "; controllers: " + host.cgroup.controllers.joined(separator: " "))")
        print("netem: \(host.netem)")
        for note in host.notes { print("note: \(note)") }
        print("")
        print(TopologyPicture.render(host: host, style: color.style))
    }
}
