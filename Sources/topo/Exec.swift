import ArgumentParser
import TopoCore

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command inside an applied workload's cgroup, CPUs and memory policy.",
        discussion: "Example: topo exec quickstart app -- cat /proc/self/status\nExits with the command's exit status."
    )

    @Argument(help: "The name of an applied profile.")
    var profile: String

    @Argument(help: "One of its workloads.")
    var workload: String

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --, e.g. topo exec \(profile) \(workload) -- /bin/sh") }
    }

    func run() throws {
        let status = try WorkloadExec.run(profile: profile, workload: workload, command: command, state: StateStore(), drivers: .host(state: StateStore())).get()
        throw ExitCode(status)
    }
}
