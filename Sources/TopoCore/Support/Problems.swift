/// Lists of problems as people read them.
public enum Problems {
    /// Problems that differ only in the workload they name are said once, with the names collapsed:
    /// `workload w16 asks for …` ×240 → `240 workloads (w16–w255) ask for …`, and `workload a: …` ×3 →
    /// `3 workloads (a, b, c): …`. Two of a kind stay as they are. In the problems' order.
    public static func collapse(_ problems: [String]) -> [String] {
        var order: [String] = []
        var groups: [String: [String]] = [:]
        for p in problems {
            var key = "\u{0}" + p  // a problem that names no workload stands alone
            var name = ""
            if p.hasPrefix("workload "), let end = p.dropFirst(9).firstIndex(where: { $0 == " " || $0 == ":" }) {
                name = String(p[p.index(p.startIndex, offsetBy: 9)..<end])
                key = String(p[end...])  // " asks for …" or ": …"
            }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(name)
        }
        return order.flatMap { key -> [String] in
            let names = groups[key]!
            if key.hasPrefix("\u{0}") { return names.map { _ in String(key.dropFirst()) } }
            if names.count < 3 { return names.map { "workload \($0)\(key)" } }
            let rest = key.hasPrefix(":") ? key : " " + plural(String(key.dropFirst()))
            return ["\(names.count) workloads (\(runs(names)))\(rest)"]
        }
    }

    /// `asks for 1 CPU` → `ask for 1 CPU`: the first word in the plural.
    static func plural(_ rest: String) -> String {
        guard let space = rest.firstIndex(of: " ") else { return rest }
        let verb = rest[..<space]
        guard verb.hasSuffix("s"), !verb.hasSuffix("ss"), verb.count > 2 else { return rest }
        return String(verb.dropLast()) + rest[space...]
    }

    /// `w16–w255`, `a, b, c`, `w1–w5, w9, … (40 in all)`: runs of names that differ in a counting number.
    static func runs(_ names: [String]) -> String {
        func split(_ n: String) -> (String, Int)? {
            let digits = n.reversed().prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, !(digits.count > 1 && digits.last == "0") else { return nil }
            return (String(n.dropLast(digits.count)), Int(String(digits.reversed()))!)
        }
        var parts: [String] = []
        var i = 0
        while i < names.count {
            var j = i
            if let (prefix, first) = split(names[i]) {
                while j + 1 < names.count, let (p, n) = split(names[j + 1]), p == prefix, n == first + (j + 1 - i) {
                    j += 1
                }
            }
            parts.append(j - i >= 2 ? "\(names[i])–\(names[j])" : names[i...j].joined(separator: ", "))
            i = j + 1
        }
        let shown = parts.prefix(6).joined(separator: ", ")
        return parts.count <= 6 ? shown : "\(shown), … (\(names.count) in all)"
    }
}

extension Problems {
    /// At most `limit` items joined with `; `, and how many more there were: a list a host may make long
    /// (interrupts, kernel threads) stays one readable line.
    static func list(_ items: [String], limit: Int) -> String {
        items.prefix(limit).joined(separator: "; ") + (items.count > limit ? "; and \(items.count - limit) more" : "")
    }
}
