import Foundation
import Testing

/// `topo run`, `report`, `diff` and lock files: one command for CI that always leaves the machine
/// clean, and records checked against independent reads of the kernel's files.
extension LabTests {
    @Suite struct RunTests {
        static let yaml = """
            version: 1
            name: ci
            workloads:
              a: { cpus: { count: 1 }, isolation: shared, memory: { max: 64M }, run: { command: ["/bin/sleep", "3001"] } }
              b: { cpus: { count: 1 }, isolation: shared }
            links:
              - { between: [a, b], netem: { delay: 1ms } }
            """

        func report(_ path: String) throws -> [String: Any] {
            try #require(try Lab.json(Lab.read(path) ?? "") as? [String: Any])
        }

        /// The command's exit status is run's; the report records it, and nothing is left.
        @Test func aCommandsExitStatusIsTheRunsAndNothingIsLeft() throws {
            let path = try Lab.profile("ci", Self.yaml)
            let out = "/tmp/ci-report-\(getpid()).json"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let r = try Lab.topo(
                "run", path, "--report", out, "--", "/bin/sh", "-c", "cat /proc/self/status > /dev/null; exit 5")
            #expect(r.status == 5, "\(r)")
            #expect(Lab.leftovers(marker: "sleep 3001") == [])
            let size = try #require(try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
            #expect(size < 1 << 20, "a report of \(size) bytes")
            let rec = try report(out)
            let run = try #require(rec["run"] as? [String: Any])
            #expect(run["exitStatus"] as? Int == 5 && run["interrupted"] == nil)
            #expect(((run["verifyBefore"] as? [String: Any])?["summary"] as? [String: Int])?["fail"] == 0, "\(run)")
            #expect(rec["format"] as? String == "topo-report/1")
            let workloads = try #require((rec["plan"] as? [String: Any])?["workloads"] as? [[String: Any]])
            #expect(
                workloads.map { $0["name"] as? String } == ["a", "b"]
                    && workloads.allSatisfy { $0["cpus"] is String && $0["mems"] is String })
            // Inside a workload, as topo exec does: the command runs on the workload's CPUs, as its report says.
            let inside = try Lab.topo(
                "run", path, "--in", "a", "--report", out, "--", "/bin/sh", "-c",
                "grep Cpus_allowed_list: /proc/self/status; exit 6")
            #expect(inside.status == 6, "\(inside)")
            let planned = try #require(
                ((try report(out)["plan"] as? [String: Any])?["workloads"] as? [[String: Any]])?.first?["cpus"]
                    as? String)
            #expect(
                inside.stdout.split(separator: "\t").last?.trimmingCharacters(in: .whitespacesAndNewlines) == planned,
                "\(inside)")
            #expect(Lab.leftovers(marker: "sleep 3001") == [])
        }

        /// A report's host section agrees with /proc/cpuinfo, /sys/devices/system/node and uname.
        @Test func aReportsHostMatchesTheKernelsOwnFiles() throws {
            let path = try Lab.profile("rep", Self.yaml.replacingOccurrences(of: "name: ci", with: "name: rep"))
            #expect(try Lab.topo("apply", path).status == 0)
            defer { _ = try? Lab.topo("down", "rep") }
            let r = try Lab.topo("report", "rep", "--json")
            #expect(r.status == 0, "\(r)")
            let rec = try #require(try Lab.json(r.stdout) as? [String: Any])
            let host = try #require(rec["host"] as? [String: Any])
            let cpu = try #require(host["cpu"] as? [String: Any])
            let cpuinfo = Lab.read("/proc/cpuinfo") ?? ""
            let field = { (name: String) in
                cpuinfo.split(separator: "\n").filter { $0.hasPrefix(name) }.map {
                    $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
                }
            }
            #expect(cpu["model"] as? String == field("model name").first)
            let microcode = Set(field("microcode"))
            if microcode.count == 1 { #expect(cpu["microcode"] as? String == microcode.first) }
            // /proc/cpuinfo is read whole by grep (Foundation stops at its first page).
            #expect(
                cpu["threads"] as? Int
                    == Int(
                        try Lab.run("/bin/grep", ["-c", "^processor", "/proc/cpuinfo"]).stdout.trimmingCharacters(
                            in: .whitespacesAndNewlines)))
            let uname = try Lab.run("/bin/uname", ["-r"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect((host["kernel"] as? [String: Any])?["release"] as? String == uname)
            let nodes = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/devices/system/node")) ?? [])
                .filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }
            let numa = try #require(host["numa"] as? [[String: Any]])
            #expect(numa.count == nodes.count && numa.count == Lab.shape.nodes)
            for n in numa {
                let id = try #require(n["id"] as? Int)
                #expect(
                    cpuList(n["cpus"] as? String ?? "")
                        == cpuList(Lab.read("/sys/devices/system/node/node\(id)/cpulist") ?? ""))
                let distances = (Lab.read("/sys/devices/system/node/node\(id)/distance") ?? "").split(separator: " ")
                    .compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                #expect(n["distances"] as? [Int] == distances)
            }
            #expect(
                host["hostname"] as? String
                    == Lab.read("/proc/sys/kernel/hostname")?.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(
                (rec["observed"] as? [String: Any])?["name"] as? String == "rep"
                    && (rec["verify"] as? [String: Any]) != nil)
            #expect(
                (rec["profile"] as? [String: Any])?["sha256"] as? String != nil,
                "the applied profile's text is kept for its report")

            // diff: a record against itself is 0; an edited placement or microcode is 1, named first.
            let a = "/tmp/rep-a-\(getpid()).json"
            let b = "/tmp/rep-b-\(getpid()).json"
            defer { for f in [a, b] { try? FileManager.default.removeItem(atPath: f) } }
            try r.stdout.write(toFile: a, atomically: true, encoding: .utf8)
            #expect(try Lab.topo("diff", a, a).status == 0)
            var edited = rec
            var plan = try #require(edited["plan"] as? [String: Any])
            var ws = try #require(plan["workloads"] as? [[String: Any]])
            ws[0]["cpus"] = "99"
            plan["workloads"] = ws
            edited["plan"] = plan
            var h = host
            h["hostname"] = "elsewhere"
            edited["host"] = h
            try JSONSerialization.data(withJSONObject: edited).write(to: URL(fileURLWithPath: b))
            let placed = try Lab.topo("diff", a, b)
            #expect(
                placed.status == 1
                    && placed.stdout.split(separator: "\n").first?.contains("placement: plan.workloads[a].cpus")
                        == true,
                "\(placed)")
            var c = cpu
            c["microcode"] = "0xdeadbeef"
            h["cpu"] = c
            edited["host"] = h
            try JSONSerialization.data(withJSONObject: edited).write(to: URL(fileURLWithPath: b))
            let micro = try Lab.topo("diff", a, b, "--json")
            let out = try #require(try Lab.json(micro.stdout) as? [String: Any])
            #expect(
                micro.status == 1
                    && ((out["differences"] as? [[String: Any]])?.first?["category"] as? String) == "microcode",
                "\(micro)")
        }

        /// SIGTERM and SIGINT during the command: everything is torn down, and the status says which.
        @Test(arguments: [(SIGTERM, 143), (SIGINT, 130)])
        func aSignalDuringTheCommandTearsEverythingDown(_ signal: Int32, _ expected: Int) throws {
            let path = try Lab.profile("ci", Self.yaml)
            let status = "/tmp/ci-status-\(getpid())-\(signal)"
            defer { try? FileManager.default.removeItem(atPath: status) }
            // Written whole, then renamed: the file never exists empty (a read right after it appears saw "").
            let wrapper =
                "import os, subprocess, sys; r = subprocess.run(sys.argv[2:]); open(sys.argv[1] + '.tmp', 'w').write(str(r.returncode)); os.rename(sys.argv[1] + '.tmp', sys.argv[1])"
            try Lab.detach([
                "/usr/bin/python3", "-c", wrapper, status, Lab.topo, "run", path, "--", "/bin/sleep", "3003",
            ])
            // The command runs: a `sleep 3003` whose parent is topo run.
            let deadline = Date().addingTimeInterval(60)
            func command() -> (sleep: Int32, run: Int32)? {
                for pid in Lab.processes(containing: "sleep 3003")
                where Lab.read("/proc/\(pid)/comm")?.hasPrefix("sleep") == true {
                    guard let ppid = Lab.procStatus(pid, "PPid").flatMap({ Int32($0) }),
                        Lab.read("/proc/\(ppid)/comm")?.hasPrefix("topo") == true
                    else { continue }
                    return (pid, ppid)
                }
                return nil
            }
            while command() == nil && Date() < deadline { usleep(100_000) }
            let running = try #require(command(), "topo run never ran its command")
            #expect(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/topo/ci/a"))
            kill(running.run, signal)
            while !FileManager.default.fileExists(atPath: status) && Date() < deadline.addingTimeInterval(60) {
                usleep(100_000)
            }
            #expect(
                Lab.read(status) == String(expected),
                "topo run is still there: \(Lab.read("/proc/\(running.run)/status") ?? "gone")")
            if !FileManager.default.fileExists(atPath: status) {
                kill(running.run, SIGKILL)
                _ = try? Lab.topo("down", "--all")
            }
            // The wrapper (its command line holds the marker too) exits right after it wrote the status.
            let exited = Date().addingTimeInterval(10)
            while !Lab.processes(containing: "python3 -c import os, subprocess").isEmpty && Date() < exited {
                usleep(50_000)
            }
            #expect(Lab.leftovers(marker: "sleep 300") == [])
        }

        /// `topo logs` shows a workload's output, its tail, and follows it until the profile goes.
        @Test func logsShowFollowAndEndWithTheProfile() throws {
            let path = try Lab.profile(
                "lg",
                """
                version: 1
                name: lg
                workloads:
                  a: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sh", "-c", "for i in 1 2 3; do echo line $i; done; exec sleep 3007"] } }
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            defer { _ = try? Lab.topo("down", "lg") }
            let deadline = Date().addingTimeInterval(30)
            while !(Lab.read("/run/topo/lg/logs/a.log") ?? "").contains("line 3") && Date() < deadline {
                usleep(100_000)
            }
            #expect(try Lab.topo("logs", "lg", "a").stdout == "line 1\nline 2\nline 3\n")
            #expect(try Lab.topo("logs", "lg", "a", "--tail", "2").stdout == "line 2\nline 3\n")
            #expect(try Lab.topo("status").stdout.contains("topo logs lg WORKLOAD"))
            let followed = "/tmp/lg-follow-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: followed) }
            try Lab.detach([Lab.topo, "logs", "lg", "a", "-f"], output: followed)
            while !(Lab.read(followed) ?? "").contains("line 3") && Date() < deadline { usleep(100_000) }
            // What the workload writes later (appended here: a workload cannot open topo's state itself).
            let log = try #require(FileHandle(forWritingAtPath: "/run/topo/lg/logs/a.log"))
            try log.seekToEnd()
            log.write(Data("line 4\n".utf8))
            try log.close()
            while !(Lab.read(followed) ?? "").contains("line 4") && Date() < deadline { usleep(100_000) }
            #expect(Lab.read(followed) == "line 1\nline 2\nline 3\nline 4\n")
            #expect(try Lab.topo("down", "lg").status == 0)
            let gone = Date().addingTimeInterval(5)
            while !Lab.processes(containing: "logs lg a -f").isEmpty && Date() < gone { usleep(100_000) }
            #expect(Lab.processes(containing: "logs lg a -f").isEmpty, "topo logs -f outlived the profile")
        }

        /// A `topo run` killed with SIGKILL during its command leaves a state that `down --all` removes whole.
        @Test func aKilledRunIsRemovedByDownAll() throws {
            let path = try Lab.profile("ci", Self.yaml)
            try Lab.detach([Lab.topo, "run", path, "--in", "b", "--", "/bin/sleep", "3005"])
            let deadline = Date().addingTimeInterval(60)
            // The command runs inside workload b: its cgroup holds a sleep 3005.
            func inside() -> Bool {
                Lab.pids(inCgroup: "/sys/fs/cgroup/topo/ci/b").contains {
                    Lab.read("/proc/\($0)/cmdline")?.contains("3005") == true
                }
            }
            while !inside() && Date() < deadline { usleep(100_000) }
            #expect(inside(), "the command never ran inside b")
            for pid in Lab.processes(containing: "run \(path)")
            where Lab.read("/proc/\(pid)/comm")?.hasPrefix("topo") == true { kill(pid, SIGKILL) }
            usleep(200_000)
            let down = try Lab.topo("down", "--all")
            #expect(down.status == 0 && down.stdout.contains("removed ci"), "\(down)")
            #expect(Lab.leftovers(marker: "sleep 300") == [])
        }

        /// apply --locked plans the profile again on the lock's placement: a lock moved to other valid
        /// CPUs is honoured (the kernel's cpuset.cpus says so); a lock whose launch was edited (user,
        /// capabilities, command, log path), one naming a CPU this shape lacks, and a profile whose text
        /// changed since are refused with exit 3, and nothing is launched or written.
        @Test func aLockPinsPlacementAndNothingElse() throws {
            let yaml = Self.yaml.replacingOccurrences(of: "name: ci", with: "name: lk")
                .replacingOccurrences(
                    of: #"command: ["/bin/sleep", "3001"]"#,
                    with: #"command: ["/bin/sleep", "3001"], user: "65534:65534", capabilities: []"#)
            let path = try Lab.profile("lk", yaml)
            let lockPath = "/tmp/lk.lock.json"
            defer { try? FileManager.default.removeItem(atPath: lockPath) }
            let plan = try Lab.topo("plan", path, "--lock")
            #expect(plan.status == 0 && FileManager.default.fileExists(atPath: lockPath), "\(plan)")
            let applied = try Lab.topo("apply", path, "--locked")
            #expect(applied.status == 0, "\(applied)")
            #expect(try Lab.topo("down", "lk").status == 0)
            let original = try #require(Lab.read(lockPath))
            func edited(_ edit: (inout [String: Any]) throws -> Void) throws {
                var lock = try #require(try Lab.json(original) as? [String: Any])
                var p = try #require(lock["plan"] as? [String: Any])
                try edit(&p)
                lock["plan"] = p
                try JSONSerialization.data(withJSONObject: lock).write(to: URL(fileURLWithPath: lockPath))
            }
            // Moved to the other CPU a may use: honoured, from the kernel's side.
            var ws =
                try #require((try Lab.json(original) as? [String: Any])?["plan"] as? [String: Any])["workloads"]
                as? [[String: Any]]
            let was = cpuList(try #require(ws?[0]["cpus"] as? String))
            let other = try #require(cpuList(Lab.read("/sys/devices/system/cpu/online") ?? "").subtracting(was).min())
            try edited { p in
                ws?[0]["cpus"] = String(other)
                p["workloads"] = ws
            }
            let moved = try Lab.topo("apply", path, "--locked")
            #expect(moved.status == 0, "\(moved)")
            #expect(cpuList(Lab.read("/sys/fs/cgroup/topo/lk/a/cpuset.cpus") ?? "") == [other])
            #expect(try Lab.topo("down", "lk").status == 0)
            // The forgery of the security review: the launch edited, the profile untouched.
            try edited { p in
                var resources = try #require(p["resources"] as? [[String: Any]])
                let i = try #require(resources.firstIndex { ($0["launch"] as? [String: Any]) != nil })
                var launch = try #require(resources[i]["launch"] as? [String: Any])
                launch.removeValue(forKey: "user")
                launch["capabilities"] = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SYS_PTRACE", "CAP_NET_ADMIN"]
                launch["command"] = ["/bin/sh", "-c", "echo forged > /tmp/lk-forged; exec /bin/sleep 3099"]
                launch["logPath"] = "/tmp/lk-lock-log"
                resources[i] = ["launch": launch]
                p["resources"] = resources
            }
            let forged = try Lab.topo("apply", path, "--locked")
            #expect(forged.status == 3, "\(forged)")
            for field in ["launch.user", "launch.capabilities", "launch.command", "launch.logPath"] {
                #expect(forged.stderr.contains(field), "\(field) not named: \(forged.stderr)")
            }
            #expect(Lab.processes(containing: "3099").isEmpty)
            #expect(
                !FileManager.default.fileExists(atPath: "/tmp/lk-forged")
                    && !FileManager.default.fileExists(atPath: "/tmp/lk-lock-log"))
            #expect(Lab.leftovers() == [])
            // A CPU this shape lacks.
            try edited { p in
                ws?[0]["cpus"] = "99"
                p["workloads"] = ws
            }
            let far = try Lab.topo("apply", path, "--locked")
            #expect(far.status == 3 && far.stderr.contains("CPU 99"), "\(far)")
            let dry = try Lab.topo("apply", path, "--locked", "--dry-run")
            #expect(dry.status == 3 && dry.stderr.contains("CPU 99"), "the dry run refuses as apply does: \(dry)")
            try (yaml + "# changed\n").write(toFile: path, atomically: true, encoding: .utf8)
            let changed = try Lab.topo("apply", path, "--locked")
            #expect(changed.status == 3 && changed.stderr.contains("the profile changed since the lock"), "\(changed)")
            #expect(Lab.leftovers() == [])
        }

        /// The reference topology end to end: run waits for the client's iperf3, exits with its status,
        /// and the report holds the client's log tail.
        @Test(.enabled(if: Lab.shape.nodes >= 2 && Lab.shape.cpus >= 8, "needs 2 NUMA nodes and 8 CPUs"))
        func theReferenceTopologyRunsEndToEnd() throws {
            let out = "/tmp/api-report-\(getpid()).json"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let r = try Lab.topo("run", Lab.repo + "/Profiles/api-gateway.yaml", "--wait", "client", "--report", out)
            #expect(r.status == 0, "\(r)")
            let rec = try report(out)
            let run = try #require(rec["run"] as? [String: Any])
            let tail = ((run["logTails"] as? [String: String])?["client"]) ?? ""
            let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? -1
            print(
                "measured: topo run api-gateway: \(run["wallSeconds"] ?? "?") s, report \(size) bytes, \(tail.split(separator: "\n").last { $0.contains("receiver") } ?? "no receiver line")"
            )
            #expect(size > 0 && size < 1 << 20)
            #expect(run["exitStatus"] as? Int == 0 && tail.contains("receiver"), "\(run)")
            #expect(Lab.leftovers() == [])
        }
    }
}
