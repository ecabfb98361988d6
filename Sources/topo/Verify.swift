import ArgumentParser
import Foundation
import Synchronization
import TopoCore

/// Set by SIGINT or SIGTERM during `verify --watch`: the round in progress finishes and the summary prints.
private let stopWatching = Atomic<Bool>(false)

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove from the kernel's side that an applied profile's isolation holds.",
        usage:
            "topo verify [--active] [--watch <s> [--count <n>]] [--strict] [--json]\n[<profile>]\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Reads what the kernel reports and compares it with the plan, one check per subject:
              cgroup.settings  each interface file holds its planned value
              tasks.cpus       each thread in the cgroup (and below) runs only on its CPUs
              tasks.mems       ... and allocates only on its memory nodes
              tasks.policy     each process has the planned NUMA policy (numa_maps)
              tasks.escaped    the process apply started is still in its cgroup
              partition.state  a partition reads root; the root lost its CPUs
              counters         throttling, memory and pids events; OOM kills warn
              links            namespaces, veths, MTUs, addresses, netem as planned
              cpus.intruders   other tasks pinned onto an exclusive or partition
                               workload's CPUs (warn; fail for a partition)
              irqs.affinity    interrupts sent to those CPUs (warn; fail likewise)

            --watch SECONDS repeats these checks every SECONDS beside a running benchmark and prints only what changed, each with its time and round; Ctrl-C ends it with a summary. A round reads files and netlink and starts no process; the watcher runs on CPUs no exclusive workload holds.
              topo verify api-gateway --watch 1
              topo verify --watch 5 --count 12 --json   (JSON Lines)

            --active adds probes started inside each workload the way topo exec starts a command (its cgroup, CPUs, memory policy, namespace and user), each bounded in time and memory:
              memory.placement a touched buffer's pages lie on the planned nodes
              cpu.placement    the probe may run, and runs, only on its CPUs
              link.latency     median round trip of 500 datagrams vs the delays
              link.loss        their round-trip loss vs the planned loss
              link.rate        TCP throughput each shaped way vs its rate
            The tolerances are in docs/verify.md. A probe that cannot run is a warning.

            Exits 0 when nothing failed, 1 when a check failed (in any round; with --strict, a warning too), 3 when the profile is not applied.

            Examples:
              topo verify api-gateway
              topo verify --active --json api-gateway
            """
    )

    @Argument(
        help: "An applied profile's name, or a profile file; every applied profile when left out.",
        completion: Completions.profilesOrFiles)
    var profile: String?

    @Flag(
        help:
            "Print {\"profiles\": [{\"name\", \"checks\": [{\"id\", \"subject\", \"status\", \"expected\", \"found\", \"message\"}], \"summary\"}]}; with --watch, one object per line."
    )
    var json = false

    @Flag(help: "Count warnings as failures.")
    var strict = false

    @Flag(
        help:
            "Also probe from inside each workload: where its memory lands, where it runs, and each link's latency, loss and rate."
    )
    var active = false

    @Option(
        help: ArgumentHelp(
            "Repeat the checks every SECONDS (0.1 to 3600), printing only changes.", valueName: "seconds"))
    var watch: Double?

    @Option(help: ArgumentHelp("With --watch: stop after N rounds.", valueName: "n"))
    var count: Int?

    @OptionGroup var paths: PathOptions
    @OptionGroup var color: ColorOptions

    func validate() throws {
        if active && watch != nil {
            throw ValidationError("--active probes run once; --watch repeats the static checks only (run them apart)")
        }
        if let watch, !(0.1...3600).contains(watch) {
            throw ValidationError("--watch takes 0.1 to 3600 seconds, not \(watch)")
        }
        if let count {
            guard watch != nil else { throw ValidationError("--count needs --watch, e.g. --watch 1 --count \(count)") }
            guard count >= 1 else { throw ValidationError("--count takes a number of rounds, 1 or more, not \(count)") }
        }
    }

    struct Report: Encodable {
        var profiles: [Verifier.ProfileResult]
    }

    func run() throws {
        let state = paths.state
        var drivers = paths.drivers
        // A watcher keeps a route socket per namespace from round to round (released once the namespace goes).
        let sockets = NamespaceSockets()
        if watch != nil { drivers.links = NetlinkLinks(sockets: sockets) }
        let verifier = Verifier(state: state, drivers: drivers)
        let online = try Loading.host(sysfs: "/sys").get().onlineCPUs
        if let watch { return try watchRounds(every: watch, verifier, online: online, sockets: sockets) }
        let names = try profileNames(state)
        // Nothing applied proves nothing: a CI step that verifies must not pass vacuously.
        guard !names.isEmpty else {
            throw TopoFailure(
                .hostCannot, "nothing is applied, so nothing was verified (topo status; apply a profile first)")
        }
        let results = try names.map { try verifier.verify($0, online: online, active: active).get() }
        if json {
            print(JSONOutput.encode(.verify, Report(profiles: results)))
        } else {
            for r in results {
                for c in r.checks where c.status != .pass { print(line(c)) }
                print("\(r.name): \(summary(r))")
            }
        }
        if failed(results) { throw ExitCode(ExitStatus.verifyFailed.rawValue) }
    }

    func profileNames(_ state: StateStore) throws -> [String] {
        try profile.map { [try Loading.appliedName($0, applied: state.profiles()).get()] } ?? state.profiles()
    }

    func failed(_ results: [Verifier.ProfileResult]) -> Bool {
        results.flatMap(\.checks).contains { $0.status == .fail || (strict && $0.status == .warn) }
    }

    func line(_ c: Check) -> String {
        "\(color.style.status(c.status.rawValue.uppercased())) \(c.id) \(c.subject): \(c.message)"
    }

    func summary(_ r: Verifier.ProfileResult) -> String {
        "\(r.summary["pass"] ?? 0) passed, \(r.summary["warn"] ?? 0) warned, \(r.summary["fail"] ?? 0) failed"
    }

    // MARK: --watch

    /// One round's heartbeat in --json: the watcher is alive, and how long the round took.
    struct Round: Encodable {
        var round: Int
        var time: String
        var seconds: Double
        var summary: [String: [String: Int]]
    }

    func watchRounds(every interval: Double, _ verifier: Verifier, online: CPUSet, sockets: NamespaceSockets) throws {
        for s in [SIGINT, SIGTERM] { signal(s) { _ in stopWatching.store(true, ordering: .relaxed) } }
        unblock([SIGINT, SIGTERM])
        var loop = Watch.Loop(
            verifier: verifier, online: online, named: profile == nil ? nil : try profileNames(verifier.state),
            interval: interval, count: count, stop: { stopWatching.load(ordering: .relaxed) })
        loop.strict = strict
        loop.sockets = sockets
        let watched = try loop.run(
            started: { quiet in
                FileHandle.standardError.write(
                    Data(
                        (quiet.map {
                            "topo verify: watching every \(interval) s from CPU \($0), which no exclusive workload holds\n"
                        }
                            ?? "topo verify: watching every \(interval) s unpinned: every CPU is held by an exclusive workload\n")
                            .utf8))
            },
            each: { round in
                let time = round.time
                if json {
                    for c in round.changes { print(JSONOutput.line(.verifyCheck, c)) }
                    print(
                        JSONOutput.line(
                            .verifyRound,
                            Round(
                                round: round.number, time: time, seconds: (round.seconds * 1e6).rounded() / 1e6,
                                summary: Dictionary(
                                    round.results.map { ($0.name, $0.summary) }, uniquingKeysWith: { a, _ in a }))))
                } else if round.number == 1 {
                    for r in round.results {
                        for c in r.checks where c.status != .pass { print("\(time) round 1 \(r.name): \(line(c))") }
                        print("\(time) round 1 \(r.name): \(summary(r))")
                    }
                    if round.results.isEmpty { print("\(time) round 1: nothing is applied") }
                } else {
                    for c in round.changes {
                        if let check = c.check {
                            print(
                                "\(time) round \(round.number) \(c.profile): \(line(check))\(c.previous.map { " (was \($0.rawValue))" } ?? " (new)")"
                            )
                        } else {
                            print(
                                "\(time) round \(round.number) \(c.profile): \(c.event == "gone" ? "no longer applied" : "applied")"
                            )
                        }
                    }
                }
                fflush(nil)  // every line out before the wait, for a reader at the other end of a pipe
            }
        ).get()
        let rounds = watched.rounds
        let changes = watched.changes
        let closing =
            "watched \(rounds) round\(rounds == 1 ? "" : "s") from \(Watch.timestamp(watched.started)) to \(Watch.timestamp()): \(changes) change\(changes == 1 ? "" : "s"); a round took \(String(format: "%.1f", watched.averageMilliseconds)) ms on average"
        if json { FileHandle.standardError.write(Data("topo verify: \(closing)\n".utf8)) } else { print(closing) }
        if watched.failed { throw ExitCode(ExitStatus.verifyFailed.rawValue) }
    }
}
