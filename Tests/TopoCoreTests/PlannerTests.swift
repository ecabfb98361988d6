import Foundation
import Testing

@testable import TopoCore

@Suite struct PlannerTests {
    func plan(_ yaml: String, on hostName: String) throws -> Result<Plan, PlanFailure> {
        Planner(host: try fixtureHost(hostName)).plan(try profile(yaml))
    }

    func profileFile(_ name: String) throws -> Profile {
        try ProfileDecoder.decode(file: Repo.path("Profiles/\(name)")).get().profile
    }

    @Test func apiGatewayOnTwoSocketsSplitsNoCore() throws {
        let host = try fixtureHost("2s-8c-ht")
        let plan = try Planner(host: host).plan(try profileFile("api-gateway.yaml")).get()
        let server = try #require(plan.workload(named: "server"))
        let client = try #require(plan.workload(named: "client"))
        #expect(server.cpus.description == "0-1,16-17" && server.mems.description == "0")
        #expect(client.cpus.description == "8-9,24-25" && client.mems.description == "1")
        for core in host.cores {
            let holders = [server, client].filter { !$0.cpus.intersection(core).isEmpty }
            #expect(holders.count <= 1, "core \(core) is split")
            if let w = holders.first { #expect(core.isSubset(of: w.cpus)) }
        }
        #expect(plan.links.first?.between == ["server", "client"])
    }

    @Test func planningIsDeterministic() throws {
        let host = try fixtureHost("2s-8c-ht")
        let p = try profileFile("api-gateway.yaml")
        let a = JSONOutput.encode(try Planner(host: host).plan(p).get())
        let b = JSONOutput.encode(try Planner(host: try fixtureHost("2s-8c-ht")).plan(p).get())
        #expect(a == b)
    }

    @Test func apiGatewayOnAdjacentSiblings() throws {
        let plan = try Planner(host: try fixtureHost("1s-2n-adjacent")).plan(try profileFile("api-gateway.yaml")).get()
        #expect(plan.workloads.map(\.cpus.description) == ["0-3", "8-11"])
        #expect(plan.workloads.map(\.mems.description) == ["0", "1"])
    }

    @Test func oddCountLeavesTheSpareSiblingIdle() throws {
        let plan = try plan(
            "version: 1\nname: x\nworkloads:\n  a: { cpus: { count: 3 } }\n  b: { cpus: { count: 2 } }\n",
            on: "2s-8c-ht"
        ).get()
        #expect(plan.workloads[0].cpus.description == "0-1,16")
        #expect(plan.idle.description == "17")
        #expect(plan.workloads[1].cpus.description == "2,18")
    }

    @Test func smtAnyMayUseTheSpareSibling() throws {
        let plan = try plan(
            "version: 1\nname: x\nhost: { smt: any }\nworkloads:\n  a: { cpus: { count: 3 } }\n  b: { cpus: { count: 1 } }\n",
            on: "2s-8c-ht"
        ).get()
        #expect(plan.idle.isEmpty)
        #expect(plan.workloads[1].cpus.description == "2" || plan.workloads[1].cpus.description == "17")
    }

    @Test func reservedCPUsAreNeverUsedAndTheirSiblingsStayIdle() throws {
        let plan = try plan(
            "version: 1\nname: x\nhost: { reserve: \"0-1\" }\nworkloads:\n  a: { cpus: { count: 4 } }\n", on: "2s-8c-ht"
        ).get()
        #expect(plan.workloads[0].cpus.description == "2-3,18-19")
        #expect(plan.idle.description == "16-17")
        let noSMT = try self.plan(
            "version: 1\nname: x\nhost: { reserve: \"0\" }\nworkloads:\n  a: { cpus: { count: 3 } }\n",
            on: "4n-unequal-memonly"
        ).get()
        #expect(noSMT.workloads[0].cpus.description == "1-3")
    }

    @Test func autoPicksTheLowestNodeThatFits() throws {
        let plan = try plan(
            "version: 1\nname: x\nworkloads:\n  a: { cpus: { count: 3 } }\n  b: { cpus: { count: 2 } }\n  c: { cpus: { count: 5 } }\n",
            on: "4n-unequal-memonly"
        ).get()
        #expect(plan.workloads.map(\.cpus.description) == ["0-2", "4-5", "6-10"])
        #expect(plan.workloads.map(\.cpuNodes.description) == ["0", "1", "2"])
    }

    @Test func memoryOnlyNodeIsAMemoryTargetNotACPUNode() throws {
        let host = try fixtureHost("4n-unequal-memonly")
        let plan = try Planner(host: host).plan(try profileFile("memory-only-node.yaml")).get()
        #expect(plan.workloads[0].mems.description == "3" && plan.workloads[0].cpus.description == "0-3")
        let failure = try #require(
            try self.plan(
                "version: 1\nname: x\nworkloads: { a: { cpus: { count: 1, node: 3 } } }", on: "4n-unequal-memonly"
            ).failure)
        #expect(
            failure.problems == [
                "workload a asks for CPUs on node 3, which has memory but no CPUs; it can be a memory target (memory.nodes: \"3\")"
            ])
    }

    @Test func impossibleCountSaysWhatTheNodeHas() throws {
        let failure = try #require(
            try plan(
                "version: 1\nname: x\nworkloads: { client: { cpus: { count: 4, node: 1 } } }", on: "4n-unequal-memonly"
            ).failure)
        #expect(
            failure.problems == [
                "workload client asks for 4 CPUs on node 1; node 1 has 2 online CPUs (4-5), none reserved"
            ])
    }

    @Test func explicitListsAreChecked() throws {
        let f1 = try #require(
            try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"6\" } }", on: "offline-cpus").failure)
        #expect(f1.problems == ["workload a asks for CPU 6, which is offline (online: 0-2,4-5)"])
        let f2 = try #require(
            try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"40\" } }", on: "offline-cpus").failure)
        #expect(f2.problems == ["workload a asks for CPU 40, which this host does not have (it has 0-7)"])
        let f3 = try #require(
            try plan("version: 1\nname: x\nhost: { reserve: \"0\" }\nworkloads: { a: { cpus: \"0-1\" } }", on: "1n-2c")
                .failure)
        #expect(f3.problems == ["workload a asks for CPU 0, which host.reserve keeps for housekeeping"])
        // validate refuses overlapping lists already (a profile error); the planner still checks a Profile built in code.
        var overlapping = try profile(
            "version: 1\nname: x\nworkloads: { a: { cpus: \"0-1\", isolation: shared }, b: { cpus: \"1\", isolation: shared } }"
        )
        overlapping.workloads[0].isolation = .exclusive
        let f4 = try #require(Planner(host: try fixtureHost("1n-2c")).plan(overlapping).failure)
        #expect(
            f4.problems == [
                "workloads a and b both ask for CPU 1, but a is exclusive; make both isolation: shared, or give them different CPUs"
            ])
        let f5 = try #require(
            try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\" }, b: { cpus: \"16\" } }", on: "2s-8c-ht")
                .failure)
        #expect(f5.problems.count == 1 && f5.problems[0].contains("split the physical core 0,16"))
        #expect(
            try plan(
                "version: 1\nname: x\nhost: { smt: any }\nworkloads: { a: { cpus: \"0\" }, b: { cpus: \"16\" } }",
                on: "2s-8c-ht"
            ).failure == nil)
        #expect(
            try plan(
                "version: 1\nname: x\nworkloads: { a: { cpus: \"0-1\", isolation: shared }, b: { cpus: \"1\", isolation: shared } }",
                on: "1n-2c"
            ).failure == nil)
    }

    @Test func countsFillAroundExplicitLists() throws {
        let plan = try plan(
            "version: 1\nname: x\nworkloads:\n  a: { cpus: { count: 2 } }\n  b: { cpus: \"0-1\" }\n",
            on: "4n-unequal-memonly"
        ).get()
        #expect(plan.workloads.map(\.cpus.description) == ["2-3", "0-1"])
    }

    @Test func requirementsAreCheckedFirst() throws {
        let failure = try #require(
            try plan(
                "version: 1\nname: x\nhost: { require: { numaNodes: 2, cpus: 8 } }\nworkloads: { a: { cpus: { count: 1 } } }",
                on: "1n-2c"
            ).failure)
        #expect(
            failure.problems == [
                "the profile requires 2 NUMA nodes; this host has 1 (0)",
                "the profile requires 8 CPUs; this host has 2 online (0-1)",
            ])
    }

    @Test func memoryDefaultsToTheCPUsNodesAndPoliciesCarryTheirNodes() throws {
        let plan = try plan(
            """
            version: 1
            name: x
            workloads:
              a: { cpus: "0-1,8-9" }
              b: { cpus: { count: 1, node: 1 }, memory: { policy: local } }
              c: { cpus: { count: 1, node: 0 }, memory: { policy: interleave, nodes: "0-1" } }
            """, on: "2s-8c-ht"
        ).get()
        #expect(plan.workloads[0].mems.description == "0-1")
        #expect(plan.workloads[1].mems.description == "1" && plan.workloads[1].policyNodes.isEmpty)
        #expect(plan.workloads[2].mems.description == "0-1" && plan.workloads[2].policyNodes.description == "0-1")
        let f = try #require(
            try self.plan(
                "version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { nodes: \"5\" } } }", on: "2s-8c-ht"
            ).failure)
        #expect(f.problems == ["workload a binds memory to node 5, which this host does not have (it has nodes 0-1)"])
    }

    /// The kernel keeps at least one CPU for the cgroup root: a profile whose partitions take them all
    /// is a host that cannot satisfy it (exit 3), said before anything is touched.
    @Test func partitionsMustLeaveTheHostACPU() throws {
        let all = try #require(
            try plan(
                """
                version: 1
                name: x
                workloads: { a: { cpus: "0", isolation: partition }, b: { cpus: { count: 1 }, isolation: partition } }
                """, on: "1n-2c"
            ).failure)
        #expect(
            all.problems.count == 1
                && all.problems[0].hasPrefix("isolation: partition would take every online CPU (0-1)"),
            "\(all.problems)")
        #expect(
            try plan(
                "version: 1\nname: x\nworkloads: { a: { cpus: \"0\", isolation: partition }, b: { cpus: \"1\" } }",
                on: "1n-2c"
            ).failure == nil)
    }

    @Test func cgroupValuesAreTheKernelsEncoding() throws {
        let plan = try plan(
            """
            version: 1
            name: x
            workloads:
              a:
                cpus: { count: 2 }
                isolation: partition
                memory: { max: 4G, high: 3G, swap: 0 }
                cpu: { quota: 1.5, weight: 200 }
                pids: max
                io: [{ device: "8:0", rbps: 1M, wiops: 100 }]
            """, on: "1s-2n-adjacent"
        ).get()
        #expect(
            plan.workloads[0].cgroup.map { "\($0.file)=\($0.kernelValue)" } == [
                "cpuset.cpus=0-1", "cpuset.mems=0", "cpuset.cpus.partition=root", "cpu.max=150000 100000",
                "cpu.weight=200",
                "memory.max=4294967296", "memory.high=3221225472", "memory.swap.max=0", "pids.max=max",
                "io.max=8:0 rbps=1048576 wiops=100",
            ])
        #expect(plan.workloads[0].controllers.map(\.rawValue) == ["cpuset", "cpu", "io", "memory", "pids"])
    }

    @Test func linkSubnetsDefaultToFreeSlash30s() throws {
        let yaml = """
            version: 1
            name: x
            workloads: { a: { cpus: "0" }, b: { cpus: "1" }, c: { cpus: "2" } }
            links:
              - { between: [a, b] }
              - { between: [b, c], subnet: 10.77.0.4/30 }
              - { between: [a, c] }
            """
        let plan = try Planner(
            host: try fixtureHost("4n-unequal-memonly"), usedSubnets: [try IPv4Subnet.parse("10.77.0.0/30").get()]
        )
        .plan(try profile(yaml)).get()
        #expect(plan.links.map(\.subnet.description) == ["10.77.0.8/30", "10.77.0.4/30", "10.77.0.12/30"])
        #expect(plan.links.map(\.subnetChosen) == [true, false, true])
    }

    @Test func jsonContract() throws {
        let plan = try Planner(host: try fixtureHost("2s-8c-ht")).plan(try profileFile("api-gateway.yaml")).get()
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(JSONOutput.encode(plan).utf8)) as? [String: Any])
        #expect(object["name"] as? String == "api-gateway")
        let workloads = try #require(object["workloads"] as? [[String: Any]])
        #expect(workloads.map { $0["name"] as? String } == ["server", "client"])
        #expect(workloads.map { $0["cpus"] as? String } == ["0-1,16-17", "8-9,24-25"])
        #expect(workloads.map { $0["mems"] as? String } == ["0", "1"])
        #expect(workloads.map { $0["memoryPolicy"] as? String } == ["bind", "bind"])
        let links = try #require(object["links"] as? [[String: Any]])
        #expect(links.first?["between"] as? [String] == ["server", "client"])
    }
}

extension Result {
    var failure: Failure? { if case .failure(let f) = self { return f } else { return nil } }
}
