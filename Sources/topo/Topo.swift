import ArgumentParser
import Foundation
import TopoCore

@main
struct Topo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topo",
        abstract: "Lay out a benchmark machine from a declarative profile: CPUs, NUMA memory, cgroups, links.",
        discussion: """
            A profile (YAML) names workloads, the CPUs and memory nodes they get, their cgroup limits and the shaped links between them. topo checks it, places it on this host, and shows the plan.

            Start with:  topo validate Profiles/quickstart.yaml
                         topo host
                         topo plan Profiles/quickstart.yaml

            In CI:       topo run Profiles/api-gateway.yaml --wait client \\
                           --report result.json
                         topo diff baseline.json result.json

            Exit codes:
              0  ok
              1  verification failed
              2  invalid profile or usage
              3  the host cannot satisfy the profile, or lacks a feature or privilege
              4  apply failed and was rolled back
            """,
        version: "0.1.0",
        subcommands: [
            Validate.self, Plan.self, Host.self, Apply.self, Status.self, Verify.self, Exec.self, Logs.self,
            RunCommand.self, ReportCommand.self, Diff.self, Down.self, Schema.self, ProbeCommand.self,
        ]
    )

    /// Runs the command and maps every outcome to topo's exit codes (argument-parser's own usage errors become 2).
    static func main() {
        let status: Int32
        if let problem = unknownCommand(Array(CommandLine.arguments.dropFirst())) {
            printError("Error: \(problem)\nUsage: topo <subcommand>   (topo --help lists them)")
            Foundation.exit(ExitStatus.invalid.rawValue)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
            status = 0
        } catch let failure as TopoFailure {
            printError(failure.message)
            status = failure.status.rawValue
        } catch let code as ExitCode {
            status = code.rawValue  // a status chosen by the command itself (validate --json, exec)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                status = 0
            } else {
                printError(fullMessage(for: error))
                status = code == .validationFailure || code.rawValue == 64 ? ExitStatus.invalid.rawValue : code.rawValue
            }
        }
        Foundation.exit(status)
    }
}

/// The first word names no subcommand (`topo valdate x`, `topo frobnicate --help`), or `help` is asked
/// about one that does not exist (`topo help nosuch`): an error with the nearest command's name, where
/// argument-parser would say "unexpected arguments" or print the root's help and exit 0.
func unknownCommand(_ arguments: [String]) -> String? {
    let names = Topo.configuration.subcommands.compactMap { $0.configuration.commandName ?? $0._commandName } + ["help"]
    var word = arguments.first
    if word == "help", arguments.count > 1 { word = arguments[1] }
    guard let first = word, !first.hasPrefix("-"), !names.contains(first) else { return nil }
    let hint = closest(to: first, among: names.filter { !$0.hasPrefix("__") }).map { " (did you mean '\($0)'?)" } ?? ""
    return "unknown command '\(first.prefix(64))'\(hint)"
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data(TerminalText.safe(text.hasSuffix("\n") ? text : text + "\n").utf8))
}

/// Every `print` of this executable goes through `TerminalText.safe`: profile strings reach the
/// terminal with their control characters escaped, never as commands to it. (It stands in for the
/// standard library's `print` in this module; JSON passes unchanged, its strings are escaped already.)
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    let text = items.map { "\($0)" }.joined(separator: separator) + terminator
    FileHandle.standardOutput.write(Data(TerminalText.safe(text).utf8))
}

/// Unblocks signals a command handles: a caller may hand them on blocked (a test runner blocks nearly
/// every signal), and a handler for a blocked signal never runs.
func unblock(_ signals: [Int32]) {
    var set = sigset_t()
    sigemptyset(&set)
    for s in signals { sigaddset(&set, s) }
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}
