import CTopoShim
import Foundation
import Testing

@testable import TopoCore

/// The pure half of links: names, addresses, queue limits, and the read-back comparison.
@Suite struct LinksTests {
    func plan(_ yaml: String) throws -> Plan {
        try Planner(host: try fixtureHost("2s-8c-ht")).plan(try profile(yaml)).get()
    }

    let gateway = """
        version: 1
        name: api-gateway
        workloads: { server: { cpus: { count: 2 } }, client: { cpus: { count: 2 } }, other: { cpus: { count: 2 } } }
        links:
          - { between: [server, client], mtu: 9000, netem: { rate: 1000mbit, jitter: 200us } }
          - { between: [client, other], subnet: 10.99.0.0/29, netem: { delay: 5ms, loss: 1%, from: other, limit: 5000 } }
        """

    @Test func namespacesInterfacesAndAddresses() throws {
        let p = try plan(gateway)
        #expect(
            p.workloads.map(\.netns) == [
                "topo.api-gateway.server", "topo.api-gateway.client", "topo.api-gateway.other",
            ])
        let link = p.links[0]
        #expect(link.ends.map(\.interface) == ["to-client", "to-server"])
        #expect(link.ends.map { $0.address.description } == ["10.77.0.1/30", "10.77.0.2/30"])
        #expect(p.links[1].ends.map { $0.address.description } == ["10.99.0.1/29", "10.99.0.2/29"])
        let client = try #require(p.workload(named: "client"))
        #expect(client.addresses.map(\.description) == ["10.77.0.2/30", "10.99.0.1/29"])
        #expect(client.peers.map { "\($0.name)=\($0.address)" } == ["server=10.77.0.1", "other=10.99.0.2"])
        #expect(Planner.interface(toward: "abcdefghijkl").utf8.count <= 15)
    }

    @Test func shapingDirectionsAndLimits() throws {
        let p = try plan(gateway)
        #expect(
            p.links[0].shaping.map { "\($0.from)>\($0.to)@\($0.interface)" } == [
                "server>client@to-client", "client>server@to-server",
            ])
        #expect(p.links[1].shaping.map(\.from) == ["other"])
        let n = p.links[0].shaping[0].netem
        #expect(n.delay == Duration(nanoseconds: 200_000) && n.jitter == Duration(nanoseconds: 200_000))
        // 2 x 1 Gbit/s x 10.4 ms / (8 x 9000 bytes) = 289 -> at least 1000.
        #expect(n.limit == 1000 && n.limitChosen)
        #expect(p.links[1].shaping[0].netem.limit == 5000 && !p.links[1].shaping[0].netem.limitChosen)
    }

    @Test func queueLimitGrowsWithTheBandwidthDelayProduct() {
        // 10 Gbit/s x (100 ms + 10 ms) x 2 / (8 x 1500) = 183334 packets.
        #expect(
            Planner.queueLimit(
                rate: BitRate(bitsPerSecond: 10_000_000_000), delay: Duration(nanoseconds: 100_000_000), jitter: nil,
                mtu: 1500) == 183_334)
        #expect(Planner.queueLimit(rate: BitRate(bitsPerSecond: 1_000_000), delay: nil, jitter: nil, mtu: 1500) == 1000)
        #expect(
            Planner.queueLimit(rate: nil, delay: Duration(nanoseconds: 10_000_000), jitter: nil, mtu: 1500) == 33_334)
    }

    /// The plan's resources, in the order apply makes them, and what `topo plan --json` prints of them.
    @Test func resourcesComeInApplyOrder() throws {
        let p = try plan(gateway)
        #expect(p.format == Plan.currentFormat)
        // Runs of one kind, e.g. "namespace×3".
        var runs: [String] = []
        var last: (kind: Resource.Kind, count: Int)?
        for r in p.resources {
            if let l = last, l.kind == r.kind {
                last = (l.kind, l.count + 1)
                continue
            }
            if let l = last { runs.append("\(l.kind.rawValue)×\(l.count)") }
            last = (r.kind, 1)
        }
        if let l = last { runs.append("\(l.kind.rawValue)×\(l.count)") }
        // topo's root, the profile's cgroup, then per workload its cgroup and cpuset.cpus, cpuset.mems.
        #expect(
            runs.joined(separator: " ")
                == "cgroupRoot×1 cgroup×2 cgroupSetting×2 cgroup×1 cgroupSetting×2 cgroup×1 cgroupSetting×2 "
                + "namespace×3 veth×2 address×4 qdisc×3 hostsFile×3")
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(JSONOutput.encode(p).utf8)) as? [String: Any])
        for key in ["format", "name", "workloads", "links", "reserved", "idle", "smt", "warnings", "resources"] {
            #expect(json[key] != nil, "\(key)")
        }
        #expect(try JSONDecoder().decode(Plan.self, from: Data(JSONOutput.encode(p).utf8)) == p)
    }

    /// netem's options as the kernel dumps them for `delay 10ms loss random 1% rate 50mbit limit 1000`:
    /// ns, bytes per second, probabilities scaled to 2^32 - 1 (tc rounds 1% to 42949673).
    static var sample: topo_nl_netem {
        var q = topo_nl_netem()
        q.index = 2
        q.limit = 1000
        q.latency_ns = 10_000_000
        q.rate_bytes = 6_250_000
        q.loss = 42_949_673
        return q
    }

    @Test func readBackMatchesAPlanAndNamesEveryDifference() throws {
        let kernel = NetemReadback.kernel(Self.sample)
        #expect(
            kernel.delay == Duration(nanoseconds: 10_000_000) && kernel.rate == BitRate(bitsPerSecond: 50_000_000)
                && kernel.loss == Percent(micro: 1_000_000))
        var planned = Netem(
            delay: Duration(nanoseconds: 10_000_000), jitter: nil, distribution: nil, loss: Percent(micro: 1_000_000),
            duplicate: nil, reorder: nil, corrupt: nil, rate: BitRate(bitsPerSecond: 50_000_000), limit: 1000,
            limitChosen: true)
        #expect(NetemReadback.differences(planned: planned, kernel: kernel) == [])
        planned.rate = BitRate(bitsPerSecond: 100_000_000)
        planned.limit = 2000
        #expect(
            NetemReadback.differences(planned: planned, kernel: kernel) == [
                "rate: planned 100mbit, kernel has 50mbit", "limit: planned 2000, kernel has 1000",
            ])
    }

    /// One read per namespace serves its namespace, veth, address and qdisc resources.
    @Test func oneNamespaceReadServesEveryResourceInIt() throws {
        let address = try IPv4Interface.parse("10.77.0.1/30").get()
        var state = NetlinkLinks.NamespaceState(exists: true)
        state.links["lo"] = .init(
            mtu: 65536, up: true, alias: "topo:demo", addresses: [try IPv4Interface.parse("127.0.0.1/8").get()])
        state.links["to-b"] = .init(mtu: 9000, up: true, alias: nil, addresses: [address])
        state.netem["to-b"] = NetemReadback.kernel(Self.sample)
        let states = ["topo.demo.a": state]
        let ns = Resource.namespace(NamespaceResource(name: "topo.demo.a", workload: "a", owner: "demo"))
        #expect(NetlinkLinks.observation(ns, states).differences == [])
        let other = Resource.namespace(NamespaceResource(name: "topo.demo.a", workload: "a", owner: "else"))
        #expect(
            NetlinkLinks.observation(other, states).differences == [
                "network namespace topo.demo.a lacks topo's mark for else"
            ])
        let veth = Resource.veth(
            VethResource(
                ends: [.init(netns: "topo.demo.a", interface: "to-b"), .init(netns: "topo.demo.b", interface: "to-a")],
                mtu: 1500))
        #expect(
            NetlinkLinks.observation(veth, states).differences == [
                "to-b in topo.demo.a: planned mtu 1500, kernel has 9000"
            ])
        let addr = Resource.address(
            AddressResource(netns: "topo.demo.a", interface: "to-b", workload: "a", address: address))
        #expect(
            NetlinkLinks.observation(addr, states).differences == []
                && NetlinkLinks.observation(addr, states).kernel == "10.77.0.1/30")
        let netem = Netem(
            delay: Duration(nanoseconds: 10_000_000), jitter: nil, distribution: nil, loss: Percent(micro: 1_000_000),
            duplicate: nil, reorder: nil, corrupt: nil, rate: BitRate(bitsPerSecond: 50_000_000), limit: 1000,
            limitChosen: true)
        let qdisc = Resource.qdisc(
            QdiscResource(netns: "topo.demo.a", interface: "to-b", from: "a", to: "b", netem: netem))
        #expect(NetlinkLinks.observation(qdisc, states).differences == [])
        #expect(!NetlinkLinks.observation(addr, [:]).found)
        let unreadable = [
            "topo.demo.a": NetlinkLinks.NamespaceState(exists: true, problem: "read ...: Permission denied")
        ]
        #expect(NetlinkLinks.observation(ns, unreadable).differences == ["read ...: Permission denied"])
        #expect(NetlinkLinks.observation(addr, unreadable).differences == ["read ...: Permission denied"])
    }

    @Test func hostsFileAndEnvironmentNameThePeers() throws {
        let p = try plan(gateway)
        let client = try #require(p.workload(named: "client"))
        let hosts = p.resources.compactMap { if case .hostsFile(let h) = $0, h.workload == "client" { h } else { nil } }
        #expect(
            hosts.map(\.contents) == [
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.77.0.2\tclient\n10.77.0.1\tserver\n10.99.0.2\tother\n"
            ])
        #expect(
            hosts.map(\.path) == ["/etc/netns/topo.api-gateway.client/hosts"] && client.hostsFile == hosts.first?.path)
        let spec = LaunchSpec(
            Planner.launch(client, profile: "api-gateway", command: ["/bin/true"], logPath: nil), cgroupProcs: "/x",
            cgroupMount: nil, readOnly: [], newSession: false, keepStdin: true)
        #expect(spec.netns == "/run/netns/topo.api-gateway.client")
        #expect(
            spec.environment.contains("TOPO_PEER_SERVER=10.77.0.1")
                && spec.environment.contains("TOPO_ADDRESSES=10.77.0.2/30,10.99.0.1/29"))
    }
}

/// The subprocess seam: output, exit status and stdin without a shell, deadlock or SIGPIPE.
@Suite struct CommandRunnerTests {
    let runner = CommandRunner()

    @Test func outputAndStatusComeBackSeparately() {
        let r = runner.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(r == CommandResult(status: 3, stdout: "out\n", stderr: "err\n"))
    }

    @Test func aLargeInputComesBackWhole() {
        // More than any pipe buffer both ways: written and read at once, or it would deadlock.
        let input = String(repeating: "0123456789abcdef\n", count: 1 << 16)
        let r = runner.run(["/bin/cat"], input: input)
        #expect(r.status == 0 && r.stdout.count == input.count && r.stdout == input)
    }

    @Test func aChildThatReadsNoInputDoesNotKillTopo() {
        let r = runner.run(["/bin/sh", "-c", "exit 0"], input: String(repeating: "x", count: 1 << 20))
        #expect(r.status == 0)
    }

    @Test func noInputMeansAnEmptyStdin() {
        #expect(runner.run(["/bin/cat"]) == CommandResult(status: 0, stdout: "", stderr: ""))
    }

    @Test func failuresToStartAndSignalsAreStatuses() {
        let missing = runner.run(["/no/such/program"])
        #expect(missing.status == 127 && missing.stderr.contains("/no/such/program"), "\(missing)")
        #expect(runner.run(["/bin/sh", "-c", "kill -9 $$"]).status == 128 + SIGKILL)
    }
}

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

/// netem's options as topo sends them over rtnetlink, and iproute2's distribution tables.
@Suite struct NetemWireTests {
    @Test func unitsAreTheKernels() throws {
        let n = Netem(
            delay: Duration(nanoseconds: 1_000_250), jitter: Duration(nanoseconds: 100_000), distribution: .normal,
            loss: try Percent.parse("1%").get(), duplicate: nil, reorder: try Percent.parse("50%").get(),
            corrupt: try Percent.parse("0.1%").get(),
            rate: try BitRate.parse("100mbit").get(), limit: 1234, limitChosen: false)
        let s = NetemWire.spec(n)
        #expect(s.latency_ns == 1_000_250 && s.jitter_ns == 100_000 && s.limit == 1234)
        #expect(s.rate_bytes == 12_500_000)
        // tc's scaling: percent / 100 * (2^32 - 1), rounded.
        #expect(s.loss == 42_949_673 && s.reorder == 2_147_483_648 && s.corrupt == 4_294_967 && s.duplicate == 0)
        // What the kernel reads back is what was planned.
        var back = s
        back.index = 3
        #expect(NetemReadback.differences(planned: n, kernel: NetemReadback.kernel(back)) == [])
    }

    @Test func aTableIsSixteenBitNumbersWithComments() throws {
        #expect(
            try NetemWire.parseTable("# normal\n 1 -2\t3\n\n-32768 32767 # end\n", path: "t") == [
                1, -2, 3, -32768, 32767,
            ])
        #expect(throws: TopoFailure.self) { try NetemWire.parseTable("1 40000\n", path: "t") }
        #expect(throws: TopoFailure.self) { try NetemWire.parseTable("1 x\n", path: "t") }
        #expect(throws: TopoFailure.self) {
            try NetemWire.parseTable(String(repeating: "1 ", count: NetemWire.maximumEntries + 1), path: "t")
        }
        // Where iproute2 is installed, its tables read whole.
        if let path = NetemWire.tablePath(.normal) {
            let table = try NetemWire.distributionTable(.normal)
            #expect(table.count > 1000 && table.count <= NetemWire.maximumEntries, "\(path): \(table.count)")
        }
    }
}

/// JSON is an interface: every field of a plan has a name, and a plan or journal an older topo wrote
/// (Swift's `_0` for an unlabelled value) still reads the same.
@Suite struct PlanJSONTests {
    @Test func noFieldIsNamedUnderscoreZero() throws {
        let p = try Planner(host: try fixtureHost("2s-8c-ht")).plan(
            try profile(
                """
                version: 1
                name: j
                host: { tune: { irqs: away, governor: performance, frequency: { max: 2GHz }, timerMigration: off, thp: never } }
                workloads:
                  a: { cpus: { count: 2 }, memory: { max: 1G }, pids: 64, cpu: { quota: 1.5, weight: 200 }, isolation: partition, run: { command: [/bin/true] } }
                  b: { cpus: { count: 2 }, io: [{ device: "8:0", rbps: 1M }] }
                links: [{ between: [a, b], netem: { delay: 1ms } }]
                """)
        ).get()
        let text = JSONOutput.encode(p)
        #expect(!text.contains("\"_0\""), "\(text.prefix(2000))")
        #expect(text.contains(#""cpus" : "#) && text.contains(#""launch" : {"#) && text.contains(#""partition" : {"#))
        #expect(try JSONDecoder().decode(Plan.self, from: Data(text.utf8)) == p)
        // The same plan as format 2 wrote it: each unlabelled value wrapped in {"_0": …}.
        var legacy = text
        for kind in Resource.Kind.allCases.map(\.rawValue) {
            legacy = legacy.replacingOccurrences(of: "\"\(kind)\" : {", with: "\"\(kind)\" : {\"_0\" : {")
        }
        legacy = wrapResourceObjects(legacy)
        #expect(legacy.contains("\"_0\""))
        #expect(try JSONDecoder().decode(Plan.self, from: Data(legacy.utf8)).resources == p.resources)
        let setting = try JSONDecoder().decode(CgroupSetting.self, from: Data(#"{"cpus":{"_0":"0-1"}}"#.utf8))
        #expect(setting == .cpus(CPUSet([0, 1])))
        let tune = try JSONDecoder().decode(
            TuneSetting.self, from: Data(#"{"governor":{"_0":"performance","cpus":"2-3"}}"#.utf8))
        #expect(tune == .governor("performance", cpus: CPUSet([2, 3])))
    }

    /// Closes each `{"_0" : {` opened above where its resource object closes (pretty-printed JSON:
    /// the resource object ends at the first line indented like the line that opened it).
    func wrapResourceObjects(_ text: String) -> String {
        var out: [String] = []
        var closeAt: [Int] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let indent = line.prefix { $0 == " " }.count
            if let last = closeAt.last, indent == last, line.trimmingCharacters(in: .whitespaces).hasPrefix("}") {
                out.append(String(line) + "}")
                closeAt.removeLast()
                continue
            }
            out.append(String(line))
            if line.contains("\" : {\"_0\" : {") { closeAt.append(indent) }
        }
        return out.joined(separator: "\n")
    }
}
