// Typed units for profile values. Each type parses the human spelling a profile uses and
// renders the encoding the kernel wants only at the edge (cgroup files, tc arguments).

/// A number of bytes. Suffixes are powers of 1024, as the kernel's memparse and docker read them.
public struct Bytes: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }

    public static func < (a: Bytes, b: Bytes) -> Bool { a.value < b.value }

    static let suffixes: [(String, UInt64)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
        ("ki", 1 << 10), ("mi", 1 << 20), ("gi", 1 << 30), ("ti", 1 << 40),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40),
        ("b", 1), ("", 1),
    ]

    static let spellings =
        "a byte count, or a number with K, M, G or T — also written Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB — each a power of 1024: 512M, 4G, 1Gi, 1.5GiB"

    /// Parses `512M`, `4G`, `1Gi` (Kubernetes), `1GiB`, `1.5G` or a plain byte count. Every suffix is a
    /// power of 1024, as the kernel's memparse reads `4G`. `4GB` is refused: docker reads it as 4 GiB,
    /// Kubernetes and disk makers as 4·10⁹ bytes, so a profile says which.
    public static func parse(_ text: String) -> Result<Bytes, UnitError> {
        let lower = text.trimmingSpaces().lowercased()
        if let unit = ["kb", "mb", "gb", "tb"].first(where: { lower.hasSuffix($0) }), lower.count > 2 {
            let number = lower.dropLast(2)
            let letter = unit.prefix(1).uppercased()
            return .failure(
                UnitError(
                    "\"\(text)\" is ambiguous: docker reads \(letter)B as a power of 1024, Kubernetes as a power of 1000",
                    fix:
                        "write \(number)\(letter) or \(number)\(letter)i for \(number) \(letter)iB (topo's sizes are powers of 1024), or the exact byte count"
                ))
        }
        if let scaled = parseSuffixed(lower, suffixes, roundDown: true) { return .success(Bytes(scaled)) }
        if isOversized(lower, suffixes) {
            return .failure(
                UnitError(
                    "\"\(text)\" is larger than any size (the most is 16 EiB, 2^64 - 1 bytes)",
                    fix: "write a size below 16 EiB, e.g. 4G"))
        }
        return .failure(UnitError("\"\(text)\" is not a size", fix: "write \(spellings)"))
    }

    public var description: String {
        for (name, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] as [(String, UInt64)] {
            let unit: UInt64 = 1 << shift
            if value >= unit && value % unit == 0 { return "\(value / unit)\(name)" }
        }
        return "\(value)"
    }

    /// A short approximate rendering for people, e.g. `15.6 GiB`.
    public var approximate: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(value)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(value) B" : "\((v * 10).rounded() / 10) \(units[i])"
    }
}

/// A duration kept in nanoseconds, the kernel's netem unit since TCA_NETEM_LATENCY64 (Linux 4.15).
public struct Duration: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    public static func < (a: Duration, b: Duration) -> Bool { a.nanoseconds < b.nanoseconds }
    public static let zero = Duration(nanoseconds: 0)

    static let suffixes: [(String, UInt64)] = [
        ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
    ]

    /// Parses `200us`, `5ms`, `1.5s`, `0`.
    public static func parse(_ text: String) -> Result<Duration, UnitError> {
        let lower = text.trimmingSpaces().lowercased()
        if lower == "0" { return .success(.zero) }
        if let ns = parseSuffixed(lower, suffixes) { return .success(Duration(nanoseconds: ns)) }
        if isOversized(lower, suffixes) {
            return .failure(
                UnitError(
                    "\"\(text)\" is longer than any duration (the most is 2^64 - 1 ns, 584 years)",
                    fix: "write a duration such as 5ms"))
        }
        return .failure(
            UnitError("\"\(text)\" is not a duration", fix: "write a number with ns, us, ms or s, e.g. 200us or 5ms"))
    }

    /// Microseconds, as `tc` prints them (`200us`) — rounded down.
    public var microseconds: UInt64 { nanoseconds / 1_000 }

    public var description: String {
        if nanoseconds == 0 { return "0ms" }
        for (name, unit) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] as [(String, UInt64)]
        where nanoseconds % unit == 0 {
            return "\(nanoseconds / unit)\(name)"
        }
        return "\(nanoseconds)ns"
    }
}

/// A bit rate in bits per second. Suffixes are decimal, as tc reads them (`1mbit` = 1,000,000 bit/s).
public struct BitRate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bitsPerSecond: UInt64
    public init(bitsPerSecond: UInt64) { self.bitsPerSecond = bitsPerSecond }
    public static func < (a: BitRate, b: BitRate) -> Bool { a.bitsPerSecond < b.bitsPerSecond }

    static let suffixes: [(String, UInt64)] = [
        ("kbit", 1_000), ("mbit", 1_000_000), ("gbit", 1_000_000_000), ("tbit", 1_000_000_000_000), ("bit", 1),
    ]

    public static func parse(_ text: String) -> Result<BitRate, UnitError> {
        let lower = text.trimmingSpaces().lowercased()
        if lower.hasSuffix("bps") {
            return .failure(
                UnitError(
                    "\"\(text)\" is ambiguous: tc reads \"bps\" as bytes per second",
                    fix: "write the rate in bits, e.g. 100mbit or 1gbit"))
        }
        if let bits = parseSuffixed(lower, suffixes) { return .success(BitRate(bitsPerSecond: bits)) }
        if isOversized(lower, suffixes) {
            return .failure(
                UnitError(
                    "\"\(text)\" is faster than any rate (the most is 2^64 - 1 bit/s)",
                    fix: "write a rate such as 100mbit"))
        }
        return .failure(
            UnitError("\"\(text)\" is not a rate", fix: "write a number with bit, kbit, mbit or gbit, e.g. 100mbit"))
    }

    /// Bytes per second, the unit of netem's rate field (rounded down).
    public var bytesPerSecond: UInt64 { bitsPerSecond / 8 }

    public var description: String {
        for (name, unit) in [("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)] as [(String, UInt64)]
        where bitsPerSecond >= unit && bitsPerSecond % unit == 0 {
            return "\(bitsPerSecond / unit)\(name)"
        }
        return "\(bitsPerSecond)bit"
    }
}

/// A percentage between 0 and 100, kept in millionths of a percent so that `0.000001%` is exact.
public struct Percent: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var micro: UInt64  // millionths of a percent; 100% = 100_000_000
    public init(micro: UInt64) { self.micro = micro }
    public static func < (a: Percent, b: Percent) -> Bool { a.micro < b.micro }
    public static let zero = Percent(micro: 0)
    public var isZero: Bool { micro == 0 }
    public var fraction: Double { Double(micro) / 100_000_000 }

    /// Parses `0.1%`, `5%` or a bare number read as percent (as tc reads it).
    public static func parse(_ text: String) -> Result<Percent, UnitError> {
        var t = text.trimmingSpaces()
        if t.hasSuffix("%") { t.removeLast() }
        guard let micro = scaledInteger(t, factor: 1_000_000) else {
            return .failure(
                UnitError("\"\(text)\" is not a percentage", fix: "write a number from 0 to 100 with %, e.g. 0.1%"))
        }
        guard micro <= 100_000_000 else {
            return .failure(UnitError("\(text) is outside 0-100%", fix: "write a percentage from 0% to 100%"))
        }
        return .success(Percent(micro: micro))
    }

    public var description: String {
        fixedPoint(micro, decimals: 6) + "%"
    }
}

/// A CPU frequency in kHz, cpufreq's unit (`scaling_min_freq`). Suffixes are decimal: `2.4GHz`, `800MHz`, `1200000kHz`.
public struct Frequency: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var kHz: UInt64
    public init(kHz: UInt64) { self.kHz = kHz }
    public static func < (a: Frequency, b: Frequency) -> Bool { a.kHz < b.kHz }

    static let suffixes: [(String, UInt64)] = [("ghz", 1_000_000), ("mhz", 1_000), ("khz", 1)]

    public static func parse(_ text: String) -> Result<Frequency, UnitError> {
        let lower = text.trimmingSpaces().lowercased()
        if let k = parseSuffixed(lower, suffixes), k > 0, k <= 100_000_000 { return .success(Frequency(kHz: k)) }
        return .failure(
            UnitError(
                "\"\(text)\" is not a CPU frequency", fix: "write a number with GHz, MHz or kHz, e.g. 2.4GHz or 2400MHz"
            ))
    }

    public var description: String {
        for (name, unit) in [("GHz", 1_000_000), ("MHz", 1_000)] as [(String, UInt64)] where kHz % unit == 0 {
            return "\(kHz / unit)\(name)"
        }
        return "\(kHz)kHz"
    }
}

public struct UnitError: Error, Equatable, Sendable {
    public var message: String
    public var fix: String
    public init(_ message: String, fix: String) {
        self.message = message
        self.fix = fix
    }
}

/// `value` / 10^decimals as a decimal without trailing zeros: `fixedPoint(1500, decimals: 3)` is `1.5`.
func fixedPoint(_ value: UInt64, decimals: Int) -> String {
    var unit: UInt64 = 1
    for _ in 0..<decimals { unit *= 10 }
    let whole = value / unit
    let frac = value % unit
    if frac == 0 { return "\(whole)" }
    var digits = String(frac)
    digits = String(repeating: "0", count: decimals - digits.count) + digits
    while digits.hasSuffix("0") { digits.removeLast() }
    return "\(whole).\(digits)"
}

/// A number with the first matching suffix of `suffixes` (longest first), scaled by its factor.
func parseSuffixed(_ text: String, _ suffixes: [(String, UInt64)], roundDown: Bool = false) -> UInt64? {
    guard let (suffix, factor) = suffixes.first(where: { text.hasSuffix($0.0) }) else { return nil }
    return scaledInteger(String(text.dropLast(suffix.count)), factor: factor, roundDown: roundDown)
}

/// Whether `text` is a well-formed number with one of `suffixes` that is too large to hold: the
/// message then says so, rather than that it is not a number.
func isOversized(_ text: String, _ suffixes: [(String, UInt64)]) -> Bool {
    guard let (suffix, _) = suffixes.first(where: { text.hasSuffix($0.0) }) else { return false }
    let number = text.dropLast(suffix.count)
    let digits = number.filter { $0 != "." }
    return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber } && number.filter { $0 == "." }.count <= 1
        && (number.split(separator: ".", omittingEmptySubsequences: false).dropFirst().first?.count ?? 0) <= 12
        && parseSuffixed(text, suffixes, roundDown: true) == nil
}

/// Parses a non-negative decimal like `1.5` and multiplies it by `factor` without floating point
/// and without overflow traps. The result must be whole unless `roundDown` allows dropping a fraction
/// (sizes: `1.1G` is 1181116006 bytes). Nil on anything else.
func scaledInteger(_ text: String, factor: UInt64, roundDown: Bool = false) -> UInt64? {
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let intPart = parts.first, !text.isEmpty, text.count <= 40 else { return nil }
    let fracPart = parts.count == 2 ? parts[1] : ""
    guard !(intPart.isEmpty && fracPart.isEmpty), parts.count == 1 || !fracPart.isEmpty, fracPart.count <= 12,
        let whole = decimal(intPart), let fraction = decimal(fracPart)
    else { return nil }
    let (scaled, o1) = whole.multipliedReportingOverflow(by: factor)
    let (fracScaled, o2) = fraction.multipliedReportingOverflow(by: factor)
    if o1 || o2 { return nil }
    var divisor: UInt64 = 1
    for _ in 0..<fracPart.count { divisor *= 10 }
    if !roundDown && fracScaled % divisor != 0 { return nil }  // finer than the unit can hold
    let (sum, o3) = scaled.addingReportingOverflow(fracScaled / divisor)
    return o3 ? nil : sum
}

/// Digits to a number; empty is 0; nil on anything but ASCII digits or on overflow.
private func decimal(_ digits: Substring) -> UInt64? {
    var value: UInt64 = 0
    for c in digits {
        guard c.isASCII, c.isNumber, let d = c.asciiValue else { return nil }
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(d - 48))
        if o1 || o2 { return nil }
        value = a
    }
    return value
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// The units travel in JSON (plans, journals) as their profile spelling.
protocol UnitCodable: Codable, CustomStringConvertible {
    static func parse(_ text: String) -> Result<Self, UnitError>
}

extension UnitCodable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch Self.parse(text) {
        case .success(let v): self = v
        case .failure(let e):
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.message))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension Bytes: UnitCodable {}
extension Duration: UnitCodable {}
extension BitRate: UnitCodable {}
extension Percent: UnitCodable {}
extension Frequency: UnitCodable {}
