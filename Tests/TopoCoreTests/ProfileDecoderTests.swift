import Foundation
import Testing

@testable import TopoCore

@Suite struct ProfileDecoderTests {
    @Test func decodesTheFullFormat() throws {
        let p = try profile(
            """
            version: 1
            name: api-gateway
            description: API server and load generator
            host:
              require: { numaNodes: 2, cpus: 8 }
              reserve: "0"
              smt: any
            workloads:
              server:
                cpus: { count: 4, node: 0 }
                isolation: partition
                memory: { policy: interleave, nodes: "0-1", max: 4G, high: 3G, swap: 0 }
                cpu: { quota: 2.5, weight: 100 }
                pids: 4096
                io:
                  - { device: "8:0", rbps: 200M, wbps: max, riops: 5000, wiops: 5000 }
                run:
                  command: ["/usr/local/bin/api-server", "--port", "8080"]
                  env: { GOMAXPROCS: "4", MODE: fast }
                  workdir: /srv
                  user: "65534:65534"
                  capabilities: [net_bind_service]
              client:
                cpus: "8-11"
                run: { command: ["/bin/true"], runtime: crun, image: / }
            links:
              - between: [server, client]
                subnet: 10.77.0.0/30
                mtu: 9000
                netem: { rate: 1000mbit, delay: 1ms, jitter: 200us, distribution: normal, loss: 0.1%, from: client }
            """)
        #expect(p.name == "api-gateway")
        #expect(p.host.numaNodes == 2 && p.host.cpus == 8 && p.host.reserve == CPUSet([0]) && p.host.smt == .any)
        #expect(p.workloads.map(\.name) == ["server", "client"])
        let s = p.workloads[0]
        #expect(s.cpus == .count(4, node: .node(0)))
        #expect(s.isolation == .partition)
        #expect(s.memory.policy == .interleave && s.memory.nodes == CPUSet([0, 1]))
        #expect(
            s.memory.max == .value(Bytes(4 << 30)) && s.memory.high == .value(Bytes(3 << 30))
                && s.memory.swap == .value(Bytes(0)))
        #expect(
            s.cpu.cpuMax == .cpuMax(quota: Duration(nanoseconds: 250_000_000), period: CPUSpec.period)
                && s.cpu.weight == 100)
        #expect(s.pids == .value(4096))
        #expect(
            s.io == [
                IOLimit(
                    device: DeviceNumber(major: 8, minor: 0), rbps: .value(Bytes(200 << 20)), wbps: .max,
                    riops: .value(5000), wiops: .value(5000))
            ])
        #expect(s.run?.command == ["/usr/local/bin/api-server", "--port", "8080"])
        #expect(s.run?.env.map { "\($0.0)=\($0.1)" } == ["GOMAXPROCS=4", "MODE=fast"])
        #expect(
            s.run?.capabilities == ["CAP_NET_BIND_SERVICE"] && s.run?.user == "65534:65534" && s.run?.workdir == "/srv")
        #expect(p.workloads[1].cpus == .list(CPUSet([8, 9, 10, 11])))
        #expect(p.workloads[1].run?.runtime == .crun && p.workloads[1].run?.image == "/")
        let link = try #require(p.links.first)
        #expect(link.between == ["server", "client"] && link.mtu == 9000 && link.subnet?.description == "10.77.0.0/30")
        #expect(link.netem?.rate?.bitsPerSecond == 1_000_000_000 && link.netem?.delay?.nanoseconds == 1_000_000)
        #expect(
            link.netem?.jitter?.nanoseconds == 200_000 && link.netem?.loss?.micro == 100_000
                && link.netem?.from == "client")
        #expect(link.netem?.distribution == .normal)
    }

    @Test func everyShippedProfileValidates() throws {
        let dir = Repo.path("Profiles")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 6)
        for f in files {
            if case .failure(let invalid) = ProfileDecoder.decode(file: "\(dir)/\(f)") {
                Issue.record("\(f) does not validate:\n\(invalid)")
            }
        }
    }

    /// Each invalid fixture's diagnostics, byte for byte. Set TOPO_UPDATE_GOLDEN=1 to rewrite them after a deliberate change.
    @Test(arguments: ["many-problems", "duplicate-key", "syntax", "missing", "netem"])
    func goldenDiagnostics(name: String) throws {
        let dir = Repo.path("Tests/Fixtures/profiles/invalid")
        let data = try #require(FileManager.default.contents(atPath: "\(dir)/\(name).yaml"))
        guard case .failure(let invalid) = ProfileDecoder.decode(data: data, file: "\(name).yaml") else {
            Issue.record("\(name).yaml validated")
            return
        }
        let expectedPath = "\(dir)/\(name).expected"
        if ProcessInfo.processInfo.environment["TOPO_UPDATE_GOLDEN"] == "1" {
            try (invalid.description + "\n").write(toFile: expectedPath, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: expectedPath, encoding: .utf8)
        #expect(invalid.description + "\n" == expected)
    }

    @Test(arguments: ["..", "a/b", "a b", "$(reboot)", "a\nb", "A", "x;rm", "-x", "toolongnameforaworkload", "", "é"])
    func hostileWorkloadNamesAreRejected(name: String) {
        let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        let problems = errors("version: 1\nname: x\nworkloads:\n  \"\(quoted)\": { cpus: { count: 1 } }\n")
        #expect(problems.contains { $0.contains("is not a valid workload name") }, "\(problems)")
    }

    @Test func profileNamesFollowThePattern() {
        #expect(errors("version: 1\nname: abcdefghijklmnopqrstuvwx\nworkloads: { a: { cpus: \"0\" } }").isEmpty)
        #expect(!errors("version: 1\nname: abcdefghijklmnopqrstuvwxy\nworkloads: { a: { cpus: \"0\" } }").isEmpty)
        #expect(!errors("version: 1\nname: 9lives\nworkloads: { a: { cpus: \"0\" } }").isEmpty)
    }

    @Test func unknownKeysSuggestTheKnownOne() throws {
        guard
            case .failure(let invalid) = decode(
                "version: 1\nname: x\nworkloads:\n  a:\n    cpus: \"0\"\n    memroy: { max: 1G }\n")
        else {
            Issue.record("accepted")
            return
        }
        let d = try #require(invalid.errors.first)
        #expect(d.path == "workloads.a.memroy" && d.line == 6 && d.column == 5)
        #expect(d.fix == "did you mean \"memory\"?")
    }

    @Test func duplicateKeysAreErrorsWithBothPlaces() throws {
        guard case .failure(let invalid) = decode("version: 1\nname: x\nname: y\nworkloads: { a: { cpus: \"0\" } }\n")
        else {
            Issue.record("accepted")
            return
        }
        #expect(invalid.errors.count == 1)
        #expect(invalid.errors[0].line == 3 && invalid.errors[0].message.contains("first at 2:1"))
    }

    @Test func bareNumberForCpusIsAmbiguous() {
        #expect(errors("version: 1\nname: x\nworkloads: { a: { cpus: 4 } }") == ["workloads.a.cpus: 4 is ambiguous"])
        #expect(errors("version: 1\nname: x\nworkloads: { a: { cpus: \"4\" } }").isEmpty)
    }

    @Test func jitterWithoutDelayMeansMeanDelayEqualsJitter() throws {
        let p = try profile(
            "version: 1\nname: x\nworkloads: { a: { cpus: \"0\" }, b: { cpus: \"1\" } }\nlinks: [{ between: [a, b], netem: { rate: 1000mbit, jitter: 200us } }]"
        )
        #expect(p.links[0].netem?.delay == nil)
        #expect(p.links[0].netem?.effectiveDelay == Duration(nanoseconds: 200_000))
    }

    @Test func explicitZeroDelayWithJitterSaysWhatToWrite() throws {
        guard
            case .failure(let invalid) = decode(
                "version: 1\nname: x\nworkloads: { a: { cpus: \"0\" }, b: { cpus: \"1\" } }\nlinks: [{ between: [a, b], netem: { rate: 1000mbit, delay: 0ms, jitter: 200us } }]"
            )
        else {
            Issue.record("accepted")
            return
        }
        #expect(invalid.errors.count == 1)
        #expect(invalid.errors[0].fix?.contains("delay: 200us") == true)
    }

    @Test func warningsDoNotFailValidation() throws {
        let decoded = try decode(
            "version: 1\nname: x\nworkloads: { a: { cpus: \"0\" }, b: { cpus: \"1\" } }\nlinks: [{ between: [a, b], netem: { rate: 1gbit } }]"
        ).get()
        #expect(decoded.warnings.map(\.path) == ["links[0].netem.rate"])
    }

    @Test func memoryRules() {
        #expect(
            errors("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { max: 1G, high: 2G } } }")
                == ["workloads.a.memory.high: memory.high 2G is above memory.max 1G, so it would never apply"])
        #expect(
            errors(
                "version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { policy: preferred, nodes: \"0-1\" } } }"
            ).count == 1)
        #expect(
            errors("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { max: max, swap: max } } }").isEmpty)
    }

    @Test func quotasConvertExactly() throws {
        #expect(
            try profile("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", cpu: { quota: 0.5 } } }").workloads[0].cpu
                .cpuMax == .cpuMax(quota: Duration(nanoseconds: 50_000_000), period: CPUSpec.period))
        #expect(
            try profile("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", cpu: { quota: 4 } } }").workloads[0].cpu
                .cpuMax == .cpuMax(quota: Duration(nanoseconds: 400_000_000), period: CPUSpec.period))
        #expect(!errors("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", cpu: { quota: 0.001 } } }").isEmpty)
    }

    @Test func structuralProblems() {
        #expect(errors("") == ["the profile is empty"])
        #expect(errors("- a\n- b") == ["expected a mapping of version, name, description, host, …, found a list"])
        #expect(
            errors("version: 2\nname: x\nworkloads: { a: { cpus: \"0\" } }") == [
                "version: profile version 2 is not known to this topo (it reads version 1)"
            ])
        #expect(errors("version: 1\nname: x\nworkloads: {}") == ["workloads: no workloads"])
        #expect(errors("version: 1\nname: x\n---\nversion: 1").count == 1)
    }

    @Test func notUTF8IsReportedWithItsOffset() {
        let data = Data("version: 1\nname: \u{00e9}".utf8.dropLast()) + Data([0xFF, 0xFE])
        guard case .failure(let invalid) = ProfileDecoder.decode(data: data, file: "x.yaml") else {
            Issue.record("accepted")
            return
        }
        #expect(invalid.errors[0].message.contains("not UTF-8"))
    }

    /// Each message names the actual fault: the ones a new user met first said something else.
    @Test func messagesNameTheFaultNotASymptom() {
        let head = "version: 1\nname: x\nworkloads:\n"
        #expect(
            errors(head + "  a: { cpus: { count: 99999999999999999999 } }") == [
                "workloads.a.cpus.count: 99999999999999999999 is outside 1-8192"
            ])
        #expect(
            errors(head + "  a: { cpus: { count: \"1\" } }") == [
                "workloads.a.cpus.count: \"1\" is quoted, so it is a string, not a number"
            ])
        #expect(
            errors(head + "  a: { cpus: \"0\", pids: '64' }") == [
                "workloads.a.pids: '64' is quoted, so it is a string, not a number"
            ])
        #expect(
            errors("version: 1.0\nname: x\nworkloads: { a: { cpus: \"0\" } }") == [
                "version: profile version 1.0 is not known to this topo (it reads version 1)"
            ])
        #expect(
            errors(head + "\ta:\n\t\tcpus: \"0\"\n") == ["line 4 is indented with a tab; YAML indents with spaces only"]
        )
        #expect(
            errors(head + "  " + String(repeating: "w", count: 5000) + ":\n    cpus: \"0\"\n")
                == [
                    "line 4 has a key of 5000 characters; YAML allows a key of at most 1024, and a workload's name is at most 12"
                ])
        #expect(errors(head + "  a:\n    cpus: *nowhere\n") == ["the alias *nowhere has no anchor before it"])
        #expect(
            errors("version: 1\nname: x\nhost: { reserve: 0 }\nworkloads: { a: { cpus: \"1\" } }") == [
                "host.reserve: 0 is ambiguous"
            ])
    }

    @Test func guardsRejectNestingAndAliasBombs() {
        let deep = "a: " + String(repeating: "[", count: 100_000)
        #expect(errors(deep).first?.contains("nests deeper") == true)
        let dashes = String(repeating: "- ", count: 50_000) + "x"
        #expect(errors(dashes).first?.contains("nests deeper") == true)
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 {
            bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        #expect(errors(bomb).first?.contains("aliases") == true)
        #expect(errors(String(repeating: "#", count: YAMLGuard.maxBytes + 1)).first?.contains("bytes") == true)
    }

    /// The guard reads libyaml's events, not the text: a quote inside a plain scalar hides nothing.
    @Test func aQuoteInAPlainScalarHidesNoAlias() {
        var text = "x-q: a \"\nx-a: &a [1]\n"
        for i in 0..<20 { text += "x-\(i): *a\n" }
        #expect(errors(text).first?.contains("more than 16 aliases") == true, "\(errors(text))")
    }

    /// Aliases as mapping keys are hashed whole by the composer (exponential work): refused outright,
    /// and so is any key that is not a scalar.
    @Test func mappingKeysMustBeScalars() {
        var bomb = "x-0: &a0 {k: v}\n"
        for i in 1...8 { bomb += "x-\(i): &a\(i) {*a\(i - 1): 1, ? *a\(i - 1) : 2}\n" }
        let clock = ContinuousClock()
        let start = clock.now
        #expect(errors(bomb).first?.contains("a mapping key is an alias") == true, "\(errors(bomb))")
        #expect(clock.now - start < .seconds(5), "an alias-key bomb must be refused before it is expanded")
        #expect(errors("version: 1\n? [a, b]\n: c\n").first?.contains("a mapping key is a collection") == true)
        #expect(
            errors("version: 1\nname: x\nworkloads: { ? {a: 1} : 2 }").first?.contains("a mapping key is a collection")
                == true)
    }

    @Test func aFewAliasesStillWork() throws {
        let p = try profile(
            "version: 1\nname: x\nworkloads:\n  a: { cpus: \"0\", memory: &m { max: 1G } }\n  b: { cpus: \"1\", memory: *m }\n"
        )
        #expect(p.workloads[1].memory.max == .value(Bytes(1 << 30)))
    }
}

/// YAML merge keys and `x-` extension fields: shared settings written once.
@Suite struct MergeKeyTests {
    @Test func mergedSettingsApplyAndKeysWrittenHereWin() throws {
        let p = try profile(
            """
            version: 1
            name: merged
            x-defaults: &defaults
              cpus: { count: 2 }
              memory: { max: 1G }
              run: { command: ["/bin/sleep", "100"] }
            x-small: &small
              cpus: { count: 1 }
              pids: 64
            workloads:
              server:
                <<: *defaults
              client:
                <<: [*small, *defaults]
                memory: { max: 512M }
            """)
        let server = try #require(p.workloads.first { $0.name == "server" })
        let client = try #require(p.workloads.first { $0.name == "client" })
        #expect(server.cpus == .count(2, node: .auto))
        #expect(server.memory.max == .value(Bytes(1 << 30)))
        #expect(server.run?.command == ["/bin/sleep", "100"])
        #expect(client.cpus == .count(1, node: .auto), "the first merged mapping wins over a later one")
        #expect(client.pids == .value(64))
        #expect(client.memory.max == .value(Bytes(512 << 20)), "a key written in the mapping wins over a merged one")
        #expect(client.run?.command == ["/bin/sleep", "100"])
    }

    @Test func aMergeOfSomethingElseIsAnErrorWithItsPlace() throws {
        let e = errors(
            """
            version: 1
            name: merged
            x-name: &n server
            workloads:
              a:
                <<: *n
                cpus: "0"
            """)
        #expect(e == ["workloads.a: a merge key (<<) takes a mapping or a list of mappings, found \"server\""], "\(e)")
    }

    @Test func podmanNeedsAnImageFromItsStorage() throws {
        let e = errors(
            """
            version: 1
            name: pm
            workloads:
              a: { cpus: "0", run: { command: ["/bin/true"], runtime: podman } }
              b: { cpus: "1", run: { command: ["/bin/true"], runtime: podman, image: / } }
            """)
        #expect(
            e == [
                "workloads.a.run.runtime: runtime podman runs an image from its own storage, and no image is named",
                "workloads.b.run.image: runtime podman runs an image from its own storage, and no image is named",
            ], "\(e)")
        #expect(
            try profile(
                """
                version: 1
                name: pm
                workloads:
                  a: { cpus: "0", run: { command: ["/bin/true"], runtime: podman, image: localhost/bench:1 } }
                """
            ).workloads[0].run?.image == "localhost/bench:1")
    }

    /// The merge key is a plain << (or one tagged !!merge); a quoted "<<" is an ordinary key, unknown here.
    @Test func onlyAPlainOrTaggedLessThanLessThanMerges() throws {
        let tagged = try profile(
            """
            version: 1
            name: merged
            x-defaults: &d { cpus: "0" }
            workloads:
              a: { !!merge <<: *d }
            """)
        #expect(tagged.workloads[0].cpus == .list(try CPUSet.parse("0").get()))
        let e = errors(
            """
            version: 1
            name: merged
            x-defaults: &d { cpus: "0" }
            workloads:
              a: { "<<": *d, cpus: "1" }
            """)
        #expect(e == ["workloads.a.<<: unknown key \"<<\""], "\(e)")
    }

    @Test func mergedUnknownKeysAreStillReported() throws {
        let e = errors(
            """
            version: 1
            name: merged
            x-defaults: &d { cpus: "0", memroy: { max: 1G } }
            workloads:
              a: { <<: *d }
            """)
        #expect(e == ["workloads.a.memroy: unknown key \"memroy\""], "\(e)")
    }

    /// Thousands of unknown keys merged into every workload: a bounded report that says how many more.
    @Test func aHugeMergeGetsABoundedReport() throws {
        let keys = (0..<3000).map { "  k\($0): 1" }.joined(separator: "\n")
        let workloads = (0..<10).map { "  w\($0): { <<: *big, cpus: \"\($0)\" }" }.joined(separator: "\n")
        guard
            case .failure(let invalid) = decode(
                "version: 1\nname: big\nx-big: &big\n\(keys)\nworkloads:\n\(workloads)\n")
        else {
            Issue.record("30000 unknown keys must not validate")
            return
        }
        #expect(invalid.diagnostics.count == YAMLReader.maxDiagnostics)
        #expect(invalid.unlisted == 30_000 - YAMLReader.maxDiagnostics)
        #expect(
            invalid.description.hasSuffix(
                "(and \(30_000 - YAMLReader.maxDiagnostics) more problems not listed; fix these first)"))
    }

    @Test func extensionKeysAreOnlyAllowedAtTheTop() throws {
        let e = errors("version: 1\nname: x\nworkloads:\n  a: { cpus: \"0\", x-note: hi }\n")
        #expect(e == ["workloads.a.x-note: unknown key \"x-note\""], "\(e)")
    }
}

@Suite struct DidYouMeanTests {
    @Test func typosFindTheKeyMeant() {
        #expect(editDistance(Array("hihg"), Array("high")) == 1, "two swapped neighbours are one step")
        #expect(editDistance(Array("kitten"), Array("sitting")) == 3)
        #expect(editDistance(Array(""), Array("abc")) == 3)
        #expect(closest(to: "hihg", among: ["policy", "nodes", "max", "high", "swap"]) == "high")
        #expect(closest(to: "memroy", among: ["cpus", "memory", "pids"]) == "memory")
        #expect(closest(to: "zzzz", among: ["cpus", "memory", "pids"]) == nil)
    }

    /// Explicit CPU lists that overlap where isolation forbids it are refused without a host (exit 2),
    /// each at the later workload; shared lists may overlap.
    @Test func overlappingExclusiveOrPartitionListsAreAProfileError() throws {
        let yaml = """
            version: 1
            name: x
            workloads:
              a: { cpus: "0-3" }
              b: { cpus: "2", isolation: partition }
              c: { cpus: "3", isolation: shared }
              d: { cpus: "3", isolation: shared }
            """
        guard case .failure(let invalid) = decode(yaml) else {
            Issue.record("overlapping exclusive lists were accepted")
            return
        }
        #expect(
            invalid.errors.map { "\($0.path)@\($0.line ?? 0): \($0.message)" } == [
                "workloads.b.cpus@5: workloads a and b both ask for CPU 2, but b is partition; make both isolation: shared, or give them different CPUs",
                "workloads.c.cpus@6: workloads a and c both ask for CPU 3, but a is exclusive; make both isolation: shared, or give them different CPUs",
                "workloads.d.cpus@7: workloads a and d both ask for CPU 3, but a is exclusive; make both isolation: shared, or give them different CPUs",
            ])
        #expect(
            errors(
                "version: 1\nname: x\nworkloads: { c: { cpus: \"3\", isolation: shared }, d: { cpus: \"2-3\", isolation: shared } }"
            ) == [])
    }

    /// Names are ASCII bytes: a letter with a combining mark or a zero-width joiner looks like another
    /// name but is not one.
    @Test func namesAreCheckedAsASCIIBytes() {
        #expect(!ProfileDecoder.matches("a\u{0301}", first: "a"..."z", maxLength: 12))
        #expect(!ProfileDecoder.matches("ab\u{200D}", first: "a"..."z", maxLength: 12))
        #expect(!ProfileDecoder.matches("é", first: "a"..."z", maxLength: 12))
        #expect(ProfileDecoder.matches("web-1", first: "a"..."z", maxLength: 12))
        #expect(
            !ProfileDecoder.matches("abcdefghijkl\u{0301}", first: "a"..."z", maxLength: 12),
            "12 letters and a mark are 14 bytes")
        #expect(
            errors("version: 1\nname: x\u{200D}\nworkloads: { a: { cpus: \"0\" } }").first?.contains(
                "not a valid profile name") == true)
        #expect(
            errors("version: 1\nname: x\nworkloads: { \"s\u{0301}\": { cpus: \"0\" } }").first?.contains(
                "not a valid workload name") == true)
    }

    @Test func topoStateNamesAreReserved() {
        #expect(
            errors("version: 1\nname: lock\nworkloads: { a: { cpus: \"0\" } }") == [
                "name: \"lock\" is reserved: topo keeps its own lock there, beside the profiles' state"
            ])
        #expect(
            errors("version: 1\nname: images\nworkloads: { a: { cpus: \"0\" } }") == [
                "name: \"images\" is reserved: topo keeps its own images there, beside the profiles' state"
            ])
    }

    /// An invalid link earlier in the list must not shift what later diagnostics name (links[i] and its line).
    @Test func linkDiagnosticsNameTheirOwnLinkAfterAnInvalidOne() throws {
        let yaml = """
            version: 1
            name: x
            workloads: { a: { cpus: "0" }, b: { cpus: "1" }, c: { cpus: "2" } }
            links:
              - between: [a, nosuch]
              - between: [a, b]
                subnet: 10.9.0.0/30
              - between: [b, c]
                subnet: 10.9.0.0/29
              - between: [b, a]
            """
        guard case .failure(let invalid) = decode(yaml) else {
            Issue.record("the profile was accepted")
            return
        }
        let byPath = Dictionary(invalid.errors.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byPath["links[2].subnet"]?.message == "10.9.0.0/29 overlaps links[1]'s subnet 10.9.0.0/30")
        #expect(byPath["links[2].subnet"]?.line == 8)
        #expect(byPath["links[3]"]?.message == "b and a are already linked by links[1]")
        #expect(byPath["links[3]"]?.line == 10)
    }
}

/// `topo down ARG`: an applied profile's name wins over a file or directory of that name.
@Suite struct AppliedNameTests {
    @Test func anAppliedNameWinsOverAFileOfThatName() throws {
        let fake = try FakeRoot()
        try fake.seed("web/x", "not a profile")
        try fake.seed("p.yaml", "version: 1\nname: fromfile\nworkloads: { a: { cpus: \"0\" } }\n")
        // (The current directory is the process's, shared by tests running at once: absolute paths here.)
        #expect(try Loading.appliedName("web", applied: ["web"]).get() == "web")
        #expect(
            Loading.appliedName("\(fake.path)/web", applied: []).failure != nil,
            "a directory that is not a profile file")
        #expect(try Loading.appliedName("\(fake.path)/p.yaml", applied: ["web"]).get() == "fromfile")
        #expect(try Loading.appliedName("other", applied: []).get() == "other")
        #expect(Loading.appliedName("Not/A name", applied: []).failure?.status == .invalid)
    }
}

/// Who a workload runs as: nobody unless the profile names a user, root only by name, and never an
/// id the kernel reads as "unchanged".
@Suite struct WorkloadUserTests {
    @Test func aWorkloadWithoutAUserRunsAsNobody() throws {
        let p = try profile(
            "version: 1\nname: u\nworkloads:\n  a: { cpus: \"0\", run: { command: [/bin/true] } }\n  r: { cpus: \"1\", run: { command: [/bin/true], user: root } }\n"
        )
        let plan = try Planner(host: try fixtureHost("1n-2c")).plan(p).get()
        #expect(plan.workload(named: "a")?.run?.user == "65534:65534" && plan.workload(named: "r")?.run?.user == "root")
        let launches = plan.resources.compactMap { if case .launch(let l) = $0 { l } else { nil } }
        #expect(launches.map(\.user) == ["65534:65534", "root"])
        #expect(
            launches[0].placementLines.joined().contains("as user 65534:65534")
                && !launches[0].placementLines.joined().contains("as root:"))
        #expect(launches[1].placementLines.joined().contains("as root: /proc/sys"))
    }

    @Test(arguments: ["4294967295", "4294967295:0", "0:4294967295", "1000:4294967295"])
    func theUnchangedIdIsRefused(user: String) {
        let e = errors(
            "version: 1\nname: u\nworkloads:\n  a: { cpus: \"0\", run: { command: [/bin/true], user: \"\(user)\" } }\n")
        #expect(
            e.count == 1 && e[0].contains("holds the id 4294967295, which the kernel reads as \"leave unchanged\""),
            "\(e)")
    }

    @Test func theLauncherRefusesTheUnchangedIdToo() {
        guard case .failure(let f) = Launcher.identity("4294967295:4294967295") else {
            Issue.record("accepted")
            return
        }
        #expect(f.description.contains("means \"unchanged\""))
        #expect((try? Launcher.identity(nil).get())?.map { [$0.uid, $0.gid] } == [65534, 65534])
    }

    /// A root workload's protection lists only what is there, each path in its kind of mask.
    @Test func aRootWorkloadsProtectionIsWhatTheHostHas() {
        let present: Set<String> = [
            "/proc/sys", "/proc/sysrq-trigger", "/sys", "/proc/kcore", "/proc/acpi", "/sys/firmware", "/run",
        ]
        let dirs: Set<String> = ["/proc/sys", "/sys", "/proc/acpi", "/sys/firmware", "/run"]
        let p = Launcher.HostProtection.present(exists: present.contains, isDirectory: dirs.contains)
        #expect(p.readOnly == ["/proc/sys", "/proc/sysrq-trigger", "/sys"])
        #expect(
            p.maskedFiles == ["/proc/kcore"] && p.maskedDirectories == ["/proc/acpi", "/sys/firmware"]
                && p.run == "/run")
    }
}

/// What the decoder accepts is what the schema says: a runtime the schema does not list is refused when
/// the profile is read, with the reason and the runtimes that work.
@Suite struct RuntimeChoiceTests {
    @Test func dockerIsRefusedWhenTheProfileIsRead() throws {
        let e = errors(
            "version: 1\nname: d\nworkloads:\n  a: { cpus: \"0\", run: { command: [/bin/true], runtime: docker } }\n")
        #expect(e.count == 1 && e[0].contains("runtime docker cannot join a network namespace by its path"), "\(e)")
        let schema = try #require(
            try JSONSerialization.jsonObject(with: Data(ProfileSchema.json.utf8)) as? [String: Any])
        let text = String(data: try JSONSerialization.data(withJSONObject: schema), encoding: .utf8) ?? ""
        #expect(text.contains(#"["process","crun","runc","podman"]"#), "the schema's runtimes are the decoder's")
        #expect(Runtime.allCases.map(\.rawValue) == ["process", "crun", "runc", "podman"])
    }
}
