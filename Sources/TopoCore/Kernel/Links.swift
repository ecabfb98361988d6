import CTopoShim
import Foundation

/// The link driver over iproute2 in batch mode: one `ip -batch` for every namespace and veth pair of
/// the batch in the root namespace, then one `ip -n NS -batch` and one `tc -n NS -batch` per namespace
/// (iproute2 takes no per-line namespace), all namespaces at once. Arguments come from pure functions;
/// the runner only executes them. Namespaces are deleted in-process, as `ip netns del` does.
public struct IPRoute2Links: LinkDriver {
    public var runner = CommandRunner()
    public init() {}

    /// Where `ip netns` keeps its namespaces (NETNS_RUN_DIR; /var/run is /run on current systems).
    public static let netnsDirectory = "/run/netns"
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
            for (_, n) in namespaces where Self.exists(n.name) {
                _ = runner.run([Self.ip, "-n", n.name, "link", "set", "lo", "alias", Self.mark(n.owner)])
            }
            // Only a batch with a namespace or veth runs this step, so one of them is first.
            results[min(namespaces.first?.0 ?? batch.count - 1, veths.first?.0 ?? batch.count - 1)] = .failure(error)
            return results
        }
        for (i, n) in namespaces { results[i] = .success(Facts(inode: Self.inode(n.name))) }
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
        (fresh.map { ["link set lo alias \(mark($0.owner))", "link set lo up"] } ?? [])
            + addresses.flatMap { ["addr add \($0.address) dev \($0.interface)", "link set \($0.interface) up"] }
    }

    /// topo's mark on a namespace it made for `owner`: its loopback's alias (IFLA_IFALIAS), which lives
    /// and dies with the namespace. nsfs has no extended attributes, and a namespace's inode is reused
    /// once it is gone, so neither the name nor the inode alone proves a namespace is topo's.
    public static func mark(_ owner: String) -> String { "topo:\(owner)" }

    /// The alias of the namespace's loopback, read in-process over rtnetlink (no `ip` per namespace on
    /// `down`); `.success(nil)` when it has none.
    static func loopbackAlias(_ netns: String) -> Result<String?, SystemError> {
        var buffer = [CChar](repeating: 0, count: 512)
        let path = "\(netnsDirectory)/\(netns)"
        switch topo_netns_loopback_alias(path, &buffer, buffer.count) {
        case 1: return .success(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case 0: return .success(nil)
        default: return .failure(SystemError("read the loopback alias (RTM_GETLINK) in network namespace", path, errno: errno))
        }
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

    // MARK: undo

    /// A namespace goes with everything in it (its veth ends, addresses and qdiscs): only the namespace
    /// itself is undone, and only when it carries topo's mark for this profile (and, once apply recorded
    /// it, the inode it had then). A namespace of the same name that someone else made — before apply
    /// finished its batch, or after topo's was gone — stays.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .namespace(let n) = resource, Self.exists(n.name) else { return .nothing }
        if let recorded = facts.inode, Self.inode(n.name) != recorded {
            return .leftAlone("network namespace \(n.name): not the one topo made (another inode), left alone")
        }
        let alias: String?
        switch Self.loopbackAlias(n.name) {
        case .success(let a): alias = a
        case .failure(let e): throw TopoFailure(.hostCannot, "network namespace \(n.name): cannot read its owner mark, left in place: \(e)")
        }
        guard alias == Self.mark(n.owner) else {
            return .leftAlone("network namespace \(n.name): no topo mark for \(n.owner) (its loopback's alias is \(alias.map { "\"\($0)\"" } ?? "unset")), left alone; ip netns del \(n.name) if it is yours")
        }
        let path = "\(Self.netnsDirectory)/\(n.name)"
        do {
            try Sys.unmount(path, detach: true)
            try Sys.unlink(path)
        } catch {
            throw TopoFailure(.hostCannot, "delete network namespace \(n.name): \(error)")
        }
        return .removed("netns \(n.name)")
    }

    // MARK: observe

    public func observe(_ resource: Resource) -> Observation { observe([resource])[0] }

    /// Each namespace read in-process over rtnetlink (links, addresses and, where wanted, root qdiscs),
    /// all namespaces at once: no process per namespace, so `status`, `verify` and each `verify --watch`
    /// round cost a few syscalls per namespace.
    public func observe(_ batch: [Resource]) -> [Observation] {
        var wanted: [String: Bool] = [:]  // namespace -> whether its qdiscs are needed
        for r in batch {
            switch r {
            case .namespace(let n): wanted[n.name] = wanted[n.name] ?? false
            case .veth(let v): wanted[v.ends[0].netns] = wanted[v.ends[0].netns] ?? false
            case .address(let a): wanted[a.netns] = wanted[a.netns] ?? false
            case .qdisc(let q): wanted[q.netns] = true
            default: break
            }
        }
        let read = concurrentMap(Array(wanted)) { ns, qdiscs in (ns, NamespaceState.read(ns, qdiscs: qdiscs)) }
        let states = Dictionary(read, uniquingKeysWith: { a, _ in a })
        return batch.map { Self.observation($0, states) }
    }

    /// What a namespace holds, as the kernel reports it.
    struct NamespaceState: Sendable {
        struct Link: Sendable {
            var mtu: Int?
            var up: Bool
            var alias: String?
            var addresses: [IPv4Interface]
        }
        var exists: Bool
        var links: [String: Link] = [:]
        /// The root netem qdisc per device.
        var netem: [String: NetemReadback.Kernel] = [:]
        /// Why the namespace could not be read, when it exists and could not.
        var problem: String?

        /// How many links, addresses and qdiscs one namespace may hold for topo to read it: a workload
        /// has one veth per link, and `validate` bounds links per profile well below this. A read
        /// starts with room for a few and retries with all of it when the kernel has more (E2BIG).
        static let capacities = [32, 4096]

        /// The namespace bound at `/run/netns/NS`, read over rtnetlink (`topo_netns_read`).
        static func read(_ ns: String, qdiscs: Bool, directory: String = IPRoute2Links.netnsDirectory) -> NamespaceState {
            let path = "\(directory)/\(ns)"
            guard Sys.exists(path) else { return NamespaceState(exists: false) }
            var state = NamespaceState(exists: true)
            for capacity in capacities {
                state = read(path, qdiscs: qdiscs, capacity: capacity)
                if state.problem == nil || !(state.tooMany) { break }
            }
            return state
        }

        /// Whether the last read ran out of room (E2BIG).
        var tooMany = false

        static func read(_ path: String, qdiscs: Bool, capacity: Int) -> NamespaceState {
            var links = [topo_nl_link](repeating: topo_nl_link(), count: capacity)
            var addresses = [topo_nl_address](repeating: topo_nl_address(), count: capacity)
            var netems = [topo_nl_netem](repeating: topo_nl_netem(), count: qdiscs ? capacity : 0)
            var raw = topo_netns_state()
            let rc = links.withUnsafeMutableBufferPointer { l in
                addresses.withUnsafeMutableBufferPointer { a in
                    netems.withUnsafeMutableBufferPointer { q in
                        raw.links = l.baseAddress; raw.link_capacity = Int32(l.count)
                        raw.addresses = a.baseAddress; raw.address_capacity = Int32(a.count)
                        raw.netems = q.baseAddress; raw.netem_capacity = Int32(q.count)
                        return topo_netns_read(path, qdiscs ? 1 : 0, &raw)
                    }
                }
            }
            guard rc == 0 else {
                let e = errno
                var failed = NamespaceState(exists: true, problem: "\(SystemError("read links, addresses and qdiscs (rtnetlink) in network namespace", path, errno: e))")
                failed.tooMany = e == E2BIG
                return failed
            }
            var names: [Int32: String] = [:]
            var state = NamespaceState(exists: true)
            for l in links.prefix(Int(raw.link_count)) {
                let name = cString(l.name), alias = cString(l.alias)
                names[l.index] = name
                state.links[name] = Link(mtu: Int(l.mtu), up: l.up != 0, alias: alias.isEmpty ? nil : alias, addresses: [])
            }
            for a in addresses.prefix(Int(raw.address_count)) {
                guard let name = names[a.index] else { continue }
                let b = a.address  // network byte order
                let value = UInt32(b.0) << 24 | UInt32(b.1) << 16 | UInt32(b.2) << 8 | UInt32(b.3)
                state.links[name]?.addresses.append(IPv4Interface(address: IPv4Address(value), prefix: Int(a.prefix)))
            }
            for q in netems.prefix(Int(raw.netem_count)) {
                if let name = names[q.index] { state.netem[name] = NetemReadback.kernel(q) }
            }
            return state
        }

        /// A fixed-size C string field (a tuple of CChar) as a String.
        static func cString<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
    }

    /// One resource's observation from its namespace's state. Pure.
    static func observation(_ resource: Resource, _ states: [String: NamespaceState]) -> Observation {
        let netns: String? = switch resource {
        case .namespace(let n): n.name
        case .veth(let v): v.ends[0].netns
        case .address(let a): a.netns
        case .qdisc(let q): q.netns
        default: nil
        }
        if let netns, let problem = states[netns]?.problem { return Observation(resource, found: true, differences: [problem]) }
        switch resource {
        case .namespace(let n):
            guard let s = states[n.name], s.exists else { return Observation(resource, found: false) }
            let marked = s.links["lo"]?.alias == mark(n.owner)
            return Observation(resource, found: true, differences: marked ? [] : ["network namespace \(n.name) lacks topo's mark for \(n.owner)"])
        case .veth(let v):
            let end = v.ends[0]
            guard let link = states[end.netns]?.links[end.interface] else { return Observation(resource, found: false) }
            return Observation(resource, found: true, differences: link.mtu == v.mtu ? [] : ["\(end.interface) in \(end.netns): planned mtu \(v.mtu), kernel has \(link.mtu.map(String.init) ?? "none")"])
        case .address(let a):
            guard let link = states[a.netns]?.links[a.interface] else { return Observation(resource, found: false) }
            var diffs: [String] = []
            if !link.addresses.contains(a.address) {
                diffs.append("\(a.interface) in \(a.netns): planned address \(a.address), kernel has \(link.addresses.isEmpty ? "none" : link.addresses.map(\.description).joined(separator: " "))")
            }
            if !link.up { diffs.append("\(a.interface) in \(a.netns) is down") }
            return Observation(resource, found: true, differences: diffs, kernel: link.addresses.map(\.description).joined(separator: " "))
        case .qdisc(let q):
            guard let s = states[q.netns], s.exists else { return Observation(resource, found: false) }
            guard let kernel = s.netem[q.interface] else { return Observation(resource, found: true, differences: ["no netem qdisc on \(q.interface) in \(q.netns)"]) }
            return Observation(resource, found: true, differences: NetemReadback.differences(planned: q.netem, kernel: kernel), kernel: kernel.summary)
        default:
            return Observation(resource, found: false, kernel: "not a link resource")
        }
    }

    /// The inode of a bound namespace: it tells the namespace topo made from a later one of the same name.
    public static func inode(_ netns: String) -> UInt64? {
        Sys.stat("\(netnsDirectory)/\(netns)").map { UInt64($0.st_ino) }
    }

    public static func exists(_ netns: String) -> Bool { Sys.exists("\(netnsDirectory)/\(netns)") }
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
