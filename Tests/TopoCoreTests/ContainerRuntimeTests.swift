import CTopoShim
import Foundation
import Testing

@testable import TopoCore

/// The OCI bundle topo writes for a container workload, as a value.
@Suite struct OCIBundleTests {
    func launch(user: String? = nil, caps: [String] = ["CAP_NET_RAW"]) -> LaunchResource {
        LaunchResource(
            profile: "p", workload: "c", runtime: .crun, image: "/", command: ["/usr/bin/iperf3", "-s"],
            environment: ["PATH=/usr/bin", "TOPO_WORKLOAD=c"],
            workdir: nil, user: user, capabilities: caps, cgroup: "topo/p/c", cpus: CPUSet([2, 3]), memoryPolicy: .bind,
            policyNodes: CPUSet([1]),
            logPath: "/run/topo/p/logs/c.log", netns: "topo.p.c", hostsFile: "/etc/netns/topo.p.c/hosts")
    }

    @Test func theConfigHoldsThePlanAndNothingTheWorkloadCgroupAlreadyEnforces() throws {
        let c = OCIBundle.config(launch(), rootfs: "/run/topo/p/bundles/c/rootfs", uid: 0, gid: 0, nofile: 4096)
        #expect(c.linux.cgroupsPath == "/topo/p/c/ctr")
        #expect(c.linux.namespaces.contains(OCIConfig.Namespace(type: "network", path: "/run/netns/topo.p.c")))
        #expect(
            c.mounts.contains {
                $0.destination == "/etc/hosts" && $0.source == "/etc/netns/topo.p.c/hosts" && $0.options.contains("ro")
            })
        #expect(c.mounts.contains { $0.destination == "/sys" && $0.type == "sysfs" && $0.options.contains("ro") })
        var unlinked = launch()
        unlinked.netns = nil
        let shared = OCIBundle.config(unlinked, rootfs: "/r", uid: 0, gid: 0, nofile: 1024)
        #expect(shared.mounts.contains { $0.destination == "/sys" && $0.type == "bind" && $0.options.contains("ro") })
        #expect(!shared.linux.namespaces.contains { $0.type == "network" })
        #expect(c.root == OCIConfig.Root(path: "/run/topo/p/bundles/c/rootfs", readonly: true))
        #expect(c.process.args == ["/usr/bin/iperf3", "-s"] && c.process.cwd == "/" && c.process.noNewPrivileges)
        // Exactly the listed capabilities, in every set; ambient only for a user other than root.
        let caps = c.process.capabilities
        #expect(
            [caps.bounding, caps.effective, caps.inheritable, caps.permitted]
                == Array(repeating: ["CAP_NET_RAW"], count: 4) && caps.ambient.isEmpty)
        #expect(
            OCIBundle.config(launch(user: "65534"), rootfs: "/r", uid: 65534, gid: 65534, nofile: 1024).process
                .capabilities.ambient == ["CAP_NET_RAW"])
        #expect(
            OCIBundle.config(launch(caps: []), rootfs: "/r", uid: 0, gid: 0, nofile: 1024).process.capabilities.bounding
                .isEmpty)
        // No linux.resources and no memoryPolicy in the JSON: the workload cgroup and the inherited policy hold them.
        let json = JSONOutput.encode(c)
        #expect(
            !json.contains("\"resources\"") && !json.contains("memoryPolicy")
                && json.contains("\"ociVersion\" : \"1.0.2\""))
        #expect(OCIBundle.containerID(launch()) == "topo.p.c")
    }

    @Test func theTopoBinaryIsBoundForTheProbesInsideTheContainersOwnTmp() throws {
        let c = OCIBundle.config(launch(), rootfs: "/r", uid: 0, gid: 0, nofile: 1024, probe: "/usr/local/bin/topo")
        let tmp = try #require(c.mounts.firstIndex { $0.destination == "/tmp" })
        let probe = try #require(c.mounts.firstIndex { $0.destination == ContainerSupport.probePath })
        #expect(probe > tmp, "bound after the tmpfs it lands in")
        #expect(
            c.mounts[probe].source == "/usr/local/bin/topo" && c.mounts[probe].options.contains("ro")
                && c.mounts[probe].options.contains("nosuid"))
        #expect(
            !OCIBundle.config(launch(), rootfs: "/r", uid: 0, gid: 0, nofile: 1024).mounts.contains {
                $0.destination == ContainerSupport.probePath
            })
    }

    @Test func usersAreNumbersOrNamesOfThisHost() throws {
        #expect(try OCIBundle.user(nil).get() == (65534, 65534))
        #expect(throws: TopoFailure.self) { try OCIBundle.user("4294967295:0").get() }
        #expect(try OCIBundle.user("1000:1001").get() == (1000, 1001))
        #expect(try OCIBundle.user("root").get() == (0, 0))
        #expect(throws: TopoFailure.self) { try OCIBundle.user("no-such-user-here").get() }
    }
}

/// podman is given the plan in its own options.
@Suite struct PodmanRuntimeTests {
    func launch(netns: String? = "topo.p.c", settings: [CgroupSetting]) -> LaunchResource {
        LaunchResource(
            profile: "p", workload: "c", runtime: .podman, image: "localhost/bench:1", command: ["iperf3", "-s"],
            environment: ["TOPO_WORKLOAD=c"],
            workdir: "/srv", user: "65534", capabilities: ["CAP_NET_RAW", "CAP_NET_ADMIN"], cgroup: "topo/p/c",
            cpus: CPUSet([2, 3]),
            memoryPolicy: .bind, policyNodes: CPUSet([1]), logPath: "/run/topo/p/logs/c.log", netns: netns,
            hostsFile: "/etc/netns/topo.p.c/hosts", settings: settings)
    }

    /// The value following an option, for each time it appears.
    func values(_ a: [String], _ option: String) -> [String] {
        a.indices.filter { a[$0] == option && $0 + 1 < a.count }.map { a[$0 + 1] }
    }

    @Test func theRunArgumentsCarryThePlan() throws {
        let settings: [CgroupSetting] = [
            .cpus(CPUSet([2, 3])), .mems(CPUSet([1])), .memoryMax(.value(Bytes(96 << 20))), .pidsMax(.value(64)),
            .cpuMax(quota: Duration(nanoseconds: 50_000_000), period: Duration(nanoseconds: 100_000_000)),
            .cpuWeight(200), .memoryHigh(.value(Bytes(64 << 20))),
        ]
        let a = PodmanRuntime.runArguments(
            launch(settings: settings), image: "localhost/bench:1", uid: 65534, gid: 65534, nofile: 4096,
            probe: "/usr/bin/topo")
        #expect(a.prefix(2) == ["run", "--detach"])
        #expect(
            values(a, "--name") == ["topo.p.c"] && values(a, "--cgroup-parent") == ["/topo/p/c"]
                && values(a, "--pull") == ["never"])
        #expect(values(a, "--cpuset-cpus") == ["2-3"] && values(a, "--cpuset-mems") == ["1"])
        #expect(values(a, "--memory") == [String(96 << 20)] && values(a, "--pids-limit") == ["64"])
        #expect(values(a, "--cpu-quota") == ["50000"] && values(a, "--cpu-period") == ["100000"])
        // No podman option for cpu.weight or memory.high: the workload cgroup above enforces them.
        #expect(!a.contains("--cpu-shares") && !a.contains("--memory-reservation"))
        #expect(values(a, "--network") == ["ns:/run/netns/topo.p.c"])
        #expect(values(a, "--cap-drop") == ["ALL"] && values(a, "--cap-add") == ["CAP_NET_ADMIN", "CAP_NET_RAW"])
        #expect(
            values(a, "--security-opt") == ["no-new-privileges"] && values(a, "--user") == ["65534:65534"]
                && a.contains("--read-only"))
        #expect(
            values(a, "--volume") == [
                "/etc/netns/topo.p.c/hosts:/etc/hosts:ro", "/usr/bin/topo:\(ContainerSupport.probePath):ro",
            ])
        #expect(
            values(a, "--log-opt") == ["path=/run/topo/p/logs/c.log"] && values(a, "--env") == ["TOPO_WORKLOAD=c"]
                && values(a, "--workdir") == ["/srv"])
        #expect(values(a, "--label") == ["io.topo.profile=p"])
        // The image after `--`, so no image name is read as an option; then the command as given.
        #expect(Array(a.suffix(4)) == ["--", "localhost/bench:1", "iperf3", "-s"])
        let unlinked = PodmanRuntime.runArguments(
            launch(netns: nil, settings: []), image: "x", uid: 0, gid: 0, nofile: 1024, probe: nil)
        #expect(values(unlinked, "--network") == ["host"] && !unlinked.contains("--memory"))
    }

    @Test func podmanRunsImagesFromItsStorageOnly() {
        #expect(PodmanRuntime.imageProblem("localhost/bench:1") == nil)
        #expect(
            PodmanRuntime.imageProblem("docker.io/library/busybox@sha256:" + String(repeating: "a", count: 64)) == nil)
        for bad in [nil, "/", "/srv/rootfs", "--privileged", "a b"] {
            #expect(PodmanRuntime.imageProblem(bad) != nil, "\(bad ?? "nil")")
        }
    }
}

/// Image layouts unpacked once per digest, shared, and removed with their last user.
@Suite struct ImageCacheTests {
    final class Counter: @unchecked Sendable { var unpacked: [String] = [] }

    @Test func oneUnpackPerDigestAndGoneWithTheLastUser() throws {
        let root = try FakeRoot()
        let counter = Counter()
        let cache = ImageCache(state: StateStore(root: root.path)) { reference, destination in
            counter.unpacked.append(reference)
            try? FileManager.default.createDirectory(
                atPath: "\(destination)/rootfs/bin", withIntermediateDirectories: true)
            return nil
        }
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let a = try cache.acquire(reference: "/l:bench", digest: digest, user: "p.a").get()
        let b = try cache.acquire(reference: "/l:bench", digest: digest, user: "q.b").get()
        #expect(
            a == b && a == "\(root.path)/images/sha256-\(String(repeating: "ab", count: 32))/rootfs"
                && counter.unpacked == ["/l:bench"])
        #expect(
            FileManager.default.fileExists(atPath: "\(a)/bin")
                && !FileManager.default.fileExists(
                    atPath: "\(root.path)/images/sha256-\(String(repeating: "ab", count: 32))/unpacking")
        )
        #expect(try cache.release(user: "p.a").isEmpty && FileManager.default.fileExists(atPath: a))
        #expect(
            try cache.release(user: "q.b").count == 1 && !FileManager.default.fileExists(atPath: "\(root.path)/images"))
        #expect(try cache.release(user: "q.b").isEmpty)
    }

    @Test func aFailedUnpackLeavesNoRootfsAndItsMarkIsReleased() throws {
        let root = try FakeRoot()
        let cache = ImageCache(state: StateStore(root: root.path)) { _, destination in
            try? FileManager.default.createDirectory(atPath: "\(destination)/rootfs", withIntermediateDirectories: true)
            return "umoci unpack failed (exit 1): no space"
        }
        let digest = "sha256:" + String(repeating: "0", count: 64)
        #expect(throws: TopoFailure.self) { try cache.acquire(reference: "/l:x", digest: digest, user: "p.a").get() }
        #expect(
            !FileManager.default.fileExists(
                atPath: "\(root.path)/images/sha256-\(String(repeating: "0", count: 64))/rootfs"))
        #expect(
            try cache.release(user: "p.a").count == 1 && !FileManager.default.fileExists(atPath: "\(root.path)/images"))
    }

    @Test func digestsComeFromTheLayoutsIndexAndOnlyAsSha256() throws {
        let dir = try FakeRoot()
        func index(_ digest: String) throws {
            try
                #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(digest)","size":1,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}"#
                .write(toFile: "\(dir.path)/index.json", atomically: true, encoding: .utf8)
        }
        let good = "sha256:" + String(repeating: "c", count: 64)
        try index(good)
        #expect(
            ImageCache.digest(layout: dir.path, tag: "bench") == good
                && ImageCache.digest(layout: dir.path, tag: "other") == nil)
        try index("sha256:../../etc")
        #expect(ImageCache.digest(layout: dir.path, tag: "bench") == nil)
        #expect(throws: TopoFailure.self) {
            try ImageCache(state: StateStore(root: dir.path)) { _, _ in nil }.acquire(
                reference: "x", digest: "sha256:../../x", user: "p.a"
            ).get()
        }
    }
}
