import Foundation
import Testing

@testable import TopoCore

/// Thousands of mutated profiles through the whole pure pipeline: decode, plan, render.
/// A trap anywhere kills the test process, so simply finishing is the main assertion;
/// every rejected profile must also say why.
@Suite struct FuzzTests {
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let tokens: [[UInt8]] =
        [
            ":", "[", "]", "{", "}", "- ", "&a ", "*a", "\"", "'", "\n", "\t", "#", "!!binary ", "? ", "%YAML 1.1\n",
            "---\n",
            "max", "0", "-1", "99999999999999999999", "1e308", "nan", ".inf", "0-8191", "4G", "1gbit", "200us", "100%",
            "\u{202E}", "é", "../", "$(x)", "\\", "~", "null", "count", "node", "auto", "cpus", "\r\n", "<<: *a\n",
            "|\n", ">-\n",
            "&b ", "*b", "<<: [*a, *b]\n", "? *a\n", "*a: ", "<<: *b\n", "x-q: a \"\n", "&a [*a]", "{<<: *a}",
        ].map { Array($0.utf8) } + [[0], [0xFF], [0xC3], [0xE2, 0x82]]

    func seeds() throws -> [[UInt8]] {
        var files: [String] = []
        for dir in ["Profiles", "Tests/Fixtures/profiles/invalid"] {
            let path = Repo.path(dir)
            files += try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".yaml") }.sorted()
                .map { "\(path)/\($0)" }
        }
        return try files.map { Array(try #require(FileManager.default.contents(atPath: $0))) }
    }

    func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[at] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.insert(contentsOf: Self.tokens.randomElement(using: &rng)!, at: at)
            case 2 where !bytes.isEmpty:
                bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &rng)))
            case 3 where !bytes.isEmpty:
                let end = min(bytes.count, at + Int.random(in: 1...64, using: &rng))
                bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &rng))
            case 4: bytes = Array(bytes.prefix(at))
            default: bytes.insert(UInt8.random(in: 0x20...0x7E, using: &rng), at: at)
            }
        }
        return bytes
    }

    @Test func mutatedProfilesNeverCrash() throws {
        let seeds = try seeds()
        let host = try fixtureHost("2s-8c-ht")
        var rng = SplitMix64(state: 0x7090)
        var accepted = 0
        var rejected = 0
        for i in 0..<6000 {
            let input = mutate(seeds[i % seeds.count], &rng)
            switch ProfileDecoder.decode(data: Data(input), file: "fuzz.yaml") {
            case .success(let decoded):
                accepted += 1
                if case .success(let plan) = Planner(host: host).plan(decoded.profile) {
                    _ = JSONOutput.encode(plan)
                    _ = TopologyPicture.table(plan)
                    _ = TopologyPicture.render(host: host, plan: plan)
                }
            case .failure(let invalid):
                rejected += 1
                #expect(!invalid.errors.isEmpty, "rejected without an error: \(String(decoding: input, as: UTF8.self))")
                _ = invalid.description
            }
        }
        // Both outcomes must be exercised, or the mutations are too weak (or too strong) to mean anything.
        #expect(accepted > 100 && rejected > 100, "accepted \(accepted), rejected \(rejected)")
    }

    /// Documents built from anchors, aliases and merge keys in random places (keys, values, merges,
    /// nested in one another): every one is decided quickly, each rejection says why.
    @Test func aliasAnchorAndMergeMutationsStayBounded() {
        var rng = SplitMix64(state: 0xA11A5)
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<3000 {
            var text = "version: 1\nname: fz\n"
            let anchors = Int.random(in: 1...6, using: &rng)
            for a in 0..<anchors {
                let refs = (0..<Int.random(in: 0...4, using: &rng)).map { _ in
                    "*a\(Int.random(in: 0...max(0, a - 1), using: &rng))"
                }
                switch Int.random(in: 0...3, using: &rng) {
                case 0: text += "x-\(a): &a\(a) [\((refs + ["1"]).joined(separator: ", "))]\n"
                case 1:
                    text += "x-\(a): &a\(a) { k\(a): v, <<: [\(refs.joined(separator: ", "))] }\n".replacingOccurrences(
                        of: ", <<: []", with: "")
                case 2: text += "x-\(a): &a\(a) { \(refs.first ?? "k"): v }\n"
                default: text += "x-\(a): &a\(a) { memory: { max: 1G } }\n"
                }
            }
            text += "workloads:\n  w: { <<: *a\(Int.random(in: 0..<anchors, using: &rng)), cpus: \"0\" }\n"
            for _ in 0..<Int.random(in: 0...40, using: &rng) {
                text += "x-r\(Int.random(in: 0...9999, using: &rng)): *a0\n"
            }
            if case .failure(let invalid) = ProfileDecoder.decode(data: Data(text.utf8), file: "alias.yaml") {
                #expect(!invalid.errors.isEmpty, "rejected without an error: \(text)")
            }
        }
        #expect(clock.now - start < .seconds(60), "3000 alias-heavy profiles took \(clock.now - start)")
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(state: 42)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = ProfileDecoder.decode(data: Data(bytes), file: "random.yaml")
        }
    }
}

/// Hostile but valid-sized inputs stay cheap. scripts/bench measures them (target: under 1 s and
/// 100 MiB each, release build); here only a generous bound, for a debug build on a busy CI machine.
@Suite struct HostileInputTests {
    func decideQuickly(_ text: String, _ what: String) throws {
        #expect(text.utf8.count <= YAMLGuard.maxBytes, "\(what) must fit the size limit to mean anything")
        let clock = ContinuousClock()
        let start = clock.now
        if case .success(let decoded) = ProfileDecoder.decode(text: text, file: "\(what).yaml") {
            _ = Planner(host: try fixtureHost("2s-8c-ht")).plan(decoded.profile)
        }
        #expect(clock.now - start < .seconds(20), "\(what) took \(clock.now - start)")
    }

    @Test func aCpulistOfThirtyThousandFullRangesIsABitset() throws {
        try decideQuickly(
            "version: 1\nname: c\nworkloads:\n  a: { cpus: \""
                + Array(repeating: "0-8191", count: 30_000).joined(separator: ",") + "\", isolation: shared }\n",
            "cpulist")
        let set = try CPUSet.parse(Array(repeating: "0-8191", count: 30_000).joined(separator: ",")).get()
        #expect(set.count == 8192 && set.description == "0-8191")
    }

    @Test func aFullMeshOfAHundredWorkloadsPlansItsSubnetsInOnePass() throws {
        var text = "version: 1\nname: mesh\nworkloads:\n"
        for i in 0..<100 { text += "  w\(i): { cpus: \"0-1\", isolation: shared }\n" }
        text += "links:\n"
        for i in 0..<100 { for j in (i + 1)..<100 { text += "  - { between: [w\(i), w\(j)] }\n" } }
        try decideQuickly(text, "mesh")
    }

    @Test func thousandsOfWorkloadsOnOneCPUListAreCheckedInOnePass() throws {
        try decideQuickly(
            "version: 1\nname: x\nworkloads:\n" + (0..<5800).map { "  w\($0): { cpus: \"0-3\" }\n" }.joined(),
            "exclusive")
        try decideQuickly(
            "version: 1\nname: x\nworkloads:\n"
                + (0..<5800).map { "  w\($0): { cpus: \"0-3\", isolation: shared }\n" }.joined(), "shared")
    }

    /// The subnet cursor skips taken ranges of any size and alignment, and never hands out one twice.
    @Test func theSubnetCursorSkipsWhatIsTaken() throws {
        let taken = try ["10.77.0.4/30", "10.77.0.16/28", "10.77.0.8/30", "10.77.0.20/30", "10.77.1.0/24"].map {
            try IPv4Subnet.parse($0).get()
        }
        var cursor = Planner.SubnetCursor(pool: Planner.linkPool, avoiding: taken)
        let first = (0..<6).compactMap { _ in cursor.next()?.description }
        #expect(
            first == [
                "10.77.0.0/30", "10.77.0.12/30", "10.77.0.32/30", "10.77.0.36/30", "10.77.0.40/30", "10.77.0.44/30",
            ])
        var small = Planner.SubnetCursor(pool: try IPv4Subnet.parse("10.0.0.0/29").get(), avoiding: [])
        #expect(
            [small.next(), small.next(), small.next()].map { $0?.description } == ["10.0.0.0/30", "10.0.0.4/30", nil])
    }
}
