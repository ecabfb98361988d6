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

        if spec.newSession && setsid() < 0 { fail("setsid", errno) }
        do {
            try Sys.write(spec.cgroupProcs, "0", operation: "join cgroup: write")
        } catch {
            fail(error.description, 0)
        }
        if let ns = spec.netns, topo_enter_netns(ns) != 0 { fail("enter network namespace \(ns)", errno) }
        if let hosts = spec.hostsFile, topo_private_hosts(hosts) != 0 { fail("bind-mount \(hosts) over /etc/hosts", errno) }
        setAffinity(spec.cpus)
        setMemoryPolicy(spec.memoryPolicy, spec.policyNodes)
        redirectOutput(spec.logPath)
        if let dir = spec.workdir, chdir(dir) != 0 { fail("chdir \(dir)", errno) }
        switchUser(spec.user, keeping: spec.capabilities)
        closeOtherDescriptors()
        exec(spec.command, spec.environment)
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

    static func redirectOutput(_ logPath: String?) {
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if null < 0 || dup2(null, 0) < 0 { fail("open /dev/null as stdin", errno) }
        guard let logPath else { return }
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd < 0 { fail("open \(logPath)", errno) }
        if dup2(fd, 1) < 0 || dup2(fd, 2) < 0 { fail("dup2 \(logPath)", errno) }
    }

    /// Switches to the profile's user (if any) and limits capabilities to those listed: dropped
    /// from the bounding set, so that even a root workload cannot regain them across exec; for a
    /// non-root user the kept ones are raised as ambient capabilities so that they survive exec.
    static func switchUser(_ user: String?, keeping keep: [String]) {
        let keepValues = keep.compactMap { Capabilities.value(of: $0) }
        let last = Int32((try? Sys.read("/proc/sys/kernel/cap_last_cap")).flatMap { Int32($0.trimmingCharacters(in: "\n")) } ?? 40)
        for cap in 0...last where !keepValues.contains(Int(cap)) {
            if topo_capbset_drop(cap) != 0 && errno != EINVAL { fail("drop \(Capabilities.name(of: Int(cap))) from the bounding set", errno) }
        }
        guard let user else { return }
        var uid: uid_t, gid: gid_t
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
        if !keepValues.isEmpty && topo_set_keepcaps(1) != 0 { fail("prctl PR_SET_KEEPCAPS", errno) }
        if let name, parts.count == 1 {
            if initgroups(name, gid) != 0 { fail("initgroups \(name)", errno) }
        } else {
            var g = gid
            if setgroups(1, &g) != 0 { fail("setgroups \(gid)", errno) }
        }
        if setgid(gid) != 0 { fail("setgid \(gid)", errno) }
        if setuid(uid) != 0 { fail("setuid \(uid)", errno) }
        guard uid != 0, !keepValues.isEmpty else { return }
        guard let caps = cap_init() else { fail("cap_init", errno) }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var values = keepValues.map { cap_value_t($0) }
        for flag in [CAP_PERMITTED, CAP_EFFECTIVE, CAP_INHERITABLE] {
            if cap_set_flag(caps, flag, Int32(values.count), &values, CAP_SET) != 0 { fail("cap_set_flag", errno) }
        }
        if cap_set_proc(caps) != 0 { fail("cap_set_proc \(keep.joined(separator: ","))", errno) }
        for v in keepValues where topo_ambient_raise(Int32(v)) != 0 {
            fail("raise ambient capability \(Capabilities.name(of: v))", errno)
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
