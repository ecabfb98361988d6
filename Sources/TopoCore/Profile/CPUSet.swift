/// A set of CPU (or NUMA node) ids in the kernel's cpulist syntax: `0-3,8`.
/// See Documentation/admin-guide/cputopology.rst and bitmap_parselist() in lib/bitmap.c.
public struct CPUSet: Hashable, Sendable, Sequence, CustomStringConvertible {
    /// The kernel's largest NR_CPUS (CONFIG_NR_CPUS_RANGE_END) is 8192; nothing above can exist.
    public static let maxID = 8191

    /// A bitset, bit i of word i/64 for id i, without trailing zero words (so equal sets are equal
    /// values). At most 128 words: every operation is bounded by that, whatever a profile writes —
    /// `"0-8191"` costs 128 word writes, not 8192 insertions.
    private var words: [UInt64]

    public init<S: Sequence>(_ ids: S) where S.Element == Int {
        words = []
        for id in ids where id >= 0 && id <= CPUSet.maxID { insert(id) }
    }
    public init() { words = [] }

    public static let empty = CPUSet()

    /// The ids, ascending.
    public var ids: [Int] { Array(self) }
    public var isEmpty: Bool { words.isEmpty }
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    public func contains(_ id: Int) -> Bool {
        guard id >= 0, id / 64 < words.count else { return false }
        return words[id / 64] & (1 << UInt64(id % 64)) != 0
    }

    public mutating func insert(_ id: Int) {
        precondition(id >= 0 && id <= CPUSet.maxID)
        if id / 64 >= words.count { words += Array(repeating: 0, count: id / 64 - words.count + 1) }
        words[id / 64] |= 1 << UInt64(id % 64)
    }

    /// Adds every id from `lo` to `hi`, a word at a time.
    mutating func insert(range lo: Int, _ hi: Int) {
        precondition(lo >= 0 && lo <= hi && hi <= CPUSet.maxID)
        if hi / 64 >= words.count { words += Array(repeating: 0, count: hi / 64 - words.count + 1) }
        for w in (lo / 64)...(hi / 64) {
            let from = w == lo / 64 ? lo % 64 : 0
            let to = w == hi / 64 ? hi % 64 : 63
            let span = to - from + 1
            words[w] |= (span == 64 ? ~0 : ((1 << UInt64(span)) - 1)) << UInt64(from)
        }
    }

    public struct Iterator: IteratorProtocol {
        let words: [UInt64]
        var word = 0
        var rest: UInt64
        init(_ words: [UInt64]) {
            self.words = words
            rest = words.first ?? 0
        }
        public mutating func next() -> Int? {
            while rest == 0 {
                word += 1
                guard word < words.count else { return nil }
                rest = words[word]
            }
            let bit = rest.trailingZeroBitCount
            rest &= rest - 1
            return word * 64 + bit
        }
    }

    public func makeIterator() -> Iterator { Iterator(words) }
    public var underestimatedCount: Int { count }

    public func union(_ other: CPUSet) -> CPUSet {
        var r = CPUSet()
        r.words = (0..<Swift.max(words.count, other.words.count)).map {
            (words.indices.contains($0) ? words[$0] : 0) | (other.words.indices.contains($0) ? other.words[$0] : 0)
        }
        return r
    }
    public func intersection(_ other: CPUSet) -> CPUSet {
        var r = CPUSet()
        r.words = (0..<Swift.min(words.count, other.words.count)).map { words[$0] & other.words[$0] }
        r.trim()
        return r
    }
    public func subtracting(_ other: CPUSet) -> CPUSet {
        var r = CPUSet()
        r.words = words.indices.map { words[$0] & ~(other.words.indices.contains($0) ? other.words[$0] : 0) }
        r.trim()
        return r
    }
    public func isSubset(of other: CPUSet) -> Bool { subtracting(other).isEmpty }

    private mutating func trim() {
        while words.last == 0 { words.removeLast() }
    }

    /// Parses a cpulist such as `0-3,8,10-11`. Whitespace around the list (as sysfs files end
    /// with a newline) is ignored; an empty string is the empty set.
    public static func parse(_ text: String) -> Result<CPUSet, UnitError> {
        let t = text.trimmingCharacters(in: " \t\n")
        if t.isEmpty { return .success(CPUSet()) }
        var set = CPUSet()
        for part in t.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let lo = parseID(bounds[0]) else { return .failure(invalid(text, part)) }
            var hi = lo
            if bounds.count == 2 {
                guard let h = parseID(bounds[1]) else { return .failure(invalid(text, part)) }
                hi = h
            }
            guard lo <= CPUSet.maxID, hi <= CPUSet.maxID else {
                return .failure(
                    UnitError(
                        "\"\(part)\" in \"\(text)\" is above \(CPUSet.maxID), the largest id the kernel can have",
                        fix: "write ids from 0 to \(CPUSet.maxID)"))
            }
            guard lo <= hi else {
                return .failure(UnitError("range \"\(part)\" in \"\(text)\" runs backwards", fix: "write \(hi)-\(lo)"))
            }
            set.insert(range: lo, hi)
        }
        return .success(set)
    }

    private static func parseID(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 6, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    private static func invalid(_ text: String, _ part: Substring) -> UnitError {
        UnitError(
            "\"\(text)\" is not a cpulist (at \"\(part)\")",
            fix: "write ids and ranges separated by commas, e.g. \"0-3,8\"")
    }

    /// The kernel's cpulist rendering: ascending ranges joined by commas.
    public var description: String {
        var parts: [String] = []
        var run: (first: Int, last: Int)?
        for id in self {
            if let r = run, r.last + 1 == id {
                run = (r.first, id)
                continue
            }
            if let r = run { parts.append(r.first == r.last ? "\(r.first)" : "\(r.first)-\(r.last)") }
            run = (id, id)
        }
        if let r = run { parts.append(r.first == r.last ? "\(r.first)" : "\(r.first)-\(r.last)") }
        return parts.joined(separator: ",")
    }
}

extension CPUSet: UnitCodable {}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
