import Foundation
import Testing

/// `topo verify`: every check passes on an untouched apply, and fails (naming the check, the subject
/// and what was found) once its condition is broken behind topo's back.
extension LabTests {
    @Suite struct VerifyTests {
        struct Outcome {
            var status: Int32
            var checks: [[String: Any]]
            func check(_ id: String, _ subject: String) -> [String: Any]? {
                checks.first { $0["id"] as? String == id && $0["subject"] as? String == subject }
            }
            func status(_ id: String, _ subject: String) -> String? { check(id, subject)?["status"] as? String }
        }

        func verify(_ args: String...) throws -> Outcome {
            let r = try Lab.run(Lab.topo, ["verify"] + args + ["--json"])
            let json = try #require(try Lab.json(r.stdout) as? [String: Any], "\(r)")
            let profile = try #require((json["profiles"] as? [[String: Any]])?.first)
            return Outcome(status: r.status, checks: profile["checks"] as? [[String: Any]] ?? [])
        }

        @Test func checksPassUntouchedAndFailWhenBrokenBehindTopo() throws {
            let path = try Lab.profile(
                "ver",
                """
                version: 1
                name: ver
                workloads:
                  a: { cpus: { count: 1 }, memory: { max: 64M, policy: bind }, run: { command: ["/bin/sleep", "1009"] } }
                  b: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1009"] } }
                links:
                  - { between: [a, b], netem: { delay: 1ms } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "ver") }
            let clean = try verify("ver")
            #expect(clean.status == 0, "\(clean.checks.filter { $0["status"] as? String != "pass" })")
            for id in [
                "cgroup.settings", "tasks.cpus", "tasks.mems", "tasks.policy", "tasks.escaped", "counters",
                "cpus.intruders", "irqs.affinity",
            ] {
                #expect(clean.check(id, "workload a") != nil, "\(id)")
            }
            #expect(clean.status("links", "link a<->b") == "pass")

            // memory.max changed by hand.
            let cg = "/sys/fs/cgroup/topo/ver/a"
            try "max".write(toFile: "\(cg)/memory.max", atomically: false, encoding: .utf8)
            let memory = try verify("ver")
            #expect(memory.status == 1)
            #expect(memory.status("cgroup.settings", "workload a") == "fail")
            #expect(
                (memory.check("cgroup.settings", "workload a")?["found"] as? String)?.contains("memory.max") == true)
            try "67108864".write(toFile: "\(cg)/memory.max", atomically: false, encoding: .utf8)

            // A process outside the profile pinned onto a's exclusive CPU — the lab's own PID 1, pinned with
            // taskset and unpinned after — is a warning, and a failure with --strict. (A stray child of this
            // test would do too, but Foundation's Process then loses the exit of the next one it starts.)
            let cpu = (Lab.read("\(cg)/cpuset.cpus") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let online = (Lab.read("/sys/devices/system/cpu/online") ?? "").trimmingCharacters(
                in: .whitespacesAndNewlines)
            #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", cpu, "1"]).status == 0)
            let pinned = try verify("ver")
            #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", online, "1"]).status == 0)
            #expect(
                pinned.status == 0 && pinned.status("cpus.intruders", "workload a") == "warn",
                "\(pinned.check("cpus.intruders", "workload a") ?? [:])")
            #expect((pinned.check("cpus.intruders", "workload a")?["found"] as? String)?.contains("1 (") == true)
            #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", cpu, "1"]).status == 0)
            #expect(try verify("ver", "--strict").status == 1)
            #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", online, "1"]).status == 0)

            // The netem delay changed by hand.
            #expect(
                try Lab.run(
                    "tc", ["-n", "topo.ver.a", "qdisc", "change", "dev", "to-b", "root", "netem", "delay", "5ms"]
                ).status == 0)
            let delay = try verify("ver")
            #expect(delay.status == 1 && delay.status("links", "link a<->b") == "fail")
            #expect(
                (delay.check("links", "link a<->b")?["found"] as? String)?.contains(
                    "delay: planned 1ms, kernel has 5ms") == true, "\(delay.check("links", "link a<->b") ?? [:])")

            // The netem qdisc deleted by hand.
            #expect(try Lab.run("tc", ["-n", "topo.ver.a", "qdisc", "del", "dev", "to-b", "root"]).status == 0)
            let qdisc = try verify("ver")
            #expect(qdisc.status == 1 && qdisc.status("links", "link a<->b") == "fail")

            // a's own process moved out of its cgroup.
            let pid = try #require(Lab.pids(inCgroup: cg).first)
            try "\(pid)".write(toFile: "/sys/fs/cgroup/cgroup.procs", atomically: false, encoding: .utf8)
            let escaped = try verify("ver")
            #expect(
                escaped.status("tasks.escaped", "workload a") == "fail",
                "\(escaped.check("tasks.escaped", "workload a") ?? [:])")
            kill(pid, SIGKILL)

            // A process put into a's cgroup by hand, without a's memory policy (bind).
            try Lab.detach(["/bin/sleep", "1013"])
            let stray = try #require(Lab.processes(containing: "sleep 1013").first)
            defer { kill(stray, SIGKILL) }
            try "\(stray)".write(toFile: "\(cg)/cgroup.procs", atomically: false, encoding: .utf8)
            let policy = try verify("ver")
            #expect(policy.status("tasks.policy", "workload a") == "fail")
            #expect(
                (policy.check("tasks.policy", "workload a")?["found"] as? String)?.contains("\(stray) (sleep)") == true,
                "\(policy.check("tasks.policy", "workload a") ?? [:])")

            // b's namespace deleted.
            #expect(try Lab.run("ip", ["netns", "del", "topo.ver.b"]).status == 0)
            let gone = try verify("ver")
            #expect(
                gone.status == 1 && gone.status("links", "link a<->b") == "fail",
                "\(gone.check("links", "link a<->b") ?? [:])")

            let notApplied = try Lab.run(Lab.topo, ["verify", "nosuch"])
            #expect(notApplied.status == 3, "\(notApplied)")
        }

        /// Widening a workload's cpuset.cpus by hand: the setting fails, and so do its tasks, which the kernel
        /// moves onto the wider set.
        @Test(.enabled(if: Lab.shape.cpus >= 2, "needs a CPU beyond the workload's"))
        func aWidenedCpusetFailsTheSettingAndTheTasks() throws {
            let path = try Lab.profile(
                "wide",
                """
                version: 1
                name: wide
                workloads:
                  a: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1011"] } }
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            defer { _ = try? Lab.topo("down", "wide") }
            #expect(try verify("wide").status == 0)
            let online = (Lab.read("/sys/devices/system/cpu/online") ?? "").trimmingCharacters(
                in: .whitespacesAndNewlines)
            try online.write(toFile: "/sys/fs/cgroup/topo/wide/a/cpuset.cpus", atomically: false, encoding: .utf8)
            let wide = try verify("wide")
            #expect(wide.status == 1)
            #expect(wide.status("cgroup.settings", "workload a") == "fail")
            #expect(
                wide.status("tasks.cpus", "workload a") == "fail", "\(wide.check("tasks.cpus", "workload a") ?? [:])")
        }

        /// A partition set back to member by hand no longer holds.
        @Test(.enabled(if: Lab.shape.cpus >= 2, "a partition needs a CPU left for the host"))
        func aPartitionSetBackToMemberFails() throws {
            let path = try Lab.profile(
                "part",
                """
                version: 1
                name: part
                workloads:
                  p: { cpus: { count: 1 }, isolation: partition, run: { command: ["/bin/sleep", "1015"] } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "part") }
            #expect(try verify("part").status("partition.state", "workload p") == "pass")
            try "member".write(
                toFile: "/sys/fs/cgroup/topo.part.p/cpuset.cpus.partition", atomically: false, encoding: .utf8)
            let member = try verify("part")
            #expect(member.status == 1 && member.status("partition.state", "workload p") == "fail")
            #expect(
                (member.check("partition.state", "workload p")?["found"] as? String)?.hasPrefix("member") == true,
                "\(member.check("partition.state", "workload p") ?? [:])")
        }

        /// An interrupt moved onto an exclusive workload's CPU, where the lab has one whose affinity can move.
        @Test(.enabled(if: Lab.shape.cpus >= 2, "needs a CPU to move an interrupt onto"))
        func anInterruptOnAnExclusiveCPUWarns() throws {
            let path = try Lab.profile(
                "irq",
                """
                version: 1
                name: irq
                workloads:
                  x: { cpus: { count: 1 }, run: { command: ["/bin/sleep", "1017"] } }
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            defer { _ = try? Lab.topo("down", "irq") }
            let cpu = (Lab.read("/sys/fs/cgroup/topo/irq/x/cpuset.cpus") ?? "").trimmingCharacters(
                in: .whitespacesAndNewlines)
            let before = try verify("irq")
            #expect(before.status("irqs.affinity", "workload x") != nil)
            // The first interrupt that accepts the CPU and reports it as its effective affinity.
            var moved: (irq: String, old: String)?
            for irq in ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/irq")) ?? []).filter({
                Int($0) != nil
            }).sorted(by: { Int($0)! < Int($1)! }) {
                let list = "/proc/irq/\(irq)/smp_affinity_list"
                guard let old = Lab.read(list)?.trimmingCharacters(in: .whitespacesAndNewlines),
                    (try? cpu.write(toFile: list, atomically: false, encoding: .utf8)) != nil
                else { continue }
                if Lab.read("/proc/irq/\(irq)/effective_affinity_list")?.trimmingCharacters(in: .whitespacesAndNewlines)
                    == cpu
                {
                    moved = (irq, old)
                    break
                }
                try? old.write(toFile: list, atomically: false, encoding: .utf8)
            }
            guard let moved else {
                print(
                    "measured: no interrupt in this lab accepts CPU \(cpu) as its effective affinity; irqs.affinity not provoked"
                )
                return
            }
            defer {
                try? moved.old.write(
                    toFile: "/proc/irq/\(moved.irq)/smp_affinity_list", atomically: false, encoding: .utf8)
            }
            let after = try verify("irq")
            #expect(
                after.status("irqs.affinity", "workload x") == "warn",
                "\(after.check("irqs.affinity", "workload x") ?? [:])")
            #expect(
                (after.check("irqs.affinity", "workload x")?["found"] as? String)?.contains("IRQ \(moved.irq) on")
                    == true)
            #expect(try verify("irq", "--strict").status == 1)
        }

        /// `--watch 1 --count 5` reports a change made during the third round at that round, and nothing before.
        @Test func watchReportsAChangeAtTheRoundThatSawIt() throws {
            let path = try Lab.profile(
                "watch",
                """
                version: 1
                name: watch
                workloads:
                  w: { cpus: { count: 1 }, isolation: shared, memory: { max: 64M }, run: { command: ["/bin/sleep", "1019"] } }
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            defer { _ = try? Lab.topo("down", "watch") }
            // Detached, with its exit status as the last line; memory.max is changed in-process.
            let out = NSTemporaryDirectory() + "topo-watch-\(getpid()).jsonl"
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Lab.detach(
                ["/bin/sh", "-c", "\(Lab.topo) verify watch --watch 1 --count 5 --json; echo \"{\\\"exit\\\": $?}\""],
                output: out)
            func lines() -> [[String: Any]] {
                (Lab.read(out) ?? "").split(separator: "\n").compactMap { try? Lab.json(String($0)) as? [String: Any] }
            }
            // Round 2's heartbeat out: round 3 starts a second after round 2 did.
            let deadline = Date().addingTimeInterval(30)
            while !lines().contains(where: { $0["round"] as? Int == 2 && $0["summary"] != nil }) && Date() < deadline {
                usleep(20_000)
            }
            try "max".write(toFile: "/sys/fs/cgroup/topo/watch/w/memory.max", atomically: false, encoding: .utf8)
            while !lines().contains(where: { $0["exit"] != nil }) && Date() < deadline.addingTimeInterval(30) {
                usleep(100_000)
            }
            let all = lines()
            #expect(all.last?["exit"] as? Int == 1, "\(Lab.read(out) ?? "")")
            let heartbeats = all.filter { $0["summary"] != nil }
            #expect(heartbeats.map { $0["round"] as? Int } == [1, 2, 3, 4, 5])
            let changes = all.filter { $0["check"] != nil && ($0["round"] as? Int ?? 0) > 1 }
            #expect(changes.count == 1, "\(changes)")
            let change = try #require(changes.first)
            let check = try #require(change["check"] as? [String: Any])
            #expect(change["round"] as? Int == 3 && change["previous"] as? String == "pass")
            #expect(
                check["id"] as? String == "cgroup.settings" && check["status"] as? String == "fail"
                    && check["subject"] as? String == "workload w")
        }

        /// `--active` on a 10 ms, 50 Mbit/s link passes; the delay set to 60 ms by hand fails link.latency.
        @Test func activeProbesMeasureTheLinkAndThePlacement() throws {
            let path = try Lab.profile(
                "act",
                """
                version: 1
                name: act
                workloads:
                  a: { cpus: { count: 1 }, isolation: shared, memory: { max: 256M, policy: bind }, run: { command: ["/bin/sleep", "1021"] } }
                  b: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1021"], user: nobody } }
                links:
                  - { between: [a, b], netem: { delay: 10ms, rate: 50mbit } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "act") }
            let active = try verify("act", "--active")
            for c in active.checks
            where ["memory.placement", "cpu.placement", "link.latency", "link.loss", "link.rate"].contains(
                c["id"] as? String ?? "")
            {
                print("measured: \(c["id"] ?? "") \(c["subject"] ?? ""): \(c["status"] ?? "") \(c["found"] ?? "")")
            }
            #expect(active.status == 0, "\(active.checks.filter { $0["status"] as? String != "pass" })")
            for (id, subject) in [
                ("memory.placement", "workload a"), ("memory.placement", "workload b"), ("cpu.placement", "workload a"),
                ("cpu.placement", "workload b"),
                ("link.latency", "link a<->b"), ("link.loss", "link a<->b"), ("link.rate", "link a->b"),
                ("link.rate", "link b->a"),
            ] {
                #expect(active.status(id, subject) == "pass", "\(id) \(subject): \(active.check(id, subject) ?? [:])")
            }
            // Nothing of the probes is left: no process in the cgroups but the workloads', no output files.
            #expect(
                Lab.pids(inCgroup: "/sys/fs/cgroup/topo/act/a").count == 1
                    && Lab.pids(inCgroup: "/sys/fs/cgroup/topo/act/b").count == 1)
            #expect(!FileManager.default.fileExists(atPath: "/run/topo/act/probes"))

            #expect(
                try Lab.run(
                    "tc",
                    [
                        "-n", "topo.act.a", "qdisc", "change", "dev", "to-b", "root", "netem", "delay", "60ms", "rate",
                        "50mbit",
                    ]
                ).status == 0)
            let slow = try verify("act", "--active")
            #expect(
                slow.status == 1 && slow.status("link.latency", "link a<->b") == "fail",
                "\(slow.check("link.latency", "link a<->b") ?? [:])")
            print("measured: with 60 ms by hand: \(slow.check("link.latency", "link a<->b")?["found"] ?? "")")
        }

        /// The reference topology, probed once its load generator is done: every check passes.
        @Test(.enabled(if: Lab.shape.nodes >= 2 && Lab.shape.cpus >= 8, "api-gateway needs 2 NUMA nodes and 8 CPUs"))
        func activeProbesPassOnTheReferenceProfile() throws {
            let apply = try Lab.topo("apply", Lab.repo + "/Profiles/api-gateway.yaml")
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "api-gateway") }
            // The client's 30 s iperf3 run would share the link with the probes: wait for it to end.
            let deadline = Date().addingTimeInterval(60)
            while !Lab.pids(inCgroup: "/sys/fs/cgroup/topo/api-gateway/client").isEmpty && Date() < deadline {
                sleep(1)
            }
            let active = try verify("api-gateway", "--active")
            for c in active.checks
            where (c["id"] as? String ?? "").contains(".")
                && ["memory.placement", "cpu.placement", "link.latency", "link.loss", "link.rate"].contains(
                    c["id"] as? String ?? "")
            {
                print(
                    "measured: api-gateway \(c["id"] ?? "") \(c["subject"] ?? ""): \(c["status"] ?? "") \(c["found"] ?? "")"
                )
            }
            #expect(active.status == 0, "\(active.checks.filter { $0["status"] as? String != "pass" })")
            #expect(
                active.status("memory.placement", "workload client") == "pass"
                    && active.status("link.rate", "link server->client") == "pass")
        }
    }
}
