import Foundation
import Testing

@testable import TopoCore

/// A temporary host for apply, teardown and status: cgroup root, state, /etc/netns, and a plan laid out there.
struct Scene {
    let fake: FakeRoot
    let state: StateStore
    let drivers: Drivers
    let layout: Layout

    init() throws {
        fake = try FakeRoot()
        try fake.mkdir("cg")
        state = StateStore(root: "\(fake.path)/run")
        layout = Layout(stateRoot: state.root, etcNetns: "\(fake.path)/etc-netns")
        drivers = Drivers.host(
            state: state, cgroupRoot: "\(fake.path)/cg", etcNetns: layout.etcNetns, executable: "/nonexistent/topo")
    }

    func plan(_ yaml: String, host: String = "1n-2c") throws -> Plan {
        try Planner(host: try fixtureHost(host), layout: layout).plan(try profile(yaml)).get()
    }

    var cgroups: CgroupFS { (drivers.cgroups as! CgroupfsManager).fs }
    var teardown: Teardown { Teardown(state: state, drivers: drivers) }
    var applier: Applier { Applier(state: state, drivers: drivers) }
}

/// What the fake cgroup manager saw: steps made, whether `plan.json` was there at each, steps undone.
final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var made = 0, undoCount = 0
    private var planAt: Set<Bool> = []
    private var batchSizes: [Int] = []
    func step(planThere: Bool) -> Int {
        lock.lock()
        defer { lock.unlock() }
        made += 1
        planAt.insert(planThere)
        return made
    }
    func undo() {
        lock.lock()
        undoCount += 1
        lock.unlock()
    }
    func batch(_ n: Int) {
        lock.lock()
        batchSizes.append(n)
        lock.unlock()
    }
    var batches: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return batchSizes
    }
    var steps: Int {
        lock.lock()
        defer { lock.unlock() }
        return made
    }
    var undone: Int {
        lock.lock()
        defer { lock.unlock() }
        return undoCount
    }
    var planDuring: [Bool] {
        lock.lock()
        defer { lock.unlock() }
        return planAt.sorted { !$0 && $1 }
    }
}

/// A cgroup manager that makes nothing: it counts steps (failing the `failAt`th) and checks the state directory meanwhile.
struct StepCgroups: CgroupManager {
    let state: StateStore
    let log: StepLog
    let failAt: Int?
    var failUndo: String? = nil
    var description: String { "steps only" }
    func path(_ cgroup: String) -> String { "/fake/\(cgroup)" }
    func procsPath(_ cgroup: String) -> String { "/fake/\(cgroup)/cgroup.procs" }
    func exists(_ cgroup: String) -> Bool { false }
    func stopAll(_ cgroups: [(cgroup: String, owner: String)]) -> [TopoFailure?] { cgroups.map { _ in nil } }
    func offeredControllers() -> [String] { [] }
    func read(_ cgroup: String, _ file: String) -> String? { nil }
    func threads(_ cgroup: String) -> [Int32] { [] }
    func processes(_ cgroup: String) -> [Int32] { [] }
    func hierarchyPath(_ cgroup: String) -> String { "/\(cgroup)" }
    func recordRootControllers(_ added: Set<String>) throws(TopoFailure) {}
    func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        var out: [Result<Facts, TopoFailure>?] = Array(repeating: nil, count: batch.count)
        for i in batch.indices {
            let n = log.step(planThere: Sys.exists(state.planPath("demo")))
            if n == failAt {
                out[i] = .failure(TopoFailure(.applyFailed, "step \(n) fails"))
                break
            }
            out[i] = .success(Facts())
        }
        return out
    }
    func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        log.undo()
        guard case .cgroup(let c) = resource else { return .nothing }
        if c.path == failUndo { throw TopoFailure(.hostCannot, "\(c.path) cannot be removed") }
        return .removed(c.path)
    }
    func undo(_ batch: [JournalStep]) -> [Result<Undone, TopoFailure>] {
        log.batch(batch.count)
        return batch.map { step in
            Result { () throws(TopoFailure) -> Undone in try undo(step.resource, done: step.done, facts: step.facts) }
        }
    }
    func describe(_ resource: Resource) -> [String] { [resource.summary] }
    func observe(_ resource: Resource) -> Observation { Observation(resource, found: false) }
}

extension StateStore {
    /// The state directory as apply leaves it once every step is made: the journal, then the plan.
    func createApplied(_ plan: Plan) throws {
        try create(plan.name, profileText: nil)
        try record(plan.name, planText: JSONOutput.encode(plan) + "\n")
    }
}
