import Foundation

/// `verify --active`: probes (`topo __probe`) started inside each workload through its runtime, the
/// way `topo exec` starts a command, so they run in its cgroup, on its CPUs, under its memory policy,
/// in its namespace, as its user. Each is bounded in time (its own alarm, and a kill after that) and in
/// memory (a quarter of what the workload's `memory.max` leaves free, at most 64 MiB).
public struct ActiveChecks: Sendable {
    public var state: StateStore
    public var drivers: Drivers
    /// The topo binary the probes run as (`topo __probe`).
    public var executable: String

    public init(state: StateStore, drivers: Drivers, executable: String = Spawn.selfExecutable) {
        self.state = state
        self.drivers = drivers
        self.executable = executable
    }

    /// The tolerances of the link probes, stated in docs/verify.md. They hold under the lab's software
    /// emulation and still fail a delay of 60 ms planned as 10 ms.
    public enum Tolerance {
        /// Datagrams per link and their spacing.
        public static let datagrams = 500
        public static let intervalMicroseconds = 2_000
        /// The median round trip may lie between `low` × (planned − jitter) − 0.5 ms and `high` × (planned + jitter) + `slack`.
        public static let low = 0.9, high = 1.2
        public static let slackMicroseconds = 3_000.0
        /// Loss may differ from the planned round-trip loss by 4 standard deviations of the count plus one point.
        public static let lossPoints = 0.01
        /// TCP seconds per shaped direction, after a warm-up left out of the measurement.
        public static let rateSeconds = 2.0, warmupSeconds = 0.5
        /// Throughput must reach `rateLow` of the plan (or half of what the namespace's loopback carries,
        /// where the host cannot drive the planned rate at all) and stay under `rateHigh` of it.
        public static let rateLow = 0.85, rateHigh = 1.05
        /// The memory probe's buffer: a quarter of the free `memory.max`, at most this.
        public static let memoryBytes = 64 << 20
    }

    public func checks(_ plan: Plan, profile: String) -> [Check] {
        let dir = "\(state.profileDir(profile))/probes"
        try? Sys.mkdir(dir, mode: 0o700)
        defer {
            for f in Sys.entries(dir) { try? Sys.unlink("\(dir)/\(f)") }
            try? Sys.rmdir(dir)
        }
        var checks: [Check] = []
        for w in plan.workloads {
            checks.append(memoryPlacement(w, profile: profile, dir: dir))
            checks.append(cpuPlacement(w, profile: profile, dir: dir))
        }
        for link in plan.links { checks += linkChecks(link, plan: plan, profile: profile, dir: dir) }
        return checks
    }

    // MARK: running a probe

    /// Why a probe measured nothing.
    struct Unmeasured: Error {
        var why: String
        init(_ why: String) { self.why = why }
    }

    struct Started {
        var pid: Int32
        var output: String
    }

    func start(
        _ w: PlannedWorkload, profile: String, dir: String, name: String, _ arguments: [String]
    ) -> Result<Started, Unmeasured> {
        let output = "\(dir)/\(name).out"
        guard drivers.cgroups.exists(w.cgroupPath) else { return .failure(Unmeasured("the workload's cgroup is gone")) }
        return drivers.runtime(w.run?.runtime ?? .process).flatMap { runtime in
            let command = [runtime.probeExecutable ?? executable, "__probe"] + arguments
            return runtime.start(
                WorkloadExec.launch(w, profile: profile, command: command, logPath: output), profile: profile)
        }.map { Started(pid: $0, output: output) }.mapError { Unmeasured($0.message) }
    }

    /// The probe's JSON line, or why there is none (its stderr, its exit, or the time it overran).
    func finish(_ s: Started, timeout: Double) -> Result<Data, Unmeasured> {
        let status = Spawn.wait(s.pid, timeout: timeout)
        let text = (try? Sys.read(s.output)) ?? ""
        guard status == 0, let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            let said = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "; ")
            return .failure(
                Unmeasured(
                    status == nil
                        ? "the probe ran past \(Int(timeout)) s and was killed"
                        : "the probe exited \(status!)\(said.isEmpty ? "" : ": \(said)")"))
        }
        return .success(Data(line.utf8))
    }

    func run<T: Decodable>(
        _ w: PlannedWorkload, profile: String, dir: String, name: String, seconds: Int, _ arguments: [String],
        as: T.Type
    ) -> Result<T, Unmeasured> {
        start(w, profile: profile, dir: dir, name: name, arguments + ["--seconds", String(seconds)])
            .flatMap { finish($0, timeout: Double(seconds) + 2) }
            .flatMap { data -> Result<T, Unmeasured> in
                guard let value = try? JSONDecoder().decode(T.self, from: data) else {
                    return .failure(Unmeasured("unreadable probe output"))
                }
                return .success(value)
            }
    }

    /// A probe that could not measure is a warning: nothing was proven either way.
    func unmeasured(_ id: String, _ subject: String, expected: String, _ why: String) -> Check {
        Check(
            id: id, subject: subject, status: .warn, expected: expected, found: "not measured",
            message: "could not measure: \(why)")
    }

    // MARK: memory and CPU placement

    func memoryPlacement(_ w: PlannedWorkload, profile: String, dir: String) -> Check {
        let subject = "workload \(w.name)"
        let nodes = w.memoryPolicy == .local ? w.mems : w.policyNodes
        let expected = "\(w.memoryPolicy.rawValue) on node \(nodes)"
        let max = drivers.cgroups.read(w.cgroupPath, "memory.max").flatMap { Int($0) }
        let current = drivers.cgroups.read(w.cgroupPath, "memory.current").flatMap { Int($0) } ?? 0
        let bytes = min(Tolerance.memoryBytes, max.map { ($0 - current) / 4 } ?? Tolerance.memoryBytes)
        guard bytes >= 1 << 20 else {
            return unmeasured(
                "memory.placement", subject, expected: expected, "less than 4 MiB of the workload's memory.max is free")
        }
        switch run(
            w, profile: profile, dir: dir, name: "\(w.name)-memory", seconds: 20, ["memory", "--bytes", String(bytes)],
            as: Probe.MemoryResult.self)
        {
        case .failure(let e): return unmeasured("memory.placement", subject, expected: expected, e.why)
        case .success(let m):
            return Self.judgeMemory(m, policy: w.memoryPolicy, nodes: nodes, subject: subject, expected: expected)
        }
    }

    /// Where the pages of a touched buffer landed, against the policy: all on the planned nodes
    /// (`bind`, `local`); spread evenly within 20 % (`interleave`); 90 % on the node (`preferred`, a warning below).
    static func judgeMemory(
        _ m: Probe.MemoryResult, policy: MemoryPolicy, nodes: CPUSet, subject: String, expected: String
    ) -> Check {
        let found =
            m.nodes.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }.map { "node \($0.key): \($0.value)" }.joined(
                separator: ", ")
            + " of \(m.pages) pages" + (m.unplaced > 0 ? ", \(m.unplaced) unplaced" : "")
        let elsewhere = m.nodes.filter { !nodes.contains(Int($0.key) ?? -1) }.values.reduce(0, +)
        var problems: [String] = []
        // A preferred node may run short: its pages then go elsewhere, which the policy allows.
        if elsewhere > 0 && policy != .preferred { problems.append("\(elsewhere) pages outside node \(nodes)") }
        if m.unplaced > 0 { problems.append("\(m.unplaced) pages the kernel could not place") }
        var status: Check.Status = problems.isEmpty ? .pass : .fail
        switch policy {
        case .interleave:
            let share = Double(m.pages) / Double(max(nodes.count, 1))
            for node in nodes {
                let n = Double(m.nodes[String(node)] ?? 0)
                if abs(n - share) > 0.2 * share {
                    problems.append("node \(node) holds \(Int(n)) pages, not \(Int(share)) ± 20 %")
                    status = .fail
                }
            }
        case .preferred:
            let on = m.nodes.filter { nodes.contains(Int($0.key) ?? -1) }.values.reduce(0, +)
            if status == .pass && Double(on) < 0.9 * Double(m.pages) {
                problems.append("only \(on) of \(m.pages) pages on the preferred node")
                status = .warn
            }
        case .bind, .local: break
        }
        return Check(
            id: "memory.placement", subject: subject, status: status, expected: expected, found: found,
            message: problems.isEmpty
                ? "a touched buffer's pages lie where the policy puts them (\(found))"
                : problems.joined(separator: "; "))
    }

    func cpuPlacement(_ w: PlannedWorkload, profile: String, dir: String) -> Check {
        let subject = "workload \(w.name)"
        let expected = "allowed on \(w.cpus), ran only there"
        switch run(
            w, profile: profile, dir: dir, name: "\(w.name)-cpu", seconds: 10, ["cpu", "--milliseconds", "300"],
            as: Probe.CPUResult.self)
        {
        case .failure(let e): return unmeasured("cpu.placement", subject, expected: expected, e.why)
        case .success(let c):
            var problems: [String] = []
            if c.affinity != w.cpus { problems.append("sched_getaffinity gives \(c.affinity)") }
            let off = c.ran.subtracting(w.cpus)
            if !off.isEmpty { problems.append("ran on CPU \(off)") }
            return Check(
                id: "cpu.placement", subject: subject, status: problems.isEmpty ? .pass : .fail, expected: expected,
                found: "allowed on \(c.affinity), ran on \(c.ran)",
                message: problems.isEmpty
                    ? "the probe was allowed on \(c.affinity) and ran on \(c.ran)" : problems.joined(separator: "; "))
        }
    }

    // MARK: links

    /// The far end serves; the near end sends datagrams (latency and loss, both directions at once) and,
    /// for each shaped direction with a rate, TCP from that direction's sender.
    func linkChecks(_ link: PlannedLink, plan: Plan, profile: String, dir: String) -> [Check] {
        let a = link.ends[0]
        let b = link.ends[1]
        let pair = "link \(a.workload)<->\(b.workload)"
        let forward = link.shaping.first { $0.from == a.workload }?.netem
        let backward = link.shaping.first { $0.from == b.workload }?.netem
        let expectedRTT = Self.expectedRoundTrip(forward, backward)
        let expectedLoss = Self.roundTripLoss(forward, backward)
        var checks: [Check] = []
        guard let wa = plan.workload(named: a.workload), let wb = plan.workload(named: b.workload) else { return [] }
        let rates = [(wa, wb, b, forward?.rate), (wb, wa, a, backward?.rate)]
        let first = measure(
            from: wa, to: wb, at: b.address.address, profile: profile, dir: dir,
            rateSeconds: forward?.rate == nil ? 0 : Tolerance.rateSeconds, count: Tolerance.datagrams)
        switch first {
        case .failure(let e):
            checks.append(unmeasured("link.latency", pair, expected: Self.describe(expectedRTT), e.why))
            checks.append(unmeasured("link.loss", pair, expected: Self.percent(expectedLoss), e.why))
        case .success(let r):
            checks.append(Self.judgeLatency(r, expected: expectedRTT, subject: pair))
            checks.append(Self.judgeLoss(r, expected: expectedLoss, subject: pair))
        }
        for (i, (from, to, end, rate)) in rates.enumerated() {
            guard let rate else { continue }
            let subject = "link \(from.name)->\(to.name)"
            // The first run already measured the forward direction's rate.
            let result =
                i == 0
                ? first
                : measure(
                    from: from, to: to, at: end.address.address, profile: profile, dir: dir,
                    rateSeconds: Tolerance.rateSeconds, count: 20)
            switch result {
            case .failure(let e): checks.append(unmeasured("link.rate", subject, expected: "\(rate)", e.why))
            case .success(let r): checks.append(Self.judgeRate(r, planned: rate, subject: subject))
            }
        }
        return checks
    }

    func measure(
        from: PlannedWorkload, to: PlannedWorkload, at address: IPv4Address, profile: String, dir: String,
        rateSeconds: Double, count: Int
    ) -> Result<Probe.LinkResult, Unmeasured> {
        let clientSeconds = Int(
            (Double(count * Tolerance.intervalMicroseconds) / 1e6 + rateSeconds * 2 + 8).rounded(.up))
        let server: Started
        switch start(
            to, profile: profile, dir: dir, name: "\(to.name)-serve-\(from.name)",
            ["serve", "--seconds", String(clientSeconds + 5), "--warmup", String(Tolerance.warmupSeconds)])
        {
        case .failure(let e): return .failure(Unmeasured("start the far end in \(to.name): \(e.why)"))
        case .success(let s): server = s
        }
        defer { _ = Spawn.wait(server.pid, timeout: 0) }  // killed and reaped
        // Its port, once it listens (bounded: a server that never says is killed above).
        var port: UInt16?
        for _ in 0..<500 where port == nil {
            if let text = try? Sys.read(server.output), let line = text.split(separator: "\n").first,
                let o = try? JSONDecoder().decode([String: UInt16].self, from: Data(line.utf8))
            {
                port = o["port"]
            } else {
                usleep(10_000)
            }
        }
        guard let port else {
            return .failure(
                Unmeasured("the far end in \(to.name) did not start listening: \((try? Sys.read(server.output)) ?? "")")
            )
        }
        return run(
            from, profile: profile, dir: dir, name: "\(from.name)-link-\(to.name)", seconds: clientSeconds,
            [
                "link", "--to", "\(address)", "--port", String(port), "--count", String(count),
                "--interval-microseconds", String(Tolerance.intervalMicroseconds),
                "--rate-seconds", String(rateSeconds), "--warmup", String(Tolerance.warmupSeconds),
            ], as: Probe.LinkResult.self)
    }

    // MARK: judging

    /// The planned round trip, in microseconds: each direction's delay and, at its rate, the time to put
    /// a probe datagram (106 bytes on the wire) out; and the jitter of both.
    static func expectedRoundTrip(_ a: Netem?, _ b: Netem?) -> (rtt: Double, jitter: Double) {
        func oneWay(_ n: Netem?) -> Double {
            guard let n else { return 0 }
            let serialization = n.rate.map { 106 * 8 / Double($0.bitsPerSecond) * 1e6 } ?? 0
            return Double((n.delay ?? .zero).nanoseconds) / 1000 + serialization
        }
        return (
            oneWay(a) + oneWay(b), Double((a?.jitter ?? .zero).nanoseconds + (b?.jitter ?? .zero).nanoseconds) / 1000
        )
    }

    /// A datagram and its echo both get through: netem's loss and corruption (a corrupt datagram fails its checksum) each way.
    static func roundTripLoss(_ a: Netem?, _ b: Netem?) -> Double {
        func through(_ n: Netem?) -> Double { (1 - (n?.loss?.fraction ?? 0)) * (1 - (n?.corrupt?.fraction ?? 0)) }
        return 1 - through(a) * through(b)
    }

    static func describe(_ e: (rtt: Double, jitter: Double)) -> String {
        "round trip \(ms(e.rtt))" + (e.jitter > 0 ? " ± \(ms(e.jitter))" : "")
    }

    static func ms(_ micros: Double) -> String { String(format: "%.2f ms", micros / 1000) }
    static func percent(_ f: Double) -> String { String(format: "%.2f %%", f * 100) }

    static func latencyBounds(_ e: (rtt: Double, jitter: Double)) -> ClosedRange<Double> {
        let low = max(0, Tolerance.low * (e.rtt - e.jitter) - 500)
        let high = Tolerance.high * (e.rtt + e.jitter) + Tolerance.slackMicroseconds
        return low...high
    }

    static func judgeLatency(_ r: Probe.LinkResult, expected e: (rtt: Double, jitter: Double), subject: String) -> Check
    {
        let bounds = latencyBounds(e)
        let median = r.rttMicroseconds.count == 3 ? r.rttMicroseconds[1] : 0
        let found =
            "median \(ms(median)) (10th percentile \(ms(r.rttMicroseconds.first ?? 0)), 90th \(ms(r.rttMicroseconds.last ?? 0))) over \(r.received) of \(r.sent) datagrams"
        guard r.received > 0 else {
            return Check(
                id: "link.latency", subject: subject, status: .fail, expected: describe(e),
                found: "no datagram came back", message: "no datagram came back over the link")
        }
        let ok = bounds.contains(median)
        return Check(
            id: "link.latency", subject: subject, status: ok ? .pass : .fail,
            expected: "\(describe(e)): median within \(ms(bounds.lowerBound))–\(ms(bounds.upperBound))",
            found: found,
            message: ok
                ? found
                : "the round trip is \(ms(median)), outside \(ms(bounds.lowerBound))–\(ms(bounds.upperBound)) for the planned \(describe(e))"
        )
    }

    static func lossAllowance(_ p: Double, count: Int) -> Double {
        4 * ((max(p, 1 / Double(count)) * (1 - p)) / Double(count)).squareRoot() + Tolerance.lossPoints
    }

    static func judgeLoss(_ r: Probe.LinkResult, expected p: Double, subject: String) -> Check {
        let measured = 1 - Double(r.received) / Double(max(r.sent, 1))
        let allowance = lossAllowance(p, count: r.sent)
        let ok = abs(measured - p) <= allowance
        let found = "\(percent(measured)) (\(r.sent - r.received) of \(r.sent) datagrams or their echoes lost)"
        return Check(
            id: "link.loss", subject: subject, status: ok ? .pass : .fail,
            expected: "\(percent(p)) ± \(percent(allowance)) round trip",
            found: found,
            message: ok ? found : "round-trip loss \(percent(measured)), planned \(percent(p)) ± \(percent(allowance))")
    }

    static func judgeRate(_ r: Probe.LinkResult, planned: BitRate, subject: String) -> Check {
        let want = Double(planned.bitsPerSecond)
        let got = r.bitsPerSecond ?? 0
        let capacity = r.loopbackBitsPerSecond ?? .infinity
        let low = min(Tolerance.rateLow * want, 0.5 * capacity)
        let high = Tolerance.rateHigh * want
        let ok = (low...high).contains(got)
        func mbit(_ bps: Double) -> String { String(format: "%.1f Mbit/s", bps / 1e6) }
        let found = "\(mbit(got)) over TCP" + (r.loopbackBitsPerSecond.map { " (loopback carries \(mbit($0)))" } ?? "")
        let why =
            got > high
            ? "more than the planned \(planned) allows"
            : "less than \(mbit(low))"
                + (low < Tolerance.rateLow * want ? ", half of what this host carries over its loopback" : "")
        return Check(
            id: "link.rate", subject: subject, status: ok ? .pass : .fail,
            expected: "\(planned): \(mbit(low))–\(mbit(high))",
            found: found, message: ok ? found : "\(found): \(why)")
    }
}
