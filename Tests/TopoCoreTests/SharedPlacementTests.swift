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
        #expect(JSONOutput.encode(plan) == JSONOutput.encode(try Planner(host: try fixtureHost("2s-8c-ht")).plan(p).get()))
    }

    /// Never on an exclusive workload's CPUs, nor (whole-cores) on a thread of their cores, nor on reserved ones.
    @Test func sharedStaysOffExclusiveCoresAndReservedCPUs() throws {
        let host = try fixtureHost("2s-8c-ht")
        let text = "version: 1\nname: s\nhost: { reserve: \"15,31\" }\nworkloads:\n  ex: { cpus: { count: 3, node: 0 } }\n  pin: { cpus: \"8\" }\n"
            + (0..<40).map { "  s\($0): { cpus: { count: 2 }, isolation: shared }\n" }.joined()
        let plan = try Planner(host: host).plan(try TopoCoreTests.profile(text)).get()
        let ex = try #require(plan.workload(named: "ex")), pin = try #require(plan.workload(named: "pin"))
        let strictCores = host.cores.filter { !$0.intersection(ex.cpus.union(pin.cpus)).isEmpty }.reduce(CPUSet.empty) { $0.union($1) }
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
        #expect(failure.problems == ["workload s asks for 1 shared CPU on one node, and no node has that many outside exclusive workloads and host.reserve (usable: node 0: 0)"])
    }

    @Test func problemsOfManyWorkloadsAreSaidOnce() {
        let one = "asks for 1 CPU on one node, and no node has that many free"
        let problems = (16..<256).map { "workload w\($0) \(one)" } + ["the profile requires 4 NUMA nodes"]
            + ["workload a binds memory to node 3", "workload b binds memory to node 3", "workload c binds memory to node 3", "workload d \(one)"]
        #expect(PlanFailure(problems: problems).collapsed == [
            "241 workloads (w16–w255, d) ask for 1 CPU on one node, and no node has that many free",
            "the profile requires 4 NUMA nodes",
            "3 workloads (a, b, c) bind memory to node 3",
        ])
        #expect(Problems.runs(["w1", "w2", "w3", "w7", "x", "w9", "w10"]) == "w1–w3, w7, x, w9, w10")
        #expect(Problems.runs((0..<20).map { "w\($0 * 2)" }).hasSuffix("… (20 in all)"))
        #expect(Problems.collapse(["workload a is odd", "workload b is odd"]) == ["workload a is odd", "workload b is odd"])
        // Preflight's form, with a colon: said once, the verb left as it is.
        #expect(Problems.collapse((1...5).map { "workload w\($0): no user named bench on this host" } + ["cgroup v1"])
                == ["5 workloads (w1–w5): no user named bench on this host", "cgroup v1"])
    }
}

/// One warning for the same field of many list items, not one each.
@Suite struct CollapsedWarningTests {
    @Test func theSameWarningOnEveryLinkIsSaidOnce() throws {
        var text = "version: 1\nname: l\nworkloads:\n"
        for i in 0..<32 { text += "  a\(i): { cpus: \"0\", isolation: shared }\n  b\(i): { cpus: \"0\", isolation: shared }\n" }
        text += "links:\n" + (0..<32).map { "  - { between: [a\($0), b\($0)], netem: { rate: 100mbit } }\n" }.joined()
        text += "  - { between: [a0, b1], netem: { jitter: 1ms } }\n"
        let warnings = try decode(text).get().warnings
        #expect(warnings.count == 2, "\(warnings.map(\.description))")
        #expect(warnings.first?.path == "links[0].netem.rate" && warnings.first?.message.hasSuffix("(also links[1–31].netem.rate)") == true, "\(warnings)")
        #expect(warnings.last?.path == "links[32].netem.jitter")
        // Errors are never merged: each needs its own fix.
        let errors = Diagnostic.collapsingWarnings((0..<4).map { (i: Int) in Diagnostic(.error, file: "f", line: i, column: 1, path: "links[\(i)].mtu", message: "m", fix: nil) })
        #expect(errors.count == 4)
    }
}
