/// The three loops over a plan's resources, each the same for every kind: apply (journal begin →
/// driver apply → journal done), undo (the journal in reverse, each record handed to its driver),
/// observe (each resource read back by its driver). A new kind of object is a resource type and a
/// driver's methods for it; nothing here changes.
public struct ResourceLoop: Sendable {
    public var drivers: Drivers

    public init(drivers: Drivers) { self.drivers = drivers }

    /// Why apply stopped: the step that failed and the driver's words.
    public struct Failure: Error, Sendable {
        public var step: Int
        public var error: TopoFailure
    }

    /// Makes every resource in order. Consecutive resources of one driver form a batch: all are
    /// journaled as begun (one write) before the driver starts, and marked done in order (one write)
    /// once it returns, so a driver may make them at once. `done` hears of each step (1-based) once it
    /// is journaled as made, in order. Returns each launched workload's pid, and the drivers' notes on
    /// what they left as it was (`Facts.note`).
    public func apply(
        _ resources: [Resource], journal: Journal, done report: ((Int, Resource) -> Void)? = nil
    ) throws(Failure) -> (pids: [String: Int32], notes: [String]) {
        var pids: [String: Int32] = [:]
        var notes: [String] = []
        var step = 0
        for batch in Self.batches(resources) {
            let first = step + 1
            step += batch.count
            do { try journal.begin(batch.enumerated().map { (first + $0.offset, $0.element) }) } catch {
                throw Failure(step: first, error: TopoFailure(.applyFailed, "\(error)"))
            }
            guard let driver = drivers.driver(for: batch[0]) else {
                throw Failure(step: first, error: TopoFailure(.applyFailed, "no driver for \(batch[0].summary)"))
            }
            let results = driver.apply(batch)
            // Done lines for what was made, in order, up to the first failure; then that failure.
            var done: [(Int, Facts)] = []
            var failure: Failure?
            for (i, r) in batch.enumerated() {
                switch results.indices.contains(i) ? results[i] : nil {
                case .success(let facts):
                    done.append((first + i, facts))
                    if case .launch(let l) = r, let pid = facts.pid { pids[l.workload] = pid }
                    if let note = facts.note { notes.append(note) }
                case .failure(let error):
                    failure = Failure(step: first + i, error: error)
                case nil:
                    failure = Failure(
                        step: first + i,
                        error: TopoFailure(.applyFailed, "\(r.summary) was not made: its driver stopped before it"))
                }
                if failure != nil { break }
            }
            do { try journal.done(done) } catch {
                throw Failure(step: done.first?.0 ?? first, error: TopoFailure(.applyFailed, "\(error)"))
            }
            if let report { for (n, _) in done { report(n, resources[n - 1]) } }
            if let failure { throw failure }
        }
        return (pids, notes)
    }

    /// What undoing a journal did.
    public struct UndoReport: Equatable, Sendable {
        /// What was removed, each with its kind.
        public var removed: [(kind: Resource.Kind, what: String)] = []
        public var skipped: [String] = []
        /// What could not be undone; non-empty means the host may not be clean and the journal must stay.
        public var problems: [String] = []

        public static func == (a: UndoReport, b: UndoReport) -> Bool {
            a.removed.map(\.kind) == b.removed.map(\.kind) && a.removed.map(\.what) == b.removed.map(\.what)
                && a.skipped == b.skipped && a.problems == b.problems
        }

        /// `2 cgroups, 1 network namespace`, counted by kind in plan order.
        public var counts: String {
            let parts = Resource.Kind.allCases.compactMap { kind -> String? in
                let n = removed.filter { $0.kind == kind }.count
                return n == 0 ? nil : "\(n) \(kind.noun)\(n == 1 ? "" : "s")"
            }
            return parts.isEmpty ? "nothing" : parts.joined(separator: ", ")
        }
    }

    /// Undoes journaled steps, last first. Consecutive steps of one driver go to it as a batch, which it
    /// may undo at once (namespaces, workloads' processes). A shared resource (`Resource.isShared`) is
    /// undone alone, and released only when nothing before it was left undone: otherwise the journal
    /// stays, and so must the record of what to restore.
    public func undo(_ steps: [JournalStep], problems known: [String] = []) -> UndoReport {
        var report = UndoReport(problems: known)
        for batch in Self.undoBatches(steps.reversed()) {
            if batch.count == 1, batch[0].resource.isShared, !report.problems.isEmpty {
                report.skipped.append(
                    "\(batch[0].resource.summary): kept, with its record, until a `topo down` finishes without problems"
                )
                continue
            }
            guard let driver = drivers.driver(for: batch[0].resource) else {
                report.problems += batch.map { "step \($0.number): no driver can undo \($0.resource.summary)" }
                continue
            }
            let results = driver.undo(batch)
            for (i, step) in batch.enumerated() {
                switch results.indices.contains(i)
                    ? results[i] : .failure(TopoFailure(.hostCannot, "its driver gave no result for it"))
                {
                case .success(.removed(let what)): report.removed.append((step.resource.kind, what))
                case .success(.leftAlone(let why)): report.skipped.append(why)
                case .success(.nothing): break
                case .failure(let error): report.problems.append("undo \(step.resource.summary): \(error)")
                }
            }
        }
        return report
    }

    /// Reads every resource back: each driver gets all of its resources at once (it may share one
    /// read among several), the drivers all at once; observations come back in the resources' order.
    public func observe(_ resources: [Resource]) -> [Observation] {
        var keys: [Drivers.Key] = []
        var indices: [Drivers.Key: [Int]] = [:]
        for (i, r) in resources.enumerated() {
            let key = Drivers.key(r)
            if indices[key] == nil { keys.append(key) }
            indices[key, default: []].append(i)
        }
        let drivers = self.drivers
        let groups = keys.map { ($0, indices[$0]!.map { resources[$0] }) }
        let seen = concurrentMap(groups) { key, batch in
            drivers.driver(key)?.observe(batch)
                ?? batch.map { Observation($0, found: false, kernel: "no driver for it") }
        }
        // Every index is in exactly one group: no placeholder observation is made (a round would
        // otherwise describe each resource as missing, only to replace it).
        var out = [Observation?](repeating: nil, count: resources.count)
        for (g, (key, _)) in groups.enumerated() {
            for (i, o) in zip(indices[key]!, seen[g]) { out[i] = o }
        }
        return out.map { $0! }
    }

    /// Maximal runs of consecutive resources that one driver owns.
    static func batches(_ resources: [Resource]) -> [[Resource]] { runs(resources) { $0 } }

    /// Maximal runs of consecutive steps that one driver owns, in the order given; a shared resource
    /// is a run of its own.
    static func undoBatches(_ steps: some Sequence<JournalStep>) -> [[JournalStep]] {
        runs(steps, sharedAlone: true, \.resource)
    }

    static func runs<T>(_ items: some Sequence<T>, sharedAlone: Bool = false, _ resource: (T) -> Resource) -> [[T]] {
        var out: [[T]] = []
        for item in items {
            let r = resource(item)
            if let last = out.last?.last.map(resource), Drivers.key(last) == Drivers.key(r),
                !(sharedAlone && (last.isShared || r.isShared))
            {
                out[out.count - 1].append(item)
            } else {
                out.append([item])
            }
        }
        return out
    }
}
