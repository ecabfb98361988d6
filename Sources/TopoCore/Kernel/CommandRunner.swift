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

    /// `systemctl ARGS…` (irqbalance's unit, topo's scopes): PID 1 answers it over its private socket.
    public static let systemctl: @Sendable ([String]) -> CommandResult = { args in
        let binary = ["/usr/bin/systemctl", "/bin/systemctl"].first { Sys.access($0, X_OK) } ?? "/usr/bin/systemctl"
        return CommandRunner().run([binary] + args)
    }

    public func run(_ argv: [String], input: String? = nil) -> CommandResult {
        func failure(_ what: String, _ code: Int32) -> CommandResult {
            CommandResult(
                status: 127, stdout: "",
                stderr: "cannot run \(argv.first ?? ""): \(what): \(String(cString: strerror(code)))")
        }
        guard let program = argv.first else { return failure("no program", EINVAL) }
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        var inp: [Int32] = [-1, -1]
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
        var stdinFD = inp[0]
        var stdoutFD = out[0]
        var stderrFD = err[0]
        var stdout = [UInt8]()
        var stderr = [UInt8]()
        if stdinFD >= 0 && pending.isEmpty {
            close(stdinFD)
            stdinFD = -1
        }
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
                    let n = pending.withUnsafeBytes {
                        send(stdinFD, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    }
                    if n > 0 { pending = pending.dropFirst(n) }
                    // Done, or the child stopped reading (EPIPE): either way it gets EOF now.
                    if pending.isEmpty || (n < 0 && errno != EAGAIN && errno != EINTR) {
                        close(stdinFD)
                        stdinFD = -1
                    }
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
        return CommandResult(
            status: Spawn.wait(pid), stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}
