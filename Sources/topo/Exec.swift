import ArgumentParser
import TopoCore

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command inside an applied workload's cgroup, CPUs and memory policy.",
        usage:
            "topo exec <profile> <workload> -- <command> ...\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Starts the command the way apply starts a workload's own: in its cgroup, on its CPUs, with its memory policy, network namespace, user and capabilities. At a terminal the command gets a pseudo-terminal of its own, which topo relays; it never gets yours (a workload could otherwise read from it or type into your shell). Exits with the command's exit status.

            Examples:
              topo exec quickstart app -- cat /proc/self/status
            """
    )

    @Argument(help: "The name of an applied profile.", completion: Completions.profiles)
    var profile: String

    @Argument(help: "One of its workloads.", completion: Completions.workloads)
    var workload: String

    @OptionGroup var paths: PathOptions

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    @OptionGroup var color: ColorOptions

    func validate() throws {
        if command.isEmpty {
            throw ValidationError("give the command after --, e.g. topo exec \(profile) \(workload) -- /bin/sh")
        }
    }

    func run() throws {
        let status = try WorkloadExec.run(
            profile: profile, workload: workload, command: command, state: paths.state, drivers: paths.drivers
        ).get()
        throw ExitCode(status)
    }
}
