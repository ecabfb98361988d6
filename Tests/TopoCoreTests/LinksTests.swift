import Foundation
import Testing
@testable import TopoCore

/// The pure half of links: names, addresses, queue limits, iproute2 batches, and the read-back comparison.
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
        #expect(p.workloads.map(\.netns) == ["topo-api-gateway-server", "topo-api-gateway-client", "topo-api-gateway-other"])
        let link = p.links[0]
        #expect(link.ends.map(\.interface) == ["to-client", "to-server"])
        #expect(link.ends.map(\.address) == ["10.77.0.1/30", "10.77.0.2/30"])
        #expect(p.links[1].ends.map(\.address) == ["10.99.0.1/29", "10.99.0.2/29"])
        let client = try #require(p.workload(named: "client"))
        #expect(client.addresses == ["10.77.0.2/30", "10.99.0.1/29"])
        #expect(client.peers == [.init(name: "server", address: "10.77.0.1"), .init(name: "other", address: "10.99.0.2")])
        #expect(Planner.interface(toward: "abcdefghijkl").utf8.count <= 15)
    }

    @Test func shapingDirectionsAndLimits() throws {
        let p = try plan(gateway)
        #expect(p.links[0].shaping.map { "\($0.from)>\($0.to)@\($0.interface)" } == ["server>client@to-client", "client>server@to-server"])
        #expect(p.links[1].shaping.map(\.from) == ["other"])
        let n = p.links[0].shaping[0].netem
        #expect(n.delay == Duration(nanoseconds: 200_000) && n.jitter == Duration(nanoseconds: 200_000))
        // 2 x 1 Gbit/s x 10.4 ms / (8 x 9000 bytes) = 289 -> at least 1000.
        #expect(n.limit == 1000 && n.limitChosen)
        #expect(p.links[1].shaping[0].netem.limit == 5000 && !p.links[1].shaping[0].netem.limitChosen)
    }

    @Test func queueLimitGrowsWithTheBandwidthDelayProduct() {
        // 10 Gbit/s x (100 ms + 10 ms) x 2 / (8 x 1500) = 183334 packets.
        #expect(Planner.queueLimit(rate: BitRate(bitsPerSecond: 10_000_000_000), delay: Duration(nanoseconds: 100_000_000), jitter: nil, mtu: 1500) == 183_334)
        #expect(Planner.queueLimit(rate: BitRate(bitsPerSecond: 1_000_000), delay: nil, jitter: nil, mtu: 1500) == 1000)
        #expect(Planner.queueLimit(rate: nil, delay: Duration(nanoseconds: 10_000_000), jitter: nil, mtu: 1500) == 33_334)
    }

    @Test func batchesForIproute2() throws {
        let p = try plan(gateway)
        #expect(Links.createBatch(p) == [
            "netns add topo-api-gateway-server", "netns add topo-api-gateway-client", "netns add topo-api-gateway-other",
            "link add to-client netns topo-api-gateway-server mtu 9000 type veth peer name to-server netns topo-api-gateway-client mtu 9000",
            "link add to-other netns topo-api-gateway-client mtu 1500 type veth peer name to-client netns topo-api-gateway-other mtu 1500",
        ])
        #expect(Links.configureBatch("topo-api-gateway-client", p) == [
            "link set lo up", "addr add 10.77.0.2/30 dev to-server", "link set to-server up",
            "addr add 10.99.0.1/29 dev to-other", "link set to-other up",
        ])
        #expect(Links.qdiscBatch("topo-api-gateway-other", p) == ["qdisc add dev to-client root netem limit 5000 delay 5000us loss random 1%"])
        #expect(Links.qdiscBatch("topo-api-gateway-client", p) == ["qdisc add dev to-server root netem limit 1000 delay 200us 200us rate 1000000000bit"])
        #expect(Links.deleteBatch(["a", "b"]) == ["netns del a", "netns del b"])
    }

    @Test func netemArgumentsInTcsOrder() {
        let n = Netem(delay: Duration(nanoseconds: 1_000_250), jitter: Duration(nanoseconds: 100_000), distribution: .normal,
                      loss: Percent(micro: 500_000), duplicate: Percent(micro: 100_000), reorder: Percent(micro: 25_000_000),
                      corrupt: Percent(micro: 1_000), rate: BitRate(bitsPerSecond: 50_000_000), limit: 1234, limitChosen: false)
        #expect(Links.netemArguments(n) == ["netem", "limit", "1234", "delay", "1000.25us", "100us", "distribution", "normal",
                                            "corrupt", "0.001%", "duplicate", "0.1%", "loss", "random", "0.5%", "reorder", "25%", "rate", "50000000bit"])
        var uniform = n
        uniform.distribution = .uniform
        #expect(!Links.netemArguments(uniform).contains("distribution"))
    }

    /// A qdisc as iproute2 6.1 prints it (`tc -j qdisc show`), recorded in the lab.
    static let sample = #"[{"kind":"netem","handle":"8001:","root":true,"refcnt":5,"options":{"limit":1000,"delay":{"delay":0.01,"jitter":0,"correlation":0},"loss-random":{"loss":0.01,"correlation":0},"rate":{"rate":6250000,"packetoverhead":0,"cellsize":0,"celloverhead":0},"ecn":false,"gap":0}}]"#

    @Test func readBackMatchesAPlanAndNamesEveryDifference() throws {
        let options = try #require(NetemReadback.options(Self.sample))
        var planned = Netem(delay: Duration(nanoseconds: 10_000_000), jitter: nil, distribution: nil, loss: Percent(micro: 1_000_000),
                            duplicate: nil, reorder: nil, corrupt: nil, rate: BitRate(bitsPerSecond: 50_000_000), limit: 1000, limitChosen: true)
        #expect(NetemReadback.differences(planned: planned, kernel: options) == [])
        planned.rate = BitRate(bitsPerSecond: 100_000_000)
        planned.limit = 2000
        #expect(NetemReadback.differences(planned: planned, kernel: options) == [
            "rate: planned 12500000.0 B/s, kernel has 6250000.0 B/s", "limit: planned 2000.0 packets, kernel has 1000.0 packets",
        ])
        #expect(NetemReadback.options("[]") == nil)
        #expect(NetemReadback.options("not json") == nil)
    }

    @Test func hostsFileNamesThePeers() throws {
        let client = try #require(try plan(gateway).workload(named: "client"))
        #expect(Applier.hostsFile(client) == "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.77.0.2\tclient\n10.77.0.1\tserver\n10.99.0.2\tother\n")
        let spec = LaunchSpec.forWorkload(client, profile: "api-gateway", cgroupProcs: "/x", logPath: nil, hostsFile: "/run/topo/api-gateway/hosts/client")
        #expect(spec.netns == "/run/netns/topo-api-gateway-client")
        #expect(spec.environment.contains("TOPO_PEER_SERVER=10.77.0.1") && spec.environment.contains("TOPO_ADDRESSES=10.77.0.2/30,10.99.0.1/29"))
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
