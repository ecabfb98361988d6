import Foundation

/// `irqbalance: stop`: irqbalance's systemd unit stopped while a profile that asks for it is applied,
/// started again by the last `down` that needs it stopped. Only where it runs; only where systemd is
/// PID 1 (else topo could not start it again).
struct Irqbalance: TunableFamily {
    static let unit = "irqbalance.service"

    func owns(_ s: TuneSetting) -> Bool { if case .irqbalanceStopped = s { true } else { false } }

    var conflictsAcrossProfiles: Bool { false }  // a stopped unit is one state

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        guard case .irqbalanceStopped = s, Self.pid(io) != nil else { return [] }
        return [TuneTarget(key: "unit \(Self.unit)", kind: .unit, want: "inactive")]
    }

    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] {
        guard let pid = Self.pid(io) else { return [] }
        guard io.files.read("proc/1/comm")?.trimmingCharacters(in: .whitespacesAndNewlines) == "systemd" else {
            return [
                "host.tune.\(t.setting.name): irqbalance runs (pid \(pid)) and systemd is not PID 1, so topo cannot stop and restart its unit; stop irqbalance yourself, or set irqbalance: warn"
            ]
        }
        return []
    }

    func describe(_ s: TuneSetting, _ io: TuneIO) -> [String]? {
        ["systemctl stop \(Self.unit), if it is active (started again by the last `topo down` that needs it stopped)"]
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {}

    static func pid(_ io: TuneIO) -> Int32? { io.process(named: "irqbalance") }

    /// The unit's state, as `systemctl is-active` says it.
    static func read(_ key: String, _ io: TuneIO) -> String? {
        io.systemctl(["is-active", String(key.dropFirst("unit ".count))]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// Stops the unit (`inactive`) or starts it.
    static func write(_ key: String, _ value: String, _ io: TuneIO) throws(SystemError) {
        let unit = String(key.dropFirst("unit ".count))
        let verb = value == "inactive" ? "stop" : "start"
        let r = io.systemctl([verb, unit])
        if r.status != 0 {
            throw SystemError(
                "systemctl \(verb)", unit, errno: EIO,
                diagnosis: r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
