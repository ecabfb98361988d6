import ArgumentParser
import Foundation
import TopoCore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Apply, verify, run the benchmark, verify again, write a report, and tear everything down, on every path.",
        usage:
            "topo run [--locked] [--active] [--report <file>] <profile>\n    (--wait <workload> | [--in <workload>] -- <command> ...)\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            One command for CI: apply PROFILE (--locked: exactly its lock's plan), verify it (--active: with the probes), then either run COMMAND (on the host, or inside a workload with --in, as topo exec does) or wait for a workload's own command to exit (--wait), verify again, write the report (--report FILE: the host, plan, kernel's side, both verifies, the command's status and wall time, each workload's log tail), and tear everything down. Teardown happens after a failing step, Ctrl-C, SIGTERM and SIGHUP too: the signal is passed on to the command (a second one kills it at once), never skipping the teardown. A profile that is already applied is refused: run tears down only what it made. After a SIGKILL, `topo down --all` removes what is left.

            Exit status: the command's (or the waited workload's); 1 when it succeeded but a verify failed; 128+N when signal N interrupted the run (130 for Ctrl-C, 143 for SIGTERM); 2, 3 or 4 as apply.

            Examples:
              topo run Profiles/api-gateway.yaml --wait client --report result.json
              topo diff baseline.json result.json
            """
    )

    @Argument(help: "The profile to run (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var profile: String

    @Option(
        help: ArgumentHelp(
            "Wait for this workload's own command to exit instead of running a command.", valueName: "workload"))
    var wait: String?

    @Option(
        name: .customLong("in"),
        help: ArgumentHelp("Run the command inside this workload, as topo exec does.", valueName: "workload"))
    var inWorkload: String?

    @Option(help: ArgumentHelp("Write the report (topo report --json) here.", valueName: "file"))
    var report: String?

    @Flag(help: "Verify with the active probes too, before the command.")
    var active = false

    @Flag(help: "Apply exactly the plan in PROFILE.lock.json (topo plan --lock).")
    var locked = false

    @Argument(parsing: .postTerminator, help: "The benchmark command, after --.")
    var command: [String] = []

    @OptionGroup var paths: PathOptions

    @OptionGroup var color: ColorOptions

    func validate() throws {
        if (wait == nil) == command.isEmpty {
            throw ValidationError("give a command after -- or --wait WORKLOAD (one of them)")
        }
        if inWorkload != nil && command.isEmpty {
            throw ValidationError("--in runs the command after -- inside a workload; give one")
        }
    }

    func run() throws {
        RunInterrupts.installHandlers()
        let selection = paths.selection
        let drivers = selection.drivers
        let prepared = try Preparation.prepare(
            profile, locked: locked, layout: selection.layout, host: { Loading.host(sysfs: "/sys") },
            preflight: { Preflight(host: $0, drivers: drivers) }, warn: printError
        ).get()
        var run = BenchmarkRun(
            prepared: prepared, profilePath: profile, selection: selection, drivers: drivers,
            action: wait.map { .wait($0) } ?? .command(command, inWorkload: inWorkload),
            version: Topo.configuration.version)
        run.active = active
        run.reportPath = report
        run.log = { printError("topo run: \($0)") }
        let code = try run.run().get().conclusion.get()
        if code != 0 { throw ExitCode(code) }
    }
}
