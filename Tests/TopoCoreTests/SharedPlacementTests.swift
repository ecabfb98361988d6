import Foundation
import Testing

@testable import TopoCore

/// `isolation: shared` with a count: shared workloads share CPUs, spread least-loaded first over
/// what exclusive workloads leave; and refusals for many workloads at once are said once.
@Suite struct SharedPlacementTests {
    func profile(_ workloads: [String], name: String = "s") throws -> Profile {
        try TopoCoreTests.profile("version: 1\nname: \(name)\nworkloads:\n" + workloads.map { "  \($0)\n" }.joined())
    }

    /// 256 shared workloads of one CPU on a 32-CPU host: 8 on each CPU, where each once took a whole core.
    @Test func manySharedWorkloadsSpreadEvenly() throws {
        let host = try fixtureHost("2s-8c-ht")
        let p = try profile((0..<256).map { "w\($0): { cpus: { count: 1 }, isolation: shared }" })
        let plan = try Planner(host: host).plan(p).get()
        var load: [Int: Int] = [:]
        for w in plan.workloads { for cpu in w.cpus { load[cpu, default: 0] += 1 } }
        #expect(load.count == 32 && load.values.allSatisfy { $0 == 8 }, "\(load.sorted { $0.key < $1.key })")
        #expect(
            JSONOutput.encode(plan) == JSONOutput.encode(try Planner(host: try fixtureHost("2s-8c-ht")).plan(p).get()))
    }

    /// A made-up host of `nodes` × `cores` × 2 threads (siblings N and N + nodes·cores).
    static func bigHost(nodes: Int, cores: Int) -> HostTopology {
        let total = nodes * cores
        var cpus: [HostTopology.CPU] = []
        for n in 0..<nodes {
            for c in 0..<cores {
                let core = n * cores + c
                for t in [core, core + total] {
                    cpus.append(
                        HostTopology.CPU(
                            id: t, online: true, node: n, package: n, coreID: c, siblings: CPUSet([core, core + total]))
                    )
                }
            }
        }
        let nodeList = (0..<nodes).map { n in
            HostTopology.Node(
                id: n,
                cpus: CPUSet(Array(n * cores..<(n + 1) * cores) + Array(total + n * cores..<total + (n + 1) * cores)),
                memTotal: Bytes(1 << 30), distances: (0..<nodes).map { $0 == n ? 10 : 21 })
        }
        return HostTopology(cpus: cpus, nodes: nodeList, source: "made up")
    }

    /// At scale the planner still places exactly: every CPU of a 2,048-CPU host to one exclusive
    /// workload each, lowest first, a core's second thread after every core's first (`smt: any`); and
    /// 6,000 shared workloads spread so that no CPU holds two more than another.
    @Test func thousandsOfWorkloadsArePlacedExactly() throws {
        let host = Self.bigHost(nodes: 4, cores: 256)
        let exclusive = try TopoCoreTests.profile(
            "version: 1\nname: x\nhost: { smt: any }\nworkloads:\n"
                + (0..<2048).map { "  w\($0): { cpus: { count: 1 } }\n" }.joined())
        let plan = try Planner(host: host).plan(exclusive).get()
        #expect(Set(plan.workloads.map(\.cpus)).count == 2048 && plan.workloads.allSatisfy { $0.cpus.count == 1 })
        // Node 0 first: its 256 cores' first threads (0-255), then their siblings (1024-1279).
        #expect(
            plan.workloads[0].cpus == CPUSet([0]) && plan.workloads[255].cpus == CPUSet([255])
                && plan.workloads[256].cpus == CPUSet([1024]))
        #expect(plan.workloads[512].cpus == CPUSet([256]))
        let one = try TopoCoreTests.profile(
            "version: 1\nname: x\nhost: { smt: any }\nworkloads:\n"
                + (0..<2049).map { "  w\($0): { cpus: { count: 1 } }\n" }.joined())
        guard case .failure = Planner(host: host).plan(one) else {
            Issue.record("a 2,049th CPU was placed")
            return
        }

        let shared = try TopoCoreTests.profile(
            "version: 1\nname: s\nworkloads:\n  ex: { cpus: { count: 8, node: 1 } }\n"
                + (0..<6000).map { "  s\($0): { cpus: { count: \($0 % 3 + 1) }, isolation: shared }\n" }.joined())
        let spread = try Planner(host: host).plan(shared).get()
        let ex = try #require(spread.workload(named: "ex"))
        var load: [Int: Int] = [:]
        for w in spread.workloads where w.isolation == .shared {
            #expect(w.cpus.intersection(ex.cpus).isEmpty && w.cpuNodes.count == 1, "\(w.name): \(w.cpus)")
            for cpu in w.cpus { load[cpu, default: 0] += 1 }
        }
        let usable = host.onlineCPUs.subtracting(ex.cpus)
        #expect(load.count == usable.count, "\(usable.count - load.count) usable CPUs got no shared workload")
        #expect(
            (load.values.max() ?? 0) - (load.values.min() ?? 0) <= 2,
            "loads from \(load.values.min() ?? 0) to \(load.values.max() ?? 0)")
    }

    /// Never on an exclusive workload's CPUs, nor (whole-cores) on a thread of their cores, nor on reserved ones.
    @Test func sharedStaysOffExclusiveCoresAndReservedCPUs() throws {
        let host = try fixtureHost("2s-8c-ht")
        let text =
            "version: 1\nname: s\nhost: { reserve: \"15,31\" }\nworkloads:\n  ex: { cpus: { count: 3, node: 0 } }\n  pin: { cpus: \"8\" }\n"
            + (0..<40).map { "  s\($0): { cpus: { count: 2 }, isolation: shared }\n" }.joined()
        let plan = try Planner(host: host).plan(try TopoCoreTests.profile(text)).get()
        let ex = try #require(plan.workload(named: "ex"))
        let pin = try #require(plan.workload(named: "pin"))
        let strictCores = host.cores.filter { !$0.intersection(ex.cpus.union(pin.cpus)).isEmpty }.reduce(CPUSet.empty) {
            $0.union($1)
        }
        for w in plan.workloads where w.isolation == .shared {
            #expect(w.cpus.count == 2)
            #expect(w.cpus.intersection(strictCores).isEmpty, "\(w.name) on \(w.cpus), strict cores \(strictCores)")
            #expect(w.cpus.intersection(CPUSet([15, 31])).isEmpty && w.cpus.intersection(plan.idle).isEmpty)
            #expect(w.cpuNodes.count == 1, "\(w.name) spans nodes: \(w.cpus)")
        }
        // The least-loaded first: the first shared workloads land where nothing is yet.
        let firsts = plan.workloads.filter { $0.isolation == .shared }.prefix(4).map(\.cpus)
        #expect(zip(firsts, firsts.dropFirst()).allSatisfy { $0.intersection($1).isEmpty })
    }

    @Test func aNodeWithoutRoomForASharedRequestIsSaidWithWhatItHas() throws {
        let p = try profile(["ex: { cpus: { count: 2 } }", "s: { cpus: { count: 1 }, isolation: shared }"])
        let failure = try #require(Planner(host: try fixtureHost("1n-2c")).plan(p).failure)
        #expect(
            failure.problems == [
                "workload s asks for 1 shared CPU on one node, and no node has that many outside exclusive workloads and host.reserve (usable: node 0: 0)"
            ])
    }

    @Test func problemsOfManyWorkloadsAreSaidOnce() {
        let one = "asks for 1 CPU on one node, and no node has that many free"
        let problems =
            (16..<256).map { "workload w\($0) \(one)" } + ["the profile requires 4 NUMA nodes"]
            + [
                "workload a binds memory to node 3", "workload b binds memory to node 3",
                "workload c binds memory to node 3", "workload d \(one)",
            ]
        #expect(
            PlanFailure(problems: problems).collapsed == [
                "241 workloads (w16–w255, d) ask for 1 CPU on one node, and no node has that many free",
                "the profile requires 4 NUMA nodes",
                "3 workloads (a, b, c) bind memory to node 3",
            ])
        #expect(Problems.runs(["w1", "w2", "w3", "w7", "x", "w9", "w10"]) == "w1–w3, w7, x, w9, w10")
        #expect(Problems.runs((0..<20).map { "w\($0 * 2)" }).hasSuffix("… (20 in all)"))
        #expect(
            Problems.collapse(["workload a is odd", "workload b is odd"]) == ["workload a is odd", "workload b is odd"])
        // Preflight's form, with a colon: said once, the verb left as it is.
        #expect(
            Problems.collapse((1...5).map { "workload w\($0): no user named bench on this host" } + ["cgroup v1"])
                == ["5 workloads (w1–w5): no user named bench on this host", "cgroup v1"])
    }
}

/// One warning for the same field of many list items, not one each.
@Suite struct CollapsedWarningTests {
    @Test func theSameWarningOnEveryLinkIsSaidOnce() throws {
        var text = "version: 1\nname: l\nworkloads:\n"
        for i in 0..<32 {
            text += "  a\(i): { cpus: \"0\", isolation: shared }\n  b\(i): { cpus: \"0\", isolation: shared }\n"
        }
        text += "links:\n" + (0..<32).map { "  - { between: [a\($0), b\($0)], netem: { rate: 100mbit } }\n" }.joined()
        text += "  - { between: [a0, b1], netem: { jitter: 1ms } }\n"
        let warnings = try decode(text).get().warnings
        #expect(warnings.count == 2, "\(warnings.map(\.description))")
        #expect(
            warnings.first?.path == "links[0].netem.rate"
                && warnings.first?.message.hasSuffix("(also links[1–31].netem.rate)") == true, "\(warnings)")
        #expect(warnings.last?.path == "links[32].netem.jitter")
        // Errors are never merged: each needs its own fix.
        let errors = Diagnostic.collapsingWarnings(
            (0..<4).map { (i: Int) in
                Diagnostic(.error, file: "f", line: i, column: 1, path: "links[\(i)].mtu", message: "m", fix: nil)
            })
        #expect(errors.count == 4)
    }
}
