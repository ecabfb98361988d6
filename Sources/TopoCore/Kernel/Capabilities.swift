import CCap

/// Linux capabilities by name (capabilities(7)), and the privilege checks read through libcap.
public enum Capabilities {
    /// Every capability name, in the kernel's numbering order (include/uapi/linux/capability.h).
    public static let all = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// A capability's name by its number; one this table predates is named by number, as the kernel's header would.
    public static func name(of value: Int) -> String {
        all.indices.contains(value) ? all[value] : "capability \(value)"
    }

    /// The capability's number, as cap_value_t.
    public static func value(of name: String) -> Int? { all.firstIndex(of: name) }

    /// Whether this process has `name` in its effective set, read with libcap's cap_get_proc().
    public static func effective(_ name: String) -> Bool {
        guard let v = value(of: name), let caps = cap_get_proc() else { return false }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var flag = CAP_CLEAR
        guard cap_get_flag(caps, cap_value_t(v), CAP_EFFECTIVE, &flag) == 0 else { return false }
        return flag == CAP_SET
    }
}
