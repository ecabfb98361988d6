import Foundation
import Testing

@testable import TopoCore

/// Every file topo reads that a user or the state hands it, replaced by what a careless or hostile
/// one could: each is refused by what it is, with exit 2 (a file the command line names) or 3 (topo's
/// state), within 2 seconds, naming the file — never a signal or a hang.
@Suite(.serialized) struct HostileInputTests {
    /// What stands where a file should be.
    static let kinds = ["zero", "urandom", "fifo", "directory", "big", "loop"]

    final class Playground {
        let dir: String
        init() throws {
            dir = NSTemporaryDirectory() + "topo-hostile-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// Puts a `kind` at `path` (creating its directory).
        func place(_ kind: String, at path: String) throws {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: path)
            switch kind {
            case "zero": try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero")
            case "urandom":
                try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/urandom")
            case "fifo": #expect(mkfifo(path, 0o600) == 0)
            case "directory": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            case "big":  // 100 MiB, sparse
                #expect(FileManager.default.createFile(atPath: path, contents: nil))
                #expect(truncate(path, 100 << 20) == 0)
            case "loop":
                try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: path + ".other")
                try FileManager.default.createSymbolicLink(atPath: path + ".other", withDestinationPath: path)
            default: Issue.record("no kind \(kind)")
            }
        }
    }

    /// topo with a deadline: killed (and the test failed) when it runs longer than `seconds`.
    /// What it printed, stdout then stderr, as `output`.
    static func run(
        _ args: [String], seconds: Double = 2
    ) throws -> (status: Int32, output: String, signalled: Bool, seconds: Double) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: CLITests.repo)
        p.standardInput = FileHandle.nullDevice
        // stdout to a file (a report may name the file there), stderr through a pipe: neither can block.
        let outPath = NSTemporaryDirectory() + "topo-hostile-out-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = Pipe()
        p.standardError = err
        let started = Date()
        try p.run()
        let killer = DispatchWorkItem {
            if p.isRunning {
                p.interrupt()
                kill(p.processIdentifier, SIGKILL)
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds + 3, execute: killer)
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        killer.cancel()
        let o = FileManager.default.contents(atPath: outPath) ?? Data()
        return (
            p.terminationStatus, String(decoding: o + e, as: UTF8.self), p.terminationReason == .uncaughtSignal,
            Date().timeIntervalSince(started)
        )
    }

    func expectRefused(_ args: [String], naming path: String, status: Int32, _ what: String) throws {
        let r = try Self.run(args)
        #expect(
            !r.signalled && r.status == status,
            "\(what): exit \(r.status)\(r.signalled ? " (signal)" : ""): \(r.output)")
        #expect(r.seconds < 2, "\(what) took \(r.seconds) s")
        #expect(r.output.contains(path), "\(what): the message does not name \(path): \(r.output)")
    }

    @Test(arguments: kinds)
    func filesTheCommandLineNames(_ kind: String) throws {
        let play = try Playground()
        let file = "\(play.dir)/input-\(kind)"
        try play.place(kind, at: file)
        try expectRefused(["validate", file], naming: file, status: 2, "validate (\(kind))")
        try expectRefused(
            ["plan", file, "--sysfs", "Tests/Fixtures/hosts/1n-2c"], naming: file, status: 2, "plan (\(kind))")
        try expectRefused(["diff", file, file], naming: file, status: 2, "diff (\(kind))")
        // A lock beside a good profile.
        let profile = "\(play.dir)/p.yaml"
        try String(contentsOfFile: CLITests.repo + "/Profiles/quickstart.yaml", encoding: .utf8).write(
            toFile: profile, atomically: true, encoding: .utf8)
        try play.place(kind, at: "\(play.dir)/p.lock.json")
        try expectRefused(
            ["apply", "--dry-run", "--locked", profile], naming: "\(play.dir)/p.lock.json", status: 2,
            "the lock (\(kind))")
        // A --sysfs tree with cpu/online replaced.
        let tree = "\(play.dir)/tree"
        try FileManager.default.copyItem(atPath: CLITests.repo + "/Tests/Fixtures/hosts/1n-2c", toPath: tree)
        let online = "\(tree)/devices/system/cpu/online"
        try play.place(kind, at: online)
        try expectRefused(
            ["plan", "Profiles/quickstart.yaml", "--sysfs", tree], naming: online, status: 2, "--sysfs (\(kind))")
    }

    @Test(arguments: kinds)
    func topoStateFiles(_ kind: String) throws {
        let play = try Playground()
        let state = "\(play.dir)/state"
        let cgroups = "\(play.dir)/cgroups"
        try FileManager.default.createDirectory(atPath: cgroups, withIntermediateDirectories: true)
        let paths = ["--state-dir", state, "--cgroup-root", cgroups]
        func profileDir(plan: Bool, journal: Bool) throws -> String {
            let dir = "\(state)/p"
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            #expect(chmod(state, 0o700) == 0)
            if journal { #expect(FileManager.default.createFile(atPath: "\(dir)/journal.jsonl", contents: nil)) }
            if plan { #expect(FileManager.default.createFile(atPath: "\(dir)/applied", contents: nil)) }
            return dir
        }
        // plan.json: status and verify cannot read the applied plan.
        var dir = try profileDir(plan: true, journal: true)
        try play.place(kind, at: "\(dir)/plan.json")
        try expectRefused(["status"] + paths, naming: "\(dir)/plan.json", status: 3, "status with plan.json (\(kind))")
        try expectRefused(
            ["verify", "p"] + paths, naming: "\(dir)/plan.json", status: 3, "verify with plan.json (\(kind))")
        // The journal: down keeps the state and says why.
        dir = try profileDir(plan: false, journal: false)
        try play.place(kind, at: "\(dir)/journal.jsonl")
        try expectRefused(
            ["down", "p"] + paths, naming: "\(dir)/journal.jsonl", status: 3, "down with the journal (\(kind))")
        // The host-wide records, which down reads before it writes anything back (read here through
        // the store: a down on this machine would reach its sysctls if the read ever passed).
        for record in ["host.json", "tune.json"] {
            try play.place(kind, at: "\(state)/\(record)")
            let store = StateStore(root: state)
            #expect(throws: TopoFailure.self) {
                _ = try store.readRecord(
                    "\(state)/\(record)", missing: StateStore.HostChanges(), holds: "a test's record")
            }
            do { _ = try store.readRecord("\(state)/\(record)", missing: StateStore.HostChanges(), holds: "x") } catch {
                #expect(
                    error.status == .hostCannot && error.message.contains("\(state)/\(record)"),
                    "\(record) (\(kind)): \(error.message)")
            }
            try? FileManager.default.removeItem(atPath: "\(state)/\(record)")
            try? FileManager.default.removeItem(atPath: "\(state)/\(record).other")
        }
    }
}

/// Profile strings reach a terminal with their control characters escaped.
@Suite struct TerminalTextTests {
    @Test func controlCharactersAreEscapedAndTopoStylesKept() {
        #expect(TerminalText.safe("plain text\n\twith a tab") == "plain text\n\twith a tab")
        #expect(
            TerminalText.safe("\u{1B}[2J\u{1B}]0;title\u{07}x\u{7F}\u{9B}")
                == "\\u001b[2J\\u001b]0;title\\u0007x\\u007f\\u009b")
        let style = TextStyle(enabled: true)
        #expect(
            TerminalText.safe(style.paint("ok", .green) + style.bold("b") + style.dim("d")) == style.paint("ok", .green)
                + style.bold("b") + style.dim("d"))
        #expect(
            TerminalText.safe("\u{1B}[8mhidden\u{1B}[0m") == "\\u001b[8mhidden\u{1B}[0m", "conceal is not one of topo's"
        )
    }

    /// An ESC-laden profile through validate, plan, the dry run and apply's refusal: no control byte
    /// but newline and tab reaches stdout or stderr.
    @Test func noControlByteOfAProfileReachesTheTerminal() throws {
        let dir = NSTemporaryDirectory() + "topo-esc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let profile = "\(dir)/esc.yaml"
        try """
        version: 1
        name: esc
        description: "\\e[2J\\e]0;retitled\\a"
        workloads:
          a: { cpus: "0", run: { command: ["/no/such\\e[2J", "\\e[8mhidden\\x7f"], env: { X: "\\e[31mred" }, workdir: "/tmp/\\e[1A" } }
          b: { cpus: "1", run: { command: ["/bin/true"], user: "\\e[2J" } }
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        let runs: [[String]] = [
            ["validate", profile], ["plan", profile, "--sysfs", "Tests/Fixtures/hosts/1n-2c"],
            ["apply", "--dry-run", profile, "--sysfs", "Tests/Fixtures/hosts/1n-2c"],
            ["apply", profile, "--state-dir", "\(dir)/state", "--cgroup-root", dir],
        ]
        // b's user is not a user: drop it for the commands that need a valid profile.
        let valid = "\(dir)/valid.yaml"
        try (try String(contentsOfFile: profile, encoding: .utf8)).replacingOccurrences(
            of: ", user: \"\\e[2J\"", with: ""
        ).write(toFile: valid, atomically: true, encoding: .utf8)
        for args in runs + runs.map({ $0.map { $0 == profile ? valid : $0 } }) {
            let r = try CLITests.run(args)
            let bad = Array((r.stdout + r.stderr).utf8).filter { ($0 < 0x20 && $0 != 0x0A && $0 != 0x09) || $0 == 0x7F }
            #expect(
                bad.isEmpty, "topo \(args.joined(separator: " ")) printed control bytes \(bad): \(r.stdout) \(r.stderr)"
            )
            #expect(
                r.status != 0 || args.contains("--dry-run") || args[0] == "validate" || args[0] == "plan",
                "\(args): \(r.status)")
        }
    }
}
