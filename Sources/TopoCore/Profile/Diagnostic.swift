/// One problem found in a profile: where it is, which field, what is wrong and what to write instead.
public struct Diagnostic: Equatable, Sendable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }

    public var severity: Severity
    public var file: String
    public var line: Int?
    public var column: Int?
    /// The field path, e.g. `workloads.server.memory.max`; empty for the whole document.
    public var path: String
    public var message: String
    public var fix: String?

    public init(
        _ severity: Severity = .error, file: String, line: Int?, column: Int?, path: String, message: String,
        fix: String?
    ) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
        self.fix = fix
    }

    /// `file:line:column: error: path: message`, then the fix on its own indented line.
    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        var text = "\(location): \(severity.rawValue): "
        if !path.isEmpty { text += "\(path): " }
        text += message
        if let fix { text += "\n    fix: \(fix)" }
        return text
    }
}

extension Diagnostic {
    /// Warnings that say the same of the same field of several list items are said once, at the first,
    /// with the others' indices: 32 × `links[N].netem.rate: above about 10mbit …` become
    /// `links[0].netem.rate: above about 10mbit … (also links[1–31])`. Errors stay one per place: each
    /// needs its own fix. Two of a kind stay as they are.
    public static func collapsingWarnings(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        func template(_ path: String) -> (String, String?) {
            guard let open = path.firstIndex(of: "["), let close = path[open...].firstIndex(of: "]") else {
                return (path, nil)
            }
            let index = String(path[path.index(after: open)..<close])
            guard !index.isEmpty, index.allSatisfy(\.isNumber) else { return (path, nil) }
            return (String(path[...open]) + "*" + String(path[close...]), index)
        }
        var groups: [String: [Int]] = [:]
        var keys: [String?] = []
        for (i, d) in diagnostics.enumerated() {
            let (shape, index) = template(d.path)
            guard d.severity == .warning, index != nil else {
                keys.append(nil)
                continue
            }
            let key = "\(shape)\u{0}\(d.message)\u{0}\(d.fix ?? "")"
            keys.append(key)
            groups[key, default: []].append(i)
        }
        var out: [Diagnostic] = []
        for (i, d) in diagnostics.enumerated() {
            guard let key = keys[i], let members = groups[key], members.count >= 3 else {
                out.append(d)
                continue
            }
            guard members[0] == i else { continue }
            var first = d
            let (shape, _) = template(d.path)
            let indices = members.dropFirst().compactMap { template(diagnostics[$0].path).1 }
            let others = shape.replacingOccurrences(of: "[*]", with: "[\(Problems.runs(Array(indices)))]")
            first.message += " (also \(others))"
            out.append(first)
        }
        return out
    }
}

/// Every problem of a profile that does not validate, errors and warnings together.
public struct ProfileInvalid: Error, Sendable, CustomStringConvertible {
    /// In reading order: by line and column, those without a place first.
    public var diagnostics: [Diagnostic]
    /// Problems found beyond those listed (the reader keeps a bounded number).
    public var unlisted = 0

    public init(diagnostics: [Diagnostic], unlisted: Int = 0) {
        self.unlisted = unlisted
        self.diagnostics = diagnostics.enumerated().sorted { a, b in
            let ka = (a.element.line ?? 0, a.element.column ?? 0, a.offset)
            let kb = (b.element.line ?? 0, b.element.column ?? 0, b.offset)
            return ka < kb
        }.map(\.element)
    }

    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String {
        let n = errors.count
        let more = unlisted > 0 ? " (and \(unlisted) more problems not listed; fix these first)" : ""
        return diagnostics.map(\.description).joined(separator: "\n")
            + "\n\(n) error\(n == 1 ? "" : "s") in \(diagnostics.first?.file ?? "profile")\(more)"
    }
}

/// The closest candidate within a small edit distance, for did-you-mean hints.
public func closest(to word: String, among candidates: [String]) -> String? {
    let w = Array(word.lowercased())
    var best: (String, Int)?
    for candidate in candidates {
        let d = editDistance(w, Array(candidate.lowercased()))
        let limit = max(1, min(3, candidate.count / 3))
        if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
    }
    return best?.0
}

func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    if a.count > 64 || b.count > 64 { return max(a.count, b.count) }
    // Optimal string alignment: insertions, deletions, substitutions and swaps of two neighbours
    // (`hihg` is one step from `high`) each cost 1.
    var beforePrevious = Array(0...b.count)
    var previous = beforePrevious
    var current = previous
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = min(current[j], beforePrevious[j - 2] + 1)
            }
        }
        (beforePrevious, previous, current) = (previous, current, beforePrevious)
    }
    return previous[b.count]
}
