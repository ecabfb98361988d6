import CTopoShim
import Foundation

/// Starting other programs (container runtimes, probes) through posix_spawn, and waiting for children.
public enum Spawn {
    /// The running topo binary (bound into containers for the probes).
    public static var selfExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    public typealias Failure = Launcher.Failure

    /// Starts `argv` (argv[0] a path) with this process's environment. With `output`, stdin is
    /// /dev/null and stdout and stderr are appended to `output`; without, the caller's streams are
    /// kept (`topo exec`). Every signal is at its default and none blocked. `detached`: a session of
    /// its own, and no descriptor above 2 (a runtime's monitor, podman's conmon, lives on and must
    /// not hold what topo's caller left open: a pipe someone waits on to end). `prepare` runs on the spawning thread around the spawn (it sets CPUs and memory policy
    /// for the child to inherit).
    /// `stdio` (for `topo exec`): the child's 0, 1 and 2 from `ExecStreams`; with a pseudo-terminal the
    /// child leads a session of its own and opens it as its controlling terminal.
    public static func child(
        _ argv: [String], output: String?, detached: Bool, stdio: ExecStreams.Stdio? = nil,
        prepare: (() -> Int32) -> Int32 = { $0() }
    ) -> Result<pid_t, Failure> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        if let stdio {
            if let terminal = stdio.terminal {
                // After setsid (which glibc makes before the file actions), opening the pty without
                // O_NOCTTY makes it the session's controlling terminal.
                posix_spawn_file_actions_addopen(&actions, 0, terminal, O_RDWR, 0)
                posix_spawn_file_actions_adddup2(&actions, 0, 1)
                posix_spawn_file_actions_adddup2(&actions, 0, 2)
            } else {
                for (i, fd) in stdio.fds.enumerated() where fd >= 0 {
                    posix_spawn_file_actions_adddup2(&actions, fd, Int32(i))
                }
            }
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Every child starts with every signal at its default and none blocked, whatever topo's caller
        // handed on (a test runner blocks nearly all); a detached one in a session of its own.
        var all = sigset_t()
        var none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if detached || stdio != nil {
            topo_spawn_close_from(&actions, 3)
            flags |= 0x80  // glibc's POSIX_SPAWN_SETSID, not imported
        }
        posix_spawnattr_setflags(&attr, Int16(flags))
        var args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = prepare { posix_spawn(&pid, argv[0], &actions, &attr, &args, environ) }
        guard rc == 0 else {
            return .failure(Failure(description: "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))"))
        }
        return .success(pid)
    }

    /// Waits for a child at most `timeout` seconds, then kills it (SIGKILL) and reaps it: its exit
    /// status, or nil when it had to be killed.
    public static func wait(_ pid: pid_t, timeout: Double) -> Int32? {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let deadline = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 + timeout
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return nil }
            clock_gettime(CLOCK_MONOTONIC, &ts)
            if Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 >= deadline {
                _ = Glibc.kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return nil
            }
            usleep(5_000)
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// Waits for a child and returns its exit status (128 + signal for a killed one).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}
