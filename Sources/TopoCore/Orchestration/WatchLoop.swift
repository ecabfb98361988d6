import Foundation

extension Watch {
    /// What one round saw: every profile's checks, and what changed since the round before.
    public struct Round: Sendable {
        /// From 1.
        public var number: Int
        /// `Watch.timestamp` of the round's start.
        public var time: String
        /// How long the round's reads took.
        public var seconds: Double
        public var results: [Verifier.ProfileResult]
        /// The changes from the round before; in the first round, every check (as new).
        public var changes: [Change]
    }

    /// What a whole watch saw.
    public struct Summary: Equatable, Sendable {
        public var rounds: Int
        /// Changes after the first round.
        public var changes: Int
        /// Whether any round had a failing check (or, under `strict`, a warning).
        public var failed: Bool
        /// A round's reads, on average.
        public var averageMilliseconds: Double
        public var started: Date
    }

    /// `topo verify --watch`: the static checks of the applied profiles (or only `named`) every
    /// `interval` seconds on the interval's grid, until `stop` says so or `count` rounds are done.
    /// The watcher's threads run on CPUs no exclusive workload holds (`quietCPUs`), pinned again
    /// each round for threads made since; when every CPU is held it runs unpinned.
    public struct Loop {
        public var verifier: Verifier
        public var online: CPUSet
        /// The profiles asked for; nil for every applied one, as each comes and goes.
        public var named: [String]?
        public var interval: Double
        public var count: Int?
        /// A warning fails the watch too.
        public var strict = false
        /// The route sockets a watcher keeps from round to round (released once a namespace goes).
        public var sockets: NamespaceSockets?
        /// Whether to pin the watcher off the exclusive CPUs (a test that only reads a fake tree need not).
        public var pin = true
        /// Asked before each round and while waiting for the next: a signal handler's flag.
        public var stop: @Sendable () -> Bool

        public init(
            verifier: Verifier, online: CPUSet, named: [String]?, interval: Double, count: Int?,
            stop: @escaping @Sendable () -> Bool
        ) {
            self.verifier = verifier
            self.online = online
            self.named = named
            self.interval = interval
            self.count = count
            self.stop = stop
        }

        /// Runs the rounds: `started` hears where the watcher runs (the quiet CPUs, nil when
        /// unpinned), `each` every round as it ends. A named profile that is no longer applied ends
        /// the watch with its failure; with `named` nil a profile taken down is a `gone` change.
        public func run(started: (CPUSet?) -> Void, each: (Round) -> Void) -> Result<Summary, TopoFailure> {
            let state = verifier.state
            var quiet: CPUSet? = nil
            if pin {
                let plans = state.profiles().compactMap { try? state.plan($0).get() }
                let cpus = Watch.quietCPUs(plans, online: online)
                if !cpus.isEmpty, (try? Watch.pin(cpus).get()) != nil { quiet = cpus }
            }
            started(quiet)
            var previous: [Verifier.ProfileResult]? = nil
            var summary = Summary(rounds: 0, changes: 0, failed: false, averageMilliseconds: 0, started: Date())
            var busy = 0.0
            while !stop() {
                summary.rounds += 1
                if let quiet { _ = Watch.pin(quiet) }
                sockets?.releaseStale()  // also when no profile is left to read
                let began = Date()
                var results: [Verifier.ProfileResult] = []
                for name in named ?? state.profiles() {
                    switch verifier.verify(name, online: online) {
                    case .success(let r): results.append(r)
                    case .failure where named == nil: continue  // taken down meanwhile: reported as gone
                    case .failure(let f): return .failure(f)
                    }
                }
                let took = Date().timeIntervalSince(began)
                busy += took
                summary.failed =
                    summary.failed
                    || results.flatMap(\.checks).contains { $0.status == .fail || (strict && $0.status == .warn) }
                let baseline =
                    previous ?? results.map { Verifier.ProfileResult(name: $0.name, checks: [], summary: [:]) }
                let time = Watch.timestamp(began)
                let found = Watch.changes(round: summary.rounds, time: time, from: baseline, to: results)
                summary.changes += previous == nil ? 0 : found.count
                each(Round(number: summary.rounds, time: time, seconds: took, results: results, changes: found))
                previous = results
                if let count, summary.rounds >= count { break }
                // The next round starts on the interval's grid; one that ran long starts the next at once.
                let next = summary.started.addingTimeInterval(interval * Double(summary.rounds))
                while !stop(), next.timeIntervalSinceNow > 0 {
                    let left = min(next.timeIntervalSinceNow, 0.25)  // and asks `stop` at least four times a second
                    var ts = timespec(tv_sec: Int(left), tv_nsec: Int(left.truncatingRemainder(dividingBy: 1) * 1e9))
                    _ = nanosleep(&ts, nil)  // a signal ends it early (EINTR)
                }
            }
            summary.averageMilliseconds = summary.rounds > 0 ? busy / Double(summary.rounds) * 1000 : 0
            return .success(summary)
        }
    }
}
