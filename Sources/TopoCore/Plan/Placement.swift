/// The CPU bookkeeping of one planning run: who holds which CPU, and which siblings stay idle.
struct Placement {
    let host: HostTopology
    let reserved: CPUSet
    let smt: SMTPolicy
    private(set) var owners: [Int: [String]] = [:]
    private(set) var idle = CPUSet()

    init(host: HostTopology, reserved: CPUSet, smt: SMTPolicy) {
        self.host = host
        self.reserved = reserved
        self.smt = smt
    }

    mutating func take(_ cpus: CPUSet, for name: String) {
        for cpu in cpus { owners[cpu, default: []].append(name) }
    }

    /// Threads that stay idle: no workload gets them (the spare threads of a core an odd count took part of).
    mutating func markIdle(_ cpus: CPUSet) {
        idle = idle.union(cpus)
    }

    func isFree(_ cpu: Int) -> Bool {
        owners[cpu] == nil && !reserved.contains(cpu) && !idle.contains(cpu) && host.onlineCPUs.contains(cpu)
    }

    /// Under `whole-cores`, the free threads that share a core with a reserved CPU stay idle too:
    /// a workload there would share the core with housekeeping.
    mutating func idleSiblingsOfReserved() {
        guard smt == .wholeCores else { return }
        for core in host.cores where !core.intersection(reserved).isEmpty {
            idle = idle.union(CPUSet(core.filter(isFree)))
        }
    }

    /// Problems where two explicit workloads (not both shared) hold threads of one core.
    func splitCores(_ workloads: [Workload]) -> [String] {
        var problems: [String] = []
        for core in host.cores where core.count > 1 {
            let holders = Set(core.flatMap { owners[$0] ?? [] })
            let strict = workloads.filter { holders.contains($0.name) }
            if holders.count > 1 && strict.contains(where: { $0.isolation != .shared }) {
                let names = strict.map(\.name).joined(separator: " and ")
                problems.append("workloads \(names) split the physical core \(core) between them; give each whole cores, or set host.smt: any")
            }
        }
        return problems
    }

    enum Failure: Error, CustomStringConvertible {
        case message(String)
        var description: String { if case .message(let m) = self { return m } else { return "" } }
    }

    /// The nodes a request may take CPUs from: the one it names (which must exist and have CPUs), or with `auto` every node with CPUs.
    func nodes(_ node: NodeChoice, for name: String) -> Result<[HostTopology.Node], Failure> {
        guard case .node(let id) = node else { return .success(host.nodes.filter { !$0.isMemoryOnly }) }
        guard let n = host.node(id) else {
            return .failure(.message("workload \(name) asks for node \(id), which this host does not have (it has nodes \(CPUSet(host.nodes.map(\.id))))"))
        }
        if n.isMemoryOnly {
            return .failure(.message("workload \(name) asks for CPUs on node \(id), which has memory but no CPUs; it can be a memory target (memory.nodes: \"\(id)\")"))
        }
        return .success([n])
    }

    /// Places `count` CPUs on one node: whole free cores first (lowest CPU ids first); under
    /// `whole-cores` an odd remainder takes part of a free core and its spare threads stay idle.
    mutating func place(count: Int, node: NodeChoice, for name: String) -> Result<CPUSet, Failure> {
        let candidates: [HostTopology.Node]
        switch nodes(node, for: name) {
        case .success(let n): candidates = n
        case .failure(let f): return .failure(f)
        }
        for n in candidates {
            if let set = pick(count, in: n) {
                take(set.cpus, for: name)
                idle = idle.union(set.idle)
                return .success(set.cpus)
            }
        }
        if case .node(let id) = node {
            return .failure(.message("workload \(name) asks for \(count) CPU\(count == 1 ? "" : "s") on node \(id); \(describe(host.node(id)!))"))
        }
        let summary = candidates.map(describe).joined(separator: "; ")
        return .failure(.message("workload \(name) asks for \(count) CPU\(count == 1 ? "" : "s") on one node, and no node has that many free\(smt == .wholeCores ? " whole cores" : ""): \(summary)"))
    }

    /// Places `count` CPUs for a `shared` workload, which may share them with other shared workloads:
    /// on the CPUs no exclusive or partition workload holds (nor, under `whole-cores`, a thread of its
    /// core), reserved or idle, the least-loaded first — by how many shared workloads each holds,
    /// then by id; under `whole-cores` whole cores first, the least-loaded core first. With node `auto`
    /// the node whose choice is least loaded (then the lowest id). Deterministic.
    mutating func placeShared(count: Int, node: NodeChoice, for name: String, strict: Set<String>) -> Result<CPUSet, Failure> {
        let candidates: [HostTopology.Node]
        switch nodes(node, for: name) {
        case .success(let n): candidates = n
        case .failure(let f): return .failure(f)
        }
        // CPUs a shared workload may use, and how many shared workloads each holds already.
        let held = Set(owners.filter { $0.value.contains(where: strict.contains) }.keys)
        let online = host.onlineCPUs
        func usable(_ cpu: Int) -> Bool {
            online.contains(cpu) && !reserved.contains(cpu) && !idle.contains(cpu) && !held.contains(cpu)
        }
        func load(_ cpu: Int) -> Int { owners[cpu]?.count ?? 0 }
        var best: (cpus: [Int], load: Int)?
        for n in candidates {
            // Under whole-cores a core with a thread held by a strict workload is out entirely.
            let cores = host.cores.filter { $0.isSubset(of: n.cpus) }
                .compactMap { core -> [Int]? in
                    if smt == .wholeCores && core.contains(where: held.contains) { return nil }
                    let threads = core.filter(usable).sorted { load($0) != load($1) ? load($0) < load($1) : $0 < $1 }
                    return threads.isEmpty ? nil : threads
                }
            let order: [Int]
            if smt == .wholeCores {
                order = cores.sorted { a, b in
                    let (la, lb) = (a.map(load).reduce(0, +), b.map(load).reduce(0, +))
                    return la != lb ? la < lb : a[0] < b[0]
                }.flatMap { $0 }
            } else {
                order = cores.flatMap { $0 }.sorted { load($0) != load($1) ? load($0) < load($1) : $0 < $1 }
            }
            guard order.count >= count else { continue }
            let chosen = Array(order.prefix(count))
            let total = chosen.map(load).reduce(0, +)
            if best == nil || total < best!.load { best = (chosen, total) }
        }
        guard let best else {
            let summary = candidates.map { n in "node \(n.id): \(n.cpus.filter(usable).count)" }.joined(separator: ", ")
            return .failure(.message("workload \(name) asks for \(count) shared CPU\(count == 1 ? "" : "s") on one node, and no node has that many outside exclusive workloads and host.reserve (usable: \(summary))"))
        }
        let set = CPUSet(best.cpus)
        take(set, for: name)
        return .success(set)
    }

    /// What a node has, for messages: `node 1 has 2 online CPUs (2-3), none reserved, 2 free`.
    func describe(_ node: HostTopology.Node) -> String {
        let cpus = node.cpus
        let res = cpus.intersection(reserved)
        let taken = CPUSet(cpus.filter { owners[$0] != nil })
        var text = "node \(node.id) has \(cpus.count) online CPU\(cpus.count == 1 ? "" : "s") (\(cpus))"
        text += res.isEmpty ? ", none reserved" : ", CPU\(res.count == 1 ? "" : "s") \(res) reserved"
        if !taken.isEmpty {
            let holders = Array(Set(taken.flatMap { owners[$0]! })).sorted().joined(separator: ", ")
            text += ", CPU\(taken.count == 1 ? "" : "s") \(taken) taken by \(holders)"
        }
        let usable = usableCores(in: node).reduce(0) { $0 + $1.count }
        if !taken.isEmpty || !res.isEmpty || !idle.intersection(cpus).isEmpty { text += ", \(usable) usable" }
        return text
    }

    private func usableCores(in node: HostTopology.Node) -> [CPUSet] {
        host.cores.filter { $0.isSubset(of: node.cpus) }.compactMap { core in
            let free = CPUSet(core.filter(isFree))
            if smt == .wholeCores { return free == core ? core : nil }
            return free.isEmpty ? nil : free
        }
    }

    private func pick(_ count: Int, in node: HostTopology.Node) -> (cpus: CPUSet, idle: CPUSet)? {
        let cores = usableCores(in: node)
        // Whole free cores first; with smt: any, leftover threads of partly used cores after them.
        let whole = cores.filter { core in host.cores.contains(core) }
        let partial = cores.filter { core in !host.cores.contains(core) }
        var chosen: [Int] = []
        var spare: [Int] = []
        for core in whole + partial where chosen.count < count {
            let need = count - chosen.count
            let ids = core.ids
            chosen += ids.prefix(need)
            if ids.count > need && smt == .wholeCores { spare += ids.dropFirst(need) }
        }
        guard chosen.count == count else { return nil }
        return (CPUSet(chosen), CPUSet(spare))
    }
}
