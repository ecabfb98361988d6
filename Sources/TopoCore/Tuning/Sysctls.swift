/// `timerMigration`, `statInterval`, `perfSampleRate`, `aslr`: one procfs sysctl each.
struct Sysctls: TunableFamily {
    static func path(_ s: TuneSetting) -> String? {
        switch s {
        case .timerMigration: "proc/sys/kernel/timer_migration"
        case .statInterval: "proc/sys/vm/stat_interval"
        case .perfSampleRate: "proc/sys/kernel/perf_event_max_sample_rate"
        case .aslr: "proc/sys/kernel/randomize_va_space"
        default: nil
        }
    }

    func owns(_ s: TuneSetting) -> Bool { Self.path(s) != nil }

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        let want: String
        switch s {
        case .timerMigration(let v): want = v == .on ? "1" : "0"
        case .statInterval(let n), .perfSampleRate(let n): want = String(n)
        case .aslr(let v): want = v == .on ? "2" : "0"
        default: return []
        }
        return [TuneTarget(key: Self.path(s)!, kind: .scalar, want: want)]
    }

    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] {
        if case .timerMigration = t.setting {
            return fileProblems(t, io, missing: "the kernel lacks timer migration (CONFIG_NO_HZ_COMMON)")
        }
        return fileProblems(t, io, missing: "the kernel does not offer it")
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {
        for (name, path) in [
            ("kernel.timer_migration", "proc/sys/kernel/timer_migration"),
            ("vm.stat_interval", "proc/sys/vm/stat_interval"),
            ("kernel.perf_event_max_sample_rate", "proc/sys/kernel/perf_event_max_sample_rate"),
            ("kernel.randomize_va_space", "proc/sys/kernel/randomize_va_space"),
        ] {
            if let v = io.files.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines) { settings[name] = v }
        }
    }
}
