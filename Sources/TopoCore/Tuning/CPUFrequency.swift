import Foundation

/// `governor`, `frequency`, `boost`: cpufreq's per-CPU files, and turbo (intel_pstate's `no_turbo`
/// or cpufreq's `boost`).
struct CPUFrequency: TunableFamily {
    static let noTurbo = "sys/devices/system/cpu/intel_pstate/no_turbo"
    static let boost = "sys/devices/system/cpu/cpufreq/boost"

    static func file(_ cpu: Int, _ file: String) -> String { "sys/devices/system/cpu/cpu\(cpu)/cpufreq/\(file)" }

    func owns(_ s: TuneSetting) -> Bool {
        switch s {
        case .governor, .frequency, .boost: true
        default: false
        }
    }

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        switch s {
        case .governor(let g, let cpus):
            return cpus.map { TuneTarget(key: Self.file($0, "scaling_governor"), kind: .scalar, want: g) }
        case .frequency(let lo, let hi, let cpus):
            // The kernel refuses a min above the max in force (and a max below the min): a write it
            // refuses is tried again after the others (`TuneIO.writeAll`).
            return cpus.flatMap { cpu in
                [
                    lo.map { TuneTarget(key: Self.file(cpu, "scaling_min_freq"), kind: .scalar, want: String($0.kHz)) },
                    hi.map { TuneTarget(key: Self.file(cpu, "scaling_max_freq"), kind: .scalar, want: String($0.kHz)) },
                ].compactMap { $0 }
            }
        case .boost(let v):
            if io.files.exists(Self.noTurbo) {
                return [TuneTarget(key: Self.noTurbo, kind: .scalar, want: v == .on ? "0" : "1")]
            }
            return [TuneTarget(key: Self.boost, kind: .scalar, want: v == .on ? "1" : "0")]
        default:
            return []
        }
    }

    /// The files, and a governor among those the CPU offers.
    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] {
        if case .boost = t.setting {
            return fileProblems(
                t, io, missing: "this host has neither \(io.files.path(Self.noTurbo)) nor \(io.files.path(Self.boost))")
        }
        return fileProblems(
            t, io, missing: "this host has no cpufreq driver for these CPUs (a virtual machine usually has none)"
        ) { target, path in
            guard case .governor(let g, _) = t.setting,
                let offered = io.files.read(
                    target.key.replacingOccurrences(of: "scaling_governor", with: "scaling_available_governors")),
                !offered.split(whereSeparator: \.isWhitespace).contains(Substring(g))
            else { return nil }
            return "\(path) offers \(offered.trimmingCharacters(in: .whitespacesAndNewlines)), not \(g)"
        }
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {
        if let v = io.files.read(Self.noTurbo) {
            settings["intel_pstate.no_turbo"] = v.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let v = io.files.read(Self.boost) {
            settings["cpufreq.boost"] = v.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var governors: [String: CPUSet] = [:]
        for cpu in online {
            if let g = io.files.read(Self.file(cpu, "scaling_governor"))?.trimmingCharacters(
                in: .whitespacesAndNewlines)
            {
                governors[g, default: CPUSet()].insert(cpu)
            }
        }
        if !governors.isEmpty {
            settings["cpufreq.governor"] = governors.sorted { $0.key < $1.key }.map { "\($0.key) on CPU \($0.value)" }
                .joined(separator: ", ")
        }
    }
}
