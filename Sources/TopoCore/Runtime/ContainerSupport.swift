import CNuma
import Foundation

/// What every container runtime front-end (crun and runc through `OCIRuntime`, podman through
/// `PodmanRuntime`) does the same way around its own start: start the runtime under the workload's
/// CPUs and memory policy so the container inherits both, record the controllers the runtime enables
/// at the cgroup root, and read the policy back from the container's process.
struct ContainerSupport: Sendable {
    var runtime: Runtime
    var cgroups: any CgroupManager
    var state: StateStore

    /// Where the running topo binary is seen inside a container (bound read-only over the container's
    /// own `/tmp`), so `verify --active` can start its probes there whatever the image holds.
    static let probePath = "/tmp/.topo/topo"

    /// Runs `argv` with stdin /dev/null and stdout and stderr appended to `output`, in a session of its
    /// own, on the launch's CPUs under its memory policy (set on this thread for the spawn, then put
    /// back), and waits for it: its exit status, 127 when it could not start.
    static func runWaiting(_ argv: [String], output: String, placement l: LaunchResource) -> Int32 {
        let started = Spawn.child(argv, output: output, detached: true) { spawn in
            NUMALibrary.onThisThread(cpus: l.cpus, policy: l.memoryPolicy, nodes: l.policyNodes, spawn)
        }
        guard case .success(let pid) = started else { return 127 }
        return Spawn.wait(pid)
    }

    /// The open-files limit topo has, which a container gets as a process workload would inherit it.
    static func openFilesLimit() -> UInt64 {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return UInt64(limit.rlim_cur)
    }

    /// A runtime's failure in the words it wrote to the log after `offset`, on one line.
    static func said(_ log: String, after offset: Int) -> String {
        let tail = ((try? Sys.read(log)) ?? "").utf8.dropFirst(offset)
        return String(decoding: tail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n", with: "; ")
    }

    func rootControllers() -> Set<String> {
        Set(
            (cgroups.read("", "cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(
                String.init))
    }

    /// The runtimes enable every controller they know in each ancestor's `cgroup.subtree_control`, up to
    /// the cgroup root (runc and podman add rdma and misc): those at the root go to the cgroup manager's
    /// record, which the last `down` turns off again, as it does the ones topo enabled itself.
    func recordControllers(enabledSince before: Set<String>) throws(TopoFailure) {
        let added = rootControllers().subtracting(before)
        guard !added.isEmpty else { return }
        do { try cgroups.recordRootControllers(added) } catch {
            throw TopoFailure(
                error.status,
                "record the controllers \(runtime.rawValue) enabled at the cgroup root (\(added.sorted().joined(separator: " "))): \(error.message)"
            )
        }
    }

    /// The runtimes ignore `linux.memoryPolicy`; the container inherits the policy it was started
    /// under. Read back: a process with another policy is why the apply fails; nil when it matches.
    static func policyProblem(_ pid: Int32, _ l: LaunchResource) -> String? {
        let expected = Verifier.numaMapsPolicy(l.memoryPolicy, l.policyNodes)
        guard let policy = Verifier.memoryPolicy(of: pid), !expected.contains(policy) else { return nil }
        return "its process \(pid) has memory policy \(policy), not \(expected[0])"
    }
}
