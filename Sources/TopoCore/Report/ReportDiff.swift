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
        /// Each side's value as JSON text; nil where that side has none.
        public var a: String?
        public var b: String?
    }

    /// Categories in order of how much they change a result; a path belongs to the first whose prefix it has.
    static let categories: [(name: String, prefixes: [String])] = [
        ("CPU model", ["host.cpu.model"]),
        ("microcode", ["host.cpu.microcode"]),
        ("kernel", ["host.kernel.release", "host.kernel.version", "host.kernel.parameters"]),
        ("SMT", ["host.cpu.smt", "host.cpu.sockets", "host.cpu.cores", "host.cpu.threads", "host.cpu.online"]),
        ("NUMA layout", ["host.numa"]),
        ("placement", ["plan.workloads[].cpus", "plan.workloads[].mems", "plan.workloads[].memoryPolicy", "plan.workloads[].policyNodes",
                       "plan.workloads[].cpuNodes", "plan.workloads[].isolation", "plan.reserved", "plan.idle", "plan.smt"]),
        ("limits", ["plan.workloads[].cgroup"]),
        ("link shaping", ["plan.links"]),
        ("frequency and boost", ["host.frequency", "host.boost"]),
        ("transparent huge pages", ["host.transparentHugePages"]),
        ("host settings", ["host.irqbalance", "host.aslr", "host.numaBalancing", "host.timerMigration", "host.statInterval", "host.perfSampleRate", "host.workqueueCPUs", "host.cgroup", "host.memoryBytes", "host.kernel.commandLine",
                           "host.versions", "host.distribution"]),
        ("workloads", ["plan.workloads", "plan.name", "profile.sha256", "format"]),
    ]

    /// Never material: where and when, what the kernel showed (pids), and the results themselves.
    static let immaterial = ["host.hostname", "topo", "observed", "verify", "run", "profile.path", "profile.text", "profile.name", "plan.warnings", "plan.format"]
    /// Derived from the rest of the plan: compared through it.
    static let skipped = ["plan.resources"]

    /// Any JSON value, as it was written (numbers kept as their text would print them).
    public enum JSON: Decodable, Equatable, Sendable {
        case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSON]), object([String: JSON])

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .integer(i) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([JSON].self) { self = .array(a) }
            else { self = .object(try c.decode([String: JSON].self)) }
        }
    }

    public static func compare(_ a: JSON, _ b: JSON) -> [Difference] {
        let left = flatten(a), right = flatten(b)
        var out: [Difference] = []
        for path in Set(left.keys).union(right.keys) where left[path] != right[path] {
            let generic = path.replacingOccurrences(of: #"\[[^\]]*\]"#, with: "[]", options: .regularExpression)
            if skipped.contains(where: { has(generic, prefix: $0) }) { continue }
            let category = immaterial.contains { has(generic, prefix: $0) } ? nil : categories.first { $0.prefixes.contains { has(generic, prefix: $0) } }
            out.append(Difference(path: path, category: category?.name ?? "other", material: category != nil, a: left[path], b: right[path]))
        }
        let rank = { (d: Difference) -> Int in d.material ? categories.firstIndex { $0.name == d.category } ?? categories.count : categories.count + 1 }
        return out.sorted { (rank($0), $0.path) < (rank($1), $1.path) }
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
