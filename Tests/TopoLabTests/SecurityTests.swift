import Foundation
import Testing

/// The security review's ways from a profile, a lock file or a workload to the host's root, each tried
/// as the attacker would and checked from the kernel's side (locks: RunTests.aLockPinsPlacementAndNothingElse).
extension LabTests {
    @Suite struct SecurityTests {
        /// A socket only root may connect to (mode 0600), under the host's /run, served until `stop`.
        /// Started detached (Lab.detach): Foundation's Process loses later children's exits while one runs.
        struct RootSocket {
            let path: String
            let pidFile: String

            init(_ path: String) throws {
                self.path = path
                pidFile = path + ".pid"
                try? FileManager.default.removeItem(atPath: path)
                let server = """
                    import os, socket, sys
                    s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o600); s.listen(8)
                    open(sys.argv[2], "w").write(str(os.getpid()))
                    while True:
                        c, _ = s.accept(); c.close()
                    """
                try Lab.detach(["/usr/bin/python3", "-c", server, path, pidFile])
                let deadline = Date().addingTimeInterval(10)
                while !FileManager.default.fileExists(atPath: pidFile) && Date() < deadline { usleep(50_000) }
            }

            func stop() {
                if let pid = Lab.read(pidFile).flatMap({ Int32($0) }) { kill(pid, SIGKILL) }
                try? FileManager.default.removeItem(atPath: path)
                try? FileManager.default.removeItem(atPath: pidFile)
            }
        }

        /// A process workload and a crun container on `image: /`, without `user:` and as `user: root`,
        /// try to write a sysctl, sysrq, a sysfs tunable and to reach a root-only socket under the host's
        /// /run: every attempt is refused and the host's values are unchanged.
        @Test func noWorkloadChangesTheHostOutsideItsCgroup() throws {
            let socket = try RootSocket("/run/topo-intruder.sock")
            defer { socket.stop() }
            // The socket answers root on the host: the test means something.
            #expect(
                try Lab.run(
                    "/usr/bin/python3",
                    ["-c", "import socket; s = socket.socket(socket.AF_UNIX); s.connect('\(socket.path)')"]
                ).status == 0)
            let corePattern = Lab.read("/proc/sys/kernel/core_pattern")
            let thp = Lab.read("/sys/kernel/mm/transparent_hugepage/enabled")
            // The script's text goes in the command itself: a container has a /tmp of its own, and CI may
            // clone the repository under /tmp.
            let script = try String(contentsOfFile: "\(Lab.repo)/Tests/Fixtures/lab/intruder.sh", encoding: .utf8)
            let body = script.split(separator: "\n").map { "          " + $0 }
            func workload(_ name: String, _ extra: [String]) -> [String] {
                [
                    "  \(name):", "    cpus: \"0\"", "    isolation: shared", "    run:", "      command:",
                    "        - /bin/sh", "        - -c", "        - |",
                ]
                    + body + ["        - intruder", "        - \(socket.path)", "        - \"1051\""]
                    + extra.map { "      " + $0 }
            }
            let lines =
                ["version: 1", "name: intruders", "workloads:"] + workload("p", []) + workload("r", ["user: root"])
                + workload("c", ["runtime: crun", "image: /"])
                + workload("cr", ["runtime: crun", "image: /", "user: root"])
            let path = try Lab.profile("intruders", lines.joined(separator: "\n") + "\n")
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "intruders") }
            for w in ["p", "r", "c", "cr"] {
                let log = "/run/topo/intruders/logs/\(w).log"
                let deadline = Date().addingTimeInterval(30)
                while !(Lab.read(log) ?? "").contains("done") && Date() < deadline { usleep(100_000) }
                let text = Lab.read(log) ?? ""
                #expect(text.contains("uid \(w.hasPrefix("r") || w == "cr" ? 0 : 65534)"), "\(w): \(text)")
                #expect(
                    text.contains("done") && !text.contains("ESCAPED")
                        && text.components(separatedBy: "refused:").count - 1 == 4, "\(w): \(text)")
            }
            #expect(Lab.read("/proc/sys/kernel/core_pattern") == corePattern)
            #expect(Lab.read("/sys/kernel/mm/transparent_hugepage/enabled") == thp)
            #expect(try Lab.topo("down", "intruders").status == 0)
            #expect(Lab.leftovers(marker: "1051") == [])
        }

        /// `topo exec` started on a terminal (a pty the test holds, as an operator's shell would be): the
        /// command's descriptors and controlling terminal are a pty of exec's own, never the caller's; a
        /// TIOCSTI from inside lands in that pty, where the command itself reads it back.
        @Test func execNeverHandsOverTheCallersTerminal() throws {
            let path = try Lab.profile(
                "ttyp",
                """
                version: 1
                name: ttyp
                workloads:
                  a: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1055"] } }
                """)
            #expect(try Lab.topo("apply", path).status == 0)
            defer { _ = try? Lab.topo("down", "ttyp") }
            let inside =
                #"echo PID=$$; sleep 1; python3 -c 'import fcntl, termios; [fcntl.ioctl(0, termios.TIOCSTI, bytes([c])) for c in b"injected\n"]' && echo STI=ok; read line; echo READ=$line"#
            let harness = """
                import os, pty, re, sys, time
                topo, inside = sys.argv[1], sys.argv[2]
                pid, master = pty.fork()
                if pid == 0:
                    os.execv(topo, [topo, "exec", "ttyp", "a", "--", "/bin/sh", "-c", inside])
                caller = os.readlink("/proc/%d/fd/0" % pid)  # the operator's terminal: topo's own stdin
                caller_rdev = os.stat(caller).st_rdev
                out, deadline, facts = b"", time.time() + 30, {}
                while time.time() < deadline:
                    try: chunk = os.read(master, 4096)
                    except OSError: break
                    if not chunk: break
                    out += chunk
                    m = re.search(rb"PID=(\\d+)", out)
                    if m and "fds" not in facts:
                        cmd = int(m.group(1))
                        facts["fds"] = [os.readlink("/proc/%d/fd/%d" % (cmd, fd)) for fd in (0, 1, 2)]
                        facts["tty_nr"] = int(open("/proc/%d/stat" % cmd).read().rsplit(")", 1)[1].split()[4])
                _, status = os.waitpid(pid, 0)
                print("caller", caller)
                print("caller_rdev", caller_rdev)
                print("fds", " ".join(facts.get("fds", ["?"])))
                print("tty_nr", facts.get("tty_nr", -1))
                print("status", os.waitstatus_to_exitcode(status))
                print("output", out.decode(errors="replace").replace("\\r", "").replace("\\n", "|"))
                """
            let r = try Lab.run("/usr/bin/python3", ["-c", harness, Lab.topo, inside])
            #expect(r.status == 0, "\(r)")
            var facts: [String: String] = [:]
            for line in r.stdout.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1)
                if parts.count == 2 { facts[String(parts[0])] = String(parts[1]) }
            }
            let caller = try #require(facts["caller"])
            let fds = (facts["fds"] ?? "").split(separator: " ").map(String.init)
            #expect(fds.count == 3 && fds.allSatisfy { $0.hasPrefix("/dev/pts/") && $0 != caller }, "\(facts)")
            #expect(Set(fds).count == 1, "one pty of exec's own on 0, 1 and 2: \(fds)")
            #expect(
                facts["tty_nr"] != facts["caller_rdev"] && facts["tty_nr"] != "0",
                "the command's controlling terminal is exec's pty: \(facts)")
            #expect(facts["status"] == "0", "\(facts)")
            // Injected into exec's own pty: the command read it back itself.
            #expect(facts["output"]?.contains("READ=injected") == true, "\(facts)")
            #expect(try Lab.topo("down", "ttyp").status == 0)
            #expect(Lab.leftovers(marker: "1055") == [])
        }

        static func mountCount() -> Int { (Lab.read("/proc/self/mountinfo") ?? "").split(separator: "\n").count }

        /// Twelve `image: /` containers (one spelled `//`, which is the host's root too) share one read-only
        /// copy of the host: the mount table grows by the host's mounts once, not by a copy of every
        /// earlier copy per container, and `down` returns it to its size before.
        @Test(
            .enabled(
                if: FileManager.default.isExecutableFile(atPath: "/usr/bin/crun"),
                "needs crun (scripts/test installs it)"))
        func hostRootContainersShareOneCopyOfTheHost() throws {
            let workloads = (1...12).map { i in
                "  c\(i): { cpus: { count: 1 }, isolation: shared, run: { command: [\"/bin/sleep\", \"1057\"], runtime: crun, image: \(i == 12 ? "\"//\"" : "/") } }"
            }.joined(separator: "\n")
            let path = try Lab.profile("many", "version: 1\nname: many\nworkloads:\n\(workloads)\n")
            let before = Self.mountCount()
            let started = Date()
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "many") }
            let during = Self.mountCount()
            print(
                "measured: 12 image: / containers applied in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; mounts \(before) -> \(during)"
            )
            #expect(during - before < 50 * 12, "the mount table grew from \(before) to \(during)")
            // `//` is the host's root: the same shared, read-only copy, never the host's writable /.
            for w in ["c1", "c12"] {
                let config = try #require(
                    try Lab.json(Lab.read("/run/topo/many/bundles/\(w)/config.json") ?? "") as? [String: Any])
                let root = try #require(config["root"] as? [String: Any])
                #expect(
                    root["path"] as? String == "/run/topo/images/host-root/rootfs" && root["readonly"] as? Bool == true,
                    "\(w): \(root)")
            }
            let write = try Lab.topo("exec", "many", "c12", "--", "/bin/sh", "-c", "echo x > /etc/topo-written-by-c12")
            #expect(write.status != 0 && !FileManager.default.fileExists(atPath: "/etc/topo-written-by-c12"))
            let down = try Lab.topo("down", "many")
            #expect(down.status == 0, "\(down)")
            #expect(Self.mountCount() == before, "mounts \(before) before, \(Self.mountCount()) after down")
            #expect(Lab.leftovers(marker: "sleep 1057") == [])
        }

        /// A crun container made by hand under the id topo would give a workload's: the apply that meets
        /// it is refused (exit 3) before anything is made, and the container is left running. (Should one
        /// appear after that check, the launch fails and its undo leaves it alone: not topo's bundle.)
        @Test(
            .enabled(
                if: FileManager.default.isExecutableFile(atPath: "/usr/bin/crun")
                    && FileManager.default.fileExists(atPath: "/bin/busybox"),
                "needs crun and busybox-static (scripts/test installs them)"))
        func aContainerTopoDidNotMakeSurvivesTheApplyThatMeetsIt() throws {
            let bundle = "/tmp/handmade-\(getpid())"
            try ContainerTests.busyboxRootfs("\(bundle)/rootfs")
            defer { try? FileManager.default.removeItem(atPath: bundle) }
            #expect(try Lab.run("/usr/bin/crun", ["spec", "--bundle", bundle]).status == 0)
            var config = try #require(try Lab.json(Lab.read("\(bundle)/config.json") ?? "") as? [String: Any])
            var process = try #require(config["process"] as? [String: Any])
            process["terminal"] = false
            process["args"] = ["/bin/sleep", "1059"]
            config["process"] = process
            var linux = try #require(config["linux"] as? [String: Any])
            linux["cgroupsPath"] = "/handmade-\(getpid())"
            linux["namespaces"] = [["type": "pid"], ["type": "mount"], ["type": "ipc"], ["type": "uts"]]
            config["linux"] = linux
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(bundle)/config.json"))
            let id = "topo.hm.w"
            // crun switches controllers on at the cgroup root for the hand-made container's own cgroup:
            // they are switched off again once it is gone, as the other lab tests expect the root.
            let control = "/sys/fs/cgroup/cgroup.subtree_control"
            let enabledBefore = Set((Lab.read(control) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            defer {
                _ = try? Lab.run("/usr/bin/crun", ["delete", "--force", id])
                let added = Set((Lab.read(control) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
                    .subtracting(enabledBefore)
                if !added.isEmpty {
                    try? added.map { "-\($0)" }.joined(separator: " ").write(
                        toFile: control, atomically: false, encoding: .utf8)
                }
            }
            // Its output to a file: a detached container keeps its stdio, and a pipe would never end.
            let made = try Lab.run(
                "/bin/sh",
                [
                    "-c", "exec /usr/bin/crun run --detach --bundle \"$0\" \"$1\" </dev/null >\"$0/out\" 2>&1", bundle,
                    id,
                ])
            #expect(made.status == 0, "\(made)")
            let path = try Lab.profile(
                "hm",
                """
                version: 1
                name: hm
                workloads:
                  w: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1061"], runtime: crun, image: / } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(
                apply.status == 3 && apply.stderr.contains("already exists")
                    && apply.stderr.contains("not one topo made"), "\(apply)")
            let state = try Lab.run("/usr/bin/crun", ["state", id])
            #expect(
                state.status == 0 && state.stdout.contains("\"running\"") && state.stdout.contains(bundle),
                "the hand-made container is gone: \(state)")
            #expect(Lab.leftovers(marker: "sleep 1061").filter { !$0.hasPrefix("root cgroup.subtree_control") } == [])
            #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/topo/hm"))
        }

        /// report -o, run --report and plan --lock meet a link planted at their path: each refuses (exit
        /// 3) and the link's target is unchanged; a state directory others can write is refused (exit 3)
        /// before anything is made.
        @Test func rootNeverWritesThroughALinkOrIntoAnOpenStateDirectory() throws {
            let victim = "/tmp/sec-victim"
            try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: victim) }
            let path = try Lab.profile(
                "sec",
                """
                version: 1
                name: sec
                workloads:
                  a: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1053"] } }
                """)
            let link = "/tmp/sec-result.json"
            let lockLink = "/tmp/sec.lock.json"
            for l in [link, lockLink] {
                try? FileManager.default.removeItem(atPath: l)
                try FileManager.default.createSymbolicLink(atPath: l, withDestinationPath: victim)
            }
            defer { [link, lockLink].forEach { try? FileManager.default.removeItem(atPath: $0) } }
            let report = try Lab.topo("report", path, "-o", link)
            #expect(report.status == 3 && report.stderr.contains("symbolic link"), "\(report)")
            let run = try Lab.topo("run", path, "--report", link, "--", "/bin/true")
            #expect(run.status == 3 && run.stderr.contains("symbolic link"), "\(run)")
            let lock = try Lab.topo("plan", path, "--lock")
            #expect(lock.status == 3 && lock.stderr.contains("symbolic link"), "\(lock)")
            #expect(Lab.read(victim) == "precious\n")
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == victim)
            #expect(Lab.leftovers(marker: "sleep 1053") == [])
            // Without the link, the same report is a regular file.
            try FileManager.default.removeItem(atPath: link)
            #expect(try Lab.topo("report", path, "-o", link).status == 0)
            #expect(Lab.read(link)?.contains("\"topo-report/1\"") == true)
            try? FileManager.default.removeItem(atPath: link)

            let open = "/tmp/sec-open-state"
            try? FileManager.default.removeItem(atPath: open)
            try FileManager.default.createDirectory(
                atPath: open, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
            defer { try? FileManager.default.removeItem(atPath: open) }
            #expect(chmod(open, 0o777) == 0)
            let refused = try Lab.topo("apply", path, "--state-dir", open)
            #expect(refused.status == 3 && refused.stderr.contains("writable by group or others"), "\(refused)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: open)) ?? ["?"]).isEmpty)
            #expect(Lab.leftovers(marker: "sleep 1053") == [])
        }
    }
}
