import Crypto
import Foundation

/// The differences between two reports that matter when comparing benchmark results, most material
/// first: CPU model, microcode, kernel, SMT, NUMA layout, placement, limits, link shaping, frequency and
/// boost, transparent huge pages, other host settings, the rest of the plan. What is never material —
/// host names, times, pids, what the kernel showed and the results — is listed after, as the rest.
public enum ReportDiff {
    public struct Difference: Codable, Equatable, Sendable {
        /// `host.cpu.model`, `plan.workloads[server].cpus`: array elements with a `name` go by it.
        public var path: String
        public var category: String
        public var material: Bool
        /// Each side's value as JSON text; nil where that side has none. A text of several lines (the
        /// profile) is shown by its sha256 and length, with `lines` its unified diff.
        public var a: String?
        public var b: String?
        /// For a text of several lines on both sides: `-` and `+` lines with up to 2 lines of context,
        /// `@@ -A,N +B,M @@` before each hunk, as `diff -u` prints them (without the file names).
        public var lines: [String]?
    }

    /// Categories in order of how much they change a result; a path belongs to the first whose prefix it has.
    static let categories: [(name: String, prefixes: [String])] = [
        ("CPU model", ["host.cpu.model"]),
        ("microcode", ["host.cpu.microcode"]),
        ("kernel", ["host.kernel.release", "host.kernel.version", "host.kernel.parameters"]),
        ("SMT", ["host.cpu.smt", "host.cpu.sockets", "host.cpu.cores", "host.cpu.threads", "host.cpu.online"]),
        ("NUMA layout", ["host.numa"]),
        (
            "placement",
            [
                "plan.workloads[].cpus", "plan.workloads[].mems", "plan.workloads[].memoryPolicy",
                "plan.workloads[].policyNodes",
                "plan.workloads[].cpuNodes", "plan.workloads[].isolation", "plan.reserved", "plan.idle", "plan.smt",
            ]
        ),
        ("limits", ["plan.workloads[].cgroup"]),
        ("link shaping", ["plan.links"]),
        ("frequency and boost", ["host.frequency", "host.boost"]),
        ("transparent huge pages", ["host.transparentHugePages"]),
        (
            "host settings",
            [
                "host.irqbalance", "host.aslr", "host.numaBalancing", "host.timerMigration", "host.statInterval",
                "host.perfSampleRate", "host.workqueueCPUs", "host.cgroup", "host.memoryBytes",
                "host.kernel.commandLine",
                "host.versions", "host.distribution",
            ]
        ),
        ("workloads", ["plan.workloads", "plan.name", "profile.sha256", "format"]),
    ]

    /// Never material: where and when, what the kernel showed (pids), and the results themselves.
    static let immaterial = [
        "host.hostname", "topo", "observed", "verify", "run", "profile.path", "profile.text", "profile.name",
        "plan.warnings", "plan.format",
    ]
    /// Derived from the rest of the plan: compared through it.
    static let skipped = ["plan.resources"]

    /// Any JSON value, as it was written (numbers kept as their text would print them).
    public enum JSON: Decodable, Equatable, Sendable {
        case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSON]), object([String: JSON])

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() {
                self = .null
            } else if let b = try? c.decode(Bool.self) {
                self = .bool(b)
            } else if let i = try? c.decode(Int64.self) {
                self = .integer(i)
            } else if let d = try? c.decode(Double.self) {
                self = .number(d)
            } else if let s = try? c.decode(String.self) {
                self = .string(s)
            } else if let a = try? c.decode([JSON].self) {
                self = .array(a)
            } else {
                self = .object(try c.decode([String: JSON].self))
            }
        }
    }

    public static func compare(_ a: JSON, _ b: JSON) -> [Difference] {
        let left = flatten(a)
        let right = flatten(b)
        var out: [Difference] = []
        for path in Set(left.keys).union(right.keys) where left[path] != right[path] {
            let generic = path.replacingOccurrences(of: #"\[[^\]]*\]"#, with: "[]", options: .regularExpression)
            if skipped.contains(where: { has(generic, prefix: $0) }) { continue }
            let category =
                immaterial.contains { has(generic, prefix: $0) }
                ? nil : categories.first { $0.prefixes.contains { has(generic, prefix: $0) } }
            var d = Difference(
                path: path, category: category?.name ?? "other", material: category != nil, a: left[path],
                b: right[path])
            if let a = multiline(d.a), let b = multiline(d.b) {
                d.lines = unified(a, b)
                d.a = summary(a)
                d.b = summary(b)
            }
            out.append(d)
        }
        let rank = { (d: Difference) -> Int in
            d.material ? categories.firstIndex { $0.name == d.category } ?? categories.count : categories.count + 1
        }
        return out.sorted { (rank($0), $0.path) < (rank($1), $1.path) }
    }

    /// The text of a string leaf (as `flatten` quotes it) that spans several lines, or nil.
    static func multiline(_ leaf: String?) -> String? {
        guard let leaf, leaf.count >= 2, leaf.hasPrefix("\""), leaf.hasSuffix("\""), leaf.contains("\n") else {
            return nil
        }
        return String(leaf.dropFirst().dropLast())
    }

    static func summary(_ text: String) -> String {
        let hex = SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
        let n = text.split(separator: "\n", omittingEmptySubsequences: false).count
        return "sha256:\(hex.prefix(16)) (\(n) lines)"
    }

    /// A unified diff of two texts, by lines, with `context` lines around each change.
    static func unified(_ a: String, _ b: String, context: Int = 2) -> [String] {
        let old = a.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let new = b.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The edit script, in order: (kind, old index, new index); kind " ", "-" or "+".
        var removed = Set<Int>()
        var inserted = Set<Int>()
        for change in new.difference(from: old) {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        var script: [(kind: Character, old: Int, new: Int)] = []
        var i = 0
        var j = 0
        while i < old.count || j < new.count {
            if i < old.count, removed.contains(i) {
                script.append(("-", i, j))
                i += 1
            } else if j < new.count, inserted.contains(j) {
                script.append(("+", i, j))
                j += 1
            } else {
                script.append((" ", i, j))
                i += 1
                j += 1
            }
        }
        var out: [String] = []
        var k = 0
        while k < script.count {
            guard script[k].kind != " " else {
                k += 1
                continue
            }
            // A hunk: from `context` lines before this change to `context` lines after the last change
            // that is no more than 2 × context unchanged lines from the next.
            let start = max(0, k - context)
            var end = k
            var n = k
            while n < script.count {
                if script[n].kind != " " {
                    end = n
                    n += 1
                    continue
                }
                var run = n
                while run < script.count && script[run].kind == " " { run += 1 }
                if run < script.count && run - n <= 2 * context { n = run } else { break }
            }
            let stop = min(script.count, end + context + 1)
            let body = script[start..<stop]
            let oldCount = body.filter { $0.kind != "+" }.count
            let newCount = body.filter { $0.kind != "-" }.count
            out.append(
                "@@ -\(body.first!.old + (oldCount == 0 ? 0 : 1)),\(oldCount) +\(body.first!.new + (newCount == 0 ? 0 : 1)),\(newCount) @@"
            )
            for step in body {
                out.append("\(step.kind)\(step.kind == "+" ? new[step.new] : old[step.old])")
            }
            k = stop
        }
        return out
    }

    static func has(_ path: String, prefix: String) -> Bool {
        path == prefix || path.hasPrefix(prefix + ".") || path.hasPrefix(prefix + "[")
    }

    /// Every leaf of a JSON value by its path, as JSON text. Array elements that are objects with a
    /// `name` are keyed by it, so a workload added in the middle does not shift the others.
    static func flatten(_ value: JSON, _ path: String = "", into out: inout [String: String]) {
        switch value {
        case .object(let object):
            if object.isEmpty { out[path] = "{}" }
            for (k, v) in object { flatten(v, path.isEmpty ? k : "\(path).\(k)", into: &out) }
        case .array(let array):
            if array.isEmpty { out[path] = "[]" }
            for (i, v) in array.enumerated() {
                var key = String(i)
                if case .object(let o) = v, case .string(let name)? = o["name"] { key = name }
                flatten(v, "\(path)[\(key)]", into: &out)
            }
        case .null: out[path] = "null"
        case .bool(let b): out[path] = b ? "true" : "false"
        case .integer(let i): out[path] = String(i)
        case .number(let d): out[path] = String(d)
        case .string(let s): out[path] = "\"\(s)\""
        }
    }

    static func flatten(_ value: JSON) -> [String: String] {
        var out: [String: String] = [:]
        flatten(value, into: &out)
        return out
    }
}
