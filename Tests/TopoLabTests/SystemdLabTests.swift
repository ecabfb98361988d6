import Foundation
import Testing
import TopoCore

/// The systemd cgroup manager, in the lab booted with systemd as PID 1 (`scripts/lab --init systemd`;
/// scripts/test runs this suite there on 2 nodes of 4 CPUs): each profile a delegated scope in
/// topo.slice, topo writing nothing outside it, and nothing left after down — also after a kill at any step.
extension LabTests {
    @Suite(
        .enabled(
            if: Lab.read("/proc/1/comm") == "systemd\n",
            "needs systemd as PID 1: scripts/lab --init systemd (scripts/test runs it so)"))
    struct SystemdLabTests {
        static let scope = "/sys/fs/cgroup/topo.slice/topo-api-gateway.scope"

        func systemctl(_ args: String...) throws -> String {
            try Lab.run("/usr/bin/systemctl", args).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// What topo may leave behind, where systemd keeps controllers enabled at the root itself.
        func leftovers(marker: String? = nil) -> [String] {
            Lab.leftovers(marker: marker).filter {
                !$0.hasPrefix("root cgroup.subtree_control")
                    && !$0.hasPrefix("partition cgroups left at the root: [\"topo.slice\"]")
            }
        }

        /// Entries at the cgroup root that are topo's own (not systemd's slices and scopes).
        func topoAtTheRoot() -> [String] {
            Sys.entries("/sys/fs/cgroup").filter { $0 == "topo" || ($0.hasPrefix("topo.") && $0 != "topo.slice") }
        }

        /// The reference profile under the systemd manager, chosen by itself: its workloads in topo's scope,
        /// every write of apply below it (strace), status naming the unit, exec and verify inside it,
        /// verify unchanged by a daemon-reload and an unrelated unit, and after down no unit and no cgroup.
        @Test(
            .enabled(
                if: Lab.shape.nodes >= 2 && Lab.shape.cpusPerNode >= 4,
                "needs 2 nodes of 4 CPUs, as the reference profile requires"))
        func theReferenceProfileLivesInItsDelegatedScope() throws {
            let host = try Lab.topo("host")
            #expect(host.stdout.contains("cgroup manager: systemd"), "\(host.stdout)")
            let rootControl = Lab.read("/sys/fs/cgroup/cgroup.subtree_control")
            let trace = "/tmp/apply.strace"
            // Not -f: the scope's holder and the workloads outlive apply, and strace would wait for them.
            // apply writes every cgroup file from its own thread; the children it starts write none.
            let apply = try Lab.run(
                "/usr/bin/timeout",
                [
                    "120", "/usr/bin/strace", "-qq", "-e", "trace=openat,mkdir,mkdirat,setxattr,rmdir", "-o", trace,
                    Lab.topo, "apply", "Profiles/api-gateway.yaml",
                ])
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "api-gateway") }
            // Every cgroup file topo opened to write, every directory it made, every mark it set: below its scope.
            var outside: [String] = []
            for line in (Lab.read(trace) ?? "").split(separator: "\n") where line.contains("\"/sys/fs/cgroup") {
                let writes =
                    line.contains("mkdir") || line.contains("setxattr") || line.contains("rmdir")
                    || line.contains("O_WRONLY") || line.contains("O_RDWR")
                guard writes, !line.contains("= -1"), let open = line.firstIndex(of: "\"") else { continue }
                let path = line[line.index(after: open)...].prefix { $0 != "\"" }
                if !path.hasPrefix(Self.scope + "/") && path != Self.scope { outside.append(String(line)) }
            }
            #expect(outside == [], "topo wrote outside its delegated scope")
            #expect(topoAtTheRoot() == [])
            #expect(Lab.read("/sys/fs/cgroup/cgroup.subtree_control") == rootControl)
            #expect(try systemctl("show", "-P", "Delegate", "topo-api-gateway.scope") == "yes")
            #expect(try systemctl("show", "-P", "ActiveState", "topo-api-gateway.scope") == "active")

            let server = Lab.pids(inCgroup: "\(Self.scope)/server")
            #expect(!server.isEmpty)
            for pid in server {
                #expect(Lab.read("/proc/\(pid)/cgroup") == "0::/topo.slice/topo-api-gateway.scope/server\n")
            }
            let status = try Lab.topo("status")
            #expect(status.stdout.contains("systemd unit: topo-api-gateway.scope"), "\(status.stdout)")
            let exec = try Lab.topo("exec", "api-gateway", "client", "--", "/bin/sh", "-c", "echo $$; sleep 0.2")
            #expect(exec.status == 0, "\(exec)")

            func verdicts() throws -> [String] {
                let r = try Lab.run(Lab.topo, ["verify", "api-gateway", "--json"])
                let checks =
                    (((try Lab.json(r.stdout) as? [String: Any])?["profiles"] as? [[String: Any]])?.first?["checks"]
                        as? [[String: Any]]) ?? []
                #expect(r.status == 0, "\(r)")
                return checks.map { "\($0["id"] ?? "") \($0["subject"] ?? "") \($0["status"] ?? "")" }.filter {
                    !$0.hasPrefix("irqs.affinity")
                }
            }
            let before = try verdicts()
            #expect(before.count >= 10)
            #expect(try Lab.run("/usr/bin/systemctl", ["daemon-reload"]).status == 0)
            #expect(
                try Lab.run("/usr/bin/systemd-run", ["--quiet", "--unit=unrelated", "/bin/sleep", "30"]).status == 0)
            usleep(500_000)
            #expect(try verdicts() == before, "a daemon-reload and an unrelated unit changed what verify sees")
            _ = try? systemctl("stop", "unrelated")

            let down = try Lab.topo("down", "api-gateway")
            #expect(down.status == 0, "\(down)")
            #expect(!Sys.exists(Self.scope))
            #expect(try systemctl("show", "-P", "LoadState", "topo-api-gateway.scope") == "not-found")
            #expect(!Sys.exists("/sys/fs/cgroup/topo.slice"), "the last down stops topo.slice")
            #expect(topoAtTheRoot() == [])
            #expect(leftovers() == [])
        }

        /// Kill apply right after each journaled step; `down` must leave no unit and no cgroup.
        @Test func killedAtEveryStepDownLeavesNoUnitAndNoCgroup() throws {
            let path = try Lab.profile(
                "sdcrash",
                """
                version: 1
                name: sdcrash
                workloads:
                  a: { cpus: { count: 1 }, memory: { max: 64M }, run: { command: ["/bin/sh", "-c", "exec sleep 1061"] } }
                  b: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sh", "-c", "exec sleep 1061"] } }
                links:
                  - { between: [a, b] }
                """)
            try Lab.killAfterEachStep(
                path, name: "sdcrash", atLeast: 8,
                check: { n in
                    let unit = try systemctl("show", "-P", "LoadState", "topo-sdcrash.scope")
                    #expect(unit == "not-found", "step \(n)")
                    #expect(!Sys.exists("/sys/fs/cgroup/topo.slice"), "step \(n)")
                    #expect(topoAtTheRoot() == [], "step \(n)")
                    #expect(leftovers(marker: "sleep 1061") == [], "after a kill at step \(n)")
                })
        }

        /// A partition needs a partition root as its parent, which a delegated scope is not: refused, exit 3.
        @Test func aPartitionIsRefusedUnderSystemd() throws {
            let r = try Lab.topo("apply", Lab.repo + "/Profiles/partition.yaml")
            #expect(r.status == 3 && r.stderr.contains("--cgroup-manager cgroupfs"), "\(r)")
            #expect(!Sys.exists("/run/topo/partition"))
        }
    }
}
