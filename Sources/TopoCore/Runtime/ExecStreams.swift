import CTopoShim
import Foundation
import Synchronization

/// The standard streams of a command `topo exec` runs inside a workload: never the caller's terminal.
///
/// A terminal descriptor handed to a workload's command is the operator's terminal: a workload of the
/// same user can ptrace the command and read keystrokes from it, write escape sequences to it, or
/// (while it is the command's controlling terminal) push input into the operator's shell with
/// TIOCSTI. So, as `podman exec -t` and `ssh -t` do:
/// - at a terminal (stdin and stdout both one), the command gets a new pseudo-terminal, its
///   controlling terminal in a session of its own, and topo relays between it and the caller's
///   terminal (put in raw mode meanwhile, its window size copied over and on every SIGWINCH);
/// - otherwise each of stdin, stdout and stderr that is a terminal becomes a pipe topo relays, and the
///   others (files, pipes) are handed on as they are.
public enum ExecStreams {
    /// What the command's 0, 1 and 2 are (descriptors of this process, -1 for "as the caller's"), and
    /// whether 0 is a pty to make the controlling terminal of a new session.
    public struct Stdio: Equatable, Sendable {
        public var fds: [Int32]
        /// The pty's path when 0 is one: the command's session leader opens it as its controlling terminal.
        public var terminal: String?
        public var controllingTerminal: Bool { terminal != nil }
    }

    /// The window size changed (SIGWINCH); read by the relay loop.
    private static let resized = Atomic<Bool>(false)
    /// The command's pid while topo relays, for signals passed on.
    private static let child = Atomic<Int32>(0)

    /// Runs `start` with the command's streams, relays them until the command has exited and its
    /// output is drained, and returns its exit status.
    public static func run(_ start: (Stdio) -> Result<pid_t, TopoFailure>) -> Result<Int32, TopoFailure> {
        let interactive = topo_is_terminal(0) == 1 && topo_is_terminal(1) == 1
        return interactive ? runOnPty(start) : runWithPipes(start)
    }

    // MARK: a pty

    /// `caller`: the terminal topo was started on (its stdin and stdout; other descriptors in tests).
    static func runOnPty(
        caller: (input: Int32, output: Int32) = (0, 1), _ start: (Stdio) -> Result<pid_t, TopoFailure>
    ) -> Result<Int32, TopoFailure> {
        var master: Int32 = -1
        var slave: Int32 = -1
        var name = [CChar](repeating: 0, count: 128)
        guard topo_open_pty(&master, &slave, &name, name.count) == 0 else {
            return .failure(
                TopoFailure(.hostCannot, "topo exec: open a pseudo-terminal: \(String(cString: strerror(errno)))"))
        }
        defer { close(master) }
        _ = topo_copy_window_size(caller.input, master)
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let started = start(Stdio(fds: [slave, slave, slave], terminal: path))
        close(slave)  // the command holds it now: its last close ends the relay's reads with EIO
        guard case .success(let pid) = started else { return started.map { _ in 0 } }
        var saved = [UInt8](repeating: 0, count: 256)
        let raw = saved.withUnsafeMutableBytes { topo_terminal_raw(caller.input, $0.baseAddress, $0.count) } == 0
        defer { if raw { _ = saved.withUnsafeBytes { topo_terminal_restore(caller.input, $0.baseAddress, $0.count) } } }
        let status = relay(
            pid: pid, inputs: [(from: caller.input, to: master)], outputs: [(from: master, to: caller.output)],
            resize: (from: caller.input, to: master))
        return .success(status)
    }

    // MARK: pipes

    static func runWithPipes(_ start: (Stdio) -> Result<pid_t, TopoFailure>) -> Result<Int32, TopoFailure> {
        var childEnds: [Int32] = [-1, -1, -1]
        var inputs: [(from: Int32, to: Int32)] = []
        var outputs: [(from: Int32, to: Int32)] = []
        var ours: [Int32] = []  // the read ends of the output pipes; the relay closes the input's write end
        defer { ours.forEach { close($0) } }
        for fd in Int32(0)...2 where topo_is_terminal(fd) == 1 {
            var p: [Int32] = [-1, -1]
            guard topo_pipe_cloexec(&p) == 0 else {
                childEnds.filter { $0 >= 0 }.forEach { close($0) }
                return .failure(TopoFailure(.hostCannot, "topo exec: pipe: \(String(cString: strerror(errno)))"))
            }
            if fd == 0 {
                childEnds[0] = p[0]
                inputs.append((0, p[1]))
            } else {
                childEnds[Int(fd)] = p[1]
                outputs.append((p[0], fd))
                ours.append(p[0])
            }
        }
        for (fd, _) in outputs { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let started = start(Stdio(fds: childEnds, terminal: nil))
        childEnds.filter { $0 >= 0 }.forEach { close($0) }
        guard case .success(let pid) = started else {
            inputs.forEach { close($0.to) }
            return started.map { _ in 0 }
        }
        return .success(relay(pid: pid, inputs: inputs, outputs: outputs, resize: nil))
    }

    // MARK: the relay

    /// Copies each input to its pipe or pty and each output to the caller, until the command has
    /// exited and every output is drained (or closed); SIGINT, SIGTERM and SIGHUP that reach topo go on
    /// to the command. Returns its exit status (128 + signal when a signal ended it).
    /// `resize`: the caller's terminal and the pty whose window size follows it (on SIGWINCH); nil for pipes.
    static func relay(
        pid: pid_t, inputs: [(from: Int32, to: Int32)], outputs: [(from: Int32, to: Int32)],
        resize: (from: Int32, to: Int32)?
    ) -> Int32 {
        child.store(pid, ordering: .relaxed)
        defer { child.store(0, ordering: .relaxed) }
        var previous: [Int32: sighandler_t?] = [:]
        for s in [SIGINT, SIGTERM, SIGHUP] {
            previous[s] = signal(s) { sig in
                let pid = ExecStreams.child.load(ordering: .relaxed)
                if pid > 0 { _ = kill(pid, sig) }
            }
        }
        if resize != nil {
            previous[SIGWINCH] = signal(SIGWINCH) { _ in ExecStreams.resized.store(true, ordering: .relaxed) }
        }
        defer { for (s, h) in previous { signal(s, h) } }

        if inputs.isEmpty && outputs.isEmpty { return Spawn.wait(pid) }  // nothing to relay: no terminal anywhere
        var openInputs = inputs
        var openOutputs = outputs
        var status: Int32? = nil
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            if status == nil {
                var raw: Int32 = 0
                let r = waitpid(pid, &raw, WNOHANG)
                if r == pid {
                    let signal = raw & 0x7F
                    status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
                } else if r < 0 && errno != EINTR {
                    status = 127
                }
            }
            if let resize, resized.exchange(false, ordering: .relaxed) {
                _ = topo_copy_window_size(resize.from, resize.to)
            }
            if status != nil && openOutputs.isEmpty { break }
            var polled =
                openInputs.map { pollfd(fd: $0.from, events: Int16(POLLIN), revents: 0) }
                + openOutputs.map { pollfd(fd: $0.from, events: Int16(POLLIN), revents: 0) }
            // Once the command is gone, only what it left in the outputs is read, without waiting.
            let n = poll(&polled, nfds_t(polled.count), status == nil ? 100 : 0)
            if n < 0 { if errno == EINTR { continue } else { break } }
            if n == 0 && status != nil { break }
            var closedInputs: [Int32] = []
            var closedOutputs: [Int32] = []
            for (i, p) in polled.enumerated() where p.revents != 0 {
                let isInput = i < openInputs.count
                let pair = isInput ? openInputs[i] : openOutputs[i - openInputs.count]
                let got = buffer.withUnsafeMutableBytes { read(pair.from, $0.baseAddress, $0.count) }
                if got < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if got <= 0 {  // end of input, or EIO: every holder of the pty's slave has closed it
                    if isInput {
                        closedInputs.append(pair.from)
                        if resize == nil { close(pair.to) }  // a pipe: the command reads its end
                    } else {
                        closedOutputs.append(pair.from)
                    }
                    continue
                }
                if !writeAll(pair.to, buffer, got) && !isInput { closedOutputs.append(pair.from) }
            }
            openInputs.removeAll { closedInputs.contains($0.from) }
            openOutputs.removeAll { closedOutputs.contains($0.from) }
        }
        if resize == nil { openInputs.forEach { close($0.to) } }  // pipes the command never saw the end of
        if status == nil { status = Spawn.wait(pid) }
        return status!
    }

    static func writeAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) -> Bool {
        var done = 0
        while done < count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    usleep(1000)
                    continue
                }
                return false
            }
            done += n
        }
        return true
    }
}
