import Foundation

/// Tries veth and netem for real when the kernel's module files cannot tell: in a throwaway network
/// namespace, removed again before returning. Used by preflight, so that a host without them is told
/// so (exit 3) before topo creates anything of a profile's.
public struct LinkProbe: Sendable {
    public var runner = CommandRunner()

    public init() {}

    /// Problems found; empty when veth (and netem, if asked) work.
    public func problems(netem: Bool) -> [String] {
        let ns = "topo-probe-\(getpid())"
        let add = runner.run([IPRoute2Links.ip, "netns", "add", ns])
        guard add.status == 0 else {
            return ["cannot create a network namespace to try veth and netem (ip netns add \(ns): \(add.stderr.trimmingCharacters(in: "\n"))); links need CAP_NET_ADMIN and network namespaces"]
        }
        defer { _ = runner.run([IPRoute2Links.ip, "netns", "del", ns]) }
        let veth = runner.run([IPRoute2Links.ip, "-n", ns, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"])
        guard veth.status == 0 else {
            return ["this kernel cannot make veth pairs (ip link add type veth: \(veth.stderr.trimmingCharacters(in: "\n"))); load or build the veth module"]
        }
        guard netem else { return [] }
        let qdisc = runner.run([IPRoute2Links.tc, "-n", ns, "qdisc", "add", "dev", "probe0", "root", "netem", "delay", "1ms"])
        guard qdisc.status == 0 else {
            return ["this kernel has no netem (tc qdisc add ... netem: \(qdisc.stderr.trimmingCharacters(in: "\n"))); load sch_netem or use a kernel with CONFIG_NET_SCH_NETEM"]
        }
        return []
    }
}
