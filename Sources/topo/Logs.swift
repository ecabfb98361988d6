import ArgumentParser
import Foundation
import TopoCore

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a workload's output: what its command (or container) wrote to stdout and stderr.",
        discussion: """
            The output is kept in /run/topo/PROFILE/logs/WORKLOAD.log from apply until down (topo status
            says where). A podman container's lines are shown without podman's time and stream prefix.

            Examples:  topo logs api-gateway client --tail 20
                       topo logs api-gateway server -f      (follow until Ctrl-C or until the profile is down)
            """
    )

    @Argument(help: "The name of an applied profile.")
    var profile: String

    @Argument(help: "One of its workloads.")
    var workload: String

    @Flag(name: .shortAndLong, help: "Keep printing what the workload writes, until Ctrl-C or topo down.")
    var follow = false

    @Option(help: ArgumentHelp("Show only the last N lines.", valueName: "n"))
    var tail: Int?

    func validate() throws {
        if let tail, !(0...10_000_000).contains(tail) { throw ValidationError("--tail takes 0 to 10000000 lines, not \(tail)") }
    }

    func run() throws {
        let state = StateStore()
        let name = try Loading.appliedName(profile, applied: state.profiles()).get()
        guard state.profiles().contains(name) else { throw TopoFailure(.invalid, "profile \(name) is not applied (see topo status)") }
        let plan = try state.plan(name).get()
        guard let w = plan.workload(named: workload) else {
            throw TopoFailure(.invalid, "profile \(name) has no workload \(workload) (it has \(plan.workloads.map(\.name).joined(separator: ", ")))")
        }
        guard let run = w.run else { throw TopoFailure(.invalid, "workload \(workload) runs no command, so it has no output") }
        let log = LogFile(path: state.logPath(name, workload), k8sFormat: run.runtime == .podman)
        var offset = tail.map { log.tailOffset(lines: $0) } ?? 0
        var partial = Data()
        offset = log.copy(from: offset, to: .standardOutput, partial: &partial)
        guard follow else { return }
        while state.profiles().contains(name) {
            usleep(250_000)
            offset = log.copy(from: offset, to: .standardOutput, partial: &partial)
        }
    }
}
