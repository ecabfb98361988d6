/// The CPU bookkeeping of one planning run: who holds which CPU, and which siblings stay idle.
struct Placement {
    let host: HostTopology
    let reserved: CPUSet
    let smt: SMTPolicy
    /// Who holds each CPU, by index into `names`: an array by CPU id, since 10,000 shared workloads on
    /// 1,024 CPUs are ten million entries.
    private var owned: [[Int32]] = Array(repeating: [], count: CPUSet.maxID + 1)
    private var names: [String] = []
    private var nameIndex: [String: Int32] = [:]
    /// The CPUs an exclusive or partition workload holds (which no shared workload may use).
    private(set) var held: Set<Int> = []
    private(set) var idle = CPUSet()
    /// Per node, the index (in `host.cores(ofNode:)`) before which no core is wholly free, and the one
    /// before which no core has a free thread. A CPU once taken, reserved or idle stays so for the
    /// whole planning run, so both only move forward: placing N workloads on a host of C cores looks
    /// at each core a bounded number of times, not N × C.
    private var wholeCursor: [Int: Int] = [:]
    private var freeCursor: [Int: Int] = [:]
    /// Per node, the cores shared workloads take from, in order (see `sharedOrder`); dropped whenever
    /// a strict workload takes CPUs or a thread goes idle.
    private var sharedCores: [Int: [SharedCore]] = [:]

    init(host: HostTopology, reserved: CPUSet, smt: SMTPolicy) {
        self.host = host
        self.reserved = reserved
        self.smt = smt
    }

    /// Gives `cpus` to `name`; `strict` for an exclusive or partition workload.
    mutating func take(_ cpus: CPUSet, for name: String, strict: Bool) {
        if strict { sharedCores = [:] }
        let index =
            nameIndex[name]
            ?? {
                names.append(name)
                nameIndex[name] = Int32(names.count - 1)
                return Int32(names.count - 1)
            }()
        for cpu in cpus {
            owned[cpu].append(index)
            if strict { held.insert(cpu) }
        }
    }

    /// Threads that stay idle: no workload gets them (the spare threads of a core an odd count took part of).
    mutating func markIdle(_ cpus: CPUSet) {
        sharedCores = [:]
        idle = idle.union(cpus)
    }

    func isFree(_ cpu: Int) -> Bool {
        owned[cpu].isEmpty && !reserved.contains(cpu) && !idle.contains(cpu) && host.onlineCPUs.contains(cpu)
    }

    /// Under `whole-cores`, the free threads that share a core with a reserved CPU stay idle too:
    /// a workload there would share the core with housekeeping.
    mutating func idleSiblingsOfReserved() {
        guard smt == .wholeCores else { return }
        for core in host.cores where !core.intersection(reserved).isEmpty {
            idle = idle.union(CPUSet(core.filter(isFree)))
            sharedCores = [:]
        }
    }

    /// Problems where two explicit workloads (not both shared) hold threads of one core.
    func splitCores(_ workloads: [Workload]) -> [String] {
        var problems: [String] = []
        // Only a core with a thread an exclusive or partition workload holds can be split wrongly.
        for core in host.cores where core.count > 1 && core.contains(where: held.contains) {
            let holders = Set(core.flatMap(owners))
            let strict = workloads.filter { holders.contains($0.name) }
            if holders.count > 1 && strict.contains(where: { $0.isolation != .shared }) {
                let names = strict.map(\.name).joined(separator: " and ")
                problems.append(
                    "workloads \(names) split the physical core \(core) between them; give each whole cores, or set host.smt: any"
                )
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
            return .failure(
                .message(
                    "workload \(name) asks for node \(id), which this host does not have (it has nodes \(CPUSet(host.nodes.map(\.id))))"
                ))
        }
        if n.isMemoryOnly {
            return .failure(
                .message(
                    "workload \(name) asks for CPUs on node \(id), which has memory but no CPUs; it can be a memory target (memory.nodes: \"\(id)\")"
                ))
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
                take(set.cpus, for: name, strict: true)
                idle = idle.union(set.idle)
                sharedCores = [:]
                return .success(set.cpus)
            }
        }
        if case .node(let id) = node {
            return .failure(
                .message(
                    "workload \(name) asks for \(count) CPU\(count == 1 ? "" : "s") on node \(id); \(describe(host.node(id)!))"
                ))
        }
        let summary = candidates.map(describe).joined(separator: "; ")
        return .failure(
            .message(
                "workload \(name) asks for \(count) CPU\(count == 1 ? "" : "s") on one node, and no node has that many free\(smt == .wholeCores ? " whole cores" : ""): \(summary)"
            ))
    }

    /// Places `count` CPUs for a `shared` workload, which may share them with other shared workloads:
    /// on the CPUs no exclusive or partition workload holds (nor, under `whole-cores`, a thread of its
    /// core), reserved or idle, the least-loaded first — by how many shared workloads each holds,
    /// then by id; under `whole-cores` whole cores first, the least-loaded core first. With node `auto`
    /// the node whose choice is least loaded (then the lowest id). Deterministic.
    mutating func placeShared(count: Int, node: NodeChoice, for name: String) -> Result<CPUSet, Failure> {
        let candidates: [HostTopology.Node]
        switch nodes(node, for: name) {
        case .success(let n): candidates = n
        case .failure(let f): return .failure(f)
        }
        var best: (node: Int, cpus: [Int], load: Int)?
        for n in candidates {
            let order = sharedOrder(n)
            // The first `count` threads, cores in order (each core's threads least loaded first).
            var chosen: [Int] = []
            for core in order where chosen.count < count { chosen += core.threads.prefix(count - chosen.count) }
            guard chosen.count == count else { continue }
            let total = chosen.reduce(0) { $0 + load($1) }
            if best == nil || total < best!.load { best = (n.id, chosen, total) }
        }
        guard let best else {
            let summary = candidates.map { n in "node \(n.id): \(sharedOrder(n).reduce(0) { $0 + $1.threads.count })" }
                .joined(separator: ", ")
            return .failure(
                .message(
                    "workload \(name) asks for \(count) shared CPU\(count == 1 ? "" : "s") on one node, and no node has that many outside exclusive workloads and host.reserve (usable: \(summary))"
                ))
        }
        let set = CPUSet(best.cpus)
        take(set, for: name, strict: false)
        reorderShared(node: best.node, after: set)
        return .success(set)
    }

    /// How many workloads hold `cpu`.
    func load(_ cpu: Int) -> Int { owned[cpu].count }

    /// The workloads that hold `cpu`, in the order they took it.
    func owners(_ cpu: Int) -> [String] { owned[cpu].map { names[Int($0)] } }

    /// A core as a shared workload sees it: its usable threads least loaded first (then by id), and
    /// its key — the threads' total load, then its first thread's id. Under `smt: any` each thread is
    /// a core of its own, so the order is simply by load, then id.
    struct SharedCore {
        var threads: [Int]
        var key: (load: Int, first: Int)

        init(_ threads: [Int], load: (Int) -> Int) {
            self.threads = threads.sorted { load($0) != load($1) ? load($0) < load($1) : $0 < $1 }
            key = (self.threads.reduce(0) { $0 + load($1) }, self.threads[0])
        }

        static func before(_ a: SharedCore, _ b: SharedCore) -> Bool {
            a.key.load != b.key.load ? a.key.load < b.key.load : a.key.first < b.key.first
        }
    }

    /// The cores of `node` a shared workload may use, in the order it takes them: a CPU no exclusive
    /// or partition workload holds (under `whole-cores`, none of its core's threads), not reserved,
    /// not idle. Made once per node: shared workloads are placed after every strict one, so only the
    /// loads change from one to the next, and `reorderShared` keeps the order with them.
    mutating func sharedOrder(_ node: HostTopology.Node) -> [SharedCore] {
        if let order = sharedCores[node.id] { return order }
        let online = host.onlineCPUs
        func usable(_ cpu: Int) -> Bool {
            online.contains(cpu) && !reserved.contains(cpu) && !idle.contains(cpu) && !held.contains(cpu)
        }
        var cores: [SharedCore] = []
        for core in host.cores(ofNode: node.id) {
            if smt == .wholeCores && core.contains(where: held.contains) { continue }
            let threads = core.filter(usable)
            if threads.isEmpty { continue }
            if smt == .wholeCores {
                cores.append(SharedCore(threads, load: load))
            } else {
                cores += threads.map { SharedCore([$0], load: load) }
            }
        }
        cores.sort(by: SharedCore.before)
        sharedCores[node.id] = cores
        return cores
    }

    /// After a shared workload took `taken` on `node`: the cores that hold them get their new loads
    /// and go back into the order by merging (the others keep theirs), so each placement costs one
    /// pass over the node's cores, not a sort.
    private mutating func reorderShared(node: Int, after taken: CPUSet) {
        guard let order = sharedCores[node] else { return }
        var moved: [SharedCore] = []
        var kept: [SharedCore] = []
        kept.reserveCapacity(order.count)
        for core in order {
            if core.threads.contains(where: taken.contains) {
                moved.append(SharedCore(core.threads, load: load))
            } else {
                kept.append(core)
            }
        }
        moved.sort(by: SharedCore.before)
        var merged: [SharedCore] = []
        merged.reserveCapacity(order.count)
        var i = 0
        var j = 0
        while i < kept.count || j < moved.count {
            if j == moved.count || (i < kept.count && SharedCore.before(kept[i], moved[j])) {
                merged.append(kept[i])
                i += 1
            } else {
                merged.append(moved[j])
                j += 1
            }
        }
        sharedCores[node] = merged
    }

    /// What a node has, for messages: `node 1 has 2 online CPUs (2-3), none reserved, 2 free`.
    func describe(_ node: HostTopology.Node) -> String {
        let cpus = node.cpus
        let res = cpus.intersection(reserved)
        let taken = CPUSet(cpus.filter { !owned[$0].isEmpty })
        var text = "node \(node.id) has \(cpus.count) online CPU\(cpus.count == 1 ? "" : "s") (\(cpus))"
        text += res.isEmpty ? ", none reserved" : ", CPU\(res.count == 1 ? "" : "s") \(res) reserved"
        if !taken.isEmpty {
            let holders = Array(Set(taken.flatMap(owners))).sorted().joined(separator: ", ")
            text += ", CPU\(taken.count == 1 ? "" : "s") \(taken) taken by \(holders)"
        }
        let usable = usableCores(in: node).reduce(0) { $0 + $1.count }
        if !taken.isEmpty || !res.isEmpty || !idle.intersection(cpus).isEmpty { text += ", \(usable) usable" }
        return text
    }

    /// The free threads of each core of `node` that has any (under `whole-cores`, only wholly free
    /// cores), and whether that is the whole core.
    private func freeCores(in node: HostTopology.Node) -> [(threads: CPUSet, whole: Bool)] {
        host.cores(ofNode: node.id).compactMap { core in
            let free = CPUSet(core.filter(isFree))
            if smt == .wholeCores { return free == core ? (core, true) : nil }
            return free.isEmpty ? nil : (free, free == core)
        }
    }

    private func usableCores(in node: HostTopology.Node) -> [CPUSet] { freeCores(in: node).map(\.threads) }

    /// Whole free cores first, lowest first; with `smt: any`, the free threads of partly used cores
    /// after them. Under `whole-cores` the spare threads of the last core taken stay idle.
    private mutating func pick(_ count: Int, in node: HostTopology.Node) -> (cpus: CPUSet, idle: CPUSet)? {
        let cores = host.cores(ofNode: node.id)
        func isWhole(_ core: CPUSet) -> Bool { core.allSatisfy(isFree) }
        var w = wholeCursor[node.id] ?? 0
        while w < cores.count && !isWhole(cores[w]) { w += 1 }
        wholeCursor[node.id] = w
        var chosen: [Int] = []
        var spare: [Int] = []
        var i = w
        while i < cores.count && chosen.count < count {
            if isWhole(cores[i]) {
                let need = count - chosen.count
                let ids = cores[i].ids
                chosen += ids.prefix(need)
                if ids.count > need && smt == .wholeCores { spare += ids.dropFirst(need) }
            }
            i += 1
        }
        if chosen.count < count && smt == .any {
            var f = freeCursor[node.id] ?? 0
            while f < cores.count && !cores[f].contains(where: isFree) { f += 1 }
            freeCursor[node.id] = f
            var j = f
            while j < cores.count && chosen.count < count {
                let free = cores[j].filter(isFree)
                if !free.isEmpty && free.count < cores[j].count { chosen += free.prefix(count - chosen.count) }
                j += 1
            }
        }
        guard chosen.count == count else { return nil }
        return (CPUSet(chosen), CPUSet(spare))
    }
}
