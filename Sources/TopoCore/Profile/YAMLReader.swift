import Yams

/// Reads fields out of a composed YAML tree, collecting every problem instead of stopping at the first.
final class YAMLReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []
    /// Problems beyond `maxDiagnostics`, counted but not kept: a hostile profile (thousands of unknown
    /// keys, merged into every workload) gets a bounded report, and no did-you-mean work per problem.
    private(set) var suppressed = 0
    static let maxDiagnostics = 200
    private(set) var hasErrors = false

    init(file: String) { self.file = file }

    func error(
        _ node: Node?, _ path: String, _ message: @autoclosure () -> String, fix: @autoclosure () -> String? = nil
    ) {
        hasErrors = true
        add(.error, node, path, message, fix)
    }

    func warning(
        _ node: Node?, _ path: String, _ message: @autoclosure () -> String, fix: @autoclosure () -> String? = nil
    ) {
        add(.warning, node, path, message, fix)
    }

    private func add(
        _ severity: Diagnostic.Severity, _ node: Node?, _ path: String, _ message: () -> String, _ fix: () -> String?
    ) {
        guard diagnostics.count < Self.maxDiagnostics else {
            suppressed += 1
            return
        }
        diagnostics.append(
            Diagnostic(
                severity, file: file, line: node?.mark?.line, column: node?.mark?.column,
                path: path, message: message(), fix: fix()))
    }

    /// True for an empty value (`key:` with nothing after it, `~`, `null`).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        return s.string.isEmpty || s.string == "~" || s.string == "null" || s.string == "Null" || s.string == "NULL"
    }

    /// The fields of a mapping, with unknown keys reported (and a did-you-mean among `allowed`).
    /// With `extensions`, keys starting with `x-` are left for the user (a place for `&anchors`).
    func fields(_ node: Node, _ path: String, allowed: [String], extensions: Bool = false) -> Fields? {
        if YAMLReader.isNull(node) { return Fields(pairs: [], path: path) }
        guard case .mapping(let mapping) = node else {
            error(
                node, path,
                "expected a mapping of \(allowed.prefix(4).joined(separator: ", "))\(allowed.count > 4 ? ", …" : ""), found \(kind(node))"
            )
            return nil
        }
        var pairs: [(String, Node, Node)] = []
        for (key, value) in expanded(mapping, path) {
            guard let name = plainKey(key, path) else { continue }
            if extensions && name.hasPrefix("x-") { continue }
            if allowed.contains(name) {
                pairs.append((name, key, value))
            } else {
                let at = path.isEmpty ? name : "\(path).\(name)"
                error(
                    key, at, "unknown key \"\(name)\"",
                    fix: closest(to: name, among: allowed).map { "did you mean \"\($0)\"?" }
                        ?? "known keys here: \(allowed.joined(separator: ", "))")
            }
        }
        return Fields(pairs: pairs, path: path)
    }

    /// The entries of a mapping whose keys are names chosen by the user (workloads, env).
    func entries(_ node: Node, _ path: String, what: String) -> [(name: String, key: Node, value: Node)]? {
        if YAMLReader.isNull(node) { return [] }
        guard case .mapping(let mapping) = node else {
            error(node, path, "expected a mapping of \(what), found \(kind(node))")
            return nil
        }
        return expanded(mapping, path).compactMap { key, value in plainKey(key, path).map { ($0, key, value) } }
    }

    func sequence(_ node: Node, _ path: String, of what: String) -> [Node]? {
        if YAMLReader.isNull(node) { return [] }
        guard case .sequence(let seq) = node else {
            error(node, path, "expected a list of \(what), found \(kind(node))")
            return nil
        }
        return Array(seq)
    }

    func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let s) = node else {
            error(node, path, "expected a single value, found \(kind(node))")
            return nil
        }
        if YAMLReader.isNull(node) {
            error(node, path, "has no value")
            return nil
        }
        if s.string.utf8.contains(0) {
            error(node, path, "contains a NUL byte")
            return nil
        }
        return s.string
    }

    /// A number written in quotes where a number goes: YAML reads a quoted scalar as a string, and so
    /// does the schema (and an editor that checks with it), so topo refuses it too, saying so.
    func isQuotedNumber(_ node: Node, _ path: String) -> Bool {
        guard case .scalar(let s) = node, s.style != .plain, Int(s.string) != nil else { return false }
        error(
            node, path,
            "\(s.style == .singleQuoted ? "'\(s.string)'" : "\"\(s.string)\"") is quoted, so it is a string, not a number",
            fix: "write \(s.string) without quotes")
        return true
    }

    func int(_ node: Node, _ path: String, in range: ClosedRange<Int>, unit: String = "") -> Int? {
        guard let text = string(node, path) else { return nil }
        if isQuotedNumber(node, path) { return nil }
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        if Int(text) == nil, !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
            // Too many digits for a number: say the range, not that it is no number.
            error(
                node, path, "\(printable(text)) is outside \(range.lowerBound)-\(range.upperBound)\(unit)",
                fix: "write a number from \(range.lowerBound) to \(range.upperBound)\(unit)")
            return nil
        }
        guard text.count <= 20, let v = Int(text) else {
            error(
                node, path, "\"\(text)\" is not a whole number",
                fix: "write a number from \(range.lowerBound) to \(range.upperBound)\(unit)")
            return nil
        }
        guard range.contains(v) else {
            error(
                node, path, "\(v) is outside \(range.lowerBound)-\(range.upperBound)\(unit)",
                fix: "write a number from \(range.lowerBound) to \(range.upperBound)\(unit)")
            return nil
        }
        return v
    }

    func choice<E: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, _: E.Type) -> E?
    where E.RawValue == String {
        guard let text = string(node, path) else { return nil }
        if let v = E(rawValue: text) { return v }
        let names = E.allCases.map(\.rawValue)
        let guess = closest(to: text, among: names).map { "did you mean \"\($0)\"? " } ?? ""
        error(
            node, path, "\"\(text)\" is not one of \(names.joined(separator: ", "))",
            fix: "\(guess)write one of \(names.joined(separator: " | "))")
        return nil
    }

    /// A value parsed by one of the unit types.
    func unit<T>(_ node: Node, _ path: String, _ parse: (String) -> Result<T, UnitError>) -> T? {
        guard let text = string(node, path) else { return nil }
        switch parse(text) {
        case .success(let v): return v
        case .failure(let e):
            error(node, path, e.message, fix: e.fix)
            return nil
        }
    }

    /// A value or the kernel's `max`.
    func limit<T>(_ node: Node, _ path: String, _ parse: (String) -> Result<T, UnitError>) -> Limit<T>? {
        if case .scalar(let s) = node, s.string == "max" { return .max }
        return unit(node, path, parse).map { .value($0) }
    }

    /// How deep merge keys may nest (a merged mapping that merges another, …).
    static let maxMergeDepth = 8

    /// A mapping's pairs with YAML merge keys expanded (`<<: *defaults`, `<<: [*a, *b]`): a key written
    /// in the mapping itself wins over a merged one, and an earlier merged mapping over a later one, as
    /// the YAML merge-key spec says. YAMLGuard's alias limit keeps the expansion small.
    private func expanded(_ mapping: Node.Mapping, _ path: String, depth: Int = 0) -> [(key: Node, value: Node)] {
        var own: [(key: Node, value: Node)] = []
        var merged: [(key: Node, value: Node)] = []
        var mergedNames = Set<String>()
        let fix = "write <<: *name, where &name marks a mapping (or <<: [*a, *b])"
        for (key, value) in mapping {
            guard Self.isMergeKey(key) else {
                own.append((key, value))
                continue
            }
            var sources: [Node] = []
            switch value {
            case .mapping: sources = [value]
            case .sequence(let list): sources = Array(list)
            default:
                error(
                    value, path, "a merge key (<<) takes a mapping or a list of mappings, found \(kind(value))",
                    fix: fix)
            }
            for source in sources {
                guard case .mapping(let inner) = source else {
                    error(source, path, "a merge key (<<) takes mappings, found \(kind(source))", fix: fix)
                    continue
                }
                guard depth < Self.maxMergeDepth else {
                    error(
                        source, path, "merge keys nest more than \(Self.maxMergeDepth) deep", fix: "merge fewer levels")
                    continue
                }
                for pair in expanded(inner, path, depth: depth + 1)
                where mergedNames.insert(Self.keyName(pair.key)).inserted {
                    merged.append(pair)
                }
            }
        }
        let ownNames = Set(own.map { Self.keyName($0.key) })
        return merged.filter { !ownNames.contains(Self.keyName($0.key)) } + own
    }

    /// The merge key: a plain `<<` (what Yams' merge rule matches, and the YAML merge-key spec means),
    /// or a key tagged `!!merge`. A quoted "<<" is text.
    static func isMergeKey(_ key: Node) -> Bool {
        guard case .scalar(let s) = key else { return false }
        return s.tag.rawValue == Tag.Name.merge.rawValue || (s.style == .plain && s.string == "<<")
    }

    /// A key's text for merge precedence (keys that are not scalars never match one another).
    private static func keyName(_ key: Node) -> String {
        guard case .scalar(let s) = key else { return "\u{0}\(key.mark?.line ?? 0):\(key.mark?.column ?? 0)" }
        return s.string
    }

    private func plainKey(_ key: Node, _ path: String) -> String? {
        guard case .scalar(let s) = key else {
            error(key, path, "a key must be a plain name, found \(kind(key))")
            return nil
        }
        return s.string
    }

    func kind(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s): return YAMLReader.isNull(node) ? "nothing" : "\"\(s.string.prefix(40))\""
        }
    }
}

/// The known fields of one mapping.
struct Fields {
    let pairs: [(String, Node, Node)]
    let path: String

    subscript(_ key: String) -> Node? {
        pairs.first { $0.0 == key }?.2
    }

    func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}
