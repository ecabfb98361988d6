import ArgumentParser
import Foundation
import TopoCore

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show applied profiles and, per workload, its pids, cgroup, CPUs, memory nodes and state."
    )

    @Flag(help: "Print as JSON: {\"profiles\": [{\"name\", \"workloads\": [{\"name\", \"cgroup\", \"pids\", \"cpus\", \"mems\", …}]}]}.")
    var json = false

    func run() throws {
        let report = StatusReport.read(state: StateStore(), drivers: .host(state: StateStore()))
        if json {
            print(JSONOutput.encode(report))
            return
        }
        if report.profiles.isEmpty {
            print("nothing is applied")
            return
        }
        for p in report.profiles {
            print("\(p.name) (\(p.state))")
            var rows = [["WORKLOAD", "STATE", "PIDS", "CPUS", "MEMS", "CGROUP"]]
            for w in p.workloads {
                rows.append([w.name, w.state, w.pids.isEmpty ? "-" : w.pids.map(String.init).joined(separator: ","),
                             w.cpus.description, "\(w.memoryPolicy.rawValue) \(w.mems)", w.cgroup])
            }
            print(TopologyPicture.columns(rows).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            if let problem = p.problem { print("  \(problem)") }
            for w in p.workloads where !w.differences.isEmpty {
                print("  \(w.name): differs from the plan: " + w.differences.joined(separator: "; "))
            }
            for w in p.workloads {
                if let partition = w.partition {
                    print("  \(w.name): cpuset partition \(partition == "root" ? "holds (root)" : "does not hold: \(partition)")")
                }
            }
            if let log = p.workloads.compactMap(\.log).first {
                print("  output: \((log as NSString).deletingLastPathComponent)/WORKLOAD.log (topo logs \(p.name) WORKLOAD)")
            }
            for w in p.workloads {
                if let runtime = w.runtime { print("  \(w.name): \(runtime) container \(w.container ?? "?") from image \(w.image ?? "/")") }
            }
            for w in p.workloads where w.netns != nil {
                print("  \(w.name): netns \(w.netns!), \((w.addresses ?? []).isEmpty ? "no addresses" : (w.addresses ?? []).joined(separator: " "))")
                for s in w.shaping ?? [] {
                    let check = s.differences.isEmpty ? "matches the kernel" : "differs from the kernel: " + s.differences.joined(separator: "; ")
                    print("    \(s.interface) → \(s.to): netem \(s.planned) (\(check))")
                }
            }
        }
    }
}
