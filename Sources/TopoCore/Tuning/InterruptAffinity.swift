/// `irqs`: every movable interrupt's `smp_affinity_list` off the CPUs to keep clear. An interrupt the
/// kernel will not move (managed, per-CPU) is noted and left; a running irqbalance would move them
/// back, so apply warns of it unless `irqbalance: stop` stops it.
struct InterruptAffinity: TunableFamily {
    static let directory = "proc/irq"

    func owns(_ s: TuneSetting) -> Bool { if case .irqsAway = s { true } else { false } }

    func clears(_ s: TuneSetting) -> CPUSet? { if case .irqsAway(let cpus) = s { cpus } else { nil } }

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        guard case .irqsAway(let cpus) = s else { return [] }
        return Self.interrupts(io).map { "\(Self.directory)/\($0)/smp_affinity_list" }.filter { io.files.exists($0) }
            .map { TuneTarget(key: $0, kind: .cpuList, want: cpus.description) }
    }

    /// Every interrupt's number, in order.
    static func interrupts(_ io: TuneIO) -> [Int] { io.files.list(directory).compactMap { Int($0) }.sorted() }

    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] {
        io.files.exists(Self.directory)
            ? [] : ["host.tune.\(t.setting.name): \(io.files.path(Self.directory)) is missing"]
    }

    func warnings(_ t: TuneResource, stopsIrqbalance: Bool, _ io: TuneIO) -> [String] {
        guard !stopsIrqbalance, let pid = Irqbalance.pid(io) else { return [] }
        return [
            "host.tune.irqs: irqbalance runs (pid \(pid)) and will move interrupts back within seconds; set host.tune.irqbalance: stop, or stop it yourself"
        ]
    }

    func describe(_ s: TuneSetting, _ io: TuneIO) -> [String]? {
        guard case .irqsAway(let cpus) = s else { return nil }
        return [
            "write each interrupt's CPUs less \(cpus) to \(io.files.path(Self.directory))/N/smp_affinity_list, where they include any of \(cpus) \(HostTuner.recorded)"
        ]
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {}

    /// Interrupts whose affinity lists fewer than every online CPU, and all of them (`topo host`).
    static func pinned(_ io: TuneIO, online: CPUSet) -> (pinned: Int, all: Int) {
        var all = 0
        var pinned = 0
        for irq in interrupts(io) {
            guard let text = io.files.read("\(directory)/\(irq)/smp_affinity_list"),
                let cpus = try? CPUSet.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)).get()
            else { continue }
            all += 1
            if !online.isSubset(of: cpus) { pinned += 1 }
        }
        return (pinned, all)
    }
}
