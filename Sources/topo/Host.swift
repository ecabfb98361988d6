import ArgumentParser
import TopoCore

struct Host: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the host's CPUs, cores and NUMA nodes, and whether cgroup v2 and netem are usable.",
        discussion: """
            Each physical core is drawn as one cell with its sibling threads side by side.
            The topology is read from sysfs (--sysfs names another tree); cgroups and netem are probed
            only on the real host and are reported as unknown where topo cannot tell.
            """
    )

    @Option(help: "Read the topology from this sysfs tree instead of /sys.")
    var sysfs = "/sys"

    @Flag(help: "Print the host as JSON.")
    var json = false

    func run() throws {
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
        print(TopologyPicture.render(host: host))
    }
}
