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

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The spec for a planned workload.
    public static func forWorkload(_ w: PlannedWorkload, profile: String, cgroupProcs: String, logPath: String?, hostsFile: String? = nil) -> LaunchSpec {
        var env = ["PATH=\(defaultPath)", "TOPO_PROFILE=\(profile)", "TOPO_WORKLOAD=\(w.name)"]
        if let ns = w.netns {
            env.append("TOPO_NETNS=\(ns)")
            env.append("TOPO_ADDRESSES=\(w.addresses.joined(separator: ","))")
            for peer in w.peers { env.append("TOPO_PEER_\(peer.name.uppercased().replacingOccurrences(of: "-", with: "_"))=\(peer.address)") }
        }
        for entry in w.run?.env ?? [] {
            let name = entry.prefix { $0 != "=" }
            env.removeAll { $0.hasPrefix(name + "=") }
            env.append(entry)
        }
        return LaunchSpec(command: w.run?.command ?? [], environment: env, workdir: w.run?.workdir, user: w.run?.user,
                          capabilities: w.run?.capabilities ?? [], cgroupProcs: cgroupProcs, cpus: w.cpus,
                          memoryPolicy: w.memoryPolicy, policyNodes: w.policyNodes, logPath: logPath, newSession: true,
                          netns: w.netns.map { "\(Links.netnsDirectory)/\($0)" }, hostsFile: hostsFile)
    }
}
