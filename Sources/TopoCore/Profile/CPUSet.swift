/// A set of CPU (or NUMA node) ids in the kernel's cpulist syntax: `0-3,8`.
/// See Documentation/admin-guide/cputopology.rst and bitmap_parselist() in lib/bitmap.c.
public struct CPUSet: Hashable, Sendable, Sequence, CustomStringConvertible {
    /// The kernel's largest NR_CPUS (CONFIG_NR_CPUS_RANGE_END) is 8192; nothing above can exist.
    public static let maxID = 8191

    public private(set) var ids: [Int]  // sorted, unique

    public init<S: Sequence>(_ ids: S) where S.Element == Int {
        self.ids = Array(Set(ids)).sorted()
    }
    public init() { ids = [] }

    public static let empty = CPUSet()

    public var isEmpty: Bool { ids.isEmpty }
    public var count: Int { ids.count }
    public func contains(_ id: Int) -> Bool { binarySearch(id) }
    public func makeIterator() -> IndexingIterator<[Int]> { ids.makeIterator() }

    public func union(_ other: CPUSet) -> CPUSet { CPUSet(ids + other.ids) }
    public func intersection(_ other: CPUSet) -> CPUSet { CPUSet(ids.filter { other.contains($0) }) }
    public func subtracting(_ other: CPUSet) -> CPUSet { CPUSet(ids.filter { !other.contains($0) }) }
    public func isSubset(of other: CPUSet) -> Bool { ids.allSatisfy { other.contains($0) } }

    private func binarySearch(_ id: Int) -> Bool {
        var lo = 0, hi = ids.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ids[mid] == id { return true }
            if ids[mid] < id { lo = mid + 1 } else { hi = mid }
        }
        return false
    }

    /// Parses a cpulist such as `0-3,8,10-11`. Whitespace around the list (as sysfs files end
    /// with a newline) is ignored; an empty string is the empty set.
    public static func parse(_ text: String) -> Result<CPUSet, UnitError> {
        let t = text.trimmingCharacters(in: " \t\n")
        if t.isEmpty { return .success(CPUSet()) }
        var ids: [Int] = []
        for part in t.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let lo = parseID(bounds[0]) else { return .failure(invalid(text, part)) }
            var hi = lo
            if bounds.count == 2 {
                guard let h = parseID(bounds[1]) else { return .failure(invalid(text, part)) }
                hi = h
            }
            guard lo <= CPUSet.maxID, hi <= CPUSet.maxID else {
                return .failure(UnitError("\"\(part)\" in \"\(text)\" is above \(CPUSet.maxID), the largest id the kernel can have",
                                          fix: "write ids from 0 to \(CPUSet.maxID)"))
            }
            guard lo <= hi else {
                return .failure(UnitError("range \"\(part)\" in \"\(text)\" runs backwards", fix: "write \(hi)-\(lo)"))
            }
            ids.append(contentsOf: lo...hi)
        }
        return .success(CPUSet(ids))
    }

    private static func parseID(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 6, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    private static func invalid(_ text: String, _ part: Substring) -> UnitError {
        UnitError("\"\(text)\" is not a cpulist (at \"\(part)\")", fix: "write ids and ranges separated by commas, e.g. \"0-3,8\"")
    }

    /// The kernel's cpulist rendering: ascending ranges joined by commas.
    public var description: String {
        var parts: [String] = []
        var i = 0
        while i < ids.count {
            var j = i
            while j + 1 < ids.count && ids[j + 1] == ids[j] + 1 { j += 1 }
            parts.append(i == j ? "\(ids[i])" : "\(ids[i])-\(ids[j])")
            i = j + 1
        }
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
