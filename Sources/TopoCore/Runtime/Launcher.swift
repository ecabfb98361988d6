import CNuma
import CTopoShim
import Foundation

/// The launcher: topo starts a workload process itself, with no second topo process.
///
/// Swift prepares every value the child needs — the command's candidate paths, the workload cgroup's
/// directory, the namespace, the log and /dev/null as descriptors, the mounts to make read-only, the
/// CPU and NUMA node masks (node lists parsed by libnuma), the user's ids and groups, the capabilities
/// as a bit mask — and `topo_launch_start` (C, `CTopoShim/launch.c`) makes the child with clone3 and
/// CLONE_INTO_CGROUP (Linux 5.7; a fork that writes `cgroup.procs` otherwise), so it starts inside the
/// workload's cgroup. Between clone and exec the child makes system calls only: it enters the network
/// namespace, redirects its output, confines itself (cgroup and mount namespaces, read-only binds),
/// pins its CPUs, sets its memory policy and reads it back, drops privileges and capabilities, marks
/// every other descriptor close-on-exec and execs the command — so the command runs inside all of
/// that from its first instruction. A failed step is written to the status pipe, which the parent
/// reads until exec closes it, and ends the child with status 126 (127: not found).
public enum Launcher {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// A child started and not yet heard from: its pid, the read end of its status pipe, and what
    /// its error records refer to.
    public struct Pending: Sendable {
        public let pid: pid_t
        let statusFD: Int32
        let spec: LaunchSpec
        let otherCgroupMounts: [String]
        let readOnly: [String]
        let protection: HostProtection
    }

    /// What a root workload (`user: root`) sees of the host's kernel interfaces, as docker, podman and
    /// runc's default spec hide them: uid 0 owns them even without a capability. Read-only in place,
    /// each as a copy of its whole mount tree (binfmt_misc below /proc/sys included): /proc/sys,
    /// /proc/sysrq-trigger, /proc/irq, /proc/bus, /proc/fs and /sys. Masked: the /proc files that show
    /// the kernel's memory, keys and timers, and /sys/firmware. A fresh tmpfs over /run, where the
    /// host's root-only sockets (systemd's private bus, container runtimes) live. Only what exists at
    /// launch is listed: the kernel makes every entry of /proc and /sys, so a workload cannot create
    /// one that was missing, and /sys as a whole is read-only.
    struct HostProtection: Equatable {
        var readOnly: [String] = []
        var maskedFiles: [String] = []
        var maskedDirectories: [String] = []
        var run: String?

        static let readOnlyPaths = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/sys"]
        static let maskedPaths = [
            "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
            "/proc/sched_debug", "/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
        ]

        /// The protection for this host's paths (`exists` and `isDirectory` stand in for the file system in tests).
        static func present(
            exists: (String) -> Bool = Sys.exists, isDirectory: (String) -> Bool = { Sys.isDirectory($0) }
        ) -> HostProtection {
            HostProtection(
                readOnly: readOnlyPaths.filter(exists),
                maskedFiles: maskedPaths.filter { exists($0) && !isDirectory($0) },
                maskedDirectories: maskedPaths.filter(isDirectory),
                run: isDirectory("/run") ? "/run" : nil)
        }
    }

    /// Starts the workload process and waits until it has exec'd the command. Returns its pid.
    public static func launch(_ spec: LaunchSpec) -> Result<pid_t, Failure> {
        start(spec).flatMap(finish)
    }

    /// The securebits a workload that is not root runs with, locked (capabilities(7)): root is not
    /// special to it (a setuid-root program gains nothing), and it cannot turn the setuid fix-up back
    /// on. Keep-caps stays unlocked: it only matters for a change of uid, which a workload without
    /// CAP_SETUID cannot make, execve clears it, and iputils' ping sets it before it drops to
    /// CAP_NET_RAW (with it locked, `ping` in a workload granted NET_RAW failed: "prctl: Operation not permitted").
    static let lockedSecurebits: UInt = 1 << 0 | 1 << 1 | 1 << 3  // NOROOT, NOROOT_LOCKED, NO_SETUID_FIXUP_LOCKED

    /// Starts the child without waiting for it: several can start at once, then `finish` each.
    ///
    /// The workload gets exactly the capabilities listed, in all five sets: the bounding set loses every
    /// other one (so exec cannot bring it back), the permitted, effective and inheritable sets hold the
    /// listed ones only (the kernel never fills the inheritable set itself; a caller's inheritable
    /// capabilities would pass to the workload: CVE-2022-24769, CVE-2022-29162), the ambient set is
    /// cleared and, for a user other than root, holds the listed ones, so that they survive exec.
    /// no_new_privs is set last: no setuid program or file capability gives the workload more.
    /// Whoever it runs as, it cannot change its own limits, leave its cgroup or touch topo's state: a
    /// cgroup namespace rooted at its cgroup, and a private mount namespace (slave to the host's) in
    /// which the cgroup hierarchy's mount point shows its own cgroup read-only, every other cgroup
    /// mount is read-only, and so are topo's files.
    public static func start(_ spec: LaunchSpec) -> Result<Pending, Failure> {
        guard !spec.command.isEmpty else {
            return .failure(Failure(description: "topo launcher: the workload has no command"))
        }
        var owned: [Int32] = []  // descriptors for the child, closed here once it is made
        defer { owned.forEach { close($0) } }
        func open(_ path: String, _ flags: Int32, _ what: String) -> Result<Int32, Failure> {
            let fd = Glibc.open(path, flags | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                return .failure(
                    Failure(description: "topo launcher: \(what) \(path): \(String(cString: strerror(errno)))"))
            }
            owned.append(fd)
            return .success(fd)
        }
        // Descriptors: the cgroup's directory (if it cannot be opened, the child writes cgroup.procs and
        // reports the kernel's answer), the namespace, stdin and the log.
        let cgroupDirectory = String(spec.cgroupProcs.dropLast("/cgroup.procs".count))
        let cgroupFD = Glibc.open(cgroupDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if cgroupFD >= 0 { owned.append(cgroupFD) }
        var netnsFD: Int32 = -1
        var stdinFD: Int32 = -1
        var logFD: Int32 = -1
        do {
            if let ns = spec.netns { netnsFD = try open(ns, O_RDONLY, "enter network namespace").get() }
            if !spec.keepStdin { stdinFD = try open("/dev/null", O_RDONLY, "open stdin").get() }
            // The log lives in topo's state, which the workload sees read-only: opened here.
            if let log = spec.logPath { logFD = try open(log, O_WRONLY | O_CREAT | O_APPEND, "open").get() }
        } catch {
            return .failure(error)
        }
        let otherCgroupMounts: [String]
        switch Mounts.read() {
        case .failure(let e): return .failure(Failure(description: "topo launcher: \(e)"))
        case .success(let mounts):
            otherCgroupMounts = mounts.filter {
                ($0.type == "cgroup" || $0.type == "cgroup2") && $0.point != spec.cgroupMount
            }.map(\.point)
        }
        let readOnly = spec.readOnly.filter { Sys.exists($0) }
        let ids: Identity?
        switch identity(spec.user) {
        case .failure(let f): return .failure(f)
        case .success(let i): ids = i
        }
        if let ids, ids.groups.count > 1024 {
            return .failure(
                Failure(
                    description:
                        "topo launcher: user \(spec.user ?? "") is in \(ids.groups.count) groups; topo sets at most 1024"
                ))
        }
        let protection = ids == nil || ids!.uid == 0 ? HostProtection.present() : HostProtection()
        let keep = spec.capabilities.compactMap { Capabilities.value(of: $0) }.reduce(UInt64(0)) {
            $0 | 1 << UInt64($1)
        }
        let capLast =
            (try? Sys.read("/proc/sys/kernel/cap_last_cap")).flatMap { Int32($0.trimmingCharacters(in: "\n")) } ?? 40
        var cpuMask = [UInt](repeating: 0, count: max(16, (spec.cpus.ids.last ?? 0) / UInt.bitWidth + 1))
        for id in spec.cpus.ids { cpuMask[id / UInt.bitWidth] |= 1 << UInt(id % UInt.bitWidth) }
        let policy = memoryPolicy(spec.memoryPolicy, spec.policyNodes)
        defer { if let mask = policy.mask { numa_bitmask_free(mask) } }

        var fds: [Int32] = [-1, -1]
        guard topo_pipe_cloexec(&fds) == 0 else {
            return .failure(Failure(description: "topo launcher: pipe: \(String(cString: strerror(errno)))"))
        }
        owned.append(fds[1])
        // Every value the child reads, in C memory that lives until the clone returned.
        let c = CArena()
        var l = topo_launch()
        let paths = candidates(spec.command[0], environment: spec.environment)
        l.paths = c.constStrings(paths)
        l.path_count = Int32(paths.count)
        l.argv = UnsafePointer(c.strings(spec.command))
        l.envp = UnsafePointer(c.strings(spec.environment))
        l.cgroup_fd = cgroupFD
        l.cgroup_procs = UnsafePointer(c.string(spec.cgroupProcs))
        l.netns_fd = netnsFD
        l.new_session = spec.newSession ? 1 : 0
        l.stdin_fd = stdinFD
        l.log_fd = logFD
        let stdio = spec.stdio?.fds ?? [-1, -1, -1]
        l.stdio = (stdio[0], stdio[1], stdio[2])
        l.set_ctty = spec.stdio?.controllingTerminal == true ? 1 : 0
        l.hosts_file = UnsafePointer(c.string(spec.hostsFile))
        l.other_cgroup_mounts = c.constStrings(otherCgroupMounts)
        l.other_cgroup_mount_count = Int32(otherCgroupMounts.count)
        l.cgroup_dir = UnsafePointer(c.string(cgroupDirectory))
        l.cgroup_mount = UnsafePointer(c.string(spec.cgroupMount))
        l.read_only = c.constStrings(readOnly)
        l.read_only_count = Int32(readOnly.count)
        l.protect_read_only = c.constStrings(protection.readOnly)
        l.protect_read_only_count = Int32(protection.readOnly.count)
        l.mask_files = c.constStrings(protection.maskedFiles)
        l.mask_file_count = Int32(protection.maskedFiles.count)
        l.mask_dirs = c.constStrings(protection.maskedDirectories)
        l.mask_dir_count = Int32(protection.maskedDirectories.count)
        l.run_tmpfs = UnsafePointer(c.string(protection.run))
        l.cpu_mask = spec.cpus.isEmpty ? nil : UnsafePointer(c.copy(cpuMask))
        l.cpu_mask_bytes = spec.cpus.isEmpty ? 0 : UInt(cpuMask.count * MemoryLayout<UInt>.size)
        l.policy_mode = policy.mode
        l.policy_nodes = UnsafePointer(policy.mask?.pointee.maskp)
        l.policy_max_node = policy.mask.map { $0.pointee.size + 1 } ?? 0
        l.policy_check = policy.check ? 1 : 0
        l.workdir = UnsafePointer(c.string(spec.workdir ?? "/"))
        l.switch_user = ids == nil ? 0 : 1
        l.uid = ids?.uid ?? 0
        l.gid = ids?.gid ?? 0
        let groups = ids?.groups ?? []
        l.groups = UnsafePointer(c.copy(groups))
        l.group_count = UInt(groups.count)
        l.keep_caps = keep
        l.cap_last = capLast
        l.securebits = lockedSecurebits
        l.status_fd = fds[1]
        let pid = withExtendedLifetime(c) { topo_launch_start(&l) }
        let cloneErrno = errno
        guard pid > 0 else {
            close(fds[0])
            let how = cgroupFD >= 0 ? "clone3 into cgroup \(cgroupDirectory)" : "fork"
            return .failure(Failure(description: "topo launcher: \(how): \(String(cString: strerror(cloneErrno)))"))
        }
        return .success(
            Pending(
                pid: pid, statusFD: fds[0], spec: spec, otherCgroupMounts: otherCgroupMounts, readOnly: readOnly,
                protection: protection))
    }

    /// Waits until the child has exec'd the command (its status pipe closes empty) or failed (it writes
    /// a record, then exits). Returns the workload's pid.
    public static func finish(_ pending: Pending) -> Result<pid_t, Failure> {
        defer { close(pending.statusFD) }
        var record = topo_launch_error()
        var got = 0
        withUnsafeMutableBytes(of: &record) { raw in
            while got < raw.count {
                let n = read(pending.statusFD, raw.baseAddress! + got, raw.count - got)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                got += n
            }
        }
        if got == 0 { return .success(pending.pid) }
        _ = Spawn.wait(pending.pid)  // the child exits right after reporting
        guard got == MemoryLayout<topo_launch_error>.size else {
            return .failure(Failure(description: "topo launcher: the child reported \(got) bytes, not a whole record"))
        }
        let what = describe(record, pending)
        let text = record.err == 0 ? what : "\(what): \(String(cString: strerror(record.err)))"
        return .failure(Failure(description: "topo launcher: \(text)"))
    }

    /// What a step was, in the words `topo` uses everywhere: the operation and its object.
    static func describe(_ e: topo_launch_error, _ p: Pending) -> String {
        let s = p.spec
        let index = Int(e.index)
        func item(_ list: [String]) -> String { list.indices.contains(index) ? list[index] : "#\(index)" }
        switch topo_launch_step(UInt32(e.step)) {
        case TOPO_LAUNCH_SIGNALS: return "reset signal dispositions and mask"
        case TOPO_LAUNCH_CGROUP: return "join cgroup: write \(s.cgroupProcs) \"0\""
        case TOPO_LAUNCH_SETSID: return "setsid"
        case TOPO_LAUNCH_NETNS: return "enter network namespace \(s.netns ?? "?")"
        case TOPO_LAUNCH_STDIN: return "open /dev/null as stdin"
        case TOPO_LAUNCH_LOG: return "dup2 \(s.logPath ?? "?")"
        case TOPO_LAUNCH_CGROUP_NS: return "unshare the cgroup namespace"
        case TOPO_LAUNCH_MOUNT_NS: return "make a private mount namespace"
        case TOPO_LAUNCH_HOSTS: return "bind-mount \(s.hostsFile ?? "?") over /etc/hosts"
        case TOPO_LAUNCH_REMOUNT: return "remount \(item(p.otherCgroupMounts)) read-only"
        case TOPO_LAUNCH_OWN_CGROUP:
            return "bind \(s.cgroupProcs.dropLast("/cgroup.procs".count)) read-only over \(s.cgroupMount ?? "?")"
        case TOPO_LAUNCH_READ_ONLY: return "bind \(item(p.readOnly)) read-only"
        case TOPO_LAUNCH_AFFINITY: return "sched_setaffinity \(s.cpus)"
        case TOPO_LAUNCH_POLICY: return "set_mempolicy \(s.memoryPolicy.rawValue) \(s.policyNodes)"
        case TOPO_LAUNCH_POLICY_READ: return "get_mempolicy"
        case TOPO_LAUNCH_POLICY_KEPT:
            return
                "set_mempolicy \(s.memoryPolicy.rawValue) \(s.policyNodes): the kernel kept the \(policyName(e.index)) policy"
        case TOPO_LAUNCH_CHDIR: return "chdir \(s.workdir ?? "/")"
        case TOPO_LAUNCH_BOUNDING: return "drop \(Capabilities.name(of: index)) from the bounding set"
        case TOPO_LAUNCH_AMBIENT_CLEAR: return "clear the ambient capabilities"
        case TOPO_LAUNCH_KEEPCAPS: return "prctl PR_SET_KEEPCAPS"
        case TOPO_LAUNCH_SETGROUPS: return "setgroups for \(s.user ?? "?")"
        case TOPO_LAUNCH_SETGID: return "setgid for \(s.user ?? "?")"
        case TOPO_LAUNCH_SETUID: return "setuid \(s.user ?? "?")"
        case TOPO_LAUNCH_CAPSET: return "capset (keep \(s.capabilities.joined(separator: ",")))"
        case TOPO_LAUNCH_SECUREBITS: return "prctl PR_SET_SECUREBITS"
        case TOPO_LAUNCH_AMBIENT_RAISE: return "raise ambient capability \(Capabilities.name(of: index))"
        case TOPO_LAUNCH_NO_NEW_PRIVS: return "prctl PR_SET_NO_NEW_PRIVS"
        case TOPO_LAUNCH_EXEC: return "exec \(s.command[0])"
        case TOPO_LAUNCH_PROTECT: return "make \(item(p.protection.readOnly)) read-only for a root workload"
        case TOPO_LAUNCH_MASK_FILE: return "mask \(item(p.protection.maskedFiles)) for a root workload"
        case TOPO_LAUNCH_MASK_DIR: return "mask \(item(p.protection.maskedDirectories)) for a root workload"
        case TOPO_LAUNCH_RUN_TMPFS: return "mount a fresh tmpfs over \(p.protection.run ?? "/run") for a root workload"
        case TOPO_LAUNCH_STDIO: return "dup2 exec's stream onto \(index)"
        case TOPO_LAUNCH_CTTY: return "make exec's pseudo-terminal the controlling terminal (TIOCSCTTY)"
        case TOPO_LAUNCH_IDS:
            return
                "read back the ids of \(s.user ?? RunSpec.defaultUser): the kernel kept another \(["uid", "gid", "group list"][min(2, max(0, index))])"
        default: return "step \(e.step)"
        }
    }

    /// A memory policy mode by its name in set_mempolicy(2).
    static func policyName(_ mode: Int32) -> String {
        switch mode {
        case MPOL_DEFAULT: "MPOL_DEFAULT"
        case MPOL_PREFERRED: "MPOL_PREFERRED"
        case MPOL_BIND: "MPOL_BIND"
        case MPOL_INTERLEAVE: "MPOL_INTERLEAVE"
        case MPOL_LOCAL: "MPOL_LOCAL"
        default: "mode \(mode)"
        }
    }

    /// set_mempolicy's mode and node mask for a policy, the mask parsed by libnuma (as numactl parses
    /// its node lists), and whether to read the mode back: a refusal must be an error, not a warning.
    static func memoryPolicy(
        _ policy: MemoryPolicy, _ nodes: CPUSet
    ) -> (mode: Int32, mask: UnsafeMutablePointer<bitmask>?, check: Bool) {
        switch policy {
        case .local: return (MPOL_LOCAL, nil, false)
        case .preferred:
            guard let node = nodes.ids.first else { return (-1, nil, false) }
            return (MPOL_PREFERRED, numa_parse_nodestring_all(String(node)), true)
        case .bind, .interleave:
            guard let mask = numa_parse_nodestring_all(nodes.description) else { return (-1, nil, false) }
            return (policy == .bind ? MPOL_BIND : MPOL_INTERLEAVE, mask, true)
        }
    }

    struct Identity {
        var uid: UInt32
        var gid: UInt32
        var groups: [UInt32]
    }

    /// The profile's user as ids: `NAME`, `UID` or `UID:GID`; a name (or a uid with a name) also gets
    /// its supplementary groups, as initgroups would set them.
    static func identity(_ user: String?) -> Result<Identity?, Failure> {
        let user = user ?? RunSpec.defaultUser
        let parts = user.split(separator: ":")
        var uid: uid_t
        var gid: gid_t
        var name: String?
        if let u = UInt32(parts[0]) {
            uid = u
            let known = Sys.user(id: u)
            gid = parts.count > 1 ? UInt32(parts[1]) ?? u : (known?.gid ?? u)
            name = known?.name
        } else {
            guard let pw = Sys.user(named: user) else {
                return .failure(Failure(description: "topo launcher: no user named \(user)"))
            }
            uid = pw.uid
            gid = pw.gid
            name = user
        }
        guard uid != UInt32.max, gid != UInt32.max else {
            return .failure(
                Failure(
                    description:
                        "topo launcher: user \(user): the id 4294967295 means \"unchanged\" to the kernel; the workload would stay root"
                ))
        }
        guard let name, parts.count == 1 else { return .success(Identity(uid: uid, gid: gid, groups: [gid])) }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else {
                return .failure(Failure(description: "topo launcher: getgrouplist \(name): too many groups"))
            }
        }
        return .success(Identity(uid: uid, gid: gid, groups: Array(groups.prefix(Int(count)))))
    }

    /// Where exec looks for a command, as execvpe would: the name itself when it holds a slash, else each
    /// directory of the workload's PATH (glibc's default when it has none).
    static func candidates(_ command: String, environment: [String]) -> [String] {
        if command.contains("/") { return [command] }
        let path = environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? "/bin:/usr/bin"
        return path.split(separator: ":", omittingEmptySubsequences: false).map {
            $0.isEmpty ? command : "\($0)/\(command)"
        }
    }
}

/// C memory for one launch: strings, NULL-terminated string arrays and arrays of plain values copied
/// out of Swift, all freed with the arena.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer?] = []
    deinit { blocks.forEach { free($0) } }

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        blocks.append(p)
        return p
    }

    func string(_ s: String?) -> UnsafeMutablePointer<CChar>? { s.map { string($0) } }

    /// A copy of `values` (plain values only: pointers, integers).
    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let raw = malloc(MemoryLayout<T>.stride * max(values.count, 1))!
        blocks.append(raw)
        let p = raw.bindMemory(to: T.self, capacity: max(values.count, 1))
        p.initialize(from: values, count: values.count)
        return p
    }

    /// `char *const *`: each string copied, then NULL.
    func strings(_ list: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        copy(list.map { Optional(string($0)) } + [nil])
    }

    /// The same array as C's `const char *const *`.
    func constStrings(_ list: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        UnsafeRawPointer(strings(list)).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
    }
}
