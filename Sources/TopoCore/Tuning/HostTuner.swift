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

    public init(
        files: HostFiles = HostFiles(root: "/"), state: StateStore,
        setAffinity: @escaping @Sendable (Int32, CPUSet) -> Int32 = HostTuner.schedSetAffinity,
        systemctl: @escaping @Sendable ([String]) -> CommandResult = CommandRunner.systemctl
    ) {
        self.files = files
        self.state = state
        self.setAffinity = setAffinity
        self.systemctl = systemctl
    }

    public static let schedSetAffinity = KernelThreads.schedSetAffinity

    /// Every family of settings; each setting is one family's.
    static let families: [any TunableFamily] = [
        Sysctls(), TransparentHugePages(), CPUFrequency(), InterruptAffinity(), Workqueues(),
        KernelThreads(), Irqbalance(),
    ]

    static func family(_ s: TuneSetting) -> any TunableFamily {
        guard let f = families.first(where: { $0.owns(s) }) else {
            preconditionFailure("no tunable family owns host.tune.\(s.name)")
        }
        return f
    }

    var io: TuneIO { TuneIO(files: files, setAffinity: setAffinity, systemctl: systemctl) }

    func targets(_ s: TuneSetting) -> [TuneTarget] { Self.family(s).targets(s, io) }

    /// How the dry run ends each setting's first line.
    static let recorded = "(each value read and recorded first, for the last `topo down` to restore)"

    // MARK: the record

    func loadRecord() throws(TopoFailure) -> TuneRecord {
        try state.readRecord(
            state.tunePath, missing: TuneRecord(), holds: "the values host.tune changed and what they were")
    }

    /// Writes the record; an empty one is no file.
    func save(_ record: TuneRecord) throws(TopoFailure) {
        if record.entries.isEmpty && record.refused.isEmpty {
            try? Sys.unlink(state.tunePath)
            return
        }
        do { try state.writeRecord(state.tunePath, record) } catch { throw TopoFailure(.applyFailed, "\(error)") }
    }

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .hostTune(let t) = r else {
                throw TopoFailure(.applyFailed, "the host tuner does not make \(r.summary)")
            }
            return try tune(t)
        }
    }

    /// Records every target's original value and this profile as a holder (one write), then writes
    /// each and records what the kernel reads back. A target the kernel refuses is a failure, except an
    /// interrupt (some cannot move: managed, per-CPU) or a kernel thread that became per-CPU or ended,
    /// which are noted — and any target under `bestEffort`.
    func tune(_ t: TuneResource) throws(TopoFailure) -> Facts {
        var record = try loadRecord()
        let online = io.online
        var pending: [(key: String, kind: TuneKind)] = []
        var notes: [String] = []
        for target in targets(t.setting) {
            let existing = record.entries[target.key]
            guard let current = existing?.written ?? io.read(target.key, target.kind) else {
                if t.bestEffort || (target.kind != .scalar && target.kind != .selection) { continue }
                throw TopoFailure(.hostCannot, "host.tune.\(t.setting.name): cannot read \(files.path(target.key))")
            }
            // Interrupts, workqueues and threads already clear of the CPUs stay as they are, unrecorded.
            if existing == nil, target.kind == .unit, TuneKind.unit.same(current, target.want) { continue }
            if existing == nil, target.kind.keepsCPUsClear {
                let cpus = target.kind.cpus(current) ?? CPUSet()
                guard let away = try? CPUSet.parse(target.want).get(), !cpus.intersection(away).isEmpty else {
                    continue
                }
            }
            var entry =
                existing
                ?? TuneRecord.Entry(
                    setting: t.setting.name, kind: target.kind, original: current, written: current, holders: [:])
            entry.holders[t.profile] = target.want
            entry.written = entry.value(online: online)
            record.entries[target.key] = entry
            pending.append((target.key, target.kind))
        }
        try save(record)
        let failures = io.writeAll(
            pending.compactMap { p in record.entries[p.key].map { (p.key, p.kind, $0.written) } })
        for (key, kind) in pending {
            guard var entry = record.entries[key] else { continue }
            if let error = failures[key] {
                let movable = kind == .cpuList || kind == .thread
                guard movable || t.bestEffort else {
                    try? save(record)
                    throw TopoFailure(.applyFailed, "host.tune.\(t.setting.name): \(error)")
                }
                notes.append("\(io.describe(key)): \(error.kernelWords)")
                record.refused[TuneRecord.holder(t), default: []].append(key)
                entry.holders[t.profile] = nil
                if entry.holders.isEmpty { record.entries[key] = nil } else { record.entries[key] = entry }
                continue
            }
            entry.written = io.read(key, kind) ?? entry.written
            record.entries[key] = entry
        }
        try save(record)
        guard !notes.isEmpty else { return Facts() }
        return Facts(note: "host.tune.\(t.setting.name): left as they are: " + Problems.list(notes, limit: 8))
    }

    public func describe(_ r: Resource) -> [String] {
        guard case .hostTune(let t) = r else { return ["\(r.summary): not a host setting"] }
        if let lines = Self.family(t.setting).describe(t.setting, io) { return lines }
        let targets = targets(t.setting)
        let shown = targets.prefix(4).map {
            "write \"\($0.kind == .selection ? TuneValue.selected($0.want) : $0.want)\" to \(files.path($0.key))"
        }
        return shown.enumerated().map { $0.offset == 0 ? "\($0.element) \(Self.recorded)" : $0.element }
            + (targets.count > 4 ? ["… and \(targets.count - 4) more like it"] : [])
    }

    // MARK: undo

    /// Takes the profile off each entry of the setting. An entry no profile holds any more is restored
    /// to its original value when it still reads what topo wrote (or the original: a write the kill cut
    /// short), else reported and left alone; an entry others still hold is rewritten for them.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .hostTune(let t) = resource else { return .nothing }
        var record = try loadRecord()
        let online = io.online
        var restored = 0
        var left: [String] = []
        var failed: [String] = []
        var writes: [(key: String, kind: TuneKind, value: String)] = []
        var kept: [String: TuneRecord.Entry] = [:]
        record.refused[TuneRecord.holder(t)] = nil
        for key in record.entries.keys.sorted() {
            guard var entry = record.entries[key], entry.setting == t.setting.name, entry.holders[t.profile] != nil
            else { continue }
            entry.holders[t.profile] = nil
            let current = io.read(key, entry.kind)
            let ours = current.map { entry.kind.same($0, entry.written) || entry.kind.same($0, entry.original) }
            if entry.holders.isEmpty {
                record.entries[key] = nil
                guard let current else { continue }  // the thread ended, the file went
                guard ours == true else {
                    left.append(
                        "\(io.describe(key)) reads \"\(current)\", not the \"\(entry.written)\" topo wrote: changed by someone else meanwhile, left alone (it was \"\(entry.original)\")"
                    )
                    continue
                }
                if entry.kind.same(current, entry.original) {
                    restored += 1
                    continue
                }
                writes.append(
                    (key, entry.kind, entry.kind == .selection ? TuneValue.selected(entry.original) : entry.original))
                kept[key] = entry
            } else {
                let next = entry.value(online: online)
                if ours == true, !entry.kind.same(current ?? "", next) {
                    writes.append((key, entry.kind, next))
                    entry.written = next
                }
                record.entries[key] = entry
            }
        }
        let errors = io.writeAll(writes)
        for (key, kind, value) in writes {
            if let error = errors[key] {
                if let entry = kept[key] {
                    failed.append("restore \(io.describe(key)) to \"\(value)\": \(error)")
                    record.entries[key] = entry  // kept, so a later down tries again
                } else {
                    left.append("\(io.describe(key)): \(error)")
                }
            } else if kept[key] != nil {
                restored += 1
            } else if var entry = record.entries[key] {
                entry.written = io.read(key, kind) ?? value
                record.entries[key] = entry
            }
        }
        try save(record)
        if !failed.isEmpty {
            throw TopoFailure(.hostCannot, "host.tune.\(t.setting.name): " + failed.joined(separator: "; "))
        }
        if !left.isEmpty { return .leftAlone("host.tune.\(t.setting.name): " + Problems.list(left, limit: 8)) }
        return restored > 0
            ? .removed("host.tune.\(t.setting.name): \(restored) value\(restored == 1 ? "" : "s") restored") : .nothing
    }

    // MARK: observe

    /// Whether every value the profile holds still reads what topo wrote; for interrupts and threads,
    /// also those that appeared since on the CPUs to keep clear; under `bestEffort`, what this host
    /// cannot make.
    public func observe(_ resource: Resource) -> Observation {
        guard case .hostTune(let t) = resource else {
            return Observation(resource, found: false, kernel: "not a host setting")
        }
        let record: TuneRecord
        do { record = try loadRecord() } catch { return Observation(resource, found: false, kernel: error.message) }
        var diffs: [String] = []
        var held = 0
        for (key, entry) in record.entries.sorted(by: { $0.key < $1.key })
        where entry.setting == t.setting.name && entry.holders[t.profile] != nil {
            held += 1
            guard let current = io.read(key, entry.kind) else {
                if entry.kind != .thread { diffs.append("\(io.describe(key)) cannot be read") }
                continue
            }
            if !entry.kind.same(current, entry.written) {
                diffs.append("\(io.describe(key)): topo wrote \"\(entry.written)\", kernel has \"\(current)\"")
            }
        }
        if let away = Self.family(t.setting).clears(t.setting) {
            let refused = Set(record.refused[TuneRecord.holder(t)] ?? [])
            for target in targets(t.setting) where record.entries[target.key] == nil && !refused.contains(target.key) {
                guard let current = io.read(target.key, target.kind), let cpus = target.kind.cpus(current) else {
                    continue
                }
                if !cpus.intersection(away).isEmpty {
                    diffs.append(
                        "\(io.describe(target.key)) may run on \(cpus), which includes \(cpus.intersection(away))")
                }
            }
        } else if held == 0 && !t.bestEffort {
            diffs.append("host.tune.\(t.setting.name): no value is recorded for this profile")
        }
        // Under bestEffort, what this host cannot make is a difference too (verify warns of it).
        if t.bestEffort { diffs += problems(t) }
        return Observation(
            resource, found: true,
            differences: Array(diffs.prefix(20)) + (diffs.count > 20 ? ["… and \(diffs.count - 20) more"] : []),
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
            if t.bestEffort {
                out.warnings += found.map { "\($0) (bestEffort: left as it is)" }
            } else {
                out.refusals += found
            }
            out.warnings += Self.family(t.setting).warnings(t, stopsIrqbalance: stops, io)
        }
        return out
    }

    /// What this host lacks to make the setting (its family's word).
    func problems(_ t: TuneResource) -> [String] { Self.family(t.setting).problems(t, io) }

    /// Settings another applied profile holds at another value.
    public func conflicts(_ resources: [Resource]) -> [String] {
        resources.flatMap { r -> [String] in if case .hostTune(let t) = r { conflicts(t) } else { [] } }
    }

    /// Where another applied profile holds a value of this setting at another value (exit 3).
    func conflicts(_ t: TuneResource) -> [String] {
        let family = Self.family(t.setting)
        guard family.conflictsAcrossProfiles, family.clears(t.setting) == nil, let record = try? loadRecord() else {
            return []
        }
        var out: [String] = []
        for target in family.targets(t.setting, io) {
            guard let entry = record.entries[target.key] else { continue }
            for (profile, value) in entry.holders.sorted(by: { $0.key < $1.key })
            where profile != t.profile && !target.kind.same(value, target.want) {
                out.append(
                    "host.tune.\(t.setting.name): applied profile \(profile) set \(files.path(target.key)) to \"\(value)\", and this profile asks for \"\(target.want)\"; two profiles cannot tune one setting two ways"
                )
            }
        }
        return out
    }
}
