extension HostTuner {
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

    /// Each family's settings as the kernel reads them, the interrupts, irqbalance, the command line,
    /// and the record's entries.
    public func currentState() -> State {
        let io = io
        let online = io.online
        var settings: [String: String] = [:]
        for family in Self.families { family.show(io, online: online, into: &settings) }
        let irqs = InterruptAffinity.pinned(io, online: online)
        let held = ((try? loadRecord())?.entries ?? [:]).sorted { $0.key < $1.key }.map { key, e in
            "\(e.setting): \(io.describe(key)) was \"\(e.original)\", topo wrote \"\(e.written)\" (\(e.holders.keys.sorted().joined(separator: ", ")))"
        }
        return State(
            settings: settings, irqbalance: Irqbalance.pid(io).map { "running (pid \($0))" } ?? "not running",
            pinnedIRQs: irqs.pinned, irqs: irqs.all,
            commandLine: BootIsolation.current(commandLine: files.read("proc/cmdline") ?? ""), held: held)
    }
}
