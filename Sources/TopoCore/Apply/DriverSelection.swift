import Foundation

/// Which drivers make this host's objects, and where: chosen once, in `choose`, from the command line,
/// the environment and the host. The plan's `Layout` and the `Drivers` both derive from this one
/// value, so a plan never puts its cgroups where the chosen cgroup manager does not look.
public struct DriverSelection: Equatable, Sendable {
    /// topo's state (`StateStore`): `/run/topo`.
    public var stateRoot: String
    /// The cgroup v2 hierarchy (its mount point, another mount of it, or a cgroup below it).
    public var cgroupRoot: String
    /// Who owns the cgroup tree above topo's subtree.
    public var manager: CgroupManagerKind
    /// Per-namespace hosts files (iproute2's convention).
    public var etcNetns: String
    /// The topo binary the container runtimes bind in for the probes.
    public var executable: String
    /// Where the host tuner reads and writes procfs and sysfs.
    public var hostRoot: String

    public init(
        stateRoot: String = Layout.standard.stateRoot, cgroupRoot: String = CgroupFS().root,
        manager: CgroupManagerKind = .cgroupfs,
        etcNetns: String = Layout.standard.etcNetns, executable: String = Spawn.selfExecutable, hostRoot: String = "/"
    ) {
        self.stateRoot = stateRoot
        self.cgroupRoot = cgroupRoot
        self.manager = manager
        self.etcNetns = etcNetns
        self.executable = executable
        self.hostRoot = hostRoot
    }

    /// The one choice: each path from its option, else its variable (`TOPO_STATE_DIR`,
    /// `TOPO_CGROUP_ROOT`, `TOPO_CGROUP_MANAGER`; empty counts as unset), else the default; the manager
    /// as asked, or with `auto` systemd where it is PID 1 (`detect`) and no cgroup root was given (a
    /// given root is topo's to write). A path that is relative, has `..` or is over 1024 bytes, or a
    /// manager other than auto, systemd and cgroupfs, is a usage error naming where it came from.
    public static func choose(
        stateDir: String?, cgroupRoot: String?, manager: String?, environment: [String: String],
        detect: () -> CgroupManagerKind = { CgroupManagerKind.detect() }
    ) -> Result<DriverSelection, TopoFailure> {
        func variable(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        for (what, value) in [("--cgroup-manager", manager), ("TOPO_CGROUP_MANAGER", variable("TOPO_CGROUP_MANAGER"))] {
            if let value, value != "auto", CgroupManagerKind(rawValue: value) == nil {
                return .failure(TopoFailure(.invalid, "\(what) takes auto, systemd or cgroupfs, not \"\(value)\""))
            }
        }
        for (what, value) in [
            ("--state-dir", stateDir), ("TOPO_STATE_DIR", variable("TOPO_STATE_DIR")),
            ("--cgroup-root", cgroupRoot), ("TOPO_CGROUP_ROOT", variable("TOPO_CGROUP_ROOT")),
        ] {
            guard let value else { continue }
            guard value.hasPrefix("/"), value.utf8.count <= 1024, !value.split(separator: "/").contains("..") else {
                return .failure(
                    TopoFailure(
                        .invalid, "\(what) must be an absolute path without '..' (at most 1024 bytes), not \"\(value)\""
                    ))
            }
        }
        let givenRoot = cgroupRoot ?? variable("TOPO_CGROUP_ROOT")
        let asked = manager ?? variable("TOPO_CGROUP_MANAGER") ?? "auto"
        let kind = CgroupManagerKind(rawValue: asked) ?? (givenRoot == nil ? detect() : .cgroupfs)
        return .success(
            DriverSelection(
                stateRoot: stateDir ?? variable("TOPO_STATE_DIR") ?? Layout.standard.stateRoot,
                cgroupRoot: givenRoot ?? CgroupFS().root, manager: kind))
    }

    public var state: StateStore { StateStore(root: stateRoot) }

    /// Where the plan puts what these drivers make.
    public var layout: Layout { Layout(stateRoot: stateRoot, etcNetns: etcNetns, manager: manager) }

    /// The drivers themselves (`Drivers.host`).
    public var drivers: Drivers { Drivers.host(self) }
}
