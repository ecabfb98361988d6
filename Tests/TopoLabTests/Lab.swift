import Foundation
import Testing

/// Every lab suite nests in this one: they run one at a time (they share the kernel's cgroups,
/// namespaces and CPUs), and only inside the lab VM.
@Suite(.enabled(if: Lab.isInside, Lab.skipReason), .serialized)
struct LabTests {}

/// The test layer for the lab VM: where we are, what shape the VM has, and how to run things in it.
enum Lab {
    static let environment = ProcessInfo.processInfo.environment

    /// True inside a VM started by scripts/lab (its stage 2 sets TOPO_LAB=1).
    static let isInside = environment["TOPO_LAB"] == "1"
    static let skipReason: Comment =
        "runs only inside the lab VM (scripts/lab sets TOPO_LAB=1); scripts/test runs it there on every lab shape"

    struct Shape: CustomStringConvertible {
        var nodes: Int
        var cpusPerNode: Int
        var smt: Bool
        var cpus: Int { nodes * cpusPerNode }
        var description: String { "\(nodes) node(s) x \(cpusPerNode) CPUs\(smt ? ", SMT" : "")" }
    }

    /// The shape scripts/lab was asked for.
    static var shape: Shape {
        Shape(
            nodes: Int(environment["LAB_NODES"] ?? "") ?? 0,
            cpusPerNode: Int(environment["LAB_CPUS_PER_NODE"] ?? "") ?? 0,
            smt: environment["LAB_SMT"] == "1")
    }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The `topo` built beside this test bundle (built on the host; the lab never compiles).
    static var topo: String {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        if dir.path.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("topo").path
    }

    struct Outcome: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    /// Runs a program (found on PATH when not absolute) without a shell and collects its output.
    @discardableResult
    static func run(_ program: String, _ args: [String], environment extra: [String: String] = [:]) throws -> Outcome {
        let p = Process()
        if program.hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = args
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [program] + args
        }
        p.currentDirectoryURL = URL(fileURLWithPath: repo)
        p.environment = environment.merging(extra) { $1 }
        // stderr goes to a file, so that a chatty child can never block on a full pipe we are not reading.
        let errPath = NSTemporaryDirectory() + "topo-lab-stderr-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let out = Pipe()
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        // never the test runner's own, which does not end (podman exec -i waits for it)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try? err.close()
        let errData = FileManager.default.contents(atPath: errPath) ?? Data()
        return Outcome(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    static func topo(_ args: String...) throws -> Outcome { try run(topo, args) }

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    static func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// Starts a program that outlives this call, in a session of its own, with every descriptor above 2
    /// closed and its output in `output` (or /dev/null), and returns at once. Foundation's `Process`
    /// would wait in `run` for EOF on a pipe such a child still held, and lose the exits of later children.
    static func detach(_ argv: [String], output: String? = nil) throws {
        let script =
            "import subprocess, sys; out = open(sys.argv[1], 'w') if sys.argv[1] else subprocess.DEVNULL; "
            + "subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True, start_new_session=True)"
        let r = try run("/usr/bin/python3", ["-c", script, output ?? ""] + argv)
        guard r.status == 0 else { throw DetachFailed(description: "\(argv): \(r)") }
    }

    struct DetachFailed: Error, CustomStringConvertible { var description: String }
}

extension Lab {
    /// Writes a profile to the guest's /tmp and returns its path.
    static func profile(_ name: String, _ yaml: String) throws -> String {
        let path = "/tmp/\(name).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A value from /proc/PID/status, e.g. `Cpus_allowed_list`.
    static func procStatus(_ pid: Int32, _ key: String) -> String? {
        read("/proc/\(pid)/status")?.split(separator: "\n").first { $0.hasPrefix(key + ":") }
            .map { $0.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    static func pids(inCgroup path: String) -> [Int32] {
        (read(path + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// Every process whose command line contains `marker`.
    static func processes(containing marker: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            guard pid != getpid(), let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
                return false
            }
            return String(decoding: cmdline.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
        }
    }

    /// The argv[0] of every process whose argv[0] starts with `prefix` (a process renamed with
    /// `exec -a`). Unlike `processes(containing:)` this never counts a shell whose command line
    /// merely mentions the name before it execs.
    static func processNames(prefix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).compactMap {
            pid in
            guard pid != getpid(), let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
                return nil
            }
            let argv0 = String(decoding: cmdline.prefix { $0 != 0 }, as: UTF8.self)
            return argv0.hasPrefix(prefix) ? argv0 : nil
        }
    }

    /// Applies `path` once to count its journaled steps (at least `atLeast`) and takes it down; then for
    /// each step: apply killed (SIGKILL, by the debug build's failpoint) right after that step, `down`
    /// exits 0, and `check` gets the step's number for what must hold after it (nothing left).
    static func killAfterEachStep(
        _ path: String, name: String, atLeast: Int, afterKill: (Int) throws -> Void = { _ in },
        check: (Int) throws -> Void
    ) throws {
        #expect(try topo("apply", path).status == 0)
        let steps = (read("/run/topo/\(name)/journal.jsonl") ?? "").split(separator: "\n").filter {
            $0.contains("\"done\"")
        }.count
        #expect(try topo("down", name).status == 0)
        #expect(steps >= atLeast)
        for n in 1...max(1, steps) {
            let r = try run(topo, ["apply", path], environment: ["TOPO_FAILPOINT": "after-step:\(n)"])
            #expect(r.status == 128 + SIGKILL || r.status == -1 || r.status == 9, "step \(n): \(r)")
            try afterKill(n)
            let down = try topo("down", name)
            #expect(down.status == 0, "step \(n): \(down)")
            try check(n)
        }
    }

    /// What topo may leave behind: cgroups under its root, state, processes with `marker`. Empty when clean.
    static func leftovers(marker: String? = nil) -> [String] {
        var found: [String] = []
        if FileManager.default.fileExists(atPath: "/sys/fs/cgroup/topo") { found.append("/sys/fs/cgroup/topo exists") }
        if FileManager.default.fileExists(atPath: "/run/topo") {
            found.append(
                "/run/topo exists: \((try? FileManager.default.contentsOfDirectory(atPath: "/run/topo")) ?? [])")
        }
        if FileManager.default.fileExists(atPath: "/etc/netns") {
            found.append(
                "/etc/netns exists: \((try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns")) ?? [])")
        }
        let partitions = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []).filter {
            $0.hasPrefix("topo.")
        }
        if !partitions.isEmpty { found.append("partition cgroups left at the root: \(partitions.sorted())") }
        let online = (read("/sys/devices/system/cpu/online") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let rootCPUs = (read("/sys/fs/cgroup/cpuset.cpus.effective") ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        if rootCPUs != online {
            found.append(
                "the root cgroup has CPUs \(rootCPUs), not every online CPU (\(online)): a partition still holds some")
        }
        if let marker, !processes(containing: marker).isEmpty {
            found.append("processes with \(marker): \(processes(containing: marker))")
        }
        let control = (read("/sys/fs/cgroup/cgroup.subtree_control") ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
        if !control.isEmpty { found.append("root cgroup.subtree_control left as \"\(control)\"") }
        return found
    }
}

/// A kernel cpulist ("0-3,8") as a set of CPU numbers, parsed here rather than with topo's own CPUSet
/// so that a test never checks topo's output with topo's parser.
func cpuList(_ text: String) -> Set<Int> {
    var cpus = Set<Int>()
    for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
        let ends = part.split(separator: "-").compactMap { Int($0) }
        if ends.count == 1 {
            cpus.insert(ends[0])
        } else if ends.count == 2, ends[0] <= ends[1] {
            cpus.formUnion(ends[0]...ends[1])
        }
    }
    return cpus
}
