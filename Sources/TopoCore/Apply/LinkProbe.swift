import Foundation

/// Tries veth and netem for real when the kernel's module files cannot tell: in a throwaway network
/// namespace, made and removed over rtnetlink before returning. Used by preflight, so that a host
/// without them is told so (exit 3) before topo creates anything of a profile's.
public struct LinkProbe: Sendable {
    public init() {}

    /// Problems found; empty when veth (and netem, if asked) work.
    public func problems(netem: Bool) -> [String] {
        let probe = NamespaceResource(name: "topo-probe-\(getpid())", workload: "probe", owner: "probe")
        if case .failure(let e) = NetlinkLinks.createNamespace(probe) {
            return [
                "cannot create a network namespace to try veth and netem (\(e)); links need CAP_NET_ADMIN and network namespaces"
            ]
        }
        let path = "\(NetlinkLinks.netnsDirectory)/\(probe.name)"
        defer { _ = try? NetlinkLinks().undo(.namespace(probe), done: true, facts: Facts()) }
        do throws(TopoFailure) {
            let socket = try RouteSocket(netns: path)
            do throws(TopoFailure) {
                try socket.addVeth("probe0", in: path, peer: "probe1", in: path, mtu: 1500)
            } catch {
                return ["this kernel cannot make veth pairs (\(error)); load or build the veth module"]
            }
            guard netem else { return [] }
            do throws(TopoFailure) {
                try socket.addNetem(
                    Netem(delay: Duration(nanoseconds: 1_000_000), limit: 1000, limitChosen: true), to: "probe0")
            } catch {
                return ["this kernel has no netem (\(error)); load sch_netem or use a kernel with CONFIG_NET_SCH_NETEM"]
            }
        } catch {
            return ["cannot try veth and netem: \(error)"]
        }
        return []
    }
}
