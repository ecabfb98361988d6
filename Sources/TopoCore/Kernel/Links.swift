import CTopoShim
import Foundation

/// The fallback link driver, over iproute2 in batch mode (`TOPO_LINK_DRIVER=iproute2`; `NetlinkLinks`
/// is the default): one `ip -batch` for every namespace and veth pair of the batch in the root
/// namespace, then one `ip -n NS -batch` and one `tc -n NS -batch` per namespace (iproute2 takes no
/// per-line namespace), all namespaces at once. Arguments come from pure functions; the runner only
/// executes them. Undo and observe are the netlink driver's, in-process.
public struct IPRoute2Links: LinkDriver {
    public var runner = CommandRunner()
    public init() {}

    public static let ip = "/usr/sbin/ip"
    public static let tc = "/usr/sbin/tc"

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        var results: [Result<Facts, TopoFailure>?] = Array(repeating: nil, count: batch.count)
        let namespaces = batch.enumerated().compactMap { i, r -> (Int, NamespaceResource)? in if case .namespace(let n) = r { (i, n) } else { nil } }
        let veths = batch.enumerated().compactMap { i, r -> (Int, VethResource)? in if case .veth(let v) = r { (i, v) } else { nil } }
        let addresses = batch.compactMap { if case .address(let a) = $0 { a } else { nil } }
        let qdiscs = batch.compactMap { if case .qdisc(let q) = $0 { q } else { nil } }
        if let other = batch.first(where: { ![.namespace, .veth, .address, .qdisc].contains($0.kind) }) {
            results[0] = .failure(TopoFailure(.applyFailed, "the link driver does not make \(other.summary)"))
            return results
        }
        // 1. The root namespace: every namespace, then every veth pair straight into its two namespaces.
        do {
            try Self.runBatch(runner, [Self.ip], Self.createBatch(namespaces.map(\.1), veths.map(\.1)))
        } catch {
            // The batch stopped part-way: the namespaces it did add are topo's (none existed before apply,
            // and `netns add` refuses one that does); mark them, so that the rollback may delete them.
            for (_, n) in namespaces where NetlinkLinks.exists(n.name) {
                _ = runner.run([Self.ip, "-n", n.name, "link", "set", "lo", "alias", NetlinkLinks.mark(n.owner)])
            }
            // Only a batch with a namespace or veth runs this step, so one of them is first.
            results[min(namespaces.first?.0 ?? batch.count - 1, veths.first?.0 ?? batch.count - 1)] = .failure(error)
            return results
        }
        for (i, n) in namespaces { results[i] = .success(Facts(inode: NetlinkLinks.inode(n.name))) }
        for (i, _) in veths { results[i] = .success(Facts()) }
        // 2. Inside each namespace, all at once: loopback, addresses and links up; then its qdiscs.
        var names: [String] = []
        for n in namespaces.map(\.1.name) + addresses.map(\.netns) + qdiscs.map(\.netns) where !names.contains(n) { names.append(n) }
        let fresh = Dictionary(namespaces.map { ($0.1.name, $0.1) }, uniquingKeysWith: { a, _ in a })
        let runner = self.runner
        let failures = concurrentMap(names) { ns -> (String, TopoFailure)? in
            do throws(TopoFailure) {
                try Self.runBatch(runner, [Self.ip, "-n", ns], Self.configureBatch(ns, fresh: fresh[ns], addresses.filter { $0.netns == ns }))
                try Self.runBatch(runner, [Self.tc, "-n", ns], Self.qdiscBatch(qdiscs.filter { $0.netns == ns }))
                return nil
            } catch { return (ns, error) }
        }
        let failed = Dictionary(failures.compactMap { $0 }, uniquingKeysWith: { a, _ in a })
        for (i, r) in batch.enumerated() {
            let ns: String
            switch r {
            case .address(let a): ns = a.netns
            case .qdisc(let q): ns = q.netns
            case .namespace(let n): ns = n.name
            default: continue
            }
            // A namespace's batch failing is charged to the first of its resources: the namespace itself
            // (its loopback is set up there) or its first address.
            if let f = failed[ns] {
                let first = batch.firstIndex { s in
                    switch s {
                    case .namespace(let n): n.name == ns
                    case .address(let a): a.netns == ns
                    case .qdisc(let q): q.netns == ns
                    default: false
                    }
                }
                results[i] = i == first ? .failure(f) : nil
            } else if case .namespace = r {
                continue  // marked after step 1
            } else {
                results[i] = .success(Facts())
            }
        }
        return results
    }

    /// Root-namespace batch: the namespaces, then each veth pair created straight into its two namespaces.
    /// Equivalent to `ip netns add NS` and `ip link add to-B netns NS-A mtu M type veth peer name to-A netns NS-B mtu M`.
    public static func createBatch(_ namespaces: [NamespaceResource], _ veths: [VethResource]) -> [String] {
        namespaces.map { "netns add \($0.name)" } + veths.map { v in
            let a = v.ends[0], b = v.ends[1]
            return "link add \(a.interface) netns \(a.netns) mtu \(v.mtu) type veth peer name \(b.interface) netns \(b.netns) mtu \(v.mtu)"
        }
    }

    /// Inside one namespace: for a namespace topo just made, first its owner mark (the loopback's alias)
    /// and loopback up; then each address, each interface up.
    public static func configureBatch(_ netns: String, fresh: NamespaceResource?, _ addresses: [AddressResource]) -> [String] {
        (fresh.map { ["link set lo alias \(NetlinkLinks.mark($0.owner))", "link set lo up"] } ?? [])
            + addresses.flatMap { ["addr add \($0.address) dev \($0.interface)", "link set \($0.interface) up"] }
    }

    /// Inside one namespace: a netem root qdisc on each shaped interface.
    public static func qdiscBatch(_ qdiscs: [QdiscResource]) -> [String] {
        qdiscs.map { (["qdisc", "add", "dev", $0.interface, "root"] + netemArguments($0.netem)).joined(separator: " ") }
    }

    /// `netem ...` in tc's order (tc-netem(8)). A uniform jitter is netem's default and has no table to name.
    public static func netemArguments(_ n: Netem) -> [String] {
        var args = ["netem", "limit", String(n.limit)]
        if let delay = n.delay {
            args += ["delay", tcTime(delay)]
            if let jitter = n.jitter, jitter > .zero {
                args.append(tcTime(jitter))
                if let d = n.distribution, d != .uniform { args += ["distribution", d.rawValue] }
            }
        }
        if let v = n.corrupt { args += ["corrupt", v.description] }
        if let v = n.duplicate { args += ["duplicate", v.description] }
        if let v = n.loss { args += ["loss", "random", v.description] }
        if let v = n.reorder { args += ["reorder", v.description] }
        if let v = n.rate { args += ["rate", "\(v.bitsPerSecond)bit"] }
        return args
    }

    /// A duration as tc reads it: microseconds, with decimals below one (`200us`, `0.25us`).
    static func tcTime(_ d: Duration) -> String { fixedPoint(d.nanoseconds, decimals: 3) + "us" }

    /// Runs a batch; a failure carries the command and iproute2's own words.
    static func runBatch(_ runner: CommandRunner, _ argv: [String], _ lines: [String]) throws(TopoFailure) {
        guard !lines.isEmpty else { return }
        let r = runner.run(argv + ["-batch", "-"], input: lines.joined(separator: "\n") + "\n")
        guard r.status == 0 else {
            throw TopoFailure(.applyFailed, "\(argv.joined(separator: " ")) -batch failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: "\n").replacingOccurrences(of: "\n", with: "; "))")
        }
    }

    // MARK: undo and observe: in-process, the same as the netlink driver's

    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        try NetlinkLinks().undo(resource, done: done, facts: facts)
    }

    public func observe(_ resource: Resource) -> Observation { NetlinkLinks().observe(resource) }
    public func observe(_ batch: [Resource]) -> [Observation] { NetlinkLinks().observe(batch) }
}

/// What the kernel says about a netem qdisc (its rtnetlink dump), typed, and how it differs from a plan.
public enum NetemReadback {
    /// A netem qdisc as the kernel reports it, in topo's units.
    public struct Kernel: Equatable, Sendable {
        public var delay: Duration
        public var jitter: Duration
        public var rate: BitRate
        public var limit: Int
        public var loss: Percent
        public var duplicate: Percent
        public var reorder: Percent
        public var corrupt: Percent

        public var summary: String {
            var n = Netem(delay: delay, jitter: jitter, distribution: nil, loss: loss.isZero ? nil : loss, duplicate: duplicate.isZero ? nil : duplicate,
                          reorder: reorder.isZero ? nil : reorder, corrupt: corrupt.isZero ? nil : corrupt,
                          rate: rate.bitsPerSecond == 0 ? nil : rate, limit: limit, limitChosen: false)
            if jitter == .zero { n.jitter = nil }
            return n.summary
        }
    }

    /// The kernel's netem options: times in nanoseconds, probabilities scaled to 2^32 - 1 (tc's
    /// `percent / 100 * UINT32_MAX`), the rate in bytes per second.
    static func kernel(_ q: topo_nl_netem) -> Kernel {
        func percent(_ p: UInt32) -> Percent { Percent(micro: UInt64((Double(p) / Double(UInt32.max) * 1e8).rounded())) }
        return Kernel(delay: Duration(nanoseconds: q.latency_ns), jitter: Duration(nanoseconds: q.jitter_ns),
                      rate: BitRate(bitsPerSecond: q.rate_bytes.multipliedReportingOverflow(by: 8).partialValue), limit: Int(q.limit),
                      loss: percent(q.loss), duplicate: percent(q.duplicate), reorder: percent(q.reorder), corrupt: percent(q.corrupt))
    }

    /// Where the kernel's qdisc differs from the plan; empty when they match. tc hands the kernel times
    /// in microseconds with three decimals, the rate in whole bytes per second and probabilities scaled
    /// to 2^32: each comparison allows that rounding.
    public static func differences(planned n: Netem, kernel k: Kernel) -> [String] {
        var diffs: [String] = []
        func check<T: CustomStringConvertible>(_ name: String, _ want: T, _ got: T, _ close: Bool) {
            if !close { diffs.append("\(name): planned \(want), kernel has \(got)") }
        }
        func near(_ a: UInt64, _ b: UInt64, _ tolerance: UInt64) -> Bool { (a > b ? a - b : b - a) <= tolerance }
        let delay = n.delay ?? .zero, jitter = n.jitter ?? .zero
        check("delay", delay, k.delay, near(delay.nanoseconds, k.delay.nanoseconds, 2_000))
        check("jitter", jitter, k.jitter, near(jitter.nanoseconds, k.jitter.nanoseconds, 2_000))
        let rate = n.rate ?? BitRate(bitsPerSecond: 0)
        check("rate", rate, k.rate, rate.bytesPerSecond == k.rate.bytesPerSecond)
        check("limit", n.limit, k.limit, n.limit == k.limit)
        for (name, want, got) in [("loss", n.loss, k.loss), ("duplicate", n.duplicate, k.duplicate), ("reorder", n.reorder, k.reorder), ("corrupt", n.corrupt, k.corrupt)] {
            let w = want ?? .zero
            check(name, w, got, near(w.micro, got.micro, 100))
        }
        return diffs
    }
}
