import ArgumentParser
import Foundation
import TopoCore

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Tear an applied profile down: stop its processes, remove its cgroups, restore what topo changed.",
        usage:
            "topo down (<profile> | --all)\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Works from topo's journal alone (the profile file may be gone), also after topo was killed during apply. Kills every process in the workloads' cgroups (including children that forked away or ignore SIGTERM), removes the cgroups deepest first (a workload's own sub-cgroups too), and never removes anything topo did not create. Exits 0 when there is nothing to remove.

            Examples:
              topo down api-gateway
              topo down --all    # after a crash: whatever topo's journals name
            """
    )

    @Argument(
        help:
            "The name of an applied profile, or a profile file (an applied profile's name wins over a file of that name).",
        completion: Completions.profilesOrFiles)
    var profile: String?

    @Flag(help: "Tear down every applied profile.")
    var all = false

    @OptionGroup var paths: PathOptions

    @OptionGroup var color: ColorOptions

    func validate() throws {
        if all == (profile != nil) { throw ValidationError("give a profile (file or name) or --all, not both") }
    }

    func run() throws {
        let state = paths.state
        let teardown = Teardown(state: state, drivers: paths.drivers)
        let names: [String]
        if all {
            names = state.profiles()
        } else {
            names = [try Loading.appliedName(profile!, applied: state.profiles()).get()]
        }
        var problems: [String] = []
        try state.withLock {
            for name in names {
                guard state.profiles().contains(name) else {
                    print("\(name) is not applied; nothing to remove")
                    continue
                }
                let report = teardown.remove(name)
                for s in report.skipped { printError("note: \(s)") }
                problems += report.problems
                print("removed \(color.style.bold(name)): \(report.counts)")
            }
        }
        if names.isEmpty { print("nothing is applied; nothing to remove") }
        if !problems.isEmpty {
            throw TopoFailure(
                .hostCannot, "down could not undo everything:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
    }
}
