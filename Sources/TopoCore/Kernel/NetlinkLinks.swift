import CTopoShim
import Foundation

/// The link driver over rtnetlink, in-process: no `ip` or `tc` process on apply, undo or observe.
/// Each namespace is made by a short-lived thread that unshares its network namespace, marks and
/// raises the loopback there and then binds the namespace under `/run/netns`, as `ip netns add` does
/// (the directory a shared mount), so it is visible to `ip netns` and appears already marked; veth
/// pairs are made from topo's own namespace straight into their two namespaces; addresses, link state
/// and netem qdiscs go over one route socket per namespace, all namespaces at once. Every request waits
/// for the kernel's acknowledgement, and a failure carries the kernel's extended ack message. The
/// messages are built in C over libmnl (`CTopoShim/rtnetlink.c`); this file decides what to send.
public struct NetlinkLinks: LinkDriver {
    /// Route sockets kept open per namespace between reads (`verify --watch`); nil opens one per read.
    public var sockets: NamespaceSockets?

    public init(sockets: NamespaceSockets? = nil) { self.sockets = sockets }

    /// Where `ip netns` keeps its namespaces (NETNS_RUN_DIR; /var/run is /run on current systems).
    public static let netnsDirectory = "/run/netns"

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        var results: [Result<Facts, TopoFailure>?] = Array(repeating: nil, count: batch.count)
        if let other = batch.first(where: { ![.namespace, .veth, .address, .qdisc].contains($0.kind) }) {
            results[0] = .failure(TopoFailure(.applyFailed, "the link driver does not make \(other.summary)"))
            return results
        }
        // 1. Namespaces, all at once: each made, marked and its loopback up before it appears.
        let namespaces = batch.indices.compactMap { i -> (Int, NamespaceResource)? in
            if case .namespace(let n) = batch[i] { (i, n) } else { nil }
        }
        let made = concurrentMap(namespaces) { _, n in Self.createNamespace(n) }
        for ((i, _), result) in zip(namespaces, made) { results[i] = result }
        if let failed = made.firstIndex(where: { if case .failure = $0 { true } else { false } }) {
            return Self.stoppedAt(namespaces[failed].0, results)
        }
        // 2. Veth pairs, from topo's own namespace, each end straight into its namespace.
        let veths = batch.indices.compactMap { i -> (Int, VethResource)? in
            if case .veth(let v) = batch[i] { (i, v) } else { nil }
        }
        if !veths.isEmpty {
            do throws(TopoFailure) {
                let root = try RouteSocket(netns: nil)
                for (i, v) in veths {
                    let a = v.ends[0]
                    let b = v.ends[1]
                    do throws(TopoFailure) {
                        try root.addVeth(
                            a.interface, in: "\(Self.netnsDirectory)/\(a.netns)", peer: b.interface,
                            in: "\(Self.netnsDirectory)/\(b.netns)", mtu: v.mtu)
                        results[i] = .success(Facts())
                    } catch {
                        results[i] = .failure(error)
                        return Self.stoppedAt(i, results)
                    }
                }
            } catch {
                results[veths[0].0] = .failure(error)
                return Self.stoppedAt(veths[0].0, results)
            }
        }
        // 3. Inside each namespace, all at once: addresses and links up, then qdiscs.
        var names: [String] = []
        for r in batch {
            switch r {
            case .address(let a) where !names.contains(a.netns): names.append(a.netns)
            case .qdisc(let q) where !names.contains(q.netns): names.append(q.netns)
            default: break
            }
        }
        let configured = concurrentMap(names) { ns -> [Int: Result<Facts, TopoFailure>] in
            var out: [Int: Result<Facts, TopoFailure>] = [:]
            let mine = batch.indices.filter { i in
                switch batch[i] {
                case .address(let a): a.netns == ns
                case .qdisc(let q): q.netns == ns
                default: false
                }
            }
            do throws(TopoFailure) {
                let socket = try RouteSocket(netns: "\(Self.netnsDirectory)/\(ns)")
                for i in mine {
                    do throws(TopoFailure) {
                        switch batch[i] {
                        case .address(let a):
                            try socket.addAddress(a.address, to: a.interface)
                            try socket.setLink(a.interface, up: true, alias: nil)
                        case .qdisc(let q):
                            try socket.addNetem(q.netem, to: q.interface)
                        default: break
                        }
                        out[i] = .success(Facts())
                    } catch {
                        out[i] = .failure(TopoFailure(error.status, "in network namespace \(ns): \(error.message)"))
                        return out
                    }
                }
            } catch {
                if let first = mine.first { out[first] = .failure(error) }
            }
            return out
        }
        for part in configured { for (i, r) in part { results[i] = r } }
        if let failed = results.firstIndex(where: { if case .failure = $0 { true } else { false } }) {
            return Self.stoppedAt(failed, results)
        }
        return results
    }

    /// The results up to and including the first failure at `index`; what came after is reported as not
    /// tried (it goes with its namespace on rollback: only namespaces are undone, and each carries topo's mark).
    static func stoppedAt(_ index: Int, _ results: [Result<Facts, TopoFailure>?]) -> [Result<Facts, TopoFailure>?] {
        results.enumerated().map { i, r in i <= index ? r : nil }
    }

    static func createNamespace(_ n: NamespaceResource) -> Result<Facts, TopoFailure> {
        let path = "\(netnsDirectory)/\(n.name)"
        var message = [CChar](repeating: 0, count: 512)
        var step: UnsafePointer<CChar>?
        guard topo_netns_create(netnsDirectory, path, mark(n.owner), &message, message.count, &step) == 0 else {
            let e = errno
            let what = step.map { String(cString: $0) } ?? "create"
            return .failure(
                TopoFailure(
                    e == EEXIST ? .hostCannot : .applyFailed,
                    "create network namespace \(n.name) (\(path)): \(what): \(String(cString: strerror(e)))\(RouteSocket.kernelSays(message))"
                ))
        }
        return .success(Facts(inode: inode(n.name)))
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
        case 1: return .success(cString(buffer))
        case 0: return .success(nil)
        default:
            return .failure(
                SystemError("read the loopback alias (RTM_GETLINK) in network namespace", path, errno: errno))
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
        case .failure(let e):
            throw TopoFailure(
                .hostCannot, "network namespace \(n.name): cannot read its owner mark, left in place: \(e)")
        }
        guard alias == Self.mark(n.owner) else {
            return .leftAlone(
                "network namespace \(n.name): no topo mark for \(n.owner) (its loopback's alias is \(alias.map { "\"\($0)\"" } ?? "unset")), left alone; ip netns del \(n.name) if it is yours"
            )
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

    /// Namespaces are independent of each other: a batch's are checked and removed at once (each
    /// check enters its namespace on a thread of its own).
    public func undo(_ batch: [JournalStep]) -> [Result<Undone, TopoFailure>] {
        batch.count < 2 ? batch.map(undo) : concurrentMap(batch) { undo($0) }
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
        let sockets = self.sockets
        let read = concurrentMap(Array(wanted)) { ns, qdiscs in
            (ns, NamespaceState.read(ns, qdiscs: qdiscs, sockets: sockets))
        }
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
        static func read(
            _ ns: String, qdiscs: Bool, directory: String = NetlinkLinks.netnsDirectory,
            sockets: NamespaceSockets? = nil
        ) -> NamespaceState {
            let path = "\(directory)/\(ns)"
            // With kept sockets, `with` looks the namespace up (and releases a gone one's socket) itself.
            if sockets == nil, !Sys.exists(path) { return NamespaceState(exists: false) }
            var state = NamespaceState(exists: true)
            for capacity in capacities {
                state = read(path, qdiscs: qdiscs, capacity: capacity, sockets: sockets)
                if state.problem == nil || !(state.tooMany) { break }
            }
            return state
        }

        /// Whether the last read ran out of room (E2BIG).
        var tooMany = false

        static func read(
            _ path: String, qdiscs: Bool, capacity: Int, sockets: NamespaceSockets? = nil
        ) -> NamespaceState {
            var links = [topo_nl_link](repeating: topo_nl_link(), count: capacity)
            var addresses = [topo_nl_address](repeating: topo_nl_address(), count: capacity)
            var netems = [topo_nl_netem](repeating: topo_nl_netem(), count: qdiscs ? capacity : 0)
            var raw = topo_netns_state()
            let rc = links.withUnsafeMutableBufferPointer { l in
                addresses.withUnsafeMutableBufferPointer { a in
                    netems.withUnsafeMutableBufferPointer { q in
                        raw.links = l.baseAddress
                        raw.link_capacity = Int32(l.count)
                        raw.addresses = a.baseAddress
                        raw.address_capacity = Int32(a.count)
                        raw.netems = q.baseAddress
                        raw.netem_capacity = Int32(q.count)
                        guard let sockets else { return topo_netns_read(path, qdiscs ? 1 : 0, &raw) }
                        return sockets.with(path) { fd in topo_netns_read_socket(fd, qdiscs ? 1 : 0, &raw) }
                    }
                }
            }
            guard rc == 0 else {
                let e = errno
                if e == ENOENT, sockets != nil, !Sys.exists(path) { return NamespaceState(exists: false) }
                var failed = NamespaceState(
                    exists: true,
                    problem:
                        "\(SystemError("read links, addresses and qdiscs (rtnetlink) in network namespace", path, errno: e))"
                )
                failed.tooMany = e == E2BIG
                return failed
            }
            var names: [Int32: String] = [:]
            var state = NamespaceState(exists: true)
            for l in links.prefix(Int(raw.link_count)) {
                let name = cString(l.name)
                let alias = cString(l.alias)
                names[l.index] = name
                state.links[name] = Link(
                    mtu: Int(l.mtu), up: l.up != 0, alias: alias.isEmpty ? nil : alias, addresses: [])
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
        let netns: String? =
            switch resource {
            case .namespace(let n): n.name
            case .veth(let v): v.ends[0].netns
            case .address(let a): a.netns
            case .qdisc(let q): q.netns
            default: nil
            }
        if let netns, let problem = states[netns]?.problem {
            return Observation(resource, found: true, differences: [problem])
        }
        switch resource {
        case .namespace(let n):
            guard let s = states[n.name], s.exists else { return Observation(resource, found: false) }
            let marked = s.links["lo"]?.alias == mark(n.owner)
            return Observation(
                resource, found: true,
                differences: marked ? [] : ["network namespace \(n.name) lacks topo's mark for \(n.owner)"])
        case .veth(let v):
            let end = v.ends[0]
            guard let link = states[end.netns]?.links[end.interface] else { return Observation(resource, found: false) }
            return Observation(
                resource, found: true,
                differences: link.mtu == v.mtu
                    ? []
                    : [
                        "\(end.interface) in \(end.netns): planned mtu \(v.mtu), kernel has \(link.mtu.map(String.init) ?? "none")"
                    ])
        case .address(let a):
            guard let link = states[a.netns]?.links[a.interface] else { return Observation(resource, found: false) }
            var diffs: [String] = []
            if !link.addresses.contains(a.address) {
                diffs.append(
                    "\(a.interface) in \(a.netns): planned address \(a.address), kernel has \(link.addresses.isEmpty ? "none" : link.addresses.map(\.description).joined(separator: " "))"
                )
            }
            if !link.up { diffs.append("\(a.interface) in \(a.netns) is down") }
            return Observation(
                resource, found: true, differences: diffs,
                kernel: link.addresses.map(\.description).joined(separator: " "))
        case .qdisc(let q):
            guard let s = states[q.netns], s.exists else { return Observation(resource, found: false) }
            guard let kernel = s.netem[q.interface] else {
                return Observation(
                    resource, found: true, differences: ["no netem qdisc on \(q.interface) in \(q.netns)"])
            }
            return Observation(
                resource, found: true, differences: NetemReadback.differences(planned: q.netem, kernel: kernel),
                kernel: kernel.summary)
        default:
            return Observation(resource, found: false, kernel: "not a link resource")
        }
    }

    /// A buffer C filled with a NUL-terminated string, as a String.
    static func cString(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The inode of a bound namespace: it tells the namespace topo made from a later one of the same name.
    public static func inode(_ netns: String) -> UInt64? {
        Sys.stat("\(netnsDirectory)/\(netns)").map { UInt64($0.st_ino) }
    }

    public static func exists(_ netns: String) -> Bool { Sys.exists("\(netnsDirectory)/\(netns)") }
}

/// A route socket in one network namespace (or topo's own), and the requests topo sends on it, each
/// acknowledged by the kernel; a refusal is a `TopoFailure` with the operation, the object, the value,
/// errno's words and the kernel's extended ack message.
final class RouteSocket {
    private let handle: OpaquePointer
    private var message = [CChar](repeating: 0, count: 512)

    init(netns path: String?) throws(TopoFailure) {
        guard let h = topo_rtnl_open(path) else {
            throw TopoFailure(
                .hostCannot,
                "\(SystemError("open a route socket (NETLINK_ROUTE) in network namespace", path ?? "of topo", errno: errno))"
            )
        }
        handle = h
    }

    deinit { topo_rtnl_close(handle) }

    /// ` (kernel: …)` from an extended ack message, or nothing.
    static func kernelSays(_ message: [CChar]) -> String {
        let text = NetlinkLinks.cString(message)
        return text.isEmpty ? "" : " (kernel: \(text))"
    }

    private func check(_ rc: Int32, _ what: @autoclosure () -> String) throws(TopoFailure) {
        guard rc != 0 else { return }
        let e = errno
        throw TopoFailure(.applyFailed, "\(what()): \(String(cString: strerror(e)))\(Self.kernelSays(message))")
    }

    func setLink(_ name: String, up: Bool, alias: String?) throws(TopoFailure) {
        try check(
            topo_rtnl_link_set(handle, name, up ? 1 : 0, alias, &message, message.count),
            "set link \(name)\(up ? " up" : "")\(alias.map { " alias \($0)" } ?? "") (RTM_NEWLINK)")
    }

    func addVeth(_ name: String, in netns: String, peer: String, in peerNetns: String, mtu: Int) throws(TopoFailure) {
        try check(
            topo_rtnl_veth_add(handle, name, netns, peer, peerNetns, UInt32(mtu), &message, message.count),
            "add veth \(name) in \(netns) with peer \(peer) in \(peerNetns), mtu \(mtu) (RTM_NEWLINK)")
    }

    func addAddress(_ address: IPv4Interface, to name: String) throws(TopoFailure) {
        let v = address.address.value
        let bytes: [UInt8] = [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        try check(
            topo_rtnl_address_add(handle, name, bytes, Int32(address.prefix), &message, message.count),
            "add address \(address) to \(name) (RTM_NEWADDR)")
    }

    func addNetem(_ netem: Netem, to name: String) throws(TopoFailure) {
        var spec = NetemWire.spec(netem)
        let table: [Int16]
        if let d = netem.distribution, d != .uniform, netem.jitter.map({ $0 > .zero }) == true {
            table = try NetemWire.distributionTable(d)
        } else {
            table = []
        }
        let rc = table.withUnsafeBufferPointer { t in
            topo_rtnl_netem_add(handle, name, &spec, t.baseAddress, t.count, &message, message.count)
        }
        try check(rc, "add qdisc netem \(netem.summary) on \(name) (RTM_NEWQDISC)")
    }
}

/// netem's options as the kernel keeps them (`struct tc_netem_qopt` and its attributes). Pure, but
/// for the distribution tables, which are iproute2's data files.
enum NetemWire {
    /// Times in nanoseconds, probabilities scaled to 2^32 - 1 as tc scales them, the rate in bytes per second.
    static func spec(_ n: Netem) -> topo_nl_netem {
        func scaled(_ p: Percent?) -> UInt32 {
            guard let p else { return 0 }
            return UInt32(min((Double(p.micro) / 1e8 * Double(UInt32.max)).rounded(), Double(UInt32.max)))
        }
        var s = topo_nl_netem()
        s.limit = UInt32(clamping: n.limit)
        s.latency_ns = n.delay?.nanoseconds ?? 0
        s.jitter_ns = n.jitter?.nanoseconds ?? 0
        s.rate_bytes = n.rate?.bytesPerSecond ?? 0
        s.loss = scaled(n.loss)
        s.duplicate = scaled(n.duplicate)
        s.reorder = scaled(n.reorder)
        s.corrupt = scaled(n.corrupt)
        return s
    }

    /// Where iproute2 installs its delay distribution tables (TC_LIB_DIR; Debian's is multiarch).
    static let tableDirectories = [
        "/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/aarch64-linux-gnu/tc", "/usr/lib/tc", "/usr/lib64/tc",
        "/usr/local/lib/tc",
    ]

    /// The kernel takes at most this many entries (NETEM_DIST_MAX).
    static let maximumEntries = 16_384

    /// The path of a distribution's table, if this host has it.
    static func tablePath(_ d: NetemDistribution) -> String? {
        tableDirectories.map { "\($0)/\(d.rawValue).dist" }.first { Sys.exists($0) }
    }

    /// A distribution's table: the signed 16-bit numbers of iproute2's `NAME.dist` file, as tc sends them.
    static func distributionTable(_ d: NetemDistribution) throws(TopoFailure) -> [Int16] {
        guard let path = tablePath(d) else {
            throw TopoFailure(
                .hostCannot,
                "netem distribution \(d.rawValue) needs iproute2's table \(d.rawValue).dist (looked in \(tableDirectories.joined(separator: ", "))); apt-get install iproute2"
            )
        }
        let text: String
        do { text = try Sys.read(path) } catch {
            throw TopoFailure(.hostCannot, "read netem distribution table: \(error)")
        }
        return try parseTable(text, path: path)
    }

    /// Numbers separated by white space; `#` starts a comment to the end of its line.
    static func parseTable(_ text: String, path: String) throws(TopoFailure) -> [Int16] {
        var values: [Int16] = []
        for line in text.split(separator: "\n") {
            for word in line.prefix(while: { $0 != "#" }).split(whereSeparator: {
                $0 == " " || $0 == "\t" || $0 == "\r"
            }) {
                guard let v = Int16(word) else {
                    throw TopoFailure(
                        .hostCannot, "netem distribution table \(path): \"\(word)\" is not a 16-bit number")
                }
                values.append(v)
                guard values.count <= maximumEntries else {
                    throw TopoFailure(
                        .hostCannot, "netem distribution table \(path): more than \(maximumEntries) entries")
                }
            }
        }
        return values
    }
}

/// Route sockets kept open per namespace (`verify --watch`): a round then makes no thread, `setns` or
/// socket per namespace. A socket holds its namespace alive, so each is kept only while the namespace
/// is still bound at its path with the same inode: checked before each use, and for all of them by
/// `releaseStale`, which the watcher calls at the start of every round — a namespace `down` removed
/// lives on at most until the watcher's next round. A socket whose read fails is closed, not reused.
public final class NamespaceSockets: @unchecked Sendable {
    private let lock = NSLock()
    private var open: [String: (device: UInt64, inode: UInt64, fd: Int32)] = [:]

    public init() {}

    deinit { for entry in open.values { close(entry.fd) } }

    static func identity(_ path: String) -> (UInt64, UInt64)? {
        Sys.stat(path).map { (UInt64($0.st_dev), UInt64($0.st_ino)) }
    }

    /// Runs `body` with a socket in the namespace bound at `path` (kept, or opened now); -1 with errno
    /// when none can be opened. A failure of `body` (-1) closes the socket.
    func with(_ path: String, _ body: (Int32) -> Int32) -> Int32 {
        guard let id = Self.identity(path) else {
            release(path)
            errno = ENOENT
            return -1
        }
        lock.lock()
        var entry = open[path]
        lock.unlock()
        if let e = entry, (e.device, e.inode) != id {
            release(path)
            entry = nil
        }
        if entry == nil {
            let fd = topo_route_socket_in_netns(path)
            guard fd >= 0 else { return -1 }
            entry = (id.0, id.1, fd)
            lock.lock()
            open[path] = entry
            lock.unlock()
        }
        let rc = body(entry!.fd)
        if rc != 0 {
            let e = errno
            release(path)
            errno = e
        }
        return rc
    }

    /// The sockets kept now, as descriptors (tests follow them).
    var descriptors: [Int32] {
        lock.lock()
        defer { lock.unlock() }
        return open.values.map(\.fd).sorted()
    }

    /// Closes the sockets of namespaces no longer bound where they were.
    public func releaseStale() {
        lock.lock()
        let stale = open.filter { path, e in Self.identity(path).map { $0 != (e.device, e.inode) } ?? true }.map(\.key)
        lock.unlock()
        for path in stale { release(path) }
    }

    /// How many sockets are open (tests).
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return open.count
    }

    func release(_ path: String) {
        lock.lock()
        let entry = open.removeValue(forKey: path)
        lock.unlock()
        if let entry { close(entry.fd) }
    }
}
