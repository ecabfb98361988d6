import Foundation
import Testing

/// What the lab promises every later test: a real kernel with cgroup v2 controllers, the asked-for
/// NUMA and SMT shape, veth and netem — checked from the kernel's side, and through topo's own discovery.
extension LabTests {
    @Suite struct LabKernelTests {
        @Test func cgroupV2HasTheControllersTopoNeeds() throws {
            let controllers = try #require(Lab.read("/sys/fs/cgroup/cgroup.controllers")).split(whereSeparator: {
                $0 == " " || $0 == "\n"
            })
            for c in ["cpuset", "cpu", "io", "memory", "pids"] {
                #expect(controllers.contains(Substring(c)), "cgroup.controllers: \(controllers)")
            }
        }

        @Test func topoHostSeesTheShapeTheLabWasAskedFor() throws {
            let shape = Lab.shape
            let r = try Lab.topo("host", "--json")
            #expect(r.status == 0, "\(r)")
            let host = try #require(try Lab.json(r.stdout) as? [String: Any])
            let nodes = try #require(host["nodes"] as? [[String: Any]])
            #expect(nodes.count == shape.nodes, "\(shape)")
            for (i, node) in nodes.enumerated() {
                let first = i * shape.cpusPerNode
                #expect(node["cpus"] as? String == "\(first)-\(first + shape.cpusPerNode - 1)", "node \(i) of \(shape)")
            }
            let cpus = try #require(host["cpus"] as? [[String: Any]])
            #expect(cpus.count == shape.cpus)
            // Thread siblings: pairs (0-1, 2-3, …) with --smt, each CPU alone without.
            let cpu0 = try #require(cpus.first)
            #expect(cpu0["siblings"] as? String == (shape.smt ? "0-1" : "0"))
            let cgroup = try #require(host["cgroup"] as? [String: Any])
            #expect(cgroup["mode"] as? String == "unified")
            let netem = try #require(host["netem"] as? [String: Any])
            #expect(netem["state"] as? String == "available", "\(netem)")
            #expect((host["notes"] as? [String] ?? []).isEmpty, "libnuma and sysfs disagree: \(host["notes"] ?? "")")
        }

        @Test func libnumaAgreesThroughNumactl() throws {
            let r = try Lab.run("numactl", ["--hardware"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("available: \(Lab.shape.nodes) nodes"), "\(r.stdout)")
        }

        @Test func referenceProfilePlansWhereTheShapeAllowsIt() throws {
            let shape = Lab.shape
            let r = try Lab.topo("plan", "Profiles/api-gateway.yaml", "--json")
            if shape.nodes >= 2 && shape.cpusPerNode >= 4 {
                #expect(r.status == 0, "\(r)")
                let plan = try #require(try Lab.json(r.stdout) as? [String: Any])
                let mems = (plan["workloads"] as? [[String: Any]])?.map { $0["mems"] as? String }
                #expect(mems == ["0", "1"])
            } else {
                #expect(r.status == 3, "\(r)")
            }
            #expect(try Lab.topo("plan", "Profiles/quickstart.yaml").status == 0)
        }

        /// A netem qdisc on a veth between two throwaway namespaces, read back with `tc -j`.
        @Test func netemOnAVethReadsBack() throws {
            let ns = ("topo-lab-a\(getpid())", "topo-lab-b\(getpid())")
            defer {
                _ = try? Lab.run("ip", ["netns", "del", ns.0])
                _ = try? Lab.run("ip", ["netns", "del", ns.1])
            }
            for step in [
                ["netns", "add", ns.0], ["netns", "add", ns.1],
                ["link", "add", "va", "netns", ns.0, "type", "veth", "peer", "name", "vb", "netns", ns.1],
                ["-n", ns.0, "link", "set", "va", "up"],
            ] {
                let r = try Lab.run("ip", step)
                #expect(r.status == 0, "ip \(step.joined(separator: " ")): \(r.stderr)")
            }
            let add = try Lab.run(
                "tc", ["-n", ns.0, "qdisc", "add", "dev", "va", "root", "netem", "delay", "10ms", "rate", "50mbit"])
            #expect(add.status == 0, "\(add.stderr)")
            let show = try Lab.run("tc", ["-n", ns.0, "-j", "qdisc", "show", "dev", "va"])
            let qdiscs = try #require(try Lab.json(show.stdout) as? [[String: Any]])
            let netem = try #require(qdiscs.first { $0["kind"] as? String == "netem" })
            let options = try #require(netem["options"] as? [String: Any])
            #expect((options["delay"] as? [String: Any])?["delay"] as? Double == 0.01)
            #expect((options["rate"] as? [String: Any])?["rate"] as? Int == 6_250_000)  // bytes per second
        }
    }
}
