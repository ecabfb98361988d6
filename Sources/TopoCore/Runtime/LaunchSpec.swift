/// Everything the launcher needs to turn itself into a workload process. Written by apply (or exec)
/// as JSON; read by `topo __launch` after it was exec'd, so no Swift runs between fork and exec.
public struct LaunchSpec: Codable, Equatable, Sendable {
    public var command: [String]
    public var environment: [String]  // NAME=value
    public var workdir: String?
    public var user: String?
    /// Capabilities the workload keeps; every other one is dropped from its bounding set.
    public var capabilities: [String]
    /// The cgroup's `cgroup.procs`; the launcher moves itself there before it execs.
    public var cgroupProcs: String
    public var cpus: CPUSet
    public var memoryPolicy: MemoryPolicy
    public var policyNodes: CPUSet
    /// stdout and stderr go here (appended); nil keeps the launcher's own.
    public var logPath: String?
    /// Start a new session (a workload that outlives topo), or stay in the caller's (topo exec).
    public var newSession: Bool
    /// The workload's network namespace (`/run/netns/NAME`), entered before exec.
    public var netns: String?
    /// A hosts file naming the workload's peers, bind-mounted over /etc/hosts in a private mount namespace.
    public var hostsFile: String?

    /// The spec for a planned launch: the cgroup joined through `cgroupProcs` (the cgroup manager's
    /// file), the namespace by its path under `ip netns`'s directory.
    public init(_ l: LaunchResource, cgroupProcs: String, newSession: Bool) {
        self.init(command: l.command, environment: l.environment, workdir: l.workdir, user: l.user,
                  capabilities: l.capabilities, cgroupProcs: cgroupProcs, cpus: l.cpus, memoryPolicy: l.memoryPolicy,
                  policyNodes: l.policyNodes, logPath: l.logPath, newSession: newSession,
                  netns: l.netns.map { "\(IPRoute2Links.netnsDirectory)/\($0)" }, hostsFile: l.hostsFile)
    }

    public init(command: [String], environment: [String], workdir: String?, user: String?, capabilities: [String],
                cgroupProcs: String, cpus: CPUSet, memoryPolicy: MemoryPolicy, policyNodes: CPUSet, logPath: String?,
                newSession: Bool, netns: String?, hostsFile: String?) {
        self.command = command
        self.environment = environment
        self.workdir = workdir
        self.user = user
        self.capabilities = capabilities
        self.cgroupProcs = cgroupProcs
        self.cpus = cpus
        self.memoryPolicy = memoryPolicy
        self.policyNodes = policyNodes
        self.logPath = logPath
        self.newSession = newSession
        self.netns = netns
        self.hostsFile = hostsFile
    }
}
