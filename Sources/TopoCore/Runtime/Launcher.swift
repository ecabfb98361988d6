import CCap
import CNuma
import CTopoShim
import Foundation

/// The launcher: what `topo __launch SPEC` does in the process that becomes the workload.
///
/// topo starts itself with posix_spawn (fork and exec happen in C, no Swift in between); this
/// freshly exec'd process then moves itself into the workload's cgroup, pins its CPUs, sets its NUMA
/// memory policy through libnuma (as numactl does), redirects its output, drops privileges and
/// capabilities, closes every other descriptor and execs the command — so the command runs inside
/// all of that from its first instruction. A failure is written to descriptor 3 (the status pipe
/// the caller reads until exec closes it) and ends the launcher with status 126 (127: not found).
public enum Launcher {
    public static let statusFD: Int32 = 3

    public static func run(specPath: String) -> Never {
        // Keep the status pipe out of the workload: it closes when exec succeeds.
        _ = fcntl(statusFD, F_SETFD, FD_CLOEXEC)
        let spec: LaunchSpec
        do {
            guard let data = FileManager.default.contents(atPath: specPath) else { fail("read launch spec \(specPath)", errno) }
            spec = try JSONDecoder().decode(LaunchSpec.self, from: data)
        } catch {
            fail("decode launch spec \(specPath): \(error)", 0)
        }
        guard !spec.command.isEmpty else { fail("launch: the workload has no command", 0) }

        // Nothing of the caller's signal state survives: an ignored SIGHUP or a blocked SIGTERM would.
        if topo_reset_signals() != 0 { fail("reset signal dispositions and mask", errno) }
        // A new session has no controlling terminal; `topo exec` at a terminal stays in the caller's.
        if spec.newSession && setsid() < 0 { fail("setsid", errno) }
        do {
            try Sys.write(spec.cgroupProcs, "0", operation: "join cgroup: write")
        } catch {
            fail(error.description, 0)
        }
        if let ns = spec.netns, topo_enter_netns(ns) != 0 { fail("enter network namespace \(ns)", errno) }
        // The log lives in topo's state, which the workload sees read-only: open it first.
        redirectOutput(spec.logPath, keepStdin: spec.keepStdin)
        confine(spec)
        setAffinity(spec.cpus)
        setMemoryPolicy(spec.memoryPolicy, spec.policyNodes)
        let dir = spec.workdir ?? "/"
        if chdir(dir) != 0 { fail("chdir \(dir)", errno) }
        switchUser(spec.user, keeping: spec.capabilities)
        closeOtherDescriptors()
        exec(spec.command, spec.environment)
    }

    /// Whoever the workload runs as, it cannot change its own limits, leave its cgroup or touch topo's
    /// state: a cgroup namespace rooted at its cgroup, and a private mount namespace (slave to the
    /// host's, so nothing here propagates back) in which the cgroup hierarchy's mount point shows its own
    /// cgroup read-only, every other cgroup mount is read-only, and so are topo's files. Its hosts file
    /// is bound over /etc/hosts there too.
    static func confine(_ spec: LaunchSpec) {
        if topo_unshare_cgroup() != 0 { fail("unshare the cgroup namespace", errno) }
        if topo_private_mounts() != 0 { fail("make a private mount namespace", errno) }
        if let hosts = spec.hostsFile, topo_bind(hosts, "/etc/hosts") != 0 { fail("bind-mount \(hosts) over /etc/hosts", errno) }
        for mount in cgroupMounts() where mount != spec.cgroupMount {
            if topo_remount_read_only(mount) != 0 { fail("remount \(mount) read-only", errno) }
        }
        // The workload's own cgroup, bound read-only over the hierarchy's mount point: it sees its limits
        // and its processes, nothing above. (A fresh cgroup2 mount there is refused with EBUSY: the
        // kernel will not mount a filesystem's root over the same filesystem's root.)
        if let root = spec.cgroupMount {
            let own = String(spec.cgroupProcs.dropLast("/cgroup.procs".count))
            if topo_bind_read_only(own, root) != 0 { fail("bind \(own) read-only over \(root)", errno) }
        }
        for path in spec.readOnly where Sys.exists(path) {
            if topo_bind_read_only(path, path) != 0 { fail("bind \(path) read-only", errno) }
        }
    }

    /// Mount points of every cgroup (v1 or v2) hierarchy in this mount namespace.
    static func cgroupMounts() -> [String] {
        switch Mounts.read() {
        case .failure(let e): fail("\(e)", 0)
        case .success(let mounts): return mounts.filter { $0.type == "cgroup" || $0.type == "cgroup2" }.map(\.point)
        }
    }

    static func fail(_ message: String, _ err: Int32, status: Int32 = 126) -> Never {
        let text = err == 0 ? message : "\(message): \(String(cString: strerror(err)))"
        let bytes = Array(("topo launcher: " + text + "\n").utf8)
        if write(statusFD, bytes, bytes.count) < 0 { _ = write(2, bytes, bytes.count) }
        _exit(status)
    }

    static func setAffinity(_ cpus: CPUSet) {
        guard !cpus.isEmpty else { return }
        guard let mask = numa_parse_cpustring_all(cpus.description) else { fail("parse cpulist \(cpus)", 0) }
        defer { numa_bitmask_free(mask) }
        if numa_sched_setaffinity(0, mask) < 0 { fail("sched_setaffinity \(cpus)", errno) }
    }

    /// The NUMA policy through libnuma, then read back with get_mempolicy(2) so that a refusal
    /// (libnuma only prints a warning) becomes an error.
    static func setMemoryPolicy(_ policy: MemoryPolicy, _ nodes: CPUSet) {
        let expected: Int32
        switch policy {
        case .local:
            numa_set_localalloc()
            return
        case .preferred:
            guard let node = nodes.ids.first else { return }
            numa_set_preferred(Int32(node))
            expected = MPOL_PREFERRED
        case .bind, .interleave:
            guard let mask = numa_parse_nodestring_all(nodes.description) else { fail("parse node list \(nodes)", 0) }
            defer { numa_bitmask_free(mask) }
            if policy == .bind { numa_set_membind(mask) } else { numa_set_interleave_mask(mask) }
            expected = policy == .bind ? MPOL_BIND : MPOL_INTERLEAVE
        }
        var mode: Int32 = -1
        if get_mempolicy(&mode, nil, 0, nil, 0) != 0 { fail("get_mempolicy", errno) }
        if mode & 0xFF != expected { fail("set_mempolicy \(policy.rawValue) \(nodes): the kernel kept the \(Self.policyName(mode & 0xFF)) policy", 0) }
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

    static func redirectOutput(_ logPath: String?, keepStdin: Bool) {
        if !keepStdin {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if null < 0 || dup2(null, 0) < 0 { fail("open /dev/null as stdin", errno) }
        }
        guard let logPath else { return }
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd < 0 { fail("open \(logPath)", errno) }
        if dup2(fd, 1) < 0 || dup2(fd, 2) < 0 { fail("dup2 \(logPath)", errno) }
    }

    /// The securebits a workload that is not root runs with, locked (capabilities(7)): root is not
    /// special to it (a setuid-root program gains nothing), and it cannot turn keep-caps or the
    /// setuid fix-up back on.
    static let lockedSecurebits: UInt = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 5  // NOROOT, NOROOT_LOCKED, NO_SETUID_FIXUP_LOCKED, KEEP_CAPS_LOCKED

    /// Switches to the profile's user (if any) and leaves the workload exactly the capabilities listed,
    /// in all five sets: the bounding set loses every other one (so exec cannot bring it back), the
    /// permitted, effective and inheritable sets hold the listed ones only (the kernel never fills the
    /// inheritable set itself; a caller's inheritable capabilities would pass to the workload:
    /// CVE-2022-24769, CVE-2022-29162), the ambient set is cleared and, for a user other than root,
    /// holds the listed ones, so that they survive exec. no_new_privs is set last: no setuid program or
    /// file capability gives the workload more.
    static func switchUser(_ user: String?, keeping keep: [String]) {
        let keepValues = keep.compactMap { Capabilities.value(of: $0) }
        let last = Int32((try? Sys.read("/proc/sys/kernel/cap_last_cap")).flatMap { Int32($0.trimmingCharacters(in: "\n")) } ?? 40)
        for cap in 0...last where !keepValues.contains(Int(cap)) {
            if topo_capbset_drop(cap) != 0 && errno != EINVAL { fail("drop \(Capabilities.name(of: Int(cap))) from the bounding set", errno) }
        }
        if topo_ambient_clear_all() != 0 { fail("clear the ambient capabilities", errno) }
        var uid: uid_t = 0
        if let user {
            var gid: gid_t
            var name: String?
            let parts = user.split(separator: ":")
            if let u = UInt32(parts[0]) {
                uid = u
                let known = Sys.user(id: u)
                gid = parts.count > 1 ? UInt32(parts[1]) ?? u : (known?.gid ?? u)
                name = known?.name
            } else {
                guard let pw = Sys.user(named: user) else { fail("no user named \(user)", 0) }
                uid = pw.uid
                gid = pw.gid
                name = user
            }
            // Keep the permitted set across setuid, to set the workload's sets and securebits below.
            if topo_set_keepcaps(1) != 0 { fail("prctl PR_SET_KEEPCAPS", errno) }
            if let name, parts.count == 1 {
                if initgroups(name, gid) != 0 { fail("initgroups \(name)", errno) }
            } else {
                var g = gid
                if setgroups(1, &g) != 0 { fail("setgroups \(gid)", errno) }
            }
            if setgid(gid) != 0 { fail("setgid \(gid)", errno) }
            if setuid(uid) != 0 { fail("setuid \(uid)", errno) }
            if topo_set_keepcaps(0) != 0 { fail("prctl PR_SET_KEEPCAPS", errno) }
        }
        if uid != 0 {
            // Setting securebits takes CAP_SETPCAP in the effective set, for one call.
            setCapabilities(effective: [Capabilities.value(of: "CAP_SETPCAP")!], permitted: nil, inheritable: keepValues)
            if topo_set_securebits(lockedSecurebits) != 0 { fail("prctl PR_SET_SECUREBITS", errno) }
        }
        setCapabilities(effective: keepValues, permitted: keepValues, inheritable: keepValues)
        if uid != 0 {
            for v in keepValues where topo_ambient_raise(Int32(v)) != 0 {
                fail("raise ambient capability \(Capabilities.name(of: v))", errno)
            }
        }
        if topo_set_no_new_privs() != 0 { fail("prctl PR_SET_NO_NEW_PRIVS", errno) }
    }

    /// capset through libcap: exactly these sets (`permitted` nil keeps the current permitted set).
    static func setCapabilities(effective: [Int], permitted: [Int]?, inheritable: [Int]) {
        guard let caps = permitted == nil ? cap_get_proc() : cap_init() else { fail("cap_init", errno) }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        if cap_clear_flag(caps, CAP_EFFECTIVE) != 0 || cap_clear_flag(caps, CAP_INHERITABLE) != 0 { fail("cap_clear_flag", errno) }
        for (flag, values) in [(CAP_EFFECTIVE, effective), (CAP_PERMITTED, permitted ?? []), (CAP_INHERITABLE, inheritable)] where !values.isEmpty {
            var v = values.map { cap_value_t($0) }
            if cap_set_flag(caps, flag, Int32(v.count), &v, CAP_SET) != 0 { fail("cap_set_flag", errno) }
        }
        if cap_set_proc(caps) != 0 {
            fail("cap_set_proc (keep \(effective.map { Capabilities.name(of: $0) }.joined(separator: ",")))", errno)
        }
    }

    /// Marks every descriptor above 2 close-on-exec, so the workload starts with stdin, stdout and stderr only.
    static func closeOtherDescriptors() {
        for fd in Sys.entries("/proc/self/fd").compactMap(Int32.init) where fd > 2 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    static func exec(_ command: [String], _ environment: [String]) -> Never {
        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        // execvpe searches PATH of the caller's environment; point it at the workload's PATH.
        if let path = environment.first(where: { $0.hasPrefix("PATH=") }) { setenv("PATH", String(path.dropFirst(5)), 1) }
        _ = topo_execvpe(command[0], &argv, &envp)
        fail("exec \(command[0])", errno, status: errno == ENOENT ? 127 : 126)
    }
}
