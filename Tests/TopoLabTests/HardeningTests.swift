import Foundation
import Testing

/// What a workload may do and what `down` may remove, tried as an attacker would, and checked from
/// the kernel's side: /proc/PID/status, the cgroup files, `ip netns`.
extension LabTests {
    @Suite struct HardeningTests {
        func pids(_ profile: String) throws -> [String: Int32] {
            let r = try Lab.topo("status", "--json")
            let report = try #require(try Lab.json(r.stdout) as? [String: Any])
            let p = try #require((report["profiles"] as? [[String: Any]])?.first { $0["name"] as? String == profile })
            var out: [String: Int32] = [:]
            for w in (p["workloads"] as? [[String: Any]]) ?? [] {
                if let name = w["name"] as? String, let pid = (w["pids"] as? [Int])?.first { out[name] = Int32(pid) }
            }
            return out
        }

        /// A caller with inheritable and ambient capabilities, an ignored SIGHUP, a blocked SIGUSR1 and an
        /// open descriptor hands none of it on: each workload holds exactly its listed capabilities in all
        /// five sets, with no_new_privs, default signal dispositions and mask, no terminal, only its
        /// standard streams open, in `/`.
        @Test func workloadsGetExactlyTheCapabilitiesListedWhateverTheCaller() throws {
            let path = try Lab.profile(
                "privs",
                """
                version: 1
                name: privs
                workloads:
                  root: { cpus: "0", isolation: shared, run: { command: ["/bin/sleep", "1007"], user: root } }
                  raw: { cpus: "0", isolation: shared, run: { command: ["/bin/sleep", "1007"], capabilities: [NET_RAW] } }
                  nobody: { cpus: "0", isolation: shared, run: { command: ["/bin/sleep", "1007"], user: "65534:65534", capabilities: [NET_BIND_SERVICE] } }
                """)
            // python3 blocks SIGUSR1 and ignores SIGHUP, then execs setpriv, which adds inheritable and
            // ambient capabilities, then execs topo: what a careless or hostile caller could hand on.
            let caller = """
                import os, signal, sys
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                os.set_inheritable(os.open("/etc/hostname", os.O_RDONLY), True)
                os.execv("/usr/bin/setpriv", ["setpriv", "--inh-caps", "+sys_admin,+net_admin", "--ambient-caps", "+sys_admin,+net_admin", sys.argv[1], "apply", sys.argv[2]])
                """
            let r = try Lab.run("/usr/bin/python3", ["-c", caller, Lab.topo, path])
            #expect(r.status == 0, "\(r)")
            defer { _ = try? Lab.topo("down", "privs") }
            let p = try pids("privs")
            // CAP_NET_RAW is bit 13 (0x2000), CAP_NET_BIND_SERVICE bit 10 (0x400).
            let expected = ["root": "0000000000000000", "raw": "0000000000002000", "nobody": "0000000000000400"]
            for (name, caps) in expected {
                let pid = try #require(p[name], "\(name) has no pid")
                for set in ["CapInh", "CapPrm", "CapEff", "CapBnd"] {
                    #expect(Lab.procStatus(pid, set) == caps, "\(name) \(set)")
                }
                // Ambient capabilities are raised only for a workload that is not root (root gets its
                // permitted set from the bounding set at exec anyway): raw, without `user:`, is nobody.
                #expect(Lab.procStatus(pid, "CapAmb") == (name == "root" ? "0000000000000000" : caps), "\(name) CapAmb")
                // Only the workload that asked for root by name is root; one without `user:` is nobody.
                #expect(
                    Lab.procStatus(pid, "Uid")?.split(separator: "\t").first == (name == "root" ? "0" : "65534"),
                    "\(name) Uid")
                #expect(Lab.procStatus(pid, "NoNewPrivs") == "1", "\(name)")
                #expect(Lab.procStatus(pid, "SigIgn") == "0000000000000000", "\(name) SigIgn")
                #expect(Lab.procStatus(pid, "SigBlk") == "0000000000000000", "\(name) SigBlk")
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") == "/", "\(name) cwd")
                #expect(
                    Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) == ["0", "1", "2"],
                    "\(name) holds a descriptor of its caller's")
                // Its own session, and no controlling terminal (field 7 of /proc/PID/stat, after the command).
                #expect(getsid(pid) == pid)
                let stat = try #require(Lab.read("/proc/\(pid)/stat"))
                let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
                #expect(fields[4] == "0", "\(name) tty_nr")
            }
            // A workload that is not root runs with its securebits locked: NOROOT, NOROOT_LOCKED,
            // NO_SETUID_FIXUP_LOCKED = 0x0b (root is root: none).
            let bits = try Lab.topo("exec", "privs", "nobody", "--", "/usr/sbin/capsh", "--print")
            #expect(bits.stdout.contains("Securebits: 013/0xb/"), "\(bits)")
            let rootBits = try Lab.topo("exec", "privs", "root", "--", "/usr/sbin/capsh", "--print")
            #expect(rootBits.stdout.contains("Securebits: 00/0x0/"), "\(rootBits)")
            #expect(try Lab.topo("down", "privs").status == 0)
            #expect(Lab.leftovers(marker: "sleep 1007") == [])
        }

        /// A root workload (`user: root`) cannot raise its own limits, leave its cgroup, mount a cgroup
        /// hierarchy of its own or touch topo's state; `down` removes it.
        @Test func aRootWorkloadCannotRaiseItsLimitsLeaveItsCgroupOrTouchTopo() throws {
            let path = try Lab.profile(
                "hostile",
                """
                version: 1
                name: hostile
                workloads:
                  w: { cpus: { count: 1 }, memory: { max: 64M }, run: { command: ["\(Lab.repo)/Tests/Fixtures/lab/hostile.sh"], user: root } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "hostile") }
            let log = "/run/topo/hostile/logs/w.log"
            var waited = 0
            while !(Lab.read(log) ?? "").contains("done") && waited < 200 {
                usleep(100_000)
                waited += 1
            }
            let text = Lab.read(log) ?? ""
            #expect(text.contains("done") && !text.contains("ESCAPED"), "\(text)")
            #expect(text.components(separatedBy: "refused:").count - 1 == 7, "\(text)")
            // From the kernel's side: the limits are the plan's, the workload is where topo put it.
            let cg = "/sys/fs/cgroup/topo/hostile/w"
            #expect(Lab.read("\(cg)/memory.max") == "67108864\n")
            let pid = try #require(try pids("hostile")["w"])
            #expect(Lab.read("/proc/\(pid)/cgroup") == "0::/topo/hostile/w\n")
            #expect(cpuList(Lab.read("\(cg)/cpuset.cpus") ?? "").count == 1)
            #expect(FileManager.default.fileExists(atPath: "/run/topo/hostile/journal.jsonl"))
            #expect(try Lab.topo("down", "hostile").status == 0)
            #expect(kill(pid, 0) != 0)
            #expect(Lab.leftovers(marker: "sleep 1006") == [])
        }

        /// Names cannot collide across profiles (profile a-b workload c, profile a workload b-c), and a
        /// namespace topo did not make stays: one made by hand under topo's name after topo's was deleted
        /// behind its back (nsfs may even hand it the same inode), also when the journal holds no inode
        /// for it (apply killed inside its namespace batch): only topo's mark counts then.
        @Test func downDeletesOnlyNamespacesThatCarryItsMark() throws {
            let first = try Lab.profile(
                "a-b",
                "version: 1\nname: a-b\nworkloads: { c: { cpus: \"0\", isolation: shared }, d: { cpus: \"0\", isolation: shared } }\nlinks: [{ between: [c, d] }]\n"
            )
            let second = try Lab.profile(
                "a",
                "version: 1\nname: a\nworkloads: { b-c: { cpus: \"0\", isolation: shared }, e: { cpus: \"0\", isolation: shared } }\nlinks: [{ between: [b-c, e] }]\n"
            )
            #expect(try Lab.topo("apply", first).status == 0)
            let both = try Lab.topo("apply", second)
            #expect(both.status == 0, "\(both)")
            #expect(try Lab.topo("down", "a-b").status == 0)
            let listed = try Lab.run("ip", ["netns", "list"]).stdout
            #expect(
                listed.contains("topo.a.b-c") && listed.contains("topo.a.e") && !listed.contains("topo.a-b."),
                "\(listed)")
            // topo's namespace goes behind its back; one of the same name is made by hand.
            #expect(try Lab.run("ip", ["netns", "del", "topo.a.e"]).status == 0)
            #expect(try Lab.run("ip", ["netns", "add", "topo.a.e"]).status == 0)
            defer { _ = try? Lab.run("ip", ["netns", "del", "topo.a.e"]) }
            let journal = "/run/topo/a/journal.jsonl"
            let text = try #require(Lab.read(journal))
            let withoutInodes = text.replacingOccurrences(
                of: #""facts":\{"inode":[0-9]+\},"#, with: "", options: .regularExpression)
            #expect(withoutInodes != text)
            try withoutInodes.write(toFile: journal, atomically: false, encoding: .utf8)
            let down = try Lab.topo("down", "a")
            #expect(down.status == 0, "\(down)")
            #expect(down.stderr.contains("topo.a.e: no topo mark for a"), "\(down)")
            let after = try Lab.run("ip", ["netns", "list"]).stdout
            #expect(after.contains("topo.a.e") && !after.contains("topo.a.b-c"), "\(after)")
            #expect(try Lab.run("ip", ["netns", "del", "topo.a.e"]).status == 0)
            #expect(Lab.leftovers() == [])
        }
    }
}
