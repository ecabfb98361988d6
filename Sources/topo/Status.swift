import ArgumentParser
import Foundation
import TopoCore

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show applied profiles and, per workload, its pids, cgroup, CPUs, memory nodes and state.",
        usage:
            "topo status [--json] [<profile>]\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Reads topo's journals and the kernel's side of every object (cgroups, processes, namespaces, addresses, qdiscs) and lists where the kernel differs from the plan. Starts no process.

            Examples:
              topo status
              topo status api-gateway --json
            """
    )

    @Argument(
        help: "Show only this applied profile (a name or a profile file); every applied profile when left out.",
        completion: Completions.profilesOrFiles)
    var profile: String?

    @OptionGroup var paths: PathOptions
    @OptionGroup var color: ColorOptions

    @Flag(
        help:
            "Print as JSON: {\"profiles\": [{\"name\", \"workloads\": [{\"name\", \"cgroup\", \"pids\", \"cpus\", \"mems\", ...}]}]}; docs/json.md has the whole document (topo-status/1)."
    )
    var json = false

    func run() throws {
        let state = paths.state
        var report = StatusReport.read(state: state, drivers: paths.drivers)
        if let profile {
            let name = try Loading.appliedName(profile, applied: state.profiles()).get()
            guard state.profiles().contains(name) else {
                throw TopoFailure(.hostCannot, "profile \(name) is not applied (see topo status)")
            }
            report.profiles = report.profiles.filter { $0.name == name }
        }
        let style = color.style
        // A state topo cannot read is the host's problem to fix (exit 3), said after what could be shown.
        let unreadable = report.profiles.filter { $0.state == "unreadable" }.map(\.name)
        if json {
            print(JSONOutput.encode(.status, report))
            if !unreadable.isEmpty { throw ExitCode(ExitStatus.hostCannot.rawValue) }
            return
        }
        if report.profiles.isEmpty {
            print("nothing is applied")
            return
        }
        for p in report.profiles {
            print("\(style.bold(p.name)) (\(style.status(p.state)))")
            var rows = [["WORKLOAD", "STATE", "PIDS", "CPUS", "MEMS", "CGROUP"]]
            for w in p.workloads {
                rows.append([
                    w.name, w.state, w.pids.isEmpty ? "-" : w.pids.map(String.init).joined(separator: ","),
                    w.cpus.description, "\(w.memoryPolicy.rawValue) \(w.mems)", w.cgroup,
                ])
            }
            // Laid out plain, then coloured: escape codes take no room on screen.
            let table = TopologyPicture.columns(rows).split(separator: "\n").enumerated().map { i, line -> String in
                guard i > 0, style.enabled else { return "  " + line }
                let w = p.workloads[i - 1]
                return "  "
                    + line.replacingOccurrences(
                        of: w.name, with: style.workload(w.name, index: i - 1), options: .anchored
                    )
                    .replacingOccurrences(of: " \(w.state) ", with: " \(style.status(w.state)) ")
            }
            print(table.joined(separator: "\n"))
            if let problem = p.problem { print("  \(problem)") }
            if let unit = p.unit { print("  systemd unit: \(unit) (systemctl status \(unit))") }
            for w in p.workloads where !w.differences.isEmpty {
                print("  \(w.name): differs from the plan: " + w.differences.joined(separator: "; "))
            }
            for w in p.workloads {
                if let partition = w.partition {
                    print(
                        "  \(w.name): cpuset partition \(partition == "root" ? "holds (root)" : "does not hold: \(partition)")"
                    )
                }
            }
            if let log = p.workloads.compactMap(\.log).first {
                print(
                    "  output: \((log as NSString).deletingLastPathComponent)/WORKLOAD.log (topo logs \(p.name) WORKLOAD)"
                )
            }
            for w in p.workloads {
                if let runtime = w.runtime {
                    print("  \(w.name): \(runtime) container \(w.container ?? "?") from image \(w.image ?? "/")")
                }
            }
            for t in p.tuning ?? [] {
                print(
                    "  host.tune.\(t.setting): \(t.value) (\(t.differences.isEmpty ? "holds" : "no longer holds: " + t.differences.joined(separator: "; ")))"
                )
            }
            for w in p.workloads where w.netns != nil {
                print(
                    "  \(w.name): netns \(w.netns!), \((w.addresses ?? []).isEmpty ? "no addresses" : (w.addresses ?? []).joined(separator: " "))"
                )
                for s in w.shaping ?? [] {
                    let check =
                        s.differences.isEmpty
                        ? "matches the kernel" : "differs from the kernel: " + s.differences.joined(separator: "; ")
                    print("    \(s.interface) → \(s.to): netem \(s.planned) (\(check))")
                }
            }
        }
        if !unreadable.isEmpty { throw ExitCode(ExitStatus.hostCannot.rawValue) }
    }
}
