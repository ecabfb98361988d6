import Testing

@testable import TopoCore

@Suite struct UnitsTests {
    static let sizeCases: [(String, UInt64)] = [
        ("512M", 536_870_912), ("4G", 4_294_967_296), ("1GiB", 1_073_741_824), ("1536", 1536), ("1.5G", 1_610_612_736),
        ("64k", 65536), ("2T", 2_199_023_255_552), ("0", 0), ("100MiB", 104_857_600),
        ("1Gi", 1_073_741_824), ("512Mi", 536_870_912), ("64ki", 65536),
    ]
    @Test(arguments: sizeCases)
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try Bytes.parse(text).get() == Bytes(bytes))
    }

    /// What kernel files end with goes; anything else, and text inside, stays (bytes, not characters).
    @Test func kernelTextIsTrimmedOfASCIIWhitespaceOnly() {
        #expect("0-3\n".trimmedASCIIWhitespace == "0-3")
        #expect(" \t max 100000\r\n".trimmedASCIIWhitespace == "max 100000")
        #expect("\n\n".trimmedASCIIWhitespace == "" && "".trimmedASCIIWhitespace == "")
        #expect("é x\u{00A0}".trimmedASCIIWhitespace == "é x\u{00A0}")
        #expect("a\nb".trimmedASCIIWhitespace == "a\nb")
    }

    @Test(arguments: ["4X", "", "G", "-1", "1e9", "99999999999999999999G", "1..5G", "0x10"])
    func badSizes(text: String) {
        #expect(throws: UnitError.self) { try Bytes.parse(text).get() }
    }

    /// A rejected size names what is accepted; one too large says it is too large, not that it is no size.
    @Test func aRejectedSizeNamesTheSpellingsAndTheReason() throws {
        guard case .failure(let gb) = Bytes.parse("4gb"), case .failure(let odd) = Bytes.parse("4X"),
            case .failure(let big) = Bytes.parse("99999999999999999999T"),
            case .failure(let slow) = Duration.parse("99999999999999999999s")
        else {
            Issue.record("accepted")
            return
        }
        #expect(gb.message.contains("ambiguous") && gb.fix.contains("4G or 4Gi"), "\(gb)")
        #expect(odd.message.contains("not a size") && odd.fix.contains("Gi/GiB") && odd.fix.contains("1Gi"), "\(odd)")
        #expect(big.message.contains("larger than any size") && !big.message.contains("not a size"), "\(big)")
        #expect(slow.message.contains("longer than any duration"), "\(slow)")
    }

    @Test func decimalSizeSuffixIsRejectedWithTheBinarySpelling() {
        guard case .failure(let e) = Bytes.parse("1GB") else {
            Issue.record("1GB accepted")
            return
        }
        #expect(e.fix.contains("1G"))
    }

    static let rateCases: [(String, UInt64)] = [
        ("100mbit", 100_000_000), ("1gbit", 1_000_000_000), ("500kbit", 500_000), ("1000mbit", 1_000_000_000),
        ("1.5mbit", 1_500_000),
    ]
    @Test(arguments: rateCases)
    func rates(text: String, bits: UInt64) throws {
        #expect(try BitRate.parse(text).get().bitsPerSecond == bits)
    }

    @Test(arguments: ["100mbps", "fast", "10", "mbit"])
    func badRates(text: String) {
        #expect(throws: UnitError.self) { try BitRate.parse(text).get() }
    }

    static let durationCases: [(String, UInt64)] = [
        ("200us", 200_000), ("5ms", 5_000_000), ("1s", 1_000_000_000), ("0", 0), ("1.5ms", 1_500_000), ("250ns", 250),
        ("0ms", 0),
    ]
    @Test(arguments: durationCases)
    func durations(text: String, ns: UInt64) throws {
        #expect(try Duration.parse(text).get().nanoseconds == ns)
    }

    @Test(arguments: ["5", "-1ms", "ms", "1h", "1.0000000001ms"])
    func badDurations(text: String) {
        #expect(throws: UnitError.self) { try Duration.parse(text).get() }
    }

    @Test func percentages() throws {
        #expect(try Percent.parse("0.1%").get().micro == 100_000)
        #expect(try Percent.parse("100%").get().micro == 100_000_000)
        #expect(try Percent.parse("5").get().description == "5%")
        #expect(try Percent.parse("0.000001%").get().description == "0.000001%")
        #expect(throws: UnitError.self) { try Percent.parse("100.1%").get() }
        #expect(throws: UnitError.self) { try Percent.parse("-1%").get() }
        #expect(throws: UnitError.self) { try Percent.parse("%").get() }
    }

    @Test func renderings() {
        #expect(Bytes(4 << 30).description == "4G")
        #expect(Bytes(1000).description == "1000")
        #expect(BitRate(bitsPerSecond: 1_000_000_000).description == "1gbit")
        #expect(Duration(nanoseconds: 200_000).description == "200us")
        #expect(Duration(nanoseconds: 1_500_000).description == "1500us")
    }

    @Test func subnets() throws {
        let s = try IPv4Subnet.parse("10.77.0.4/30").get()
        #expect(s.description == "10.77.0.4/30")
        #expect(s.host(1).description == "10.77.0.5/30")
        #expect(s.overlaps(try IPv4Subnet.parse("10.77.0.0/16").get()))
        #expect(!s.overlaps(try IPv4Subnet.parse("10.77.0.8/30").get()))
        for bad in [
            "10.77.0.1/30", "10.77.0.0/31", "10.77.0/30", "300.1.1.0/24", "10.77.0.0", "10.77.0.0/33", "a.b.c.d/8",
        ] {
            #expect(throws: UnitError.self, "\(bad)") { try IPv4Subnet.parse(bad).get() }
        }
    }
}

@Suite struct CPUSetTests {
    static let cases: [(String, [Int])] = [
        ("0-3,8", [0, 1, 2, 3, 8]), ("0", [0]), ("", []), ("3,1,2", [1, 2, 3]), ("0-1,1-2\n", [0, 1, 2]),
    ]
    @Test(arguments: cases)
    func parse(text: String, ids: [Int]) throws {
        #expect(try CPUSet.parse(text).get().ids == ids)
    }

    @Test(arguments: ["a", "1-", "-1", "3-1", "0-8192", "1,,2", "0-3:2/4", "1 2", "99999999999999999999"])
    func rejects(text: String) {
        #expect(throws: UnitError.self) { try CPUSet.parse(text).get() }
    }

    @Test func rendersKernelCpulists() {
        #expect(CPUSet([0, 1, 2, 3, 8, 10, 11]).description == "0-3,8,10-11")
        #expect(CPUSet([5]).description == "5")
        #expect(CPUSet().description == "")
    }

    @Test func setAlgebra() {
        let a = CPUSet([0, 1, 2, 3])
        let b = CPUSet([2, 3, 4])
        #expect(a.intersection(b).description == "2-3")
        #expect(a.subtracting(b).description == "0-1")
        #expect(a.union(b).description == "0-4")
        #expect(CPUSet([2]).isSubset(of: a))
    }
}
