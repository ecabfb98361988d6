/// `kernelThreads` (its workqueue half): the unbound workqueues' default cpumask and each workqueue's
/// own, off the CPUs to keep clear.
struct Workqueues: TunableFamily {
    static let directory = "sys/devices/virtual/workqueue"

    func owns(_ s: TuneSetting) -> Bool { if case .workqueuesAway = s { true } else { false } }

    func clears(_ s: TuneSetting) -> CPUSet? { if case .workqueuesAway(let cpus) = s { cpus } else { nil } }

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        guard case .workqueuesAway(let cpus) = s else { return [] }
        let own = io.files.list(Self.directory).map { "\(Self.directory)/\($0)/cpumask" }.filter { io.files.exists($0) }
        return (["\(Self.directory)/cpumask"].filter { io.files.exists($0) } + own).map {
            TuneTarget(key: $0, kind: .cpuMask, want: cpus.description)
        }
    }

    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] {
        io.files.exists("\(Self.directory)/cpumask")
            ? []
            : [
                "host.tune.\(t.setting.name): \(io.files.path(Self.directory))/cpumask is missing (a kernel without sysfs workqueue attributes)"
            ]
    }

    func describe(_ s: TuneSetting, _ io: TuneIO) -> [String]? {
        guard case .workqueuesAway(let cpus) = s else { return nil }
        return [
            "write the CPUs less \(cpus), as a hex mask, to \(io.files.path(Self.directory))/cpumask and each workqueue's cpumask \(HostTuner.recorded)"
        ]
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {
        if let m = io.files.read("\(Self.directory)/cpumask").flatMap(TuneValue.mask) {
            settings["workqueue.cpumask"] = "CPU \(m)"
        }
    }
}
