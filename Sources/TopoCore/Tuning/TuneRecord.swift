import Foundation

/// How a tuned object's value is read, written and compared.
enum TuneKind: String, Codable, Sendable {
    /// One value in a file, compared trimmed: a sysctl, a governor, a frequency.
    case scalar
    /// One word of a list in a file, the chosen one in brackets: `always [madvise] never`.
    case selection
    /// A CPU list in a file (`smp_affinity_list`), compared as a set.
    case cpuList
    /// A hex CPU mask in 32-bit groups in a file (`workqueue/cpumask`), compared as a set.
    case cpuMask
    /// A kernel thread's allowed CPUs (sched_setaffinity), keyed `thread PID STARTTIME` (`KernelThreads`).
    case thread
    /// A systemd unit topo stopped, keyed `unit NAME` (`Irqbalance`).
    case unit

    /// Whether the value is CPUs to keep clear: profiles' values combine instead of conflicting, and a
    /// target already clear of them is left as it is, unrecorded.
    var keepsCPUsClear: Bool { self == .cpuList || self == .cpuMask || self == .thread }

    /// Whether two values mean the same.
    func same(_ a: String, _ b: String) -> Bool {
        switch self {
        case .scalar, .unit:
            a.trimmingCharacters(in: .whitespacesAndNewlines) == b.trimmingCharacters(in: .whitespacesAndNewlines)
        case .selection: TuneValue.selected(a) == TuneValue.selected(b)
        case .cpuList, .thread: (try? CPUSet.parse(a).get()).map { x in (try? CPUSet.parse(b).get()) == x } ?? false
        case .cpuMask: TuneValue.mask(a).map { TuneValue.mask(b) == $0 } ?? false
        }
    }

    /// A value of this kind as a set of CPUs (a list or a mask).
    func cpus(_ text: String) -> CPUSet? { self == .cpuMask ? TuneValue.mask(text) : try? CPUSet.parse(text).get() }
}

/// One object a setting changes, and the value a profile wants in it.
struct TuneTarget {
    var key: String
    var kind: TuneKind
    /// A scalar's value; for `cpuList`, `cpuMask` and `thread`, the CPUs to keep clear.
    var want: String
}

/// The kernel's spellings of values.
public enum TuneValue {
    /// The chosen word of `always [madvise] never`; a bare word is itself.
    static func selected(_ text: String) -> String {
        if let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") {
            return String(text[text.index(after: open)..<close])
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A hex CPU mask in comma-separated 32-bit groups (`00000000,0000000f`), as a set.
    public static func mask(_ text: String) -> CPUSet? {
        let digits = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).filter { $0 != "," }.lowercased())
        guard !digits.isEmpty, digits.count <= (CPUSet.maxID + 1) / 4 else { return nil }
        var set = CPUSet()
        for (i, c) in digits.reversed().enumerated() {
            guard let v = c.hexDigitValue else { return nil }
            for bit in 0..<4 where v & (1 << bit) != 0 { set.insert(i * 4 + bit) }
        }
        return set
    }

    /// A set as the hex mask the kernel's bitmap parser takes: 32-bit groups, comma-separated.
    static func maskText(_ set: CPUSet) -> String {
        let groups = max(1, ((set.ids.last ?? 0) / 32) + 1)
        var words = [UInt32](repeating: 0, count: groups)
        for id in set { words[id / 32] |= 1 << UInt32(id % 32) }
        return words.reversed().map { String(format: "%08x", $0) }.joined(separator: ",")
    }
}

/// What topo changed for `host.tune`, host-wide, by target key (`StateStore.tunePath`).
struct TuneRecord: Codable, Equatable {
    var entries: [String: Entry] = [:]
    /// The targets the kernel refused to change, by `PROFILE SETTING` (an interrupt that cannot move):
    /// observe does not count them as having appeared since.
    var refused: [String: [String]] = [:]

    static func holder(_ t: TuneResource) -> String { "\(t.profile) \(t.setting.name)" }

    struct Entry: Codable, Equatable {
        /// The setting's profile key (`irqs`, `timerMigration`), for messages and undo.
        var setting: String
        var kind: TuneKind
        /// The value before topo first changed it, as the kernel read it.
        var original: String
        /// What topo last wrote, as the kernel read it back (the value about to be written, until then).
        var written: String
        /// Each profile that holds the setting, and what it wants.
        var holders: [String: String]

        /// The value to write: a scalar's wanted value (the holders agree; see `HostTuner.conflicts`),
        /// or the original CPUs less every holder's CPUs to keep clear — when that leaves none, every
        /// online CPU outside them.
        func value(online: CPUSet) -> String {
            guard kind.keepsCPUsClear else { return holders.values.sorted().first ?? original }
            let away = holders.values.reduce(CPUSet()) { $0.union((try? CPUSet.parse($1).get()) ?? CPUSet()) }
            let original = kind.cpus(self.original) ?? online
            var keep = original.subtracting(away)
            if keep.isEmpty { keep = online.subtracting(away) }
            if keep.isEmpty { keep = original }
            return kind == .cpuMask ? TuneValue.maskText(keep) : keep.description
        }
    }
}
