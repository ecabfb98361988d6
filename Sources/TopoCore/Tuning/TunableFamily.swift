import Foundation

/// The host as the tuner reaches it — procfs and sysfs files below a root, kernel threads' affinity,
/// systemd units — and the one place a target's value is read and written by its kind. A test gives
/// a directory and two closures.
struct TuneIO: Sendable {
    /// `/` on a host; a directory holding `proc/` and `sys/` in tests.
    var files: HostFiles
    /// Kernel threads' affinity: sched_setaffinity(2) on a host.
    var setAffinity: @Sendable (Int32, CPUSet) -> Int32
    /// Runs systemctl: CommandRunner on a host.
    var systemctl: @Sendable ([String]) -> CommandResult

    /// The kernel's value of a target: the file's text, a thread's allowed CPUs, a unit's state.
    func read(_ key: String, _ kind: TuneKind) -> String? {
        switch kind {
        case .thread: KernelThreads.read(key, self)
        case .unit: Irqbalance.read(key, self)
        case .scalar, .selection, .cpuList, .cpuMask: files.read(key)?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Writes a value: a file, a thread's affinity, a unit's state.
    func write(_ key: String, _ kind: TuneKind, _ value: String) throws(SystemError) {
        switch kind {
        case .thread: try KernelThreads.write(key, value, self)
        case .unit: try Irqbalance.write(key, value, self)
        // O_TRUNC as the shell's `>`: procfs and sysfs ignore it, a test's plain file is replaced whole.
        case .selection:
            try Sys.write(files.path(key), TuneValue.selected(value), flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
        case .scalar, .cpuList, .cpuMask: try Sys.write(files.path(key), value, flags: O_WRONLY | O_TRUNC | O_CLOEXEC)
        }
    }

    /// Writes each value; a write the kernel refuses is tried once more after the others (a frequency
    /// range moves one end at a time, and which end must go first depends on both). The failures, by key.
    func writeAll(_ items: [(key: String, kind: TuneKind, value: String)]) -> [String: SystemError] {
        var failed: [(key: String, kind: TuneKind, value: String)] = []
        for item in items {
            do { try write(item.key, item.kind, item.value) } catch { failed.append(item) }
        }
        var errors: [String: SystemError] = [:]
        for item in failed {
            do { try write(item.key, item.kind, item.value) } catch { errors[item.key] = error }
        }
        return errors
    }

    var online: CPUSet {
        files.read("sys/devices/system/cpu/online").flatMap {
            try? CPUSet.parse($0.trimmingCharacters(in: .whitespacesAndNewlines)).get()
        } ?? CPUSet()
    }

    /// A target as people know it: `IRQ 24`, `kernel thread 2`, a file's path.
    func describe(_ key: String) -> String {
        if key.hasPrefix("\(InterruptAffinity.directory)/") { return "IRQ \(key.split(separator: "/")[2])" }
        if key.hasPrefix("thread ") { return "kernel thread \(key.split(separator: " ")[1])" }
        return files.path(key)
    }

    /// The first process whose name is `comm`.
    func process(named comm: String) -> Int32? {
        files.list("proc").compactMap(Int32.init).first {
            files.read("proc/\($0)/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) == comm
        }
    }
}

/// One family of `host.tune` settings (sysctls, cpufreq, interrupts, …): which objects a setting
/// changes on this host, what the host lacks for it, how the dry run says it, and what `topo host`
/// shows. `HostTuner` does the rest the same way for every family: records each original value,
/// writes, restores on the last `down`, observes.
///
/// A new tunable is a case of `TuneSetting`, its family (or a new one, added to `HostTuner.families`),
/// and its profile keys.
protocol TunableFamily: Sendable {
    /// Whether this family makes the setting.
    func owns(_ s: TuneSetting) -> Bool
    /// The objects the setting changes on this host, each with the value wanted.
    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget]
    /// What this host lacks to make the setting (a refusal; a warning under `bestEffort`).
    func problems(_ t: TuneResource, _ io: TuneIO) -> [String]
    /// What apply should say first (a running irqbalance that will undo the setting).
    func warnings(_ t: TuneResource, stopsIrqbalance: Bool, _ io: TuneIO) -> [String]
    /// The dry run's lines; nil for "write VALUE to FILE" per target.
    func describe(_ s: TuneSetting, _ io: TuneIO) -> [String]?
    /// The CPUs the setting keeps clear, for a family whose profiles' values combine (interrupts,
    /// workqueues, kernel threads): observe then also reports an object that appeared on them since.
    func clears(_ s: TuneSetting) -> CPUSet?
    /// Whether two profiles can ask for the setting two ways: not a unit's one state (CPUs that
    /// combine, `clears`, never conflict either).
    var conflictsAcrossProfiles: Bool { get }
    /// What `topo host` shows of the family's settings as the kernel reads them now.
    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String])
}

extension TunableFamily {
    func warnings(_ t: TuneResource, stopsIrqbalance: Bool, _ io: TuneIO) -> [String] { [] }
    func describe(_ s: TuneSetting, _ io: TuneIO) -> [String]? { nil }
    func clears(_ s: TuneSetting) -> CPUSet? { nil }
    var conflictsAcrossProfiles: Bool { true }

    /// The problems of a setting made by writing files: each file must be there (else `missing`, the
    /// family's reason), writable, and offer the wanted word (a selection); `check` adds a family's own.
    func fileProblems(
        _ t: TuneResource, _ io: TuneIO, missing why: String,
        check: (TuneTarget, String) -> String? = { _, _ in nil }
    ) -> [String] {
        let name = "host.tune.\(t.setting.name)"
        var out: [String] = []
        var missing: [String] = []
        for target in targets(t.setting, io) {
            let path = io.files.path(target.key)
            guard let st = Sys.stat(path) else {
                missing.append(path)
                continue
            }
            if st.st_mode & S_IWUSR == 0 {
                out.append("\(name): \(path) is read-only on this host")
                continue
            }
            if target.kind == .selection,
                let text = io.files.read(target.key)?.trimmingCharacters(in: .whitespacesAndNewlines),
                !text.replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "").split(
                    separator: " "
                ).contains(Substring(target.want))
            {
                out.append("\(name): \(path) offers \(text), not \(target.want)")
            }
            if let problem = check(target, path) { out.append("\(name): \(problem)") }
        }
        if !missing.isEmpty {
            out.append(
                "\(name): \(Problems.list(missing, limit: 3)) \(missing.count == 1 ? "is" : "are") missing: \(why)")
        }
        return Array(out.prefix(8))
    }
}
