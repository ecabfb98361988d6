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
