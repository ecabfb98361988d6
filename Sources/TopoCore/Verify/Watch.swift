import CNuma
import Foundation

/// `topo verify --watch`: the static checks in rounds beside a running benchmark, reporting only what
/// changed between two rounds. A round reads files and netlink; it starts no process.
public enum Watch {
    /// A check that changed since the round before, or a profile that appeared or went away.
    public struct Change: Codable, Equatable, Sendable {
        public var round: Int
        /// ISO 8601, with milliseconds.
        public var time: String
        public var profile: String
        /// Nil when the whole profile appeared (`event: applied`) or went (`event: gone`).
        public var check: Check?
        /// The check's status in the round before; nil for a check seen for the first time.
        public var previous: Check.Status?
        public var event: String?
    }

    /// What differs between two rounds of one set of profiles: a check whose status changed, a check
    /// that still fails or warns but finds something else (another task, a different value), a check
    /// or profile seen for the first time, and a profile no longer applied. A passing check whose
    /// counters moved is no change.
    public static func changes(
        round: Int, time: String, from before: [Verifier.ProfileResult], to after: [Verifier.ProfileResult]
    ) -> [Change] {
        var out: [Change] = []
        let old = Dictionary(before.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for profile in after {
            guard let previous = old[profile.name] else {
                out.append(
                    Change(round: round, time: time, profile: profile.name, check: nil, previous: nil, event: "applied")
                )
                continue
            }
            let earlier = Dictionary(previous.checks.map { (Key($0), $0) }, uniquingKeysWith: { a, _ in a })
            for check in profile.checks {
                guard let was = earlier[Key(check)] else {
                    out.append(Change(round: round, time: time, profile: profile.name, check: check, previous: nil))
                    continue
                }
                if was.status != check.status || (check.status != .pass && was.found != check.found) {
                    out.append(
                        Change(round: round, time: time, profile: profile.name, check: check, previous: was.status))
                }
            }
        }
        let now = Set(after.map(\.name))
        for profile in before where !now.contains(profile.name) {
            out.append(
                Change(round: round, time: time, profile: profile.name, check: nil, previous: nil, event: "gone"))
        }
        return out
    }

    private struct Key: Hashable {
        var id: String, subject: String
        init(_ c: Check) {
            id = c.id
            subject = c.subject
        }
    }

    /// The CPUs no `exclusive` or `partition` workload of the given plans holds: where the watcher runs.
    public static func quietCPUs(_ plans: [Plan], online: CPUSet) -> CPUSet {
        let held = plans.flatMap(\.workloads).filter { $0.isolation != .shared }.reduce(CPUSet.empty) {
            $0.union($1.cpus)
        }
        return online.subtracting(held)
    }

    /// Pins every thread of this process onto `cpus` (sched_setaffinity per task, so the worker
    /// threads that read namespaces follow); called each round, it also catches threads made since.
    public static func pin(_ cpus: CPUSet) -> Result<Void, SystemError> {
        guard let mask = numa_parse_cpustring_all(cpus.description) else {
            return .failure(SystemError("parse the CPU list", cpus.description, errno: EINVAL))
        }
        defer { numa_bitmask_free(mask) }
        for tid in Sys.entries("/proc/self/task").compactMap(Int32.init) {
            if numa_sched_setaffinity(tid, mask) < 0 && errno != ESRCH {
                return .failure(SystemError("sched_setaffinity \(cpus) for thread", String(tid), errno: errno))
            }
        }
        return .success(())
    }

    /// A wall-clock time as the changes carry it: `2026-11-29T10:41:03.250Z`.
    /// `2026-11-29T19:51:02.123Z`, in UTC, as the watcher prints each round's time.
    public static func timestamp(_ date: Date = Date()) -> String {
        // Formatted by hand: a date formatter costs more to make than a whole round's parsing.
        var seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday),
            Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec), min(millis, 999))
    }
}
