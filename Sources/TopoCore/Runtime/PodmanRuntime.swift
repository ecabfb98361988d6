import Foundation

/// Container workloads from images in podman's own storage. podman is given the plan in its own options
/// (`runArguments`, a pure function): cgroups made directly in cgroupfs below the workload's cgroup
/// (never through systemd, which would put them elsewhere), the workload's CPUs, nodes and limits, its
/// network namespace by path, exactly its capabilities, no new privileges, its hosts file. It is
/// started with the workload's CPUs and memory policy set on the starting thread, so the container
/// inherits both, as under crun and runc; the container's output goes to the workload's log in
/// podman's k8s-file format.
///
/// The workload cgroup above podman's `libpod-ID` holds every limit of the plan, so a limit podman has
/// no option for (`cpu.weight`, `memory.high`, `io.max`) is still enforced from above. podman leaves a
/// `conmon` cgroup beside its container; it goes with the workload's cgroup.
public struct PodmanRuntime: WorkloadRuntime {
    public var binary: String
    public var cgroups: any CgroupManager
    public var state: StateStore
    public var runner = CommandRunner()
    /// The topo binary bound into each container for `verify --active`'s probes.
    public var executable: String
    var support: ContainerSupport { ContainerSupport(runtime: .podman, cgroups: cgroups, state: state) }

    public static let defaultBinary = "/usr/bin/podman"

    public init(
        binary: String = Self.defaultBinary, cgroups: any CgroupManager, state: StateStore,
        executable: String = Spawn.selfExecutable
    ) {
        self.binary = binary
        self.cgroups = cgroups
        self.state = state
        self.executable = executable
    }

    public var probeExecutable: String? { ContainerSupport.probePath }

    /// An image in podman's storage: its files are known once the container has its root.
    public func filesystemRoot(_ l: LaunchResource) -> String? { nil }

    /// podman's global options: cgroups made in cgroupfs, where topo puts them, and events kept in a
    /// file (a host without journald still works).
    static let globalOptions = ["--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    func podman(_ arguments: [String]) -> [String] { [binary] + Self.globalOptions + arguments }

    // MARK: the plan in podman's options

    /// `podman run`'s arguments after the global options, up to and including the image and command.
    public static func runArguments(
        _ l: LaunchResource, image: String, uid: UInt32, gid: UInt32, nofile: UInt64, probe: String?
    ) -> [String] {
        var a = [
            "run", "--detach", "--name", OCIBundle.containerID(l), "--label", "io.topo.profile=\(l.profile)", "--pull",
            "never",
            "--cgroup-parent", "/\(l.cgroup)", "--cgroupns", "private",
        ]
        a += limitArguments(l.settings ?? [])
        a += ["--network", l.netns.map { "ns:\(NetlinkLinks.netnsDirectory)/\($0)" } ?? "host"]
        a += ["--cap-drop", "ALL"] + l.capabilities.sorted().flatMap { ["--cap-add", $0] }
        a += [
            "--security-opt", "no-new-privileges", "--user", "\(uid):\(gid)", "--read-only", "--hostname", l.workload,
            "--ulimit", "nofile=\(nofile):\(nofile)",
        ]
        a += ["--log-driver", "k8s-file", "--log-opt", "path=\(l.logPath ?? "/dev/null")"]
        a += l.environment.flatMap { ["--env", $0] }
        if let workdir = l.workdir { a += ["--workdir", workdir] }
        if let hosts = l.hostsFile { a += ["--volume", "\(hosts):/etc/hosts:ro"] }
        if let probe { a += ["--volume", "\(probe):\(ContainerSupport.probePath):ro"] }
        return a + ["--", image] + l.command
    }

    /// The workload cgroup's settings podman has an option for. The rest are enforced from above.
    static func limitArguments(_ settings: [CgroupSetting]) -> [String] {
        settings.flatMap { s -> [String] in
            switch s {
            case .cpus(let c): ["--cpuset-cpus", c.description]
            case .mems(let m): ["--cpuset-mems", m.description]
            case .memoryMax(.value(let b)): ["--memory", String(b.value)]
            case .pidsMax(.value(let n)): ["--pids-limit", String(n)]
            case .cpuMax(let quota, let period):
                ["--cpu-quota", String(quota.microseconds), "--cpu-period", String(period.microseconds)]
            default: []
            }
        }
    }

    /// Images are named in podman's storage; a root filesystem directory, the host root or an OCI
    /// image layout are crun's and runc's.
    static func imageProblem(_ image: String?) -> String? {
        guard let image, image != "/" else {
            return
                "runtime podman runs an image from its storage: set image: to one (podman images lists them), or use runtime: crun or runc for the host root"
        }
        if image.hasPrefix("-") || image.contains(where: { $0.isWhitespace }) {
            return "image \(image) is not an image name"
        }
        if OCIRuntime.layout(image) != nil || image.hasPrefix("/") {
            return
                "image \(image) is a path; runtime podman runs an image from its storage (podman pull oci:DIR:TAG copies a layout in), and crun or runc run a layout or a root filesystem directory as it is"
        }
        return nil
    }

    public func problems(_ l: LaunchResource) -> [String] {
        guard Sys.access(binary, X_OK) else {
            return ["runtime podman is not installed (\(binary) is missing): apt-get install podman"]
        }
        if let why = Self.imageProblem(l.image) { return [why] }
        let r = runner.run(podman(["image", "exists", l.image!]))
        if r.status == 1 {
            return ["image \(l.image!) is not in podman's storage: podman pull \(l.image!), or podman load -i FILE"]
        }
        if r.status != 0 {
            return [
                "podman image exists \(l.image!) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            ]
        }
        return []
    }

    // MARK: apply

    public func startedBy(_ l: LaunchResource) -> String {
        "start workload \(l.workload) as container \(OCIBundle.containerID(l)): podman run \(l.image ?? "?") \(l.commandLine), its cgroup below \(cgroups.path(l.cgroup))"
    }

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .launch(let l) = r else {
                throw TopoFailure(.applyFailed, "the podman runtime does not make \(r.summary)")
            }
            return Facts(pid: try start(container: l))
        }
    }

    func start(container l: LaunchResource) throws(TopoFailure) -> Int32 {
        let id = OCIBundle.containerID(l)
        func failed(_ what: String) -> TopoFailure {
            TopoFailure(.applyFailed, "container \(id) (podman) for workload \(l.workload): \(what)")
        }
        if let why = Self.imageProblem(l.image) { throw failed(why) }
        let user: (uid: UInt32, gid: UInt32)
        switch OCIBundle.user(l.user) {
        case .success(let u): user = u
        case .failure(let f): throw failed(f.message)
        }
        let argv = podman(
            Self.runArguments(
                l, image: l.image!, uid: user.uid, gid: user.gid, nofile: ContainerSupport.openFilesLimit(),
                probe: executable))
        let log = l.logPath ?? "/dev/null"
        let before = Sys.stat(log).map { Int($0.st_size) } ?? 0
        let rootBefore = support.rootControllers()
        let status = ContainerSupport.runWaiting(argv, output: log, placement: l)
        try support.recordControllers(enabledSince: rootBefore)
        guard status == 0 else {
            throw failed("podman run exited \(status): \(ContainerSupport.said(log, after: before))")
        }
        let out = runner.run(podman(["inspect", "--format", "{{.State.Pid}}", id]))
        guard out.status == 0, let pid = Int32(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else {
            throw failed("podman inspect: \(out.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if let problem = ContainerSupport.policyProblem(pid, l) { throw failed(problem) }
        return pid
    }

    // MARK: undo

    /// podman removes the container (`rm --force` stops it first), then anything left in the
    /// workload's cgroup is killed as for a process workload; podman's `conmon` cgroup goes with the
    /// workload's cgroup. Only a container carrying the profile's label is removed.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .launch(let l) = resource else { return .nothing }
        let id = OCIBundle.containerID(l)
        var removed = false
        if Sys.access(binary, X_OK) {
            let label = runner.run(
                podman(["container", "inspect", "--format", "{{index .Config.Labels \"io.topo.profile\"}}", id]))
            if label.status == 0 {
                guard label.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == l.profile else {
                    return .leftAlone(
                        "podman container \(id) does not carry io.topo.profile=\(l.profile): not topo's, left alone")
                }
                let r = runner.run(podman(["rm", "--force", "--time", "0", id]))
                if r.status != 0 && runner.run(podman(["container", "exists", id])).status == 0 {
                    throw TopoFailure(
                        .hostCannot,
                        "podman rm --force \(id) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
                    )
                }
                removed = true
            }
        }
        try cgroups.stopAll(in: l.cgroup, owner: l.profile)
        return removed ? .removed("podman container \(id)") : .nothing
    }

    // MARK: observe, exec

    public func observe(_ resource: Resource) -> Observation { ProcessRuntime.observeLaunch(resource, cgroups) }

    func execArguments(_ l: LaunchResource, interactive: Bool) -> Result<[String], TopoFailure> {
        OCIBundle.user(l.user).map { user in
            var a = ["exec", "--user", "\(user.uid):\(user.gid)"]
            if interactive { a += ["--interactive"] }
            a += l.environment.flatMap { ["--env", $0] }
            if let workdir = l.workdir { a += ["--workdir", workdir] }
            return podman(a + [OCIBundle.containerID(l)] + l.command)
        }
    }

    public func runInForeground(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        execArguments(launch, interactive: true).flatMap { argv in
            ExecStreams.run { stdio in
                // On exec's own pseudo-terminal podman is asked for one in the container (--tty) and relays it.
                let argv =
                    stdio.controllingTerminal ? argv.flatMap { $0 == "--interactive" ? [$0, "--tty"] : [$0] } : argv
                return Spawn.child(argv, output: nil, detached: false, stdio: stdio).mapError {
                    TopoFailure(.hostCannot, $0.description)
                }
            }
        }
    }

    public func start(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        execArguments(launch, interactive: false).flatMap { argv in
            Spawn.child(argv, output: launch.logPath ?? "/dev/null", detached: true).mapError {
                TopoFailure(.hostCannot, $0.description)
            }
        }
    }
}
