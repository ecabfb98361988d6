import Foundation
import Testing

/// Container workloads under crun and runc: inside exactly the plan a process workload gets, checked
/// from the kernel's side, and gone after `down` with nothing left in the runtime's state.
extension LabTests {
    @Suite struct ContainerTests {
        static let runtimes = ["crun", "runc"].filter { name in
            ["/usr/bin/crun", "/usr/sbin/runc"].contains {
                $0.hasSuffix("/" + name) && FileManager.default.isExecutableFile(atPath: $0)
            }
        }

        /// Nothing of topo's or the runtime's is left: no container, no runtime state, no bundle mount.
        func nothingLeft(_ runtime: String) throws -> [String] {
            var found = Lab.leftovers()
            let list = try Lab.run(runtime, ["list", "--quiet"]).stdout.split(separator: "\n").filter {
                $0.hasPrefix("topo.")
            }
            if !list.isEmpty { found.append("\(runtime) list: \(list)") }
            let state = "/run/\(runtime)"
            let entries = ((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).filter {
                $0.hasPrefix("topo.")
            }
            if !entries.isEmpty { found.append("\(state): \(entries)") }
            let mounts = (Lab.read("/proc/self/mountinfo") ?? "").split(separator: "\n").filter {
                $0.contains("/run/topo")
            }
            if !mounts.isEmpty { found.append("mounts: \(mounts)") }
            return found
        }

        @Test(.enabled(if: !runtimes.isEmpty, "needs crun or runc (scripts/test installs them)"), arguments: runtimes)
        func aContainerLandsInThePlanAndLeavesNothing(_ runtime: String) throws {
            let node = Lab.shape.nodes - 1
            let path = try Lab.profile(
                "ctr",
                """
                version: 1
                name: ctr
                workloads:
                  p: { cpus: { count: 1, node: 0 }, isolation: shared, run: { command: ["/bin/sleep", "1027"] } }
                  c:
                    cpus: { count: 1, node: \(node) }
                    isolation: shared
                    memory: { max: 96M, policy: bind }
                    run: { command: ["/bin/sleep", "1029"], runtime: \(runtime), image: /, capabilities: [NET_RAW] }
                links:
                  - { between: [p, c] }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "ctr") }
            let cg = "/sys/fs/cgroup/topo/ctr/c"
            let pids = Lab.pids(inCgroup: cg + "/ctr")
            let pid = try #require(pids.first, "no process in \(cg)/ctr: \(apply)")
            // What the kernel says about the container's process.
            let cpus = (Lab.read(cg + "/cpuset.cpus") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Lab.procStatus(pid, "Cpus_allowed_list") == cpus)
            #expect(Lab.procStatus(pid, "Mems_allowed_list") == "\(node)")
            #expect(
                (Lab.read("/proc/\(pid)/numa_maps") ?? "").split(separator: "\n").first?.contains("bind:\(node)")
                    == true)
            #expect(
                Lab.read(cg + "/memory.max")?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(96 << 20)",
                "the runtime changed the plan's limit")
            #expect(
                Lab.procStatus(pid, "CapEff") == "0000000000002000"
                    && Lab.procStatus(pid, "CapBnd") == "0000000000002000")
            #expect(Lab.procStatus(pid, "NoNewPrivs") == "1")
            let netns = try #require(
                try? FileManager.default.attributesOfItem(atPath: "/run/netns/topo.ctr.c")[.systemFileNumber] as? UInt64
            )
            let inner = try #require(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"))
            #expect(inner == "net:[\(netns)]")
            // Its peer by name, through the runtime's exec.
            let peer = try Lab.topo("exec", "ctr", "c", "--", "getent", "hosts", "p")
            #expect(peer.status == 0 && peer.stdout.contains(" p"), "\(peer)")
            let status = try Lab.topo("status", "--json")
            #expect(
                status.stdout.contains("\"container\" : \"topo.ctr.c\"")
                    && status.stdout.contains("\"runtime\" : \"\(runtime)\""), "\(status)")
            // verify treats it as it treats a process, and sees a changed limit.
            let verify = try Lab.topo("verify", "ctr")
            #expect(verify.status == 0, "\(verify)")
            // The active probes reach the container through the runtime's exec: its memory lands on its
            // node, it runs on its CPU, and the link to the process workload carries datagrams.
            let active = try Lab.topo("verify", "ctr", "--active", "--json")
            #expect(active.status == 0, "\(active)")
            for id in ["memory.placement", "cpu.placement"] {
                #expect(active.stdout.contains("\"id\" : \"\(id)\""), "\(id) missing: \(active.stdout)")
            }
            #expect(!active.stdout.contains("\"status\" : \"fail\""), "\(active.stdout)")
            // The probe is the topo binary, bound into the container's own /tmp: it runs there wherever topo
            // lives on the host (a CI clone under /tmp included), so no probe may merely warn.
            #expect(!active.stdout.contains("\"status\" : \"warn\""), "\(active.stdout)")
            let settle = Date().addingTimeInterval(3)  // the far end exits on the near end's goodbye
            while Lab.pids(inCgroup: cg + "/ctr").count > 1 && Date() < settle { usleep(50_000) }
            #expect(
                Lab.pids(inCgroup: cg + "/ctr").count == 1,
                "a probe outlived verify --active: \(Lab.pids(inCgroup: cg + "/ctr"))")
            try "max".write(toFile: cg + "/memory.max", atomically: false, encoding: .utf8)
            let changed = try Lab.topo("verify", "ctr")
            #expect(changed.status == 1 && changed.stdout.contains("cgroup.settings workload c"), "\(changed)")
            let down = try Lab.topo("down", "ctr")
            #expect(down.status == 0, "\(down)")
            let left = try nothingLeft(runtime)
            #expect(left == [], "\(left)")
        }

        /// A container without a link shares the host's network namespace (as a process workload does),
        /// and still starts under both runtimes.
        @Test(.enabled(if: !runtimes.isEmpty, "needs crun or runc (scripts/test installs them)"), arguments: runtimes)
        func aContainerWithoutALinkRuns(_ runtime: String) throws {
            let path = try Lab.profile(
                "solo",
                """
                version: 1
                name: solo
                workloads:
                  c: { cpus: { count: 1 }, isolation: shared, memory: { max: 64M }, run: { command: ["/bin/sleep", "1039"], runtime: \(runtime) } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            let pid = try #require(Lab.pids(inCgroup: "/sys/fs/cgroup/topo/solo/c/ctr").first, "\(apply)")
            let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")) == host)
            #expect(try Lab.topo("down", "solo").status == 0)
            let left = try nothingLeft(runtime)
            #expect(left == [], "\(left)")
        }

        /// A container whose start fails is rolled back whole: exit 4, and no cgroup, bundle, mount or
        /// runtime state left.
        @Test(.enabled(if: !runtimes.isEmpty, "needs crun or runc (scripts/test installs them)"), arguments: runtimes)
        func aFailedStartRollsBackEverything(_ runtime: String) throws {
            // A program that exists on the host (preflight passes) but not in the container, whose /tmp is
            // a fresh tmpfs: the runtime's start fails.
            let program = "/tmp/topo-ctr-true-\(getpid())"
            try FileManager.default.copyItem(atPath: "/bin/true", toPath: program)
            defer { try? FileManager.default.removeItem(atPath: program) }
            let path = try Lab.profile(
                "bad",
                """
                version: 1
                name: bad
                workloads:
                  c: { cpus: { count: 1 }, isolation: shared, run: { command: ["\(program)"], runtime: \(runtime), image: / } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 4, "\(apply)")
            #expect(apply.stderr.contains("container topo.bad.c"), "\(apply)")
            let left = try nothingLeft(runtime)
            #expect(left == [], "\(left)")
        }

        /// The reference topology as crun containers: iperf3 runs across the shaped link.
        @Test(
            .enabled(
                if: runtimes.contains("crun") && Lab.shape.nodes >= 2 && Lab.shape.cpus >= 8,
                "needs crun, 2 NUMA nodes and 8 CPUs"))
        func theReferenceTopologyRunsAsContainers() throws {
            let apply = try Lab.topo("apply", Lab.repo + "/Profiles/api-gateway-containers.yaml")
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "api-gateway-containers") }
            let client = "/sys/fs/cgroup/topo/api-gateway-containers/client"
            let deadline = Date().addingTimeInterval(90)
            while !Lab.pids(inCgroup: client + "/ctr").isEmpty && Date() < deadline { sleep(1) }
            let log = Lab.read("/run/topo/api-gateway-containers/logs/client.log") ?? ""
            let receiver = log.split(separator: "\n").last { $0.contains("receiver") }
            print("measured: api-gateway-containers iperf3: \(receiver ?? "no receiver line")")
            #expect(receiver?.contains("bits/sec") == true, "\(log)")
            let down = try Lab.topo("down", "api-gateway-containers")
            #expect(down.status == 0, "\(down)")
            let left = try nothingLeft("crun")
            #expect(left == [], "\(left)")
        }

        /// A busybox root filesystem (busybox-static and a few of its names) in a new directory.
        static func busyboxRootfs(_ dir: String) throws {
            try FileManager.default.createDirectory(atPath: "\(dir)/bin", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: "\(dir)/bin/busybox")
            for tool in ["sh", "sleep", "cat"] {
                try FileManager.default.createSymbolicLink(atPath: "\(dir)/bin/\(tool)", withDestinationPath: "busybox")
            }
        }

        /// An OCI image layout (made here with umoci from busybox) is unpacked once into topo's image
        /// cache and shared by every container that runs it, across profiles: the containers run the
        /// cache's very file, see their peer in their hosts file, and the image goes with its last user.
        @Test(
            .enabled(
                if: runtimes.contains("crun") && FileManager.default.isExecutableFile(atPath: "/usr/bin/umoci")
                    && FileManager.default.fileExists(atPath: "/bin/busybox"),
                "needs crun, umoci and busybox-static (scripts/test installs them)"))
        func anImageLayoutIsUnpackedOnceAndShared() throws {
            let layout = "/tmp/topo-layout-\(getpid())"
            let work = "/tmp/topo-layout-work-\(getpid())"
            defer {
                try? FileManager.default.removeItem(atPath: layout)
                try? FileManager.default.removeItem(atPath: work)
            }
            for args in [
                ["init", "--layout", layout], ["new", "--image", "\(layout):bench"],
                ["unpack", "--image", "\(layout):bench", work],
            ] {
                let r = try Lab.run("/usr/bin/umoci", args)
                #expect(r.status == 0, "umoci \(args): \(r)")
            }
            try Self.busyboxRootfs("\(work)/rootfs")
            #expect(try Lab.run("/usr/bin/umoci", ["repack", "--image", "\(layout):bench", work]).status == 0)
            let path = try Lab.profile(
                "img",
                """
                version: 1
                name: img
                workloads:
                  p: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1035"] } }
                  c: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1037"], runtime: crun, image: "\(layout)" } }
                links:
                  - { between: [p, c] }
                """)
            let other = try Lab.profile(
                "img2",
                """
                version: 1
                name: img2
                workloads:
                  d: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/sleep", "1041"], runtime: crun, image: "\(layout):bench" } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "img") }
            let apply2 = try Lab.topo("apply", other)
            #expect(apply2.status == 0, "\(apply2)")
            defer { _ = try? Lab.topo("down", "img2") }
            let images = (try? FileManager.default.contentsOfDirectory(atPath: "/run/topo/images")) ?? []
            #expect(images.count == 1 && images.first?.hasPrefix("sha256-") == true, "\(images)")
            let cached = "/run/topo/images/\(images.first ?? "")"
            #expect(
                Set((try? FileManager.default.contentsOfDirectory(atPath: "\(cached)/users")) ?? []) == [
                    "img.c", "img2.d",
                ])
            // Both containers run the cache's one busybox (same device and inode, as the kernel maps it).
            let cachedFile =
                try FileManager.default.attributesOfItem(atPath: "\(cached)/rootfs/bin/busybox")[.systemFileNumber]
                as? UInt64
            for (cg, profile) in [("/sys/fs/cgroup/topo/img/c/ctr", "img"), ("/sys/fs/cgroup/topo/img2/d/ctr", "img2")]
            {
                let pid = try #require(Lab.pids(inCgroup: cg).first, "no process in \(cg): \(profile)")
                var st = stat()
                #expect(
                    stat("/proc/\(pid)/exe", &st) == 0 && UInt64(st.st_ino) == cachedFile,
                    "\(profile): not the cached busybox")
            }
            let hosts = try Lab.topo("exec", "img", "c", "--", "/bin/cat", "/etc/hosts")
            #expect(hosts.status == 0 && hosts.stdout.contains("\tp\n"), "\(hosts)")
            #expect(try Lab.topo("down", "img").status == 0)
            #expect(
                ((try? FileManager.default.contentsOfDirectory(atPath: "\(cached)/users")) ?? []) == ["img2.d"],
                "the image went while img2 used it")
            #expect(try Lab.topo("down", "img2").status == 0)
            let left = try nothingLeft("crun")
            #expect(left == [], "\(left)")
        }

        // MARK: podman

        static let podman =
            FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
            && FileManager.default.fileExists(atPath: "/bin/busybox")

        /// podman with its storage on the lab's tmpfs (`CONTAINERS_STORAGE_CONF`, as a user would point it
        /// elsewhere) and a busybox image imported into it.
        static func podmanStorage() throws -> [String: String] {
            let dir = "/tmp/topo-podman-\(getpid())"
            try FileManager.default.createDirectory(atPath: "\(dir)/tmp", withIntermediateDirectories: true)
            try """
            [storage]
            driver = "vfs"
            graphroot = "\(dir)/graph"
            runroot = "\(dir)/run"
            """.write(toFile: "\(dir)/storage.conf", atomically: true, encoding: .utf8)
            let env = ["CONTAINERS_STORAGE_CONF": "\(dir)/storage.conf", "TMPDIR": "\(dir)/tmp"]
            if try Lab.run(
                "/usr/bin/podman",
                [
                    "--cgroup-manager", "cgroupfs", "--events-backend", "file", "image", "exists",
                    "localhost/topo-bench:1",
                ], environment: env
            ).status != 0 {
                try busyboxRootfs("\(dir)/rootfs")
                #expect(try Lab.run("/bin/tar", ["-C", "\(dir)/rootfs", "-cf", "\(dir)/rootfs.tar", "."]).status == 0)
                let imported = try Lab.run(
                    "/usr/bin/podman",
                    [
                        "--cgroup-manager", "cgroupfs", "--events-backend", "file", "import", "\(dir)/rootfs.tar",
                        "localhost/topo-bench:1",
                    ], environment: env)
                #expect(imported.status == 0, "podman import: \(imported)")
            }
            return env
        }

        /// A podman container from an image in its storage lands in the same plan as crun's and runc's,
        /// from podman's own options; `down` leaves no container, no `conmon` cgroup, nothing of topo's.
        @Test(.enabled(if: podman, "needs podman and busybox-static (scripts/test installs them)"))
        func aPodmanContainerLandsInThePlanAndLeavesNothing() throws {
            let env = try Self.podmanStorage()
            func topo(_ args: String...) throws -> Lab.Outcome { try Lab.run(Lab.topo, args, environment: env) }
            let node = Lab.shape.nodes - 1
            let path = try Lab.profile(
                "pm",
                """
                version: 1
                name: pm
                workloads:
                  p: { cpus: { count: 1, node: 0 }, isolation: shared, run: { command: ["/bin/sleep", "1043"] } }
                  c:
                    cpus: { count: 1, node: \(node) }
                    isolation: shared
                    memory: { max: 96M, policy: bind }
                    pids: 64
                    run: { command: ["/bin/sh", "-c", "echo hello from c; exec sleep 1045"], runtime: podman, image: localhost/topo-bench:1, capabilities: [NET_RAW] }
                links:
                  - { between: [p, c] }
                """)
            let apply = try topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? topo("down", "pm") }
            let cg = "/sys/fs/cgroup/topo/pm/c"
            let libpod = ((try? FileManager.default.contentsOfDirectory(atPath: cg)) ?? []).filter {
                $0.hasPrefix("libpod-")
            }
            let pid = try #require(
                libpod.first.flatMap { Lab.pids(inCgroup: "\(cg)/\($0)").first }, "no container below \(cg): \(apply)")
            let cpus = (Lab.read(cg + "/cpuset.cpus") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Lab.procStatus(pid, "Cpus_allowed_list") == cpus)
            #expect(Lab.procStatus(pid, "Mems_allowed_list") == "\(node)")
            #expect(
                (Lab.read("/proc/\(pid)/numa_maps") ?? "").split(separator: "\n").first?.contains("bind:\(node)")
                    == true)
            #expect(
                Lab.read(cg + "/memory.max")?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(96 << 20)",
                "podman changed the plan's limit")
            #expect(
                Lab.read("\(cg)/\(libpod[0])/memory.max")?.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "\(96 << 20)", "podman's own cgroup got another limit")
            #expect(Lab.read("\(cg)/\(libpod[0])/pids.max")?.trimmingCharacters(in: .whitespacesAndNewlines) == "64")
            #expect(
                Lab.procStatus(pid, "CapEff") == "0000000000002000"
                    && Lab.procStatus(pid, "CapBnd") == "0000000000002000")
            #expect(Lab.procStatus(pid, "NoNewPrivs") == "1")
            let netns = try #require(
                try? FileManager.default.attributesOfItem(atPath: "/run/netns/topo.pm.c")[.systemFileNumber] as? UInt64)
            #expect(
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")) == "net:[\(netns)]")
            // Its output, without podman's k8s-file prefix.
            let logs = try topo("logs", "pm", "c")
            #expect(logs.status == 0 && logs.stdout.split(separator: "\n").contains("hello from c"), "\(logs)")
            let hosts = try topo("exec", "pm", "c", "--", "/bin/cat", "/etc/hosts")
            #expect(hosts.status == 0 && hosts.stdout.contains("\tp\n"), "\(hosts)")
            let status = try topo("status", "--json")
            #expect(
                status.stdout.contains("\"container\" : \"topo.pm.c\"")
                    && status.stdout.contains("\"runtime\" : \"podman\""), "\(status)")
            let verify = try topo("verify", "pm")
            #expect(verify.status == 0, "\(verify)")
            try "max".write(toFile: cg + "/memory.max", atomically: false, encoding: .utf8)
            let changed = try topo("verify", "pm")
            #expect(changed.status == 1 && changed.stdout.contains("cgroup.settings workload c"), "\(changed)")
            let down = try topo("down", "pm")
            #expect(down.status == 0, "\(down)")
            let ps = try Lab.run(
                "/usr/bin/podman",
                ["--cgroup-manager", "cgroupfs", "--events-backend", "file", "ps", "--all", "--format", "{{.Names}}"],
                environment: env)
            #expect(!ps.stdout.contains("topo."), "\(ps)")
            let left = Lab.leftovers()
            #expect(left == [], "\(left)")
        }

        /// An image podman does not have is refused before anything is made, naming how to get it.
        @Test(.enabled(if: podman, "needs podman and busybox-static (scripts/test installs them)"))
        func aMissingPodmanImageIsRefusedInPreflight() throws {
            let env = try Self.podmanStorage()
            let path = try Lab.profile(
                "pmx",
                """
                version: 1
                name: pmx
                workloads:
                  c: { cpus: { count: 1 }, isolation: shared, run: { command: ["/bin/true"], runtime: podman, image: localhost/not-here:1 } }
                """)
            let apply = try Lab.run(Lab.topo, ["apply", path], environment: env)
            #expect(apply.status == 3 && apply.stderr.contains("podman pull localhost/not-here:1"), "\(apply)")
            #expect(Lab.leftovers() == [])
        }
    }
}
