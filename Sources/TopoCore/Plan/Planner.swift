/// Resolves a profile against a host into a plan. Pure: the same profile and host always give the same plan.
public struct Planner: Sendable {
    public var host: HostTopology
    /// Link subnets already in use (by applied profiles); defaults avoid them.
    public var usedSubnets: [IPv4Subnet]
    /// Where the plan's cgroups, state files and hosts files go.
    public var layout: Layout
    /// A placement decided before (a lock file's): used instead of placing, once checked against the
    /// profile and the host as strictly as a profile's own CPU lists are.
    public var pins: Pins?

    public init(host: HostTopology, usedSubnets: [IPv4Subnet] = [], layout: Layout = .standard, pins: Pins? = nil) {
        self.host = host
        self.usedSubnets = usedSubnets
        self.layout = layout
        self.pins = pins
    }

    /// What a lock pins, and nothing else: each workload's CPUs and each link's subnet. Everything
    /// else in a plan (limits, commands, users, capabilities, paths) comes from the profile every time.
    public struct Pins: Equatable, Sendable {
        public var cpus: [String: CPUSet]
        /// Keyed by the link's two workload names, in `between` order.
        public var subnets: [[String]: IPv4Subnet]

        public init(cpus: [String: CPUSet], subnets: [[String]: IPv4Subnet]) {
            self.cpus = cpus
            self.subnets = subnets
        }

        /// The placement a plan made.
        public init(_ plan: Plan) {
            cpus = Dictionary(plan.workloads.map { ($0.name, $0.cpus) }, uniquingKeysWith: { a, _ in a })
            subnets = Dictionary(plan.links.map { ($0.between, $0.subnet) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The pool default link subnets come from.
    public static let linkPool = IPv4Subnet(address: 10 << 24 | 77 << 16, prefix: 16)

    public func plan(_ profile: Profile) -> Result<Plan, PlanFailure> {
        var problems: [String] = []
        var warnings: [String] = []
        checkRequirements(profile, &problems)

        let reserved = profile.host.reserve
        let missingReserved = reserved.subtracting(host.allCPUs)
        if !missingReserved.isEmpty {
            problems.append(
                "host.reserve names CPU \(missingReserved), which this host does not have (it has \(host.allCPUs))")
        }

        var state = Placement(host: host, reserved: reserved, smt: profile.host.smt)
        var cpusOf: [String: CPUSet] = [:]
        if let pins {
            placePinned(profile, pins, &state, &cpusOf, &problems)
        } else {
            place(profile, &state, &cpusOf, &problems)
        }

        let links = planLinks(profile, &problems)

        var planned: [PlannedWorkload] = []
        for w in profile.workloads {
            guard let cpus = cpusOf[w.name] else { continue }
            let cpuNodes = CPUSet(cpus.compactMap { host.cpu($0)?.node })
            let nodes = w.memory.nodes ?? cpuNodes
            let missing = nodes.subtracting(CPUSet(host.nodes.map(\.id)))
            if !missing.isEmpty {
                problems.append(
                    "workload \(w.name) binds memory to node \(missing), which this host does not have (it has nodes \(CPUSet(host.nodes.map(\.id))))"
                )
                continue
            }
            if w.memory.policy == .preferred && nodes.count > 1 {
                problems.append(
                    "workload \(w.name) prefers memory on one node, but its CPUs \(cpus) are on nodes \(nodes); set memory.nodes to one of them"
                )
                continue
            }
            if let quota = w.cpu.quotaMicro, quota > UInt64(cpus.count) * 1_000_000 {
                warnings.append(
                    "workload \(w.name): cpu.quota \(Self.cpuCount(quota)) is more than its \(cpus.count) CPUs, so it never limits"
                )
            }
            let mems = w.memory.policy == .local ? cpuNodes : nodes
            let ends = links.compactMap { $0.end(w.name) }
            let peers = links.compactMap { link -> PlannedWorkload.Peer? in
                guard link.end(w.name) != nil, let other = link.ends.first(where: { $0.workload != w.name }) else {
                    return nil
                }
                return .init(name: other.workload, address: other.address.address)
            }
            let netns = ends.isEmpty ? nil : Self.namespace(profile.name, w.name)
            let run = w.run.map(PlannedRun.init)
            planned.append(
                PlannedWorkload(
                    name: w.name, cpus: cpus, mems: mems, memoryPolicy: w.memory.policy,
                    policyNodes: w.memory.policy == .local ? .empty : nodes, cpuNodes: cpuNodes,
                    isolation: w.isolation, cgroupPath: layout.workloadCgroup(profile.name, w.name, w.isolation),
                    cgroup: Self.cgroupSettings(w, cpus: cpus, mems: mems),
                    run: run, netns: netns, addresses: ends.map(\.address), peers: peers,
                    environment: Self.environment(
                        profile: profile.name, workload: w.name, netns: netns,
                        addresses: ends.map(\.address), peers: peers, own: run?.env ?? []),
                    hostsFile: netns.map { "\(layout.hostsDirectory($0))/hosts" }))
        }

        let partitioned = planned.filter { $0.isolation == .partition }.reduce(CPUSet.empty) { $0.union($1.cpus) }
        if !partitioned.isEmpty && host.onlineCPUs.subtracting(partitioned).isEmpty {
            problems.append(
                "isolation: partition would take every online CPU (\(host.onlineCPUs)) from the rest of the host; "
                    + "the kernel keeps at least one for the cgroup root, so leave one out (host.reserve: \"0\" keeps CPU 0 for housekeeping)"
            )
        }

        if let tune = profile.host.tune, tune.irqsAway || tune.kernelThreadsAway {
            let strict = planned.filter { $0.isolation != .shared }.reduce(CPUSet.empty) { $0.union($1.cpus) }
            if strict.isEmpty {
                warnings.append(
                    "host.tune: irqs and kernelThreads away keep the CPUs of exclusive and partition workloads clear, and this profile has none; they change nothing"
                )
            } else if host.onlineCPUs.subtracting(strict).isEmpty {
                problems.append(
                    "host.tune: irqs and kernelThreads away need a CPU outside the exclusive and partition workloads to move to, and they hold every online CPU (\(host.onlineCPUs)); host.reserve: \"0\" keeps CPU 0 for housekeeping"
                )
            }
        }

        guard problems.isEmpty else { return .failure(PlanFailure(problems: problems)) }
        var plan = Plan(
            name: profile.name, workloads: planned, links: links, reserved: reserved,
            idle: state.idle, smt: profile.host.smt, warnings: warnings, resources: [])
        plan.resources = Self.resources(of: plan, layout: layout, tune: profile.host.tune, online: host.onlineCPUs)
        return .success(plan)
    }

    /// Places every workload: explicit CPU lists first, then counted exclusive and partition
    /// workloads on free cores, then counted shared ones around them.
    private func place(
        _ profile: Profile, _ state: inout Placement, _ cpusOf: inout [String: CPUSet], _ problems: inout [String]
    ) {
        let reserved = profile.host.reserve

        // Explicit cpulists first: they are fixed, and count requests fill around them.
        var explicit: [(name: String, isolation: Isolation, cpus: CPUSet)] = []
        for w in profile.workloads {
            guard case .list(let list) = w.cpus else { continue }
            if let problem = checkExplicit(w, list, reserved: reserved) {
                problems.append(problem)
                continue
            }
            explicit.append((w.name, w.isolation, list))
        }
        takeFixed(explicit, profile, &state, &cpusOf, &problems)

        // Counted exclusive and partition workloads take free cores; then counted shared workloads
        // spread over what is left, sharing CPUs with one another (least-loaded first).
        for w in profile.workloads where w.isolation != .shared {
            guard case .count(let count, let node) = w.cpus else { continue }
            switch state.place(count: count, node: node, for: w.name) {
            case .success(let set): cpusOf[w.name] = set
            case .failure(let problem): problems.append(problem.description)
            }
        }
        state.idleSiblingsOfReserved()
        for w in profile.workloads where w.isolation == .shared {
            guard case .count(let count, let node) = w.cpus else { continue }
            switch state.placeShared(count: count, node: node, for: w.name) {
            case .success(let set): cpusOf[w.name] = set
            case .failure(let problem): problems.append(problem.description)
            }
        }
    }

    /// Takes a placement decided before (a lock's), refusing what the profile or this host would not
    /// allow had the planner chosen it: a workload left out, CPUs the host lacks or has offline or
    /// reserved, a list other than the profile's own, another count, a count spread over nodes or on
    /// a node the profile does not name, CPUs an exclusive workload shares, split cores under
    /// `whole-cores`. Siblings left idle are derived as `place` derives them.
    private func placePinned(
        _ profile: Profile, _ pins: Pins, _ state: inout Placement, _ cpusOf: inout [String: CPUSet],
        _ problems: inout [String]
    ) {
        let reserved = profile.host.reserve
        var taken: [(name: String, isolation: Isolation, cpus: CPUSet)] = []
        for w in profile.workloads {
            guard let cpus = pins.cpus[w.name] else {
                problems.append("the lock places no CPUs for workload \(w.name): run topo plan --lock again")
                continue
            }
            if let problem = checkExplicit(w, cpus, reserved: reserved, who: "the lock gives workload \(w.name)") {
                problems.append(problem)
                continue
            }
            let nodes = CPUSet(cpus.compactMap { host.cpu($0)?.node })
            switch w.cpus {
            case .list(let list) where list != cpus:
                problems.append("the lock gives workload \(w.name) CPUs \(cpus), but its profile asks for CPUs \(list)")
                continue
            case .count(let count, _) where count != cpus.count:
                problems.append(
                    "the lock gives workload \(w.name) \(cpus.count) CPU\(cpus.count == 1 ? "" : "s") (\(cpus)), but its profile asks for \(count)"
                )
                continue
            case .count(_, .node(let id)) where nodes != CPUSet([id]):
                problems.append(
                    "the lock gives workload \(w.name) CPUs \(cpus) on node \(nodes), but its profile asks for node \(id)"
                )
                continue
            case .count(_, .auto) where nodes.count != 1:
                problems.append(
                    "the lock gives workload \(w.name) CPUs \(cpus) on nodes \(nodes), but a count is placed on one node"
                )
                continue
            default: break
            }
            taken.append((w.name, w.isolation, cpus))
        }
        takeFixed(taken, profile, &state, &cpusOf, &problems)
        if profile.host.smt == .wholeCores {
            // As `place` leaves them: the spare threads of a core an odd count took part of.
            for w in profile.workloads where w.isolation != .shared {
                guard case .count = w.cpus, let cpus = cpusOf[w.name] else { continue }
                for core in host.cores where !core.intersection(cpus).isEmpty { state.markIdle(core.subtracting(cpus)) }
            }
        }
        state.idleSiblingsOfReserved()
    }

    /// Fixed CPU sets (a profile's own lists, or a lock's placement) taken as they are, then checked
    /// together: no exclusive or partition workload shares a CPU, and under `whole-cores` no core is split.
    private func takeFixed(
        _ fixed: [(name: String, isolation: Isolation, cpus: CPUSet)], _ profile: Profile,
        _ state: inout Placement, _ cpusOf: inout [String: CPUSet], _ problems: inout [String]
    ) {
        for f in fixed {
            cpusOf[f.name] = f.cpus
            state.take(f.cpus, for: f.name, strict: f.isolation != .shared)
        }
        problems += Isolation.conflictMessages(fixed).map(\.message)
        if profile.host.smt == .wholeCores {
            problems += state.splitCores(profile.workloads.filter { cpusOf[$0.name] != nil })
        }
    }

    private func checkRequirements(_ profile: Profile, _ problems: inout [String]) {
        if let n = profile.host.numaNodes, host.nodes.count < n {
            problems.append(
                "the profile requires \(n) NUMA nodes; this host has \(host.nodes.count) (\(CPUSet(host.nodes.map(\.id))))"
            )
        }
        if let n = profile.host.cpus, host.onlineCPUs.count < n {
            problems.append(
                "the profile requires \(n) CPUs; this host has \(host.onlineCPUs.count) online (\(host.onlineCPUs))")
        }
    }

    private func checkExplicit(_ w: Workload, _ list: CPUSet, reserved: CPUSet, who: String? = nil) -> String? {
        let who = who ?? "workload \(w.name) asks for"
        let absent = list.subtracting(host.allCPUs)
        if !absent.isEmpty { return "\(who) CPU \(absent), which this host does not have (it has \(host.allCPUs))" }
        let offline = list.subtracting(host.onlineCPUs)
        if !offline.isEmpty { return "\(who) CPU \(offline), which is offline (online: \(host.onlineCPUs))" }
        let clash = list.intersection(reserved)
        if !clash.isEmpty { return "\(who) CPU \(clash), which host.reserve keeps for housekeeping" }
        if list.isEmpty { return "\(who) no CPU" }
        return nil
    }

    /// cgroup v2 settings, in the order apply writes them (cpuset first, then cpu, memory, pids, io).
    static func cgroupSettings(_ w: Workload, cpus: CPUSet, mems: CPUSet) -> [CgroupSetting] {
        var s: [CgroupSetting] = [.cpus(cpus), .mems(mems)]
        if w.isolation == .partition { s.append(.partition) }
        if let max = w.cpu.cpuMax { s.append(max) }
        if let weight = w.cpu.weight { s.append(.cpuWeight(weight)) }
        if let v = w.memory.max { s.append(.memoryMax(v)) }
        if let v = w.memory.high { s.append(.memoryHigh(v)) }
        if let v = w.memory.swap { s.append(.swapMax(v)) }
        if let v = w.pids { s.append(.pidsMax(v)) }
        s += w.io.map { .ioMax($0) }
        return s
    }

    /// A workload's environment: a default PATH, topo's variables (its profile, name, namespace,
    /// addresses and each peer's address), then the profile's own, each replacing one of the same name.
    static func environment(
        profile: String, workload: String, netns: String?, addresses: [IPv4Interface],
        peers: [PlannedWorkload.Peer], own: [String]
    ) -> [String] {
        var env = ["PATH=\(defaultPath)", "TOPO_PROFILE=\(profile)", "TOPO_WORKLOAD=\(workload)"]
        if let netns {
            env.append("TOPO_NETNS=\(netns)")
            env.append("TOPO_ADDRESSES=\(addresses.map(\.description).joined(separator: ","))")
            for peer in peers {
                env.append(
                    "TOPO_PEER_\(peer.name.uppercased().replacingOccurrences(of: "-", with: "_"))=\(peer.address)")
            }
        }
        for entry in own {
            let name = entry.prefix { $0 != "=" }
            env.removeAll { $0.hasPrefix(name + "=") }
            env.append(entry)
        }
        return env
    }

    /// The PATH a workload gets unless its profile sets one; preflight looks for its program there too.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    static func cpuCount(_ micro: UInt64) -> String {
        micro % 1_000_000 == 0 ? "\(micro / 1_000_000)" : Percent(micro: micro).description.dropLast().description
    }

    private func planLinks(_ profile: Profile, _ problems: inout [String]) -> [PlannedLink] {
        var free = SubnetCursor(pool: Self.linkPool, avoiding: usedSubnets + profile.links.compactMap(\.subnet))
        var links: [PlannedLink] = []
        for link in profile.links {
            var subnet = link.subnet
            if let pinned = pins?.subnets[link.between] {
                if let given = link.subnet, given != pinned {
                    problems.append(
                        "the lock gives the link between \(link.between[0]) and \(link.between[1]) subnet \(pinned), but its profile says \(given)"
                    )
                    continue
                }
                if pinned.prefix > 30 {
                    problems.append(
                        "the lock gives the link between \(link.between[0]) and \(link.between[1]) subnet \(pinned), which has no room for two addresses"
                    )
                    continue
                }
                subnet = pinned
            } else if pins != nil {
                problems.append(
                    "the lock gives the link between \(link.between[0]) and \(link.between[1]) no subnet: run topo plan --lock again"
                )
                continue
            }
            if subnet == nil {
                subnet = free.next()
                if subnet == nil {
                    problems.append(
                        "no free /30 is left in \(Self.linkPool) for the link between \(link.between[0]) and \(link.between[1]); give it a subnet"
                    )
                    continue
                }
            }
            let names = link.between
            let ends = names.enumerated().map { i, name in
                PlannedLink.End(
                    workload: name, netns: Self.namespace(profile.name, name),
                    interface: Self.interface(toward: names[1 - i]), address: subnet!.host(UInt32(i + 1)))
            }
            var shaping: [PlannedLink.Shaping] = []
            if let netem = link.netem {
                let mtu = link.mtu ?? 1500
                for from in netem.from.map({ [$0] }) ?? names {
                    let to = names.first { $0 != from }!
                    shaping.append(
                        .init(
                            from: from, to: to, netns: Self.namespace(profile.name, from),
                            interface: Self.interface(toward: to), netem: Self.netem(netem, mtu: mtu)))
                }
            }
            links.append(
                PlannedLink(
                    between: names, subnet: subnet!, subnetChosen: link.subnet == nil,
                    mtu: link.mtu ?? 1500, ends: ends, shaping: shaping))
        }
        if pins != nil {  // a profile's own subnets are checked when it is read; a lock's here
            for (a, x) in links.enumerated() {
                for y in links[(a + 1)...] where x.subnet.overlaps(y.subnet) {
                    problems.append(
                        "the lock gives the links \(x.between.joined(separator: "-")) and \(y.between.joined(separator: "-")) overlapping subnets \(x.subnet) and \(y.subnet)"
                    )
                }
            }
        }
        return links
    }

    /// A workload's network namespace, as `ip netns` lists it: `topo.PROFILE.WORKLOAD`. Names hold no
    /// dots, so no two (profile, workload) pairs give one name (with `-` as the separator, profile `a-b`
    /// workload `c` and profile `a` workload `b-c` did). At most 42 bytes.
    public static func namespace(_ profile: String, _ workload: String) -> String { "topo.\(profile).\(workload)" }

    /// The veth inside a namespace that leads to `peer`: `to-` and the peer's name, at most 15 bytes
    /// (IFNAMSIZ - 1) for the longest workload name of 12.
    public static func interface(toward peer: String) -> String { "to-\(peer)" }

    /// When a profile gives no limit, netem's queue (1000 packets by default) is sized to hold what the
    /// link can have in flight: twice rate × (delay + jitter + 10 ms), in packets of the link's MTU, at
    /// least 1000. Without a rate, 10gbit (a veth's order of speed) stands in for it. So a link shaped
    /// without loss does not drop at high packet rates.
    public static func queueLimit(rate: BitRate?, delay: Duration?, jitter: Duration?, mtu: Int) -> Int {
        let bitsPerSecond = Double(rate?.bitsPerSecond ?? 10_000_000_000)
        let seconds = Double((delay?.nanoseconds ?? 0) + (jitter?.nanoseconds ?? 0) + 10_000_000) / 1e9
        let packets = 2 * bitsPerSecond * seconds / Double(8 * max(mtu, 68))
        return Int(min(max(1000, packets.rounded(.up)), Double(UInt32.max)))
    }

    static func netem(_ n: NetemSpec, mtu: Int) -> Netem {
        let delay = n.effectiveDelay
        return Netem(
            delay: delay, jitter: n.jitter, distribution: n.distribution, loss: n.loss, duplicate: n.duplicate,
            reorder: n.reorder, corrupt: n.corrupt, rate: n.rate,
            limit: n.limit ?? queueLimit(rate: n.rate, delay: delay, jitter: n.jitter, mtu: mtu),
            limitChosen: n.limit == nil)
    }

    /// The /30s of a pool that overlap none of the subnets taken, lowest first. The taken subnets
    /// become sorted, merged address ranges and a cursor walks past them, so n links with k taken
    /// subnets cost O(n + k log k), not a rescan of the pool for every link.
    struct SubnetCursor {
        private var ranges: [(first: UInt64, last: UInt64)] = []
        private var cursor: UInt64
        private var range = 0
        private let end: UInt64

        init(pool: IPv4Subnet, avoiding taken: [IPv4Subnet]) {
            let span = { (s: IPv4Subnet) -> (UInt64, UInt64) in
                let first = UInt64(s.address & s.mask)
                return (first, first + UInt64(~s.mask))
            }
            for r in taken.map(span).sorted(by: { $0.0 < $1.0 }) {
                if let last = ranges.last, r.0 <= last.last + 1 {
                    ranges[ranges.count - 1].last = max(last.last, r.1)
                } else {
                    ranges.append(r)
                }
            }
            (cursor, end) = span(pool)
        }

        mutating func next() -> IPv4Subnet? {
            while cursor + 3 <= end {
                while range < ranges.count && ranges[range].last < cursor { range += 1 }
                if range < ranges.count && ranges[range].first <= cursor + 3 {
                    cursor = (ranges[range].last + 4) / 4 * 4  // the first /30 boundary after it
                    continue
                }
                defer { cursor += 4 }
                return IPv4Subnet(address: UInt32(cursor), prefix: 30)
            }
            return nil
        }
    }

}
