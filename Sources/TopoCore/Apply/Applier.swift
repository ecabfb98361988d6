import Foundation

/// Applies a plan: every resource in order through its driver, each journaled before it is made.
/// A failure part-way tears down what was made, from the journal, and exits 4.
public struct Applier: Sendable {
    public var state: StateStore
    public var drivers: Drivers

    public init(state: StateStore, drivers: Drivers) {
        self.state = state
        self.drivers = drivers
    }

    public enum Outcome: Equatable, Sendable {
        /// Each launched workload's pid, and what apply left as it was and why (an interrupt the kernel will not move).
        case applied(pids: [String: Int32], notes: [String])
        case unchanged
    }

    /// Applies the plan under the state lock. Refuses (exit 3) a profile already applied with another
    /// plan, left half-made, or whose exclusive CPUs overlap another applied profile. The profile's
    /// text, when given, is kept with the state for `topo report`.
    /// `done` hears of each step as it is made (`apply -v`).
    public func apply(
        _ plan: Plan, profileText: String? = nil, done: ((Int, Resource) -> Void)? = nil
    ) -> Result<Outcome, TopoFailure> {
        do {
            return try state.withLock { () -> Result<Outcome, TopoFailure> in
                if let refusal = checkAgainstApplied(plan) { return refusal }
                return run(plan, profileText: profileText, done: done)
            }
        } catch {
            return .failure(TopoFailure(.hostCannot, "cannot take topo's state lock: \(error)"))
        }
    }

    func checkAgainstApplied(_ plan: Plan) -> Result<Outcome, TopoFailure>? {
        if Sys.exists(state.profileDir(plan.name)) {
            let complete = Sys.exists("\(state.profileDir(plan.name))/applied")
            if complete, case .success(let applied) = state.plan(plan.name), applied == plan {
                return .success(.unchanged)
            }
            let why =
                complete ? "is applied with a different plan" : "was left half-applied (topo was stopped during apply)"
            return .failure(TopoFailure(.hostCannot, "profile \(plan.name) \(why); run `topo down \(plan.name)` first"))
        }
        // Objects found before apply makes them are someone else's, and values another profile holds
        // otherwise: each driver says which of its resources meet one.
        var problems = drivers.conflicts(plan)
        for other in state.profiles() where other != plan.name {
            let applied: Plan
            switch state.plan(other) {
            case .success(let p): applied = p
            case .failure(let f):
                problems.append("cannot check for overlaps with applied profile \(other): \(f.message)")
                continue
            }
            for w in plan.workloads {
                for o in applied.workloads {
                    let overlap = w.cpus.intersection(o.cpus)
                    if !overlap.isEmpty && !Isolation.mayShareCPUs(w.isolation, o.isolation) {
                        problems.append(
                            "workload \(w.name) would use CPU \(overlap), which applied profile \(other) gives \(o.isolation.rawValue) to its workload \(o.name)"
                        )
                    }
                }
            }
        }
        if problems.isEmpty { return nil }
        return .failure(TopoFailure(.hostCannot, problems.joined(separator: "\n")))
    }

    /// Makes everything. On failure, undoes what the journal says was begun and exits 4.
    ///
    /// `plan.json` is encoded on another thread while the steps are made, and written after the last
    /// one, before the `applied` mark: encoding a large plan is a good part of apply's own CPU time
    /// (JSONEncoder over every resource), and nothing reads the plan before apply ends — `down` undoes
    /// from the journal alone, and a profile left without its plan by a crash is `incomplete` to
    /// `status` and refused by the next `apply` until `topo down` removes it, as before.
    func run(
        _ plan: Plan, profileText: String? = nil, done: ((Int, Resource) -> Void)? = nil
    ) -> Result<Outcome, TopoFailure> {
        let planText = Background { JSONOutput.encode(plan) + "\n" }
        do {
            try state.create(plan.name, profileText: profileText)
        } catch {
            return .failure(TopoFailure(.applyFailed, "apply failed: \(error); nothing was changed"))
        }
        let journal = Journal(path: state.journalPath(plan.name))
        do {
            let made = try ResourceLoop(drivers: drivers).apply(plan.resources, journal: journal, done: done)
            try state.record(plan.name, planText: planText.value)
            try Sys.write(
                "\(state.profileDir(plan.name))/applied", "\(plan.resources.count)\n",
                flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
            return .success(.applied(pids: made.pids, notes: made.notes))
        } catch {
            let step = (error as? ResourceLoop.Failure)?.step
            let why = (error as? ResourceLoop.Failure).map { "\($0.error.message)" } ?? "\(error)"
            let rollback = Teardown(state: state, drivers: drivers).remove(plan.name)
            var message = "apply of \(plan.name) failed\(step.map { " at step \($0)" } ?? ""): \(why)\n"
            message +=
                rollback.problems.isEmpty
                ? "rolled back: everything apply made is removed"
                : "rollback left problems (run `topo down \(plan.name)` once they are fixed):\n"
                    + rollback.problems.map { "  - \($0)" }.joined(separator: "\n")
            return .failure(TopoFailure(.applyFailed, message))
        }
    }
}
