import Foundation
import Testing

@testable import TopoCore

/// The verifier's readings of /proc and cgroup files.
@Suite struct VerifierParsingTests {
    @Test func procStatusAndCgroupCounters() {
        let status = "Name:\tsleep\nCpus_allowed_list:\t2-3\nMems_allowed_list:\t0\nVmSize:\t  8000 kB\n"
        #expect(Verifier.fields(status)["Cpus_allowed_list"] == "2-3" && Verifier.fields(status)["Name"] == "sleep")
        #expect(Verifier.pairs("low 0\nhigh 2\nmax 0\noom 1\noom_kill 1\n")["oom_kill"] == "1")
        #expect(Verifier.numaMapsPolicy(.bind, CPUSet([1])) == ["bind:1"])
        #expect(Verifier.numaMapsPolicy(.interleave, CPUSet([0, 1])) == ["interleave:0-1"])
        #expect(Verifier.numaMapsPolicy(.local, .empty).contains("default"))
    }
}

/// `verify --watch`: what counts as a change between two rounds, and where the watcher may run.
@Suite struct WatchTests {
    func check(_ id: String, _ status: Check.Status, found: String = "x") -> Check {
        Check(id: id, subject: "workload a", status: status, expected: "e", found: found, message: "m")
    }
    func result(_ name: String, _ checks: [Check]) -> Verifier.ProfileResult {
        .init(name: name, checks: checks, summary: [:])
    }

    @Test func onlyStatusChangesNewChecksAndMovingFailuresAreReported() {
        let before = [
            result(
                "p",
                [
                    check("cgroup.settings", .pass), check("counters", .pass, found: "nr_throttled=1"),
                    check("cpus.intruders", .warn, found: "1 (sleep)"),
                ]),
            result("gone", []),
        ]
        let after = [
            result(
                "p",
                [
                    check("cgroup.settings", .fail), check("counters", .pass, found: "nr_throttled=9"),
                    check("cpus.intruders", .warn, found: "2 (stress)"),
                    check("tasks.cpus", .pass),
                ]),
            result("new", [check("links", .pass)]),
        ]
        let changes = Watch.changes(round: 3, time: "t", from: before, to: after)
        #expect(
            changes.map { "\($0.profile) \($0.check?.id ?? $0.event ?? "") \($0.previous?.rawValue ?? "-")" } == [
                "p cgroup.settings pass", "p cpus.intruders warn", "p tasks.cpus -", "new applied -", "gone gone -",
            ])
        #expect(changes.allSatisfy { $0.round == 3 && $0.time == "t" })
        #expect(Watch.changes(round: 4, time: "t", from: after, to: after).isEmpty)
    }

    @Test func theWatcherRunsWhereNoExclusiveWorkloadDoes() throws {
        let host = try fixtureHost("2s-8c-ht")
        let plan = try Planner(host: host).plan(
            try profile(
                """
                version: 1
                name: w
                workloads:
                  a: { cpus: "1", isolation: exclusive }
                  b: { cpus: "2-3", isolation: shared }
                """)
        ).get()
        #expect(Watch.quietCPUs([plan], online: host.onlineCPUs) == host.onlineCPUs.subtracting(CPUSet([1])))
    }

    @Test func roundTimesAreUTCWithMilliseconds() {
        #expect(Watch.timestamp(Date(timeIntervalSince1970: 1_795_974_662.1234)) == "2026-11-29T17:51:02.123Z")
        #expect(Watch.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }
}

/// `verify --active`: how each probe's measurement is judged against the plan.
@Suite struct ActiveJudgingTests {
    func netem(delay ms: UInt64, jitter: UInt64 = 0, loss: Double? = nil, rate: UInt64? = nil) -> Netem {
        Netem(
            delay: Duration(nanoseconds: ms * 1_000_000),
            jitter: jitter == 0 ? nil : Duration(nanoseconds: jitter * 1_000), distribution: nil,
            loss: loss.map { Percent(micro: UInt64($0 * 1_000_000)) }, duplicate: nil, reorder: nil, corrupt: nil,
            rate: rate.map { BitRate(bitsPerSecond: $0) }, limit: 1000, limitChosen: true)
    }
    func link(
        _ medianMs: Double, sent: Int = 500, received: Int = 500, bps: Double? = nil, loopback: Double? = nil
    ) -> Probe.LinkResult {
        Probe.LinkResult(
            sent: sent, received: received, rttMicroseconds: [medianMs * 900, medianMs * 1000, medianMs * 1100],
            bitsPerSecond: bps, loopbackBitsPerSecond: loopback)
    }

    @Test func aTenMillisecondLinkPassesAtTheLabsRoundTripAndFailsAtSixty() {
        let e = ActiveChecks.expectedRoundTrip(netem(delay: 10), netem(delay: 10))
        #expect(e.rtt == 20_000 && e.jitter == 0)
        for measured in [21.0, 23.0] {
            #expect(ActiveChecks.judgeLatency(link(measured), expected: e, subject: "l").status == .pass)
        }
        let changed = ActiveChecks.judgeLatency(link(70), expected: e, subject: "link a<->b")
        #expect(changed.status == .fail && changed.message.contains("70.00 ms"))
        #expect(ActiveChecks.judgeLatency(link(5), expected: e, subject: "l").status == .fail)
        #expect(ActiveChecks.judgeLatency(link(0, received: 0), expected: e, subject: "l").status == .fail)
        // Jitter without a delay: the mean delay is the jitter (0.2 ms each way).
        let jittered = ActiveChecks.expectedRoundTrip(netem(delay: 0, jitter: 200), netem(delay: 0, jitter: 200))
        #expect(ActiveChecks.judgeLatency(link(0.9), expected: jittered, subject: "l").status == .pass)
    }

    @Test func lossIsComparedAsRoundTripLossWithinItsStatisticalSpread() {
        let p = ActiveChecks.roundTripLoss(netem(delay: 1, loss: 10), nil)
        #expect(abs(p - 0.1) < 1e-9)
        #expect(ActiveChecks.judgeLoss(link(1, received: 452), expected: p, subject: "l").status == .pass)  // 9.6 %
        #expect(ActiveChecks.judgeLoss(link(1, received: 350), expected: p, subject: "l").status == .fail)  // 30 %
        #expect(ActiveChecks.judgeLoss(link(1, received: 500), expected: 0, subject: "l").status == .pass)
        // 6 % on a lossless link
        #expect(ActiveChecks.judgeLoss(link(1, received: 470), expected: 0, subject: "l").status == .fail)
    }

    @Test func rateMustReachThePlanOrHalfOfWhatTheHostCarries() {
        let fifty = BitRate(bitsPerSecond: 50_000_000)
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 47.5e6, loopback: 2e9), planned: fifty, subject: "l").status == .pass)
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 9.5e6, loopback: 2e9), planned: fifty, subject: "l").status == .fail)
        #expect(ActiveChecks.judgeRate(link(1, bps: 90e6, loopback: 2e9), planned: fifty, subject: "l").status == .fail)
        // A host that carries 400 Mbit/s over its loopback cannot show 1 Gbit/s: half of that is the floor.
        let gigabit = BitRate(bitsPerSecond: 1_000_000_000)
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 250e6, loopback: 400e6), planned: gigabit, subject: "l").status == .pass
        )
        #expect(
            ActiveChecks.judgeRate(link(1, bps: 9.5e6, loopback: 400e6), planned: gigabit, subject: "l").status == .fail
        )
    }

    @Test func pagesAreJudgedByPolicy() {
        let bound = Probe.MemoryResult(pages: 1000, nodes: ["1": 1000], unplaced: 0)
        #expect(
            ActiveChecks.judgeMemory(bound, policy: .bind, nodes: CPUSet([1]), subject: "w", expected: "").status
                == .pass)
        let strayed = Probe.MemoryResult(pages: 1000, nodes: ["0": 10, "1": 990], unplaced: 0)
        let check = ActiveChecks.judgeMemory(strayed, policy: .bind, nodes: CPUSet([1]), subject: "w", expected: "")
        #expect(check.status == .fail && check.message.contains("10 pages outside node 1"))
        #expect(
            ActiveChecks.judgeMemory(
                Probe.MemoryResult(pages: 1000, nodes: ["0": 520, "1": 480], unplaced: 0), policy: .interleave,
                nodes: CPUSet([0, 1]), subject: "w", expected: ""
            ).status == .pass)
        #expect(
            ActiveChecks.judgeMemory(
                Probe.MemoryResult(pages: 1000, nodes: ["0": 900, "1": 100], unplaced: 0), policy: .interleave,
                nodes: CPUSet([0, 1]), subject: "w", expected: ""
            ).status == .fail)
        #expect(
            ActiveChecks.judgeMemory(
                Probe.MemoryResult(pages: 1000, nodes: ["0": 700, "1": 300], unplaced: 0), policy: .preferred,
                nodes: CPUSet([0]), subject: "w", expected: ""
            ).status == .warn)
    }
}
