/// Everything the launcher needs to start a workload process, in topo's types; `Launcher.start` turns
/// it into the values the child uses between clone and exec.
public struct LaunchSpec: Equatable, Sendable {
    public var command: [String]
    public var environment: [String]  // NAME=value
    /// The directory the command starts in; `/` when the profile names none.
    public var workdir: String?
    public var user: String?
    /// Capabilities the workload keeps, in all five sets; every other one is dropped from all of them.
    public var capabilities: [String]
    /// The cgroup's `cgroup.procs`: its directory is where the child starts (CLONE_INTO_CGROUP), or the
    /// file it writes itself into on a kernel without clone3.
    public var cgroupProcs: String
    /// Where the cgroup v2 hierarchy is mounted: the workload sees its own cgroup there, read-only (and
    /// it is the root of its cgroup namespace), so it can neither change its limits nor leave.
    public var cgroupMount: String?
    /// Paths the workload sees read-only (topo's state, the namespaces' hosts files): a root workload
    /// owns them otherwise.
    public var readOnly: [String]
    public var cpus: CPUSet
    public var memoryPolicy: MemoryPolicy
    public var policyNodes: CPUSet
    /// stdout and stderr go here (appended); nil keeps the caller's.
    public var logPath: String?
    /// Start a new session (always, for a workload; `topo exec` too, whose terminal is a pty of its own).
    public var newSession: Bool
    /// Keep the caller's stdin (`topo exec`); otherwise stdin is /dev/null.
    public var keepStdin: Bool
    /// `topo exec`'s streams (`ExecStreams`): never the caller's terminal.
    public var stdio: ExecStreams.Stdio?
    /// The workload's network namespace (`/run/netns/NAME`), entered before exec.
    public var netns: String?
    /// A hosts file naming the workload's peers, bind-mounted over /etc/hosts in its own mount namespace.
    public var hostsFile: String?

    /// The spec for a planned launch: the cgroup joined through `cgroupProcs` (the cgroup manager's
    /// file), the namespace by its path under `ip netns`'s directory.
    public init(
        _ l: LaunchResource, cgroupProcs: String, cgroupMount: String?, readOnly: [String], newSession: Bool,
        keepStdin: Bool
    ) {
        command = l.command
        environment = l.environment
        workdir = l.workdir
        user = l.user
        capabilities = l.capabilities
        self.cgroupProcs = cgroupProcs
        self.cgroupMount = cgroupMount
        self.readOnly = readOnly
        cpus = l.cpus
        memoryPolicy = l.memoryPolicy
        policyNodes = l.policyNodes
        logPath = l.logPath
        self.newSession = newSession
        self.keepStdin = keepStdin
        netns = l.netns.map { "\(NetlinkLinks.netnsDirectory)/\($0)" }
        hostsFile = l.hostsFile
    }
}
