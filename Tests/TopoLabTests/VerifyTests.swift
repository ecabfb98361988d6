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
        let path = try Lab.profile("ver", """
            version: 1
            name: ver
            workloads:
              a: { cpus: { count: 1 }, memory: { max: 64M }, run: { command: ["/bin/sleep", "1009"] } }
              b: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1009"] } }
            links:
              - { between: [a, b], netem: { delay: 1ms } }
            """)
        let apply = try Lab.topo("apply", path)
        #expect(apply.status == 0, "\(apply)")
        defer { _ = try? Lab.topo("down", "ver") }
        let clean = try verify("ver")
        #expect(clean.status == 0, "\(clean.checks.filter { $0["status"] as? String != "pass" })")
        for id in ["cgroup.settings", "tasks.cpus", "tasks.mems", "tasks.policy", "tasks.escaped", "counters", "cpus.intruders", "irqs.affinity"] {
            #expect(clean.check(id, "workload a") != nil, "\(id)")
        }
        #expect(clean.status("links", "link a<->b") == "pass")

        // memory.max changed by hand.
        let cg = "/sys/fs/cgroup/topo/ver/a"
        try "max".write(toFile: "\(cg)/memory.max", atomically: false, encoding: .utf8)
        let memory = try verify("ver")
        #expect(memory.status == 1)
        #expect(memory.status("cgroup.settings", "workload a") == "fail")
        #expect((memory.check("cgroup.settings", "workload a")?["found"] as? String)?.contains("memory.max") == true)
        try "67108864".write(toFile: "\(cg)/memory.max", atomically: false, encoding: .utf8)

        // A process outside the profile pinned onto a's exclusive CPU — the lab's own PID 1, pinned with
        // taskset and unpinned after — is a warning, and a failure with --strict. (A stray child of this
        // test would do too, but Foundation's Process then loses the exit of the next one it starts.)
        let cpu = (Lab.read("\(cg)/cpuset.cpus") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let online = (Lab.read("/sys/devices/system/cpu/online") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", cpu, "1"]).status == 0)
        let pinned = try verify("ver")
        #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", online, "1"]).status == 0)
        #expect(pinned.status == 0 && pinned.status("cpus.intruders", "workload a") == "warn", "\(pinned.check("cpus.intruders", "workload a") ?? [:])")
        #expect((pinned.check("cpus.intruders", "workload a")?["found"] as? String)?.contains("1 (") == true)
        #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", cpu, "1"]).status == 0)
        #expect(try verify("ver", "--strict").status == 1)
        #expect(try Lab.run("/usr/bin/taskset", ["-p", "-c", online, "1"]).status == 0)

        // The netem qdisc deleted by hand.
        #expect(try Lab.run("tc", ["-n", "topo.ver.a", "qdisc", "del", "dev", "to-b", "root"]).status == 0)
        let qdisc = try verify("ver")
        #expect(qdisc.status == 1 && qdisc.status("links", "link a<->b") == "fail")

        // a's own process moved out of its cgroup.
        let pid = try #require(Lab.pids(inCgroup: cg).first)
        try "\(pid)".write(toFile: "/sys/fs/cgroup/cgroup.procs", atomically: false, encoding: .utf8)
        let escaped = try verify("ver")
        #expect(escaped.status("tasks.escaped", "workload a") == "fail", "\(escaped.check("tasks.escaped", "workload a") ?? [:])")
        kill(pid, SIGKILL)

        let notApplied = try Lab.run(Lab.topo, ["verify", "nosuch"])
        #expect(notApplied.status == 3, "\(notApplied)")
    }

    /// Widening a workload's cpuset.cpus by hand: the setting fails, and so do its tasks, which the kernel
    /// moves onto the wider set.
    @Test(.enabled(if: Lab.shape.cpus >= 2, "needs a CPU beyond the workload's"))
    func aWidenedCpusetFailsTheSettingAndTheTasks() throws {
        let path = try Lab.profile("wide", """
            version: 1
            name: wide
            workloads:
              a: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1011"] } }
            """)
        #expect(try Lab.topo("apply", path).status == 0)
        defer { _ = try? Lab.topo("down", "wide") }
        #expect(try verify("wide").status == 0)
        let online = (Lab.read("/sys/devices/system/cpu/online") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        try online.write(toFile: "/sys/fs/cgroup/topo/wide/a/cpuset.cpus", atomically: false, encoding: .utf8)
        let wide = try verify("wide")
        #expect(wide.status == 1)
        #expect(wide.status("cgroup.settings", "workload a") == "fail")
        #expect(wide.status("tasks.cpus", "workload a") == "fail", "\(wide.check("tasks.cpus", "workload a") ?? [:])")
    }
}
}
