/// The `config.json` of the OCI bundle topo writes for a container workload (OCI runtime spec 1.0.2),
/// built as a value from the launch alone. Only what the spec needs and topo decides is here.
///
/// `linux.resources` is left out on purpose: the workload's cgroup, which the container's cgroup sits
/// below, already holds every limit of the plan, so the kernel enforces them from above whatever the
/// runtime writes; a runtime given limits writes its own translation of them into the child (and, given
/// the workload cgroup itself, overwrites the plan's — measured in the lab). `linux.memoryPolicy` is
/// left out too: crun 1.8 and runc 1.1 ignore it silently; topo sets the policy before it execs the
/// runtime, and the container inherits it.
public struct OCIConfig: Codable, Equatable, Sendable {
    public var ociVersion = "1.0.2"
    public var process: Process
    public var root: Root
    public var hostname: String
    public var mounts: [Mount]
    public var linux: Linux
    /// topo's mark: `io.topo.profile` and a nonce (`io.topo.mark`) the journal keeps, so that undo
    /// deletes only a container it made.
    public var annotations: [String: String]?

    public struct Process: Codable, Equatable, Sendable {
        public var terminal = false
        public var user: User
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var capabilities: Capabilities
        public var rlimits: [Rlimit]
        public var noNewPrivileges = true
    }

    public struct User: Codable, Equatable, Sendable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]?
    }

    public struct Capabilities: Codable, Equatable, Sendable {
        public var bounding: [String]
        public var effective: [String]
        public var inheritable: [String]
        public var permitted: [String]
        public var ambient: [String]
    }

    public struct Rlimit: Codable, Equatable, Sendable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64
    }

    public struct Root: Codable, Equatable, Sendable {
        public var path: String
        public var readonly: Bool
    }

    public struct Mount: Codable, Equatable, Sendable {
        public var destination: String
        public var type: String
        public var source: String
        public var options: [String]
    }

    public struct Linux: Codable, Equatable, Sendable {
        public var cgroupsPath: String
        public var namespaces: [Namespace]
        public var maskedPaths: [String]
        public var readonlyPaths: [String]
    }

    public struct Namespace: Codable, Equatable, Sendable {
        public var type: String
        public var path: String?
    }
}

public enum OCIBundle {
    /// The container's cgroup: a child of the workload's, never the workload's own (a runtime given
    /// that one overwrites its limits and deletes it on `delete`). Absolute, as runtimes take it.
    public static func cgroupsPath(_ l: LaunchResource) -> String { "/\(l.cgroup)/ctr" }

    /// A container id that no other profile's can be: names hold no dots.
    public static func containerID(_ l: LaunchResource) -> String { "topo.\(l.profile).\(l.workload)" }

    /// The paths runc's default spec masks and makes read-only.
    static let maskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    ]
    static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// The bundle's configuration. `rootfs` is the root the container sees (read-only); `uid`/`gid`
    /// the user it runs as; `nofile` the open-files limit a process workload would inherit; `probe` the
    /// topo binary, bound read-only at `ContainerSupport.probePath` inside the container's own /tmp for
    /// `verify --active` (an image need not hold topo, and a host path under /tmp is hidden there).
    /// `hostRoot`: the root is a copy of the host's `/`, whose /run (systemd's private bus, the runtimes'
    /// sockets) gets a fresh tmpfs over it, as a root process workload's does.
    public static let profileAnnotation = "io.topo.profile"
    public static let markAnnotation = "io.topo.mark"

    public static func config(
        _ l: LaunchResource, rootfs: String, uid: UInt32, gid: UInt32, nofile: UInt64, probe: String? = nil,
        hostRoot: Bool = false,
        mark: String? = nil
    ) -> OCIConfig {
        let caps = l.capabilities.sorted()
        let capabilities = OCIConfig.Capabilities(
            bounding: caps, effective: caps, inheritable: caps, permitted: caps, ambient: uid == 0 ? [] : caps)
        var mounts = [
            OCIConfig.Mount(
                destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            OCIConfig.Mount(
                destination: "/dev", type: "tmpfs", source: "tmpfs",
                options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            OCIConfig.Mount(
                destination: "/dev/pts", type: "devpts", source: "devpts",
                options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            OCIConfig.Mount(
                destination: "/dev/shm", type: "tmpfs", source: "shm",
                options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            OCIConfig.Mount(
                destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            // A fresh sysfs needs a network namespace of the container's own; without a link the
            // workload shares the host's, and the kernel refuses it (runc: EBUSY): the host's, bound read-only.
            l.netns == nil
                ? OCIConfig.Mount(
                    destination: "/sys", type: "bind", source: "/sys",
                    options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
                : OCIConfig.Mount(
                    destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            OCIConfig.Mount(
                destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
            // The root is read-only; a benchmark still gets a scratch /tmp of its own.
            OCIConfig.Mount(
                destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]),
        ]
        if hostRoot {
            mounts.append(
                OCIConfig.Mount(
                    destination: "/run", type: "tmpfs", source: "tmpfs",
                    options: ["nosuid", "nodev", "mode=755", "size=65536k"]))
        }
        if let probe {
            mounts.append(
                OCIConfig.Mount(
                    destination: ContainerSupport.probePath, type: "bind", source: probe,
                    options: ["bind", "ro", "nosuid", "nodev"]))
        }
        if let hosts = l.hostsFile {
            mounts.append(
                OCIConfig.Mount(
                    destination: "/etc/hosts", type: "bind", source: hosts,
                    options: ["bind", "ro", "nosuid", "nodev", "noexec"]))
        }
        var namespaces = ["pid", "ipc", "uts", "mount", "cgroup"].map { OCIConfig.Namespace(type: $0, path: nil) }
        if let netns = l.netns {
            namespaces.append(OCIConfig.Namespace(type: "network", path: "\(NetlinkLinks.netnsDirectory)/\(netns)"))
        }
        return OCIConfig(
            process: OCIConfig.Process(
                user: OCIConfig.User(uid: uid, gid: gid, additionalGids: nil), args: l.command, env: l.environment,
                cwd: l.workdir ?? "/", capabilities: capabilities,
                rlimits: [OCIConfig.Rlimit(type: "RLIMIT_NOFILE", hard: nofile, soft: nofile)]),
            root: OCIConfig.Root(path: rootfs, readonly: true), hostname: l.workload, mounts: mounts,
            linux: OCIConfig.Linux(
                cgroupsPath: cgroupsPath(l), namespaces: namespaces, maskedPaths: maskedPaths,
                readonlyPaths: readonlyPaths),
            annotations: mark.map { [profileAnnotation: l.profile, markAnnotation: $0] })
    }

    /// The user a container runs as, from the profile's `user:` (`uid[:gid]` or a name from this host's
    /// user database); `RunSpec.defaultUser` when none is given, as for a process workload.
    public static func user(_ spec: String?) -> Result<(uid: UInt32, gid: UInt32), TopoFailure> {
        let spec = spec ?? RunSpec.defaultUser
        let parts = spec.split(separator: ":")
        if let uid = parts.first.flatMap({ UInt32($0) }) {
            let gid = parts.count > 1 ? UInt32(parts[1]) : (Sys.user(id: uid)?.gid ?? uid)
            guard let gid else { return .failure(TopoFailure(.invalid, "user \(spec): the group is not a number")) }
            guard uid != UInt32.max, gid != UInt32.max else {
                return .failure(
                    TopoFailure(.invalid, "user \(spec): the id 4294967295 means \"unchanged\" to the kernel"))
            }
            return .success((uid, gid))
        }
        guard let pw = Sys.user(named: spec) else {
            return .failure(TopoFailure(.hostCannot, "no user named \(spec) on this host"))
        }
        return .success((pw.uid, pw.gid))
    }
}
