import CTopoShim
import Foundation

/// The driver for `host.tune`: procfs and sysfs files (sysctls, transparent huge pages, cpufreq,
/// interrupt and workqueue affinity), kernel threads' affinity, and irqbalance's systemd unit.
///
/// Every value is read before topo first changes it and kept, host-wide, in `StateStore.tunePath`
/// with the profiles that asked for it: a setting two profiles share is restored once, when the last
/// of them goes, and restored only while it still reads what topo wrote — a value someone else changed
/// meanwhile is reported and left alone. The record is written before each change (an intent), so a
/// `down` after apply was killed at any step restores everything.
public struct HostTuner: ResourceDriver {
    /// `/` on a host; a directory holding `proc/` and `sys/` in tests.
    public var files: HostFiles
    public var state: StateStore
    /// Kernel threads' affinity: sched_setaffinity(2) on a host.
    public var setAffinity: @Sendable (Int32, CPUSet) -> Int32
    /// Runs systemctl (irqbalance's unit): CommandRunner on a host.
    public var systemctl: @Sendable ([String]) -> CommandResult

    public init(files: HostFiles = HostFiles(root: "/"), state: StateStore,
                setAffinity: @escaping @Sendable (Int32, CPUSet) -> Int32 = HostTuner.schedSetAffinity,
                systemctl: @escaping @Sendable ([String]) -> CommandResult = CommandRunner.systemctl) {
        self.files = files
        self.state = state
        self.setAffinity = setAffinity
        self.systemctl = systemctl
    }

    // MARK: what each setting writes

    /// How a file's value is read and compared.
    enum Kind: String, Codable, Sendable {
        /// One value, compared trimmed: a sysctl, a governor, a frequency.
        case scalar
        /// One word of a list, the chosen one in brackets: `always [madvise] never`.
        case selection
        /// A CPU list (`smp_affinity_list`), compared as a set.
        case cpuList
        /// A hex CPU mask in 32-bit groups (`workqueue/cpumask`), compared as a set.
        case cpuMask
        /// A kernel thread's allowed CPUs (sched_setaffinity), keyed `thread PID STARTTIME`.
        case thread
        /// A systemd unit topo stopped, keyed `unit NAME`.
        case unit
    }

    /// One object a setting changes, and the value this profile wants in it.
    struct Target {
        var key: String
        var kind: Kind
        /// A scalar's value; for `cpuList`, `cpuMask` and `thread`, the CPUs to keep clear.
        var want: String
    }

    static let irqDirectory = "proc/irq"
    static let workqueueDirectory = "sys/devices/virtual/workqueue"
    static let thpDirectory = "sys/kernel/mm/transparent_hugepage"
    static let noTurbo = "sys/devices/system/cpu/intel_pstate/no_turbo"
    static let cpufreqBoost = "sys/devices/system/cpu/cpufreq/boost"
    static let irqbalanceUnit = "irqbalance.service"

    static func sysctl(_ s: TuneSetting) -> String? {
        switch s {
        case .timerMigration: "proc/sys/kernel/timer_migration"
        case .statInterval: "proc/sys/vm/stat_interval"
        case .perfSampleRate: "proc/sys/kernel/perf_event_max_sample_rate"
        case .aslr: "proc/sys/kernel/randomize_va_space"
        default: nil
        }
    }

    static func cpufreq(_ cpu: Int, _ file: String) -> String { "sys/devices/system/cpu/cpu\(cpu)/cpufreq/\(file)" }

    /// The files (and threads, and units) a setting changes on this host, each with the value wanted.
    func targets(_ s: TuneSetting) -> [Target] {
        switch s {
        case .irqsAway(let cpus):
            return files.list(Self.irqDirectory).filter { Int($0) != nil }.sorted { Int($0)! < Int($1)! }
                .map { "\(Self.irqDirectory)/\($0)/smp_affinity_list" }.filter { files.exists($0) }
                .map { Target(key: $0, kind: .cpuList, want: cpus.description) }
        case .workqueuesAway(let cpus):
            let own = files.list(Self.workqueueDirectory).map { "\(Self.workqueueDirectory)/\($0)/cpumask" }.filter { files.exists($0) }
            return (["\(Self.workqueueDirectory)/cpumask"].filter { files.exists($0) } + own).map { Target(key: $0, kind: .cpuMask, want: cpus.description) }
        case .kernelThreadsAway(let cpus):
            return kernelThreads().map { Target(key: "thread \($0.pid) \($0.start)", kind: .thread, want: cpus.description) }
        case .timerMigration(let v): return [Target(key: Self.sysctl(s)!, kind: .scalar, want: v == .on ? "1" : "0")]
        case .statInterval(let n): return [Target(key: Self.sysctl(s)!, kind: .scalar, want: String(n))]
        case .perfSampleRate(let n): return [Target(key: Self.sysctl(s)!, kind: .scalar, want: String(n))]
        case .aslr(let v): return [Target(key: Self.sysctl(s)!, kind: .scalar, want: v == .on ? "2" : "0")]
        case .thp(let mode):
            // Huge pages never or only where asked, and no direct compaction stalls for `always`.
            let defrag = mode == .never ? "never" : "madvise"
            return [Target(key: "\(Self.thpDirectory)/enabled", kind: .selection, want: mode.rawValue),
                    Target(key: "\(Self.thpDirectory)/defrag", kind: .selection, want: defrag)]
        case .governor(let g, let cpus): return cpus.map { Target(key: Self.cpufreq($0, "scaling_governor"), kind: .scalar, want: g) }
        case .frequency(let lo, let hi, let cpus):
            // The kernel refuses a min above the max in force (and a max below the min): a write it
            // refuses is tried again after the others (`writeAll`).
            return cpus.flatMap { cpu in
                [lo.map { Target(key: Self.cpufreq(cpu, "scaling_min_freq"), kind: .scalar, want: String($0.kHz)) },
                 hi.map { Target(key: Self.cpufreq(cpu, "scaling_max_freq"), kind: .scalar, want: String($0.kHz)) }].compactMap { $0 }
            }
        case .boost(let v):
            if files.exists(Self.noTurbo) { return [Target(key: Self.noTurbo, kind: .scalar, want: v == .on ? "0" : "1")] }
            return [Target(key: Self.cpufreqBoost, kind: .scalar, want: v == .on ? "1" : "0")]
        case .irqbalanceStopped:
            guard irqbalancePid() != nil else { return [] }
            return [Target(key: "unit \(Self.irqbalanceUnit)", kind: .unit, want: "inactive")]
        }
    }

    // MARK: the record

    /// What topo changed for `host.tune`, by target key.
    struct Record: Codable, Equatable {
        var entries: [String: Entry] = [:]
        /// The targets the kernel refused to change, by `PROFILE SETTING` (an interrupt that cannot move):
        /// observe does not count them as having appeared since.
        var refused: [String: [String]] = [:]

        static func holder(_ t: TuneResource) -> String { "\(t.profile) \(t.setting.name)" }

        struct Entry: Codable, Equatable {
            /// The setting's profile key (`irqs`, `timerMigration`), for messages and undo.
            var setting: String
            var kind: Kind
            /// The value before topo first changed it, as the kernel read it.
            var original: String
            /// What topo last wrote, as the kernel read it back (the value about to be written, until then).
            var written: String
            /// Each profile that holds the setting, and what it wants.
            var holders: [String: String]
        }
    }

    func loadRecord() throws(TopoFailure) -> Record {
        try state.readRecord(state.tunePath, missing: Record(), holds: "the values host.tune changed and what they were")
    }

    /// Writes the record; an empty one is no file.
    func save(_ record: Record) throws(TopoFailure) {
        if record.entries.isEmpty && record.refused.isEmpty {
            try? Sys.unlink(state.tunePath)
            return
        }
        do { try state.writeRecord(state.tunePath, record) } catch { throw TopoFailure(.applyFailed, "\(error)") }
    }

    // MARK: values

    /// The kernel's value of a target: the file's text, a thread's allowed CPUs, a unit's state.
    func read(_ key: String, _ kind: Kind) -> String? {
        switch kind {
        case .thread:
            let parts = key.split(separator: " ")
            guard parts.count == 3, let pid = Int32(parts[1]), let thread = kernelThread(pid), String(thread.start) == parts[2] else { return nil }
            return thread.cpus.description
        case .unit:
            let r = systemctl(["is-active", String(key.dropFirst("unit ".count))])
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        default:
            return files.read(key)?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Whether two values of a kind mean the same.
    static func same(_ kind: Kind, _ a: String, _ b: String) -> Bool {
        switch kind {
        case .scalar, .unit: return a.trimmingCharacters(in: .whitespacesAndNewlines) == b.trimmingCharacters(in: .whitespacesAndNewlines)
        case .selection: return selected(a) == selected(b)
        case .cpuList, .thread: return (try? CPUSet.parse(a).get()).map { x in (try? CPUSet.parse(b).get()) == x } ?? false
        case .cpuMask: return mask(a).map { mask(b) == $0 } ?? false
        }
    }

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

    /// The value to write for an entry: a scalar's wanted value (the holders agree; see `conflicts`),
    /// or the original CPUs less every holder's CPUs to keep clear — when that leaves none, every
    /// online CPU outside them.
    func value(for e: Record.Entry, online: CPUSet) -> String {
        switch e.kind {
        case .scalar, .selection, .unit:
            return e.holders.values.sorted().first ?? e.original
        case .cpuList, .cpuMask, .thread:
            let away = e.holders.values.reduce(CPUSet()) { $0.union((try? CPUSet.parse($1).get()) ?? CPUSet()) }
            let original = (e.kind == .cpuMask ? Self.mask(e.original) : try? CPUSet.parse(e.original).get()) ?? online
            var keep = original.subtracting(away)
            if keep.isEmpty { keep = online.subtracting(away) }
            if keep.isEmpty { keep = original }
            return e.kind == .cpuMask ? Self.maskText(keep) : keep.description
        }
    }

    var online: CPUSet {
        files.read("sys/devices/system/cpu/online").flatMap { try? CPUSet.parse($0.trimmingCharacters(in: .whitespacesAndNewlines)).get() } ?? CPUSet()
    }

    /// Writes a value: a file, a thread's affinity, a unit's state.
    func write(_ key: String, _ kind: Kind, _ value: String) throws(SystemError) {
        switch kind {
        case .thread:
            let parts = key.split(separator: " ")
            guard parts.count == 3, let pid = Int32(parts[1]), let cpus = try? CPUSet.parse(value).get() else { return }
            let rc = setAffinity(pid, cpus)
            if rc != 0 { throw SystemError("sched_setaffinity", "pid \(pid)", value: value, errno: rc) }
        case .unit:
            let unit = String(key.dropFirst("unit ".count))
            let r = systemctl([value == "inactive" ? "stop" : "start", unit])
            if r.status != 0 {
                throw SystemError("systemctl \(value == "inactive" ? "stop" : "start")", unit, errno: EIO,
                                  diagnosis: r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        // O_TRUNC as the shell's `>`: procfs and sysfs ignore it, a test's plain file is replaced whole.
        case .selection:
            try Sys.write(files.path(key), Self.selected(value), flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
        default:
            try Sys.write(files.path(key), value, flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
        }
    }

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .hostTune(let t) = r else { throw TopoFailure(.applyFailed, "the host tuner does not make \(r.summary)") }
            return try tune(t)
        }
    }

    /// Records every target's original value and this profile as a holder (one write), then writes
    /// each and records what the kernel reads back. A target the kernel refuses is a failure, except an
    /// interrupt (some cannot move: managed, per-CPU) or a kernel thread that became per-CPU or ended,
    /// which are noted — and any target under `bestEffort`.
    func tune(_ t: TuneResource) throws(TopoFailure) -> Facts {
        var record = try loadRecord()
        let online = online
        var pending: [(key: String, kind: Kind)] = []
        var notes: [String] = []
        for target in targets(t.setting) {
            let existing = record.entries[target.key]
            guard let current = existing?.written ?? read(target.key, target.kind) else {
                if t.bestEffort || (target.kind != .scalar && target.kind != .selection) { continue }
                throw TopoFailure(.hostCannot, "host.tune.\(t.setting.name): cannot read \(files.path(target.key))")
            }
            // Interrupts, workqueues and threads already clear of the CPUs stay as they are, unrecorded.
            if existing == nil, target.kind == .unit, Self.same(.unit, current, target.want) { continue }
            if existing == nil, [.cpuList, .cpuMask, .thread].contains(target.kind) {
                let cpus = (target.kind == .cpuMask ? Self.mask(current) : try? CPUSet.parse(current).get()) ?? CPUSet()
                guard let away = try? CPUSet.parse(target.want).get(), !cpus.intersection(away).isEmpty else { continue }
            }
            var entry = existing ?? Record.Entry(setting: t.setting.name, kind: target.kind, original: current, written: current, holders: [:])
            entry.holders[t.profile] = target.want
            entry.written = value(for: entry, online: online)
            record.entries[target.key] = entry
            pending.append((target.key, target.kind))
        }
        try save(record)
        let failures = writeAll(pending.compactMap { p in record.entries[p.key].map { (p.key, p.kind, $0.written) } })
        for (key, kind) in pending {
            guard var entry = record.entries[key] else { continue }
            if let error = failures[key] {
                let movable = kind == .cpuList || kind == .thread
                guard movable || t.bestEffort else {
                    try? save(record)
                    throw TopoFailure(.applyFailed, "host.tune.\(t.setting.name): \(error)")
                }
                notes.append("\(describeKey(key)): \(error.kernelWords)")
                record.refused[Record.holder(t), default: []].append(key)
                entry.holders[t.profile] = nil
                if entry.holders.isEmpty { record.entries[key] = nil } else { record.entries[key] = entry }
                continue
            }
            entry.written = read(key, kind) ?? entry.written
            record.entries[key] = entry
        }
        try save(record)
        guard !notes.isEmpty else { return Facts() }
        return Facts(note: "host.tune.\(t.setting.name): left as they are: " + Problems.list(notes, limit: 8))
    }

    /// Writes each value; a write the kernel refuses is tried once more after the others (a frequency
    /// range moves one end at a time, and which end must go first depends on both). The failures, by key.
    func writeAll(_ items: [(key: String, kind: Kind, value: String)]) -> [String: SystemError] {
        var failed: [(key: String, kind: Kind, value: String)] = []
        for item in items {
            do { try write(item.key, item.kind, item.value) } catch { failed.append(item) }
        }
        var errors: [String: SystemError] = [:]
        for item in failed {
            do { try write(item.key, item.kind, item.value) } catch { errors[item.key] = error }
        }
        return errors
    }

    func describeKey(_ key: String) -> String {
        if key.hasPrefix("\(Self.irqDirectory)/") { return "IRQ \(key.split(separator: "/")[2])" }
        if key.hasPrefix("thread ") { return "kernel thread \(key.split(separator: " ")[1])" }
        return files.path(key)
    }

    public func describe(_ r: Resource) -> [String] {
        guard case .hostTune(let t) = r else { return ["\(r.summary): not a host setting"] }
        let keep = "(each value read and recorded first, for the last `topo down` to restore)"
        switch t.setting {
        case .irqsAway(let cpus):
            return ["write each interrupt's CPUs less \(cpus) to \(files.path(Self.irqDirectory))/N/smp_affinity_list, where they include any of \(cpus) \(keep)"]
        case .workqueuesAway(let cpus):
            return ["write the CPUs less \(cpus), as a hex mask, to \(files.path(Self.workqueueDirectory))/cpumask and each workqueue's cpumask \(keep)"]
        case .kernelThreadsAway(let cpus):
            return ["sched_setaffinity: each kernel thread that is not per-CPU and may run on \(cpus), to its CPUs less \(cpus) \(keep)"]
        case .irqbalanceStopped:
            return ["systemctl stop \(Self.irqbalanceUnit), if it is active (started again by the last `topo down` that needs it stopped)"]
        default:
            let targets = targets(t.setting)
            let shown = targets.prefix(4).map { "write \"\($0.kind == .selection ? Self.selected($0.want) : $0.want)\" to \(files.path($0.key))" }
            return shown.enumerated().map { $0.offset == 0 ? "\($0.element) \(keep)" : $0.element }
                + (targets.count > 4 ? ["… and \(targets.count - 4) more like it"] : [])
        }
    }

    // MARK: undo

    /// Takes the profile off each entry of the setting. An entry no profile holds any more is restored
    /// to its original value when it still reads what topo wrote (or the original: a write the kill cut
    /// short), else reported and left alone; an entry others still hold is rewritten for them.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .hostTune(let t) = resource else { return .nothing }
        var record = try loadRecord()
        let online = online
        var restored = 0
        var left: [String] = []
        var failed: [String] = []
        var writes: [(key: String, kind: Kind, value: String)] = []
        var kept: [String: Record.Entry] = [:]
        record.refused[Record.holder(t)] = nil
        for key in record.entries.keys.sorted() {
            guard var entry = record.entries[key], entry.setting == t.setting.name, entry.holders[t.profile] != nil else { continue }
            entry.holders[t.profile] = nil
            let current = read(key, entry.kind)
            let ours = current.map { Self.same(entry.kind, $0, entry.written) || Self.same(entry.kind, $0, entry.original) }
            if entry.holders.isEmpty {
                record.entries[key] = nil
                guard let current else { continue }  // the thread ended, the file went
                guard ours == true else {
                    left.append("\(describeKey(key)) reads \"\(current)\", not the \"\(entry.written)\" topo wrote: changed by someone else meanwhile, left alone (it was \"\(entry.original)\")")
                    continue
                }
                if Self.same(entry.kind, current, entry.original) { restored += 1; continue }
                writes.append((key, entry.kind, entry.kind == .selection ? Self.selected(entry.original) : entry.original))
                kept[key] = entry
            } else {
                let next = value(for: entry, online: online)
                if ours == true, !Self.same(entry.kind, current ?? "", next) {
                    writes.append((key, entry.kind, next))
                    entry.written = next
                }
                record.entries[key] = entry
            }
        }
        let errors = writeAll(writes)
        for (key, kind, value) in writes {
            if let error = errors[key] {
                if let entry = kept[key] {
                    failed.append("restore \(describeKey(key)) to \"\(value)\": \(error)")
                    record.entries[key] = entry  // kept, so a later down tries again
                } else {
                    left.append("\(describeKey(key)): \(error)")
                }
            } else if kept[key] != nil {
                restored += 1
            } else if var entry = record.entries[key] {
                entry.written = read(key, kind) ?? value
                record.entries[key] = entry
            }
        }
        try save(record)
        if !failed.isEmpty { throw TopoFailure(.hostCannot, "host.tune.\(t.setting.name): " + failed.joined(separator: "; ")) }
        if !left.isEmpty { return .leftAlone("host.tune.\(t.setting.name): " + Problems.list(left, limit: 8)) }
        return restored > 0 ? .removed("host.tune.\(t.setting.name): \(restored) value\(restored == 1 ? "" : "s") restored") : .nothing
    }

    // MARK: observe

    /// Whether every value the profile holds still reads what topo wrote; for interrupts and threads,
    /// also those that appeared since on the CPUs to keep clear; under `bestEffort`, what this host
    /// cannot make.
    public func observe(_ resource: Resource) -> Observation {
        guard case .hostTune(let t) = resource else { return Observation(resource, found: false, kernel: "not a host setting") }
        let record: Record
        do { record = try loadRecord() } catch { return Observation(resource, found: false, kernel: error.message) }
        var diffs: [String] = []
        var held = 0
        for (key, entry) in record.entries.sorted(by: { $0.key < $1.key }) where entry.setting == t.setting.name && entry.holders[t.profile] != nil {
            held += 1
            guard let current = read(key, entry.kind) else {
                if entry.kind != .thread { diffs.append("\(describeKey(key)) cannot be read") }
                continue
            }
            if !Self.same(entry.kind, current, entry.written) {
                diffs.append("\(describeKey(key)): topo wrote \"\(entry.written)\", kernel has \"\(current)\"")
            }
        }
        switch t.setting {
        case .irqsAway(let away), .workqueuesAway(let away), .kernelThreadsAway(let away):
            let refused = Set(record.refused[Record.holder(t)] ?? [])
            for target in targets(t.setting) where record.entries[target.key] == nil && !refused.contains(target.key) {
                guard let current = read(target.key, target.kind),
                      let cpus = target.kind == .cpuMask ? Self.mask(current) : try? CPUSet.parse(current).get() else { continue }
                if !cpus.intersection(away).isEmpty { diffs.append("\(describeKey(target.key)) may run on \(cpus), which includes \(cpus.intersection(away))") }
            }
        default:
            if held == 0 && !t.bestEffort { diffs.append("host.tune.\(t.setting.name): no value is recorded for this profile") }
        }
        // Under bestEffort, what this host cannot make is a difference too (verify warns of it).
        if t.bestEffort { diffs += problems(t) }
        return Observation(resource, found: true, differences: Array(diffs.prefix(20)) + (diffs.count > 20 ? ["… and \(diffs.count - 20) more"] : []),
                           kernel: "\(held) value\(held == 1 ? "" : "s") held")
    }

    // MARK: before apply

    /// What this host lacks to make each setting (a refusal, or under `bestEffort` a warning), and a
    /// running irqbalance that `irqbalance: warn` leaves in place.
    public func preflight(_ resources: [Resource], _ context: PreflightContext) -> Findings {
        let tunes = resources.compactMap { if case .hostTune(let t) = $0 { t } else { nil } }
        let stops = tunes.contains { if case .irqbalanceStopped = $0.setting { true } else { false } }
        var out = Findings()
        for t in tunes {
            let found = problems(t)
            if t.bestEffort { out.warnings += found.map { "\($0) (bestEffort: left as it is)" } } else { out.refusals += found }
            out.warnings += warnings(t, irqbalance: stops ? .stop : .warn)
        }
        return out
    }

    /// Settings another applied profile holds at another value.
    public func conflicts(_ resources: [Resource]) -> [String] {
        resources.flatMap { r -> [String] in if case .hostTune(let t) = r { conflicts(t) } else { [] } }
    }

    /// Where another applied profile holds a scalar of this setting at another value (exit 3).
    func conflicts(_ t: TuneResource) -> [String] {
        switch t.setting {
        case .irqsAway, .workqueuesAway, .kernelThreadsAway, .irqbalanceStopped: return []  // CPU sets combine; a stopped unit is one state
        default: break
        }
        guard let record = try? loadRecord() else { return [] }
        var out: [String] = []
        for target in targets(t.setting) where target.kind == .scalar || target.kind == .selection {
            guard let entry = record.entries[target.key] else { continue }
            for (profile, value) in entry.holders.sorted(by: { $0.key < $1.key }) where profile != t.profile && !Self.same(target.kind, value, target.want) {
                out.append("host.tune.\(t.setting.name): applied profile \(profile) set \(files.path(target.key)) to \"\(value)\", and this profile asks for \"\(target.want)\"; two profiles cannot tune one setting two ways")
            }
        }
        return out
    }

    /// What this host lacks to make the setting: the file, its write permission, the value among
    /// those the kernel offers; a running irqbalance that is not systemd's to stop.
    func problems(_ t: TuneResource) -> [String] {
        let name = "host.tune.\(t.setting.name)"
        switch t.setting {
        case .irqsAway:
            return files.exists(Self.irqDirectory) ? [] : ["\(name): \(files.path(Self.irqDirectory)) is missing"]
        case .kernelThreadsAway:
            return []
        case .workqueuesAway:
            return files.exists("\(Self.workqueueDirectory)/cpumask") ? [] : ["\(name): \(files.path(Self.workqueueDirectory))/cpumask is missing (a kernel without sysfs workqueue attributes)"]
        case .irqbalanceStopped:
            guard let pid = irqbalancePid() else { return [] }
            guard systemdIsInit else {
                return ["\(name): irqbalance runs (pid \(pid)) and systemd is not PID 1, so topo cannot stop and restart its unit; stop irqbalance yourself, or set irqbalance: warn"]
            }
            return []
        default:
            var out: [String] = []
            var missing: [String] = []
            for target in targets(t.setting) {
                let path = files.path(target.key)
                guard let st = Sys.stat(path) else { missing.append(path); continue }
                if st.st_mode & S_IWUSR == 0 { out.append("\(name): \(path) is read-only on this host"); continue }
                if target.kind == .selection, let text = files.read(target.key)?.trimmingCharacters(in: .whitespacesAndNewlines),
                   !text.replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "").split(separator: " ").contains(Substring(target.want)) {
                    out.append("\(name): \(path) offers \(text.trimmingCharacters(in: .whitespacesAndNewlines)), not \(target.want)")
                }
                if case .governor(let g, _) = t.setting, let offered = files.read(target.key.replacingOccurrences(of: "scaling_governor", with: "scaling_available_governors")),
                   !offered.split(whereSeparator: \.isWhitespace).contains(Substring(g)) {
                    out.append("\(name): \(path) offers \(offered.trimmingCharacters(in: .whitespacesAndNewlines)), not \(g)")
                }
            }
            if !missing.isEmpty {
                let why: String
                switch t.setting {
                case .governor, .frequency: why = "this host has no cpufreq driver for these CPUs (a virtual machine usually has none)"
                case .boost: why = "this host has neither \(files.path(Self.noTurbo)) nor \(files.path(Self.cpufreqBoost))"
                case .timerMigration: why = "the kernel lacks timer migration (CONFIG_NO_HZ_COMMON)"
                default: why = "the kernel does not offer it"
                }
                out.append("\(name): \(Problems.list(missing, limit: 3)) \(missing.count == 1 ? "is" : "are") missing: \(why)")
            }
            return Array(out.prefix(8))
        }
    }

    /// Warnings before apply: a running irqbalance that `irqbalance: warn` leaves to move interrupts back.
    func warnings(_ t: TuneResource, irqbalance: IrqbalanceAction) -> [String] {
        guard case .irqsAway = t.setting, irqbalance == .warn, let pid = irqbalancePid() else { return [] }
        return ["host.tune.irqs: irqbalance runs (pid \(pid)) and will move interrupts back within seconds; set host.tune.irqbalance: stop, or stop it yourself"]
    }

    // MARK: the host's state

    /// What `topo host` shows of the noise sources host.tune quiets, and what topo holds now.
    public struct State: Codable, Equatable, Sendable {
        /// Each setting as the kernel reads it now, by the name people know it by (a sysctl's dotted name).
        public var settings: [String: String]
        public var irqbalance: String
        /// Interrupts whose affinity lists fewer than every online CPU, and all of them.
        public var pinnedIRQs: Int
        public var irqs: Int
        /// The isolation parameters on the kernel command line.
        public var commandLine: [String: String]
        /// What topo changed and holds now: `setting: key was "…", now "…" (profiles)`.
        public var held: [String]
    }

    public func currentState() -> State {
        let online = online
        var settings: [String: String] = [:]
        func put(_ name: String, _ path: String) {
            if let v = files.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines) { settings[name] = v }
        }
        put("kernel.timer_migration", "proc/sys/kernel/timer_migration")
        put("vm.stat_interval", "proc/sys/vm/stat_interval")
        put("kernel.perf_event_max_sample_rate", "proc/sys/kernel/perf_event_max_sample_rate")
        put("kernel.randomize_va_space", "proc/sys/kernel/randomize_va_space")
        for key in ["enabled", "defrag"] {
            if let t = files.read("\(Self.thpDirectory)/\(key)") { settings["transparent_hugepage.\(key)"] = Self.selected(t) }
        }
        if let m = files.read("\(Self.workqueueDirectory)/cpumask").flatMap(Self.mask) { settings["workqueue.cpumask"] = "CPU \(m)" }
        if let v = files.read(Self.noTurbo) { settings["intel_pstate.no_turbo"] = v.trimmingCharacters(in: .whitespacesAndNewlines) }
        if let v = files.read(Self.cpufreqBoost) { settings["cpufreq.boost"] = v.trimmingCharacters(in: .whitespacesAndNewlines) }
        var governors: [String: CPUSet] = [:]
        for cpu in online {
            if let g = files.read(Self.cpufreq(cpu, "scaling_governor"))?.trimmingCharacters(in: .whitespacesAndNewlines) { governors[g, default: CPUSet()].insert(cpu) }
        }
        if !governors.isEmpty { settings["cpufreq.governor"] = governors.sorted { $0.key < $1.key }.map { "\($0.key) on CPU \($0.value)" }.joined(separator: ", ") }
        var irqs = 0, pinned = 0
        for irq in files.list(Self.irqDirectory) where Int(irq) != nil {
            guard let text = files.read("\(Self.irqDirectory)/\(irq)/smp_affinity_list"), let cpus = try? CPUSet.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)).get() else { continue }
            irqs += 1
            if !online.isSubset(of: cpus) { pinned += 1 }
        }
        let held = ((try? loadRecord())?.entries ?? [:]).sorted { $0.key < $1.key }.map { key, e in
            "\(e.setting): \(describeKey(key)) was \"\(e.original)\", topo wrote \"\(e.written)\" (\(e.holders.keys.sorted().joined(separator: ", ")))"
        }
        return State(settings: settings, irqbalance: irqbalancePid().map { "running (pid \($0))" } ?? "not running",
                     pinnedIRQs: pinned, irqs: irqs,
                     commandLine: BootIsolation.current(commandLine: files.read("proc/cmdline") ?? ""), held: held)
    }

    // MARK: processes

    /// PF_KTHREAD and PF_NO_SETAFFINITY (include/linux/sched.h).
    static let kthreadFlag: UInt64 = 0x0020_0000
    static let noSetAffinityFlag: UInt64 = 0x0400_0000

    struct KernelThread {
        var pid: Int32
        var start: UInt64
        var cpus: CPUSet
    }

    /// A kernel thread whose affinity may be changed (not bound to a CPU), from /proc/PID/stat and status.
    func kernelThread(_ pid: Int32) -> KernelThread? {
        guard let stat = files.read("proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let flags = UInt64(fields[6]), let start = UInt64(fields[19]),
              flags & Self.kthreadFlag != 0, flags & Self.noSetAffinityFlag == 0,
              let status = files.read("proc/\(pid)/status"),
              let list = Verifier.fields(status)["Cpus_allowed_list"], let cpus = try? CPUSet.parse(list).get() else { return nil }
        return KernelThread(pid: pid, start: start, cpus: cpus)
    }

    /// Every kernel thread whose affinity may be changed, kthreadd (whose affinity new ones inherit) first.
    func kernelThreads() -> [KernelThread] {
        files.list("proc").compactMap(Int32.init).sorted().compactMap { kernelThread($0) }
    }

    func irqbalancePid() -> Int32? {
        files.list("proc").compactMap(Int32.init).first { files.read("proc/\($0)/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) == "irqbalance" }
    }

    var systemdIsInit: Bool { files.read("proc/1/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) == "systemd" }

    public static let schedSetAffinity: @Sendable (Int32, CPUSet) -> Int32 = { pid, cpus in
        var words = [UInt](repeating: 0, count: max(1, (cpus.ids.last ?? 0) / UInt.bitWidth + 1))
        for id in cpus { words[id / UInt.bitWidth] |= 1 << UInt(id % UInt.bitWidth) }
        let rc = words.withUnsafeBytes { buf in
            topo_set_affinity(pid, buf.baseAddress, buf.count)
        }
        return rc == 0 ? 0 : errno
    }

}
