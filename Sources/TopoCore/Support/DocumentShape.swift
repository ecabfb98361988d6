import Foundation

/// The shape of a JSON document as docs/json.md shows it: every key path (an array's elements as `[]`)
/// with its JSON type. The tests hold each command's output to its document's example, so the
/// description cannot drift from the output: a field the output has and the example lacks, or a field
/// of another type, is a difference. An object in the example with a key `"…"` leaves its other keys
/// open (a resource's fields, a host's tuning), and its value says where they are described.
public struct DocumentShape: Equatable, Sendable {
    /// Path → JSON type (`object`, `array`, `string`, `number`, `bool`, `null`).
    public var types: [String: String]
    /// Paths whose objects may hold keys the example does not list.
    public var open: Set<String>

    public init(example: ReportDiff.JSON) {
        types = [:]
        open = []
        Self.walk(example, "", into: &types, open: &open)
    }

    /// Each way `output` leaves the shape: `path: not in the example`, `path: a string, the example has a number`.
    public func differences(_ output: ReportDiff.JSON) -> [String] {
        var seen: [String: String] = [:]
        var unused: Set<String> = []
        Self.walk(output, "", into: &seen, open: &unused)
        var out: [String] = []
        for (path, type) in seen.sorted(by: { $0.key < $1.key }) {
            if let documented = types[path] {
                if documented != type && documented != "null" && type != "null" {
                    out.append("\(path.isEmpty ? "(the document)" : path): \(type), the example has \(documented)")
                }
            } else if !open.contains(where: { $0.isEmpty || path.hasPrefix($0 + ".") }) {
                out.append("\(path): not in the example")
            }
        }
        return out
    }

    /// How a command's output leaves the document its `format` names in `markdown` (docs/json.md): a
    /// document, or JSON Lines each checked alone. Empty when every line is a described document and
    /// has the example's shape.
    public static func problems(output: String, markdown: String) -> [String] {
        let examples = Self.examples(markdown: markdown)
        let trimmed = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let documents: [String] =
            (try? JSONDecoder().decode(ReportDiff.JSON.self, from: Data(trimmed.utf8))) != nil
            ? [trimmed] : trimmed.split(separator: "\n").map(String.init)
        var out: [String] = []
        for text in documents {
            guard let value = try? JSONDecoder().decode(ReportDiff.JSON.self, from: Data(text.utf8)) else {
                out.append("not JSON: \(text.prefix(80))")
                continue
            }
            guard case .object(let o) = value, case .string(let name)? = o["format"], let format = DocumentFormat(name)
            else {
                out.append("no \"format\": \(text.prefix(80))")
                continue
            }
            guard let example = examples[format],
                let parsed = try? JSONDecoder().decode(ReportDiff.JSON.self, from: Data(example.utf8))
            else {
                out.append("\(format): no example in the description")
                continue
            }
            out += DocumentShape(example: parsed).differences(value).map { "\(format): \($0)" }
        }
        return out
    }

    static func walk(
        _ value: ReportDiff.JSON, _ path: String, into types: inout [String: String], open: inout Set<String>
    ) {
        switch value {
        case .object(let object):
            types[path] = "object"
            for (key, child) in object {
                if key == "…" {
                    open.insert(path)
                    continue
                }
                walk(child, path.isEmpty ? key : "\(path).\(key)", into: &types, open: &open)
            }
        case .array(let array):
            types[path] = "array"
            for child in array { walk(child, "\(path)[]", into: &types, open: &open) }
        case .null: types[path] = "null"
        case .bool: types[path] = "bool"
        case .integer, .number: types[path] = "number"
        case .string: types[path] = "string"
        }
    }

    /// The examples of a document like docs/json.md: each fenced `json` block under a heading
    /// `### topo-KIND/N`, by that format.
    public static func examples(markdown: String) -> [DocumentFormat: String] {
        var out: [DocumentFormat: String] = [:]
        var current: DocumentFormat?
        var block: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if var lines = block {
                if line.hasPrefix("```") {
                    if let current, out[current] == nil { out[current] = lines.joined(separator: "\n") }
                    block = nil
                } else {
                    lines.append(line)
                    block = lines
                }
            } else if line.hasPrefix("### ") {
                current = line.dropFirst(4).split(separator: " ").first.flatMap {
                    DocumentFormat(String($0.trimmingCharacters(in: CharacterSet(charactersIn: "`"))))
                }
            } else if line.hasPrefix("```json") {
                block = []
            }
        }
        return out
    }
}
