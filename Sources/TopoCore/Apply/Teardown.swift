/// Apply's mirror: undoes a profile from its journal alone, last step first, each record through the
/// driver that made it. Objects already gone are fine; anything without topo's mark for this profile is
/// left alone. The state directory and journal go only when everything was undone: otherwise they
/// stay, every problem is named, and a second `down` after the cause is fixed finishes the job.
public struct Teardown: Sendable {
    public var state: StateStore
    public var drivers: Drivers

    public init(state: StateStore, drivers: Drivers) {
        self.state = state
        self.drivers = drivers
    }

    public typealias Report = ResourceLoop.UndoReport

    /// Removes one profile. The caller holds the state lock (apply's rollback) or takes it (`down`).
    public func remove(_ profile: String) -> Report {
        let journal = Journal.read(state.journalPath(profile))
        var report = ResourceLoop(drivers: drivers).undo(journal.steps, problems: journal.problems)
        if report.problems.isEmpty {
            do {
                try state.remove(profile)
            } catch {
                report.problems.append("\(error)")
            }
        } else {
            report.skipped.append(
                "\(state.profileDir(profile)) kept, with its journal: run `topo down \(profile)` again once the problems are fixed"
            )
        }
        state.removeRootIfEmpty()
        return report
    }
}
