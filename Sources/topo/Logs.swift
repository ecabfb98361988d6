import ArgumentParser
import Foundation
import TopoCore

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Show a workload's output: what its command (or container) wrote to stdout and stderr.",
        usage:
            "topo logs [-f] [--tail <n>] [--json] <profile> <workload>\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            The output is kept in /run/topo/PROFILE/logs/WORKLOAD.log from apply until down (topo status says where). A podman container's lines are shown without podman's time and stream prefix.

            Examples:
              topo logs api-gateway client --tail 20
              topo logs api-gateway server -f    # until Ctrl-C or the profile is down
              topo logs api-gateway server --json | jq -r .line
            """
    )

    @Argument(help: "The name of an applied profile.", completion: Completions.profiles)
    var profile: String

    @Argument(help: "One of its workloads.", completion: Completions.workloads)
    var workload: String

    @Flag(name: .shortAndLong, help: "Keep printing what the workload writes, until Ctrl-C or topo down.")
    var follow = false

    @Option(help: ArgumentHelp("Show only the last N lines.", valueName: "n"))
    var tail: Int?

    @Flag(help: "Print one JSON object a line: {\"profile\", \"workload\", \"line\"}.")
    var json = false

    @OptionGroup var paths: PathOptions

    @OptionGroup var color: ColorOptions

    func validate() throws {
        if let tail, !(0...10_000_000).contains(tail) {
            throw ValidationError("--tail takes 0 to 10000000 lines, not \(tail)")
        }
    }

    func run() throws {
        let state = paths.state
        let name = try Loading.appliedName(profile, applied: state.profiles()).get()
        guard state.profiles().contains(name) else {
            throw TopoFailure(.hostCannot, "profile \(name) is not applied (see topo status)")
        }
        let plan = try state.plan(name).get()
        guard let w = plan.workload(named: workload) else {
            throw TopoFailure(
                .invalid,
                "profile \(name) has no workload \(workload) (it has \(plan.workloads.map(\.name).joined(separator: ", ")))"
            )
        }
        guard let run = w.run else {
            throw TopoFailure(.invalid, "workload \(workload) runs no command, so it has no output")
        }
        let log = LogFile(path: state.logPath(name, workload), k8sFormat: run.runtime == .podman)
        do { try log.check() } catch { throw TopoFailure(.hostCannot, "the log \(error)") }
        var offset = tail.map { log.tailOffset(lines: $0) } ?? 0
        var partial = Data()
        var lines = JSONLines(profile: name, workload: workload)
        func show(_ data: Data) {
            if json { lines.append(data) } else { FileHandle.standardOutput.write(data) }
        }
        offset = log.copy(from: offset, partial: &partial, emit: show)
        if follow {
            while state.profiles().contains(name) {
                usleep(250_000)
                offset = log.copy(from: offset, partial: &partial, emit: show)
            }
        }
        if json { lines.finish() }
    }
}

/// Output as JSON Lines: each complete line as `{"profile", "workload", "line"}` (bytes that are not
/// UTF-8 replaced), printed as soon as its newline arrives; a last line without one by `finish`.
struct JSONLines {
    struct Line: Encodable {
        var profile: String
        var workload: String
        var line: String
    }

    let profile: String
    let workload: String
    var pending = Data()

    init(profile: String, workload: String) {
        self.profile = profile
        self.workload = workload
    }

    mutating func append(_ data: Data) {
        pending.append(data)
        guard let last = pending.lastIndex(of: 0x0A) else { return }
        var out = ""
        for line in pending[pending.startIndex..<last].split(separator: 0x0A, omittingEmptySubsequences: false) {
            out += encode(Data(line)) + "\n"
        }
        pending = Data(pending[pending.index(after: last)...])
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    mutating func finish() {
        if !pending.isEmpty { FileHandle.standardOutput.write(Data((encode(pending) + "\n").utf8)) }
        pending = Data()
    }

    func encode(_ line: Data) -> String {
        JSONOutput.line(.log, Line(profile: profile, workload: workload, line: String(decoding: line, as: UTF8.self)))
    }
}
