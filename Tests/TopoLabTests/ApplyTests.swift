import Foundation
import Testing

/// `topo apply` / `down` / `status` / `exec` on a real kernel, checked from the kernel's side:
/// /proc/PID/status, /proc/PID/numa_maps, the cgroup files; then that `down` leaves nothing.
extension LabTests {
    @Suite struct ApplyTests {
        func applied(_ name: String) throws -> [String: Any] {
            let r = try Lab.topo("status", "--json")
            #expect(r.status == 0, "\(r)")
            let report = try #require(try Lab.json(r.stdout) as? [String: Any])
            let profiles = try #require(report["profiles"] as? [[String: Any]])
            return try #require(profiles.first { $0["name"] as? String == name })
        }

        func pid(_ profile: [String: Any], _ workload: String) throws -> Int32 {
            let workloads = try #require(profile["workloads"] as? [[String: Any]])
            let w = try #require(workloads.first { $0["name"] as? String == workload })
            let pids = try #require(w["pids"] as? [Int])
            return Int32(try #require(pids.first))
        }

        @Test func quickstartRunsPinnedAndLimitedThenLeavesNothing() throws {
            let apply = try Lab.topo("apply", "Profiles/quickstart.yaml")
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "quickstart") }
            let status = try applied("quickstart")
            #expect(status["state"] as? String == "applied")
            let app = try pid(status, "app")
            let load = try pid(status, "load")
            let planned = try #require(status["workloads"] as? [[String: Any]]).reduce(into: [String: String]()) {
                $0[$1["name"] as! String] = $1["cpus"] as? String
            }
            #expect(planned["app"] != planned["load"])
            // The kernel's view of each process.
            #expect(Lab.procStatus(app, "Cpus_allowed_list") == planned["app"])
            #expect(Lab.procStatus(load, "Cpus_allowed_list") == planned["load"])
            #expect(Lab.procStatus(app, "Mems_allowed_list") == "0")
            #expect(Lab.read("/proc/\(app)/cgroup") == "0::/topo/quickstart/app\n")
            // The cgroup files.
            let cg = "/sys/fs/cgroup/topo/quickstart"
            #expect(Lab.read("\(cg)/app/memory.max") == "268435456\n")
            #expect(Lab.read("\(cg)/app/pids.max") == "64\n")
            #expect(Lab.read("\(cg)/load/cpu.max") == "50000 100000\n")
            #expect(Lab.read("\(cg)/load/cpuset.cpus.effective") == "\(planned["load"] ?? "?")\n")
            // Capabilities: none kept, so the bounding set is empty; only 0-2 open.
            #expect(Lab.procStatus(app, "CapBnd") == "0000000000000000")
            #expect(Lab.procStatus(app, "CapEff") == "0000000000000000")
            let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(app)/fd").sorted()
            #expect(fds == ["0", "1", "2"])
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(app)/fd/1")
                    == "/run/topo/quickstart/logs/app.log")
            // Its own session.
            #expect(getsid(app) == app)

            // Status observes every setting from the kernel's side: none differs, until one is changed behind topo's back.
            let appStatus = { () throws -> [String: Any] in
                let workloads = try self.applied("quickstart")["workloads"] as? [[String: Any]] ?? []
                return workloads.first { $0["name"] as? String == "app" } ?? [:]
            }
            #expect(try appStatus()["differences"] as? [String] == [])
            try "max".write(toFile: "\(cg)/app/memory.max", atomically: false, encoding: .utf8)
            #expect(
                try appStatus()["differences"] as? [String] == [
                    "memory.max: planned 268435456 bytes (256M), kernel has \"max\""
                ])
            try "268435456".write(toFile: "\(cg)/app/memory.max", atomically: false, encoding: .utf8)

            let again = try Lab.topo("apply", "Profiles/quickstart.yaml")
            #expect(again.status == 0 && again.stdout.contains("nothing changed"), "\(again)")
            #expect(try pid(try applied("quickstart"), "app") == app)

            let down = try Lab.topo("down", "quickstart")
            #expect(down.status == 0, "\(down)")
            #expect(Lab.leftovers(marker: "sleep infinity") == [])
            #expect(kill(app, 0) != 0 && kill(load, 0) != 0)
            let nothing = try Lab.topo("down", "quickstart")
            #expect(nothing.status == 0 && nothing.stdout.contains("nothing to remove"))
        }

        /// The anonymous mapping of at least `pages` pages in numa_maps: its policy and pages per node.
        func bigMapping(_ pid: Int32, pages: Int = 8000) throws -> (policy: String, nodes: [Int: Int]) {
            let maps = try #require(Lab.read("/proc/\(pid)/numa_maps"))
            for line in maps.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard let anon = fields.first(where: { $0.hasPrefix("anon=") }), let n = Int(anon.dropFirst(5)),
                    n >= pages
                else { continue }
                var nodes: [Int: Int] = [:]
                for f in fields where f.hasPrefix("N") {
                    let kv = f.dropFirst().split(separator: "=")
                    if kv.count == 2, let node = Int(kv[0]), let count = Int(kv[1]) { nodes[node] = count }
                }
                return (String(fields[1]), nodes)
            }
            Issue.record("no anonymous mapping of \(pages) pages in /proc/\(pid)/numa_maps:\n\(maps)")
            return ("", [:])
        }

        @Test(.enabled(if: Lab.shape.nodes >= 2, "needs a lab shape with 2 NUMA nodes"))
        func memoryIsBoundAndInterleavedOnTheRightNodes() throws {
            let fill = "[\"/usr/bin/python3\", \"\(Lab.repo)/Tests/Fixtures/lab/fill.py\"]"
            let path = try Lab.profile(
                "numa",
                """
                version: 1
                name: numa
                workloads:
                  far: { cpus: { count: 1, node: 0 }, memory: { policy: bind, nodes: "1" }, run: { command: \(fill) } }
                  spread: { cpus: { count: 1, node: 0 }, memory: { policy: interleave, nodes: "0-1" }, run: { command: \(fill) } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "numa") }
            for log in ["far", "spread"] {
                var waited = 0
                while !(Lab.read("/run/topo/numa/logs/\(log).log") ?? "").contains("filled") && waited < 600 {
                    usleep(100_000)
                    waited += 1
                }
            }
            let status = try applied("numa")
            let far = try pid(status, "far")
            let spread = try pid(status, "spread")
            #expect(Lab.procStatus(far, "Mems_allowed_list") == "1")
            #expect(Lab.procStatus(spread, "Mems_allowed_list") == "0-1")
            let bound = try bigMapping(far)
            #expect(bound.policy == "bind:1")
            #expect(Set(bound.nodes.keys) == [1], "pages per node: \(bound.nodes)")
            let spreadOut = try bigMapping(spread)
            #expect(spreadOut.policy == "interleave:0-1")
            let n0 = spreadOut.nodes[0] ?? 0
            let n1 = spreadOut.nodes[1] ?? 0
            #expect(n0 > 0 && n1 > 0 && abs(n0 - n1) < (n0 + n1) / 5, "interleaved pages per node: \(spreadOut.nodes)")
        }

        @Test func downKillsWhatForkedAwayIgnoredSIGTERMOrMadeItsOwnCgroups() throws {
            let path = try Lab.profile(
                "stubborn",
                """
                version: 1
                name: stubborn
                workloads:
                  w: { cpus: { count: 1 }, run: { command: ["\(Lab.repo)/Tests/Fixtures/lab/stubborn.sh"], user: root, capabilities: [SYS_ADMIN] } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            // Wait for the three renamed processes themselves: a shell that only mentions a name on its
            // command line before it execs (`bash -c "... exec -a stubborn-daemon ..."`) is not one.
            let expected = ["stubborn-child", "stubborn-daemon", "stubborn-main"]
            var waited = 0
            while Lab.processNames(prefix: "stubborn-").sorted() != expected && waited < 300 {
                usleep(100_000)
                waited += 1
            }
            #expect(
                Lab.processNames(prefix: "stubborn-").sorted() == expected,
                "\(Lab.read("/run/topo/stubborn/logs/w.log") ?? "")")
            #expect(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/topo/stubborn/w/own"))
            let down = try Lab.topo("down", path)
            #expect(down.status == 0, "\(down)")
            #expect(Lab.leftovers(marker: "stubborn-") == [])
        }

        @Test func aFailedApplyRollsBackAndExits4() throws {
            // The kernel refuses io.max for a block device that does not exist.
            let path = try Lab.profile(
                "broken",
                """
                version: 1
                name: broken
                workloads:
                  a: { cpus: { count: 1 }, memory: { max: 64M }, run: { command: ["/bin/sleep", "1000"] } }
                  b: { cpus: { count: 1 }, io: [{ device: "259:99", rbps: 1M }], run: { command: ["/bin/sleep", "1000"] } }
                """)
            let r = try Lab.topo("apply", path)
            #expect(r.status == 4, "\(r)")
            #expect(r.stderr.contains("io.max") && r.stderr.contains("rolled back"), "\(r.stderr)")
            #expect(Lab.leftovers(marker: "sleep 1000") == [])
        }

        /// The lab's kernel (6.1) has no cpuset.cpus.exclusive, so a partition under topo's cgroups reads back
        /// "root invalid"; apply must say so and roll back rather than report a partition that is not there.
        /// A partition takes its CPU from the rest of the host: the root cgroup and every process outside
        /// the partition lose it, the workload keeps it; `down` gives it back.
        @Test func aPartitionTakesItsCPUsFromTheRestOfTheHost() throws {
            let path = try Lab.profile(
                "part",
                "version: 1\nname: part\nworkloads:\n  p: { cpus: { count: 1 }, isolation: partition, run: { command: [\"/bin/sleep\", \"1002\"] } }\n"
            )
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "part") }
            let status = try applied("part")
            let w = try #require((status["workloads"] as? [[String: Any]])?.first)
            let cpus = try #require(w["cpus"] as? String)
            #expect(w["cgroup"] as? String == "/sys/fs/cgroup/topo.part.p")
            #expect(w["partition"] as? String == "root")
            #expect(Lab.read("/sys/fs/cgroup/topo.part.p/cpuset.cpus.partition") == "root\n")
            #expect(Lab.read("/sys/fs/cgroup/topo.part.p/cpuset.cpus.effective") == cpus + "\n")
            let p = try pid(status, "p")
            #expect(Lab.procStatus(p, "Cpus_allowed_list") == cpus)
            // The kernel's side: the root (and this test process in it) no longer has the CPU.
            let online = cpuList(Lab.read("/sys/devices/system/cpu/online") ?? "")
            let rootCPUs = cpuList(Lab.read("/sys/fs/cgroup/cpuset.cpus.effective") ?? "")
            #expect(
                rootCPUs == online.subtracting(cpuList(cpus)), "root has \(rootCPUs.sorted()) of \(online.sorted())")
            #expect(cpuList(Lab.procStatus(getpid(), "Cpus_allowed_list") ?? "").isDisjoint(with: cpuList(cpus)))
            let down = try Lab.topo("down", "part")
            #expect(down.status == 0, "\(down)")
            #expect(Lab.leftovers(marker: "sleep 1002") == [])
        }

        /// The shipped partition profile: the server's CPU is its own, the busy neighbour never gets it.
        @Test func theShippedPartitionProfileAppliesForReal() throws {
            let r = try Lab.topo("apply", "Profiles/partition.yaml")
            #expect(r.status == 0, "\(r)")
            defer { _ = try? Lab.topo("down", "partition") }
            let status = try applied("partition")
            let workloads = try #require(status["workloads"] as? [[String: Any]])
            let server = try #require(workloads.first { $0["name"] as? String == "server" })
            #expect(server["partition"] as? String == "root")
            let serverCPUs = cpuList(try #require(server["cpus"] as? String))
            let noise = try pid(status, "noise")
            #expect(cpuList(Lab.procStatus(noise, "Cpus_allowed_list") ?? "").isDisjoint(with: serverCPUs))
            #expect(
                Lab.read("/sys/fs/cgroup/topo.partition.server/memory.max") == "268435456\n", "merged from x-common")
            #expect(Lab.read("/sys/fs/cgroup/topo/partition/noise/pids.max") == "256\n", "merged from x-common")
            #expect(try Lab.topo("down", "partition").status == 0)
            #expect(Lab.leftovers(marker: "while :") == [])
        }

        /// A partition the kernel will not make — here another cgroup at the root lists its CPU in
        /// cpuset.cpus, so it cannot be exclusive — fails the apply with exit 4, the kernel's words and a
        /// rollback; the cgroup that is not topo's stays.
        @Test func anInvalidPartitionIsAFailureNotASilentSuccess() throws {
            let root = "/sys/fs/cgroup"
            let hadCpuset = (Lab.read("\(root)/cgroup.subtree_control") ?? "").contains("cpuset")
            if !hadCpuset {
                try "+cpuset".write(toFile: "\(root)/cgroup.subtree_control", atomically: false, encoding: .utf8)
            }
            try FileManager.default.createDirectory(atPath: "\(root)/foreign", withIntermediateDirectories: false)
            defer {
                _ = rmdir("\(root)/foreign")
                if !hadCpuset {
                    try? "-cpuset".write(toFile: "\(root)/cgroup.subtree_control", atomically: false, encoding: .utf8)
                }
            }
            try "1".write(toFile: "\(root)/foreign/cpuset.cpus", atomically: false, encoding: .utf8)
            let path = try Lab.profile(
                "part",
                "version: 1\nname: part\nworkloads:\n  p: { cpus: \"1\", isolation: partition, run: { command: [\"/bin/sleep\", \"1002\"] } }\n"
            )
            let r = try Lab.topo("apply", path)
            #expect(r.status == 4, "\(r)")
            #expect(r.stderr.contains("cpuset.cpus.partition") && r.stderr.contains("rolled back"), "\(r.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(root)/foreign"))
            #expect(!FileManager.default.fileExists(atPath: "\(root)/topo.part.p"))
            #expect(!FileManager.default.fileExists(atPath: "/run/topo"))
            #expect(Lab.processes(containing: "sleep 1002") == [])
        }

        @Test func changedOrOverlappingProfilesAreRefused() throws {
            let first = try Lab.profile(
                "first",
                "version: 1\nname: first\nworkloads:\n  a: { cpus: \"0\", run: { command: [\"/bin/sleep\", \"1000\"] } }\n"
            )
            #expect(try Lab.topo("apply", first).status == 0)
            defer { _ = try? Lab.topo("down", "--all") }
            let changed = try Lab.profile(
                "first-changed",
                "version: 1\nname: first\nworkloads:\n  a: { cpus: \"1\", run: { command: [\"/bin/sleep\", \"1000\"] } }\n"
            )
            let r1 = try Lab.topo("apply", changed)
            #expect(r1.status == 3 && r1.stderr.contains("different plan"), "\(r1)")
            let overlap = try Lab.profile(
                "second",
                "version: 1\nname: second\nworkloads:\n  b: { cpus: \"0\", run: { command: [\"/bin/sleep\", \"1000\"] } }\n"
            )
            let r2 = try Lab.topo("apply", overlap)
            #expect(r2.status == 3 && r2.stderr.contains("CPU 0"), "\(r2)")
            #expect(!FileManager.default.fileExists(atPath: "/run/topo/second"))
            let down = try Lab.topo("down", "--all")
            #expect(down.status == 0)
            #expect(Lab.leftovers(marker: "sleep 1000") == [])
        }

        /// A workload run as nobody that keeps one capability: it holds exactly that one, across exec.
        @Test func userAndCapabilitiesAreWhatTheProfileSays() throws {
            let path = try Lab.profile(
                "caps",
                """
                version: 1
                name: caps
                workloads:
                  w: { cpus: { count: 1 }, run: { command: ["/bin/sleep", "1004"], user: "65534:65534", capabilities: [NET_BIND_SERVICE] } }
                """)
            let r = try Lab.topo("apply", path)
            #expect(r.status == 0, "\(r)")
            defer { _ = try? Lab.topo("down", "caps") }
            let w = try pid(try applied("caps"), "w")
            #expect(Lab.procStatus(w, "Uid")?.split(separator: "\t").first == "65534")
            #expect(Lab.procStatus(w, "Gid")?.split(separator: "\t").first == "65534")
            // CAP_NET_BIND_SERVICE is bit 10: 0x400.
            #expect(Lab.procStatus(w, "CapEff") == "0000000000000400")
            #expect(Lab.procStatus(w, "CapAmb") == "0000000000000400")
            #expect(Lab.procStatus(w, "CapBnd") == "0000000000000400")
            #expect(try Lab.topo("down", "caps").status == 0)
            #expect(Lab.leftovers(marker: "sleep 1004") == [])
        }

        /// The hosts file is readable by a workload that runs as another user, whatever the caller's umask.
        @Test func aWorkloadRunningAsAnotherUserResolvesItsPeer() throws {
            let path = try Lab.profile(
                "users",
                """
                version: 1
                name: users
                workloads:
                  u: { cpus: { count: 1 }, run: { command: ["/bin/sleep", "1005"], user: "65534:65534" } }
                  v: { cpus: { count: 1 } }
                links:
                  - { between: [u, v] }
                """)
            let r = try Lab.run("/bin/sh", ["-c", "umask 077; exec \(Lab.topo) apply \(path)"])
            #expect(r.status == 0, "\(r)")
            defer { _ = try? Lab.topo("down", "users") }
            var st = stat()
            #expect(stat("/etc/netns/topo.users.u/hosts", &st) == 0 && st.st_mode & 0o777 == 0o644)
            let lookup = try Lab.topo("exec", "users", "u", "--", "/bin/sh", "-c", "id -u; getent hosts v")
            #expect(lookup.status == 0, "\(lookup)")
            #expect(lookup.stdout.hasPrefix("65534\n10.77.0.2"), "\(lookup)")
            #expect(try Lab.topo("down", "users").status == 0)
            #expect(Lab.leftovers(marker: "sleep 1005") == [])
        }

        /// Objects removed behind topo's back (a killed workload, its cgroup, a namespace) do not stop down.
        @Test func downToleratesObjectsAlreadyGone() throws {
            let path = try Lab.profile(
                "gone",
                """
                version: 1
                name: gone
                workloads:
                  a: { cpus: { count: 1 }, run: { command: ["/bin/sleep", "1005"] } }
                  b: { cpus: { count: 1 }, run: { command: ["/bin/sleep", "1005"] } }
                links: [{ between: [a, b] }]
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            let a = try pid(try applied("gone"), "a")
            kill(a, SIGKILL)
            var waited = 0
            while kill(a, 0) == 0 && waited < 100 {
                usleep(50_000)
                waited += 1
            }
            #expect(rmdir("/sys/fs/cgroup/topo/gone/a") == 0, "rmdir: \(String(cString: strerror(errno)))")
            #expect(try Lab.run("ip", ["netns", "del", "topo.gone.b"]).status == 0)
            let down = try Lab.topo("down", "gone")
            #expect(down.status == 0, "\(down)")
            #expect(Lab.leftovers(marker: "sleep 1005") == [])
            #expect(try Lab.run("ip", ["netns", "list"]).stdout == "")
        }

        /// Two applies of one profile at once: the lock lets one make it and the other find it applied.
        @Test func concurrentAppliesOfOneProfileMakeItOnce() throws {
            let path = try Lab.profile(
                "twice",
                "version: 1\nname: twice\nworkloads:\n  w: { cpus: { count: 1 }, run: { command: [\"/bin/sleep\", \"1006\"] } }\n"
            )
            let group = DispatchGroup()
            let results = ResultBox()
            for _ in 0..<2 {
                DispatchQueue.global().async(group: group) {
                    let r = try? Lab.topo("apply", path)
                    results.append(r?.status ?? -1)
                }
            }
            group.wait()
            defer { _ = try? Lab.topo("down", "twice") }
            #expect(results.values == [0, 0])
            #expect(Lab.processes(containing: "sleep 1006").count == 1)
            #expect(try Lab.topo("down", "twice").status == 0)
            #expect(Lab.leftovers(marker: "sleep 1006") == [])
        }

        @Test func execRunsInsideTheWorkload() throws {
            #expect(try Lab.topo("apply", "Profiles/quickstart.yaml").status == 0)
            defer { _ = try? Lab.topo("down", "quickstart") }
            // Inside, the workload's cgroup is the root of its cgroup namespace and of its read-only cgroup
            // mount: /proc/self/cgroup says "/", and /sys/fs/cgroup holds load's own limits and processes.
            let r = try Lab.topo(
                "exec", "quickstart", "load", "--", "/bin/sh", "-c",
                "cat /proc/self/cgroup; grep Cpus_allowed_list /proc/self/status; cat /sys/fs/cgroup/cpu.max; grep -qx $$ /sys/fs/cgroup/cgroup.procs && echo joined; exit 3"
            )
            #expect(r.status == 3)
            #expect(r.stdout.hasPrefix("0::/\n"), "\(r.stdout)")
            #expect(r.stdout.contains("50000 100000\njoined\n"), "\(r.stdout)")
            // exec passes its stdin through.
            let piped = try Lab.run("/bin/sh", ["-c", "echo through | \(Lab.topo) exec quickstart load -- /bin/cat"])
            #expect(piped.status == 0 && piped.stdout == "through\n", "\(piped)")
            let workloads = try #require(try applied("quickstart")["workloads"] as? [[String: Any]])
            let load = try #require(workloads.first { $0["name"] as? String == "load" })
            #expect(r.stdout.contains("Cpus_allowed_list:\t\(load["cpus"] as? String ?? "?")\n"), "\(r.stdout)")
        }

        /// Kill apply right after each journaled step in turn; `down` must still leave nothing.
        @Test func killedAtEveryStepDownStillLeavesNothing() throws {
            let path = try Lab.profile(
                "crash",
                """
                version: 1
                name: crash
                workloads:
                  a: { cpus: { count: 1 }, memory: { max: 64M }, pids: 32, run: { command: ["/bin/sh", "-c", "exec sleep 1001"] } }
                  b: { cpus: { count: 1 }, isolation: partition, run: { command: ["/bin/sh", "-c", "exec sleep 1001"] } }
                links:
                  - { between: [a, b], netem: { delay: 1ms } }
                """)
            try killAtEveryStep(path, name: "crash", marker: "sleep 1001", atLeast: 12)
        }

        /// The same with a crun container linked to a process: after a kill at any step, `down` leaves no
        /// container, runtime state, bundle or mount.
        @Test(
            .enabled(
                if: FileManager.default.isExecutableFile(atPath: "/usr/bin/crun"),
                "needs crun (scripts/test installs it)"))
        func killedAtEveryContainerStepDownStillLeavesNothing() throws {
            let path = try Lab.profile(
                "crashc",
                """
                version: 1
                name: crashc
                workloads:
                  p: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1031"] } }
                  c: { cpus: { count: 1 }, isolation: shared, memory: { max: 64M }, run: { command: ["/bin/sleep", "1031"], runtime: crun, image: / } }
                links:
                  - { between: [p, c] }
                """)
            try killAtEveryStep(path, name: "crashc", marker: "sleep 1031", atLeast: 8) {
                let ids = try Lab.run("crun", ["list", "--quiet"]).stdout.split(separator: "\n").filter {
                    $0.hasPrefix("topo.")
                }
                let mounts = (Lab.read("/proc/self/mountinfo") ?? "").split(separator: "\n").filter {
                    $0.contains("/run/topo")
                }
                return ids.map { "container \($0)" } + mounts.map { "mount \($0)" }
            }
        }

        /// Applies once to count the journaled steps, then for each step: apply killed right after it,
        /// `status` says incomplete, a second apply is refused, `down` exits 0 and nothing is left.
        func killAtEveryStep(
            _ path: String, name: String, marker: String, atLeast: Int, extra: () throws -> [String] = { [] }
        ) throws {
            try Lab.killAfterEachStep(path, name: name, atLeast: atLeast) { n in
                let st = try Lab.topo("status", "--json")
                #expect(st.stdout.contains("\"incomplete\""), "step \(n): status should say incomplete")
                let refused = try Lab.topo("apply", path)
                #expect(refused.status == 3, "step \(n): a half-applied profile must be refused: \(refused)")
            } check: { n in
                #expect(Lab.leftovers(marker: marker) == [], "after a kill at step \(n)")
                #expect(try Lab.run("ip", ["netns", "list"]).stdout == "", "namespaces left after a kill at step \(n)")
                let more = try extra()
                #expect(more == [], "after a kill at step \(n)")
            }
        }

        /// A journal record `down` cannot undo: `down` undoes the rest, exits 3 and keeps the state and
        /// journal; once the record is gone, a second `down` finishes and nothing is left.
        @Test func aRecordDownCannotUndoKeepsTheStateForASecondDown() throws {
            let path = try Lab.profile(
                "keep",
                """
                version: 1
                name: keep
                workloads:
                  a: { cpus: { count: 1 }, run: { command: ["/bin/sh", "-c", "exec sleep 1003"] } }
                  b: { cpus: { count: 1 } }
                links:
                  - { between: [a, b] }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            let journal = "/run/topo/keep/journal.jsonl"
            let good = try #require(Lab.read(journal))
            let foreign = #"{"format":2,"step":999,"resource":{"tapDevice":{"_0":{"name":"tap0"}}}}"#
            try (good + foreign + "\n").write(toFile: journal, atomically: false, encoding: .utf8)
            let first = try Lab.topo("down", "keep")
            #expect(first.status == 3, "\(first)")
            #expect(first.stderr.contains("not a journal record this topo understands"), "\(first)")
            #expect(
                FileManager.default.fileExists(atPath: journal)
                    && FileManager.default.fileExists(atPath: "/run/topo/keep/plan.json"))
            // What down understood is undone all the same: no workload, no namespace, no workload cgroups.
            #expect(Lab.processes(containing: "sleep 1003") == [])
            #expect(try Lab.run("ip", ["netns", "list"]).stdout == "")
            #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/topo/keep"))
            let status = try Lab.topo("status", "--json")
            #expect(status.stdout.contains("\"keep\""), "the kept profile is still listed: \(status)")
            try good.write(toFile: journal, atomically: false, encoding: .utf8)
            let second = try Lab.topo("down", "keep")
            #expect(second.status == 0, "\(second)")
            #expect(Lab.leftovers(marker: "sleep 1003") == [])
        }

        /// A mount under a profile's state (as a container root bound from the host's would be, left by a
        /// crash): `down` deletes nothing through it, names it and keeps the state; once it is unmounted,
        /// a second `down` finishes.
        @Test func downNeverDeletesThroughAMount() throws {
            let path = try Lab.profile(
                "mnt",
                """
                version: 1
                name: mnt
                workloads:
                  a: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1023"] } }
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            let scratch = "/tmp/topo-scratch-\(getpid())"
            let plant = "/run/topo/mnt/plant"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try "precious\n".write(toFile: "\(scratch)/keep", atomically: false, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: plant, withIntermediateDirectories: true)
            #expect(try Lab.run("mount", ["--bind", scratch, plant]).status == 0)
            let first = try Lab.topo("down", "mnt")
            #expect(first.status == 3, "\(first)")
            #expect(first.stderr.contains(plant) && first.stderr.contains("never deletes through a mount"), "\(first)")
            #expect(Lab.read("\(scratch)/keep") == "precious\n")
            #expect(FileManager.default.fileExists(atPath: "/run/topo/mnt/journal.jsonl"))
            #expect(Lab.processes(containing: "sleep 1023") == [])
            #expect(try Lab.run("umount", [plant]).status == 0)
            let second = try Lab.topo("down", "mnt")
            #expect(second.status == 0, "\(second)")
            #expect(Lab.read("\(scratch)/keep") == "precious\n")
            #expect(Lab.leftovers(marker: "sleep 1023") == [])
        }
    }
}

/// Collects results from concurrent closures.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int32] = []
    func append(_ v: Int32) {
        lock.lock()
        items.append(v)
        lock.unlock()
    }
    var values: [Int32] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}
