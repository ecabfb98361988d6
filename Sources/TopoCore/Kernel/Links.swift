import CTopoShim
import Foundation

/// A command's outcome as data: a non-zero exit is a result, not a throw.
public struct CommandResult: Equatable, Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs programs without a shell, feeding `input` on stdin. The one seam for subprocesses.
/// posix_spawn and poll(2) directly: Foundation's Process costs a thread and a run loop per command,
/// which made `topo status` on 64 namespaces take 15 s in the lab. stdin is a socket written with
/// MSG_NOSIGNAL, so a child that exits early cannot kill topo with SIGPIPE; every descriptor is made
/// close-on-exec atomically, so commands run from several threads never inherit each other's pipes.
public struct CommandRunner: Sendable {
    public init() {}

    public func run(_ argv: [String], input: String? = nil) -> CommandResult {
        func failure(_ what: String, _ code: Int32) -> CommandResult {
            CommandResult(status: 127, stdout: "", stderr: "cannot run \(argv.first ?? ""): \(what): \(String(cString: strerror(code)))")
        }
        guard let program = argv.first else { return failure("no program", EINVAL) }
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1], inp: [Int32] = [-1, -1]
        guard topo_pipe_cloexec(&out) == 0 else { return failure("pipe", errno) }
        guard topo_pipe_cloexec(&err) == 0 else {
            let e = errno
            out.forEach { close($0) }
            return failure("pipe", e)
        }
        if input != nil, socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &inp) != 0 {
            let e = errno
            (out + err).forEach { close($0) }
            return failure("socketpair", e)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inp[1], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program, &actions, nil, &cArgs, environ)
        for fd in [out[1], err[1], inp[1]] where fd >= 0 { close(fd) }
        guard rc == 0 else {
            for fd in [out[0], err[0], inp[0]] where fd >= 0 { close(fd) }
            return failure("posix_spawn", rc)
        }
        var pending = Array((input ?? "").utf8)[...]
        var stdinFD = inp[0], stdoutFD = out[0], stderrFD = err[0]
        var stdout = [UInt8](), stderr = [UInt8]()
        if stdinFD >= 0 && pending.isEmpty { close(stdinFD); stdinFD = -1 }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while stdinFD >= 0 || stdoutFD >= 0 || stderrFD >= 0 {
            var fds: [pollfd] = []
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            if stdoutFD >= 0 { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
            if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for p in fds where p.revents != 0 {
                if p.fd == stdinFD {
                    let n = pending.withUnsafeBytes { send(stdinFD, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                    if n > 0 { pending = pending.dropFirst(n) }
                    // Done, or the child stopped reading (EPIPE): either way it gets EOF now.
                    if pending.isEmpty || (n < 0 && errno != EAGAIN && errno != EINTR) { close(stdinFD); stdinFD = -1 }
                    continue
                }
                let n = read(p.fd, &buffer, buffer.count)
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n > 0 {
                    if p.fd == stdoutFD { stdout += buffer[0..<n] } else { stderr += buffer[0..<n] }
                    continue
                }
                close(p.fd)
                if p.fd == stdoutFD { stdoutFD = -1 } else { stderrFD = -1 }
            }
        }
        for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { close(fd) }
        return CommandResult(status: Spawn.wait(pid), stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// Network namespaces, veth pairs, addresses and netem qdiscs through iproute2 in batch mode: one
/// `ip -batch` for the whole profile in the root namespace, then one `ip -n NS -batch` and one
/// `tc -n NS -batch` per namespace (iproute2 takes no per-line namespace). Arguments come from pure
/// functions; the runner only executes them.
public enum Links {
    /// Where `ip netns` keeps its namespaces (NETNS_RUN_DIR; /var/run is /run on current systems).
    public static let netnsDirectory = "/run/netns"
    /// Per-namespace files `ip netns exec` binds over /etc (iproute2's convention).
    public static let etcNetnsDirectory = "/etc/netns"
    public static let ip = "/usr/sbin/ip"
    public static let tc = "/usr/sbin/tc"

    /// Root-namespace batch: every namespace, then every veth pair created straight into its two namespaces.
    /// Equivalent to `ip netns add NS` and `ip link add to-B netns NS-A mtu M type veth peer name to-A netns NS-B mtu M`.
    public static func createBatch(_ plan: Plan) -> [String] {
        var lines = plan.workloads.compactMap(\.netns).map { "netns add \($0)" }
        for link in plan.links {
            let a = link.ends[0], b = link.ends[1]
            lines.append("link add \(a.interface) netns \(a.netns) mtu \(link.mtu) type veth peer name \(b.interface) netns \(b.netns) mtu \(link.mtu)")
        }
        return lines
    }

    /// Inside one namespace: loopback up, each end's address, each end up.
    public static func configureBatch(_ netns: String, _ plan: Plan) -> [String] {
        var lines = ["link set lo up"]
        for link in plan.links {
            for end in link.ends where end.netns == netns {
                lines.append("addr add \(end.address) dev \(end.interface)")
                lines.append("link set \(end.interface) up")
            }
        }
        return lines
    }

    /// Inside one namespace: a netem root qdisc on each shaped interface.
    public static func qdiscBatch(_ netns: String, _ plan: Plan) -> [String] {
        plan.links.flatMap(\.shaping).filter { $0.netns == netns }.map {
            (["qdisc", "add", "dev", $0.interface, "root"] + netemArguments($0.netem)).joined(separator: " ")
        }
    }

    /// `netem ...` in tc's order (tc-netem(8)). A uniform jitter is netem's default and has no table to name.
    public static func netemArguments(_ n: Netem) -> [String] {
        var args = ["netem", "limit", String(n.limit)]
        if let delay = n.delay {
            args += ["delay", tcTime(delay)]
            if let jitter = n.jitter, jitter > .zero {
                args.append(tcTime(jitter))
                if let d = n.distribution, d != .uniform { args += ["distribution", d.rawValue] }
            }
        }
        if let v = n.corrupt { args += ["corrupt", v.description] }
        if let v = n.duplicate { args += ["duplicate", v.description] }
        if let v = n.loss { args += ["loss", "random", v.description] }
        if let v = n.reorder { args += ["reorder", v.description] }
        if let v = n.rate { args += ["rate", "\(v.bitsPerSecond)bit"] }
        return args
    }

    /// A duration as tc reads it: microseconds, with decimals below one (`200us`, `0.25us`).
    static func tcTime(_ d: Duration) -> String { fixedPoint(d.nanoseconds, decimals: 3) + "us" }

    public static func deleteBatch(_ namespaces: [String]) -> [String] {
        namespaces.map { "netns del \($0)" }
    }

    /// The inode of a bound namespace: it tells the namespace topo made from a later one of the same name.
    public static func inode(_ netns: String) -> UInt64? {
        var st = stat()
        guard stat("\(netnsDirectory)/\(netns)", &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    public static func exists(_ netns: String) -> Bool { Sys.exists("\(netnsDirectory)/\(netns)") }

    /// Runs a batch; a failure carries the command and iproute2's own words.
    public static func runBatch(_ runner: CommandRunner, _ argv: [String], _ lines: [String]) throws {
        guard !lines.isEmpty else { return }
        let r = runner.run(argv + ["-batch", "-"], input: lines.joined(separator: "\n") + "\n")
        guard r.status == 0 else {
            throw TopoFailure(.applyFailed, "\(argv.joined(separator: " ")) -batch failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: "\n").replacingOccurrences(of: "\n", with: "; "))")
        }
    }
}

/// What the kernel says about a netem qdisc (`tc -j qdisc show`), compared to the plan.
public enum NetemReadback {
    /// The netem options of the root qdisc on `interface`, from `tc -j qdisc show dev IF` output.
    public static func options(_ json: String) -> [String: Any]? {
        guard let list = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else { return nil }
        return list.first { $0["kind"] as? String == "netem" && $0["root"] as? Bool == true }?["options"] as? [String: Any]
    }

    /// Where the kernel's settings differ from the plan; empty when they match.
    /// tc reports times in seconds, the rate in bytes per second and percentages as fractions.
    public static func differences(planned n: Netem, kernel o: [String: Any]) -> [String] {
        var diffs: [String] = []
        func number(_ any: Any?) -> Double? { (any as? NSNumber)?.doubleValue }
        func check(_ name: String, _ want: Double, _ got: Double?, tolerance: Double, unit: String) {
            let g = got ?? 0
            if abs(g - want) > tolerance { diffs.append("\(name): planned \(want)\(unit), kernel has \(g)\(unit)") }
        }
        let delay = o["delay"] as? [String: Any]
        check("delay", Double(n.delay?.nanoseconds ?? 0) / 1e9, number(delay?["delay"]), tolerance: 2e-6, unit: "s")
        check("jitter", Double(n.jitter?.nanoseconds ?? 0) / 1e9, number(delay?["jitter"]), tolerance: 2e-6, unit: "s")
        check("rate", Double(n.rate?.bytesPerSecond ?? 0), number((o["rate"] as? [String: Any])?["rate"]), tolerance: 1, unit: " B/s")
        check("limit", Double(n.limit), number(o["limit"]), tolerance: 0.5, unit: " packets")
        for (key, json) in [("loss", "loss-random"), ("duplicate", "duplicate"), ("reorder", "reorder"), ("corrupt", "corrupt")] {
            let planned: Percent? = key == "loss" ? n.loss : key == "duplicate" ? n.duplicate : key == "reorder" ? n.reorder : n.corrupt
            let got = number((o[json] as? [String: Any])?[key == "loss" ? "loss" : key])
            check(key, planned?.fraction ?? 0, got, tolerance: 1e-6, unit: "")
        }
        return diffs
    }
}
