import Foundation

/// JSON output for `--json`: sorted keys and a stable layout, so the same input prints the same bytes.
public enum JSONOutput {
    public static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            return "{\"error\": \"cannot encode output: \(error)\"}"
        }
    }

    /// One value on one line (JSON Lines), keys sorted: for output that streams, such as `verify --watch --json`.
    public static func line<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            return "{\"error\": \"cannot encode output: \(error)\"}"
        }
    }

    /// `value` as the document `format` names: its own fields and `"format": "topo-KIND/N"` beside them.
    public static func encode<T: Encodable>(_ format: DocumentFormat, _ value: T) -> String {
        encode(Document(format: format, body: value))
    }

    /// One line of a stream, tagged the same way.
    public static func line<T: Encodable>(_ format: DocumentFormat, _ value: T) -> String {
        line(Document(format: format, body: value))
    }

    /// A body's own keys with `format` added: both write to the one keyed container of the encoder.
    struct Document<Body: Encodable>: Encodable {
        var format: DocumentFormat
        var body: Body

        enum Key: String, CodingKey { case format }

        func encode(to encoder: Encoder) throws {
            try body.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(format, forKey: .format)
        }
    }
}

/// The one versioning scheme of every JSON document topo prints or writes for others to read:
/// `"format": "topo-KIND/N"`. N goes up when a field is removed or renamed or changes meaning; a field
/// added leaves it as it is, so a reader ignores keys it does not know. docs/json.md describes each
/// document, and docs/json/KIND.schema.json is the schema a test checks every command's output against.
public struct DocumentFormat: Hashable, Sendable, Codable, CustomStringConvertible {
    public var kind: String
    public var version: Int

    public init(_ kind: String, _ version: Int) {
        self.kind = kind
        self.version = version
    }

    /// `topo plan --json`, the applied `plan.json`, and the plan inside a lock and a report.
    public static let plan = DocumentFormat("plan", 3)
    /// What `--json` prints when a command fails before it has its own document (`plan --json`).
    public static let error = DocumentFormat("error", 1)
    public static let lock = DocumentFormat("lock", 1)
    public static let dryRun = DocumentFormat("dry-run", 1)
    public static let validate = DocumentFormat("validate", 1)
    public static let host = DocumentFormat("host", 1)
    public static let hostExport = DocumentFormat("host-export", 1)
    public static let hostSuggestion = DocumentFormat("host-suggestion", 1)
    /// `topo status --json` and `topo apply --json`.
    public static let status = DocumentFormat("status", 1)
    public static let verify = DocumentFormat("verify", 1)
    /// `verify --watch --json`: a line per failed check, then a line per round.
    public static let verifyCheck = DocumentFormat("verify-check", 1)
    public static let verifyRound = DocumentFormat("verify-round", 1)
    public static let report = DocumentFormat("report", 1)
    public static let diff = DocumentFormat("diff", 1)
    /// `topo logs --json`: a line per line of output.
    public static let log = DocumentFormat("log", 1)

    /// Every document, for the tests that hold each to its schema.
    public static let all: [DocumentFormat] = [
        .plan, .error, .lock, .dryRun, .validate, .host, .hostExport, .hostSuggestion, .status, .verify, .verifyCheck,
        .verifyRound, .report, .diff, .log,
    ]

    public var description: String { "topo-\(kind)/\(version)" }

    public init?(_ text: String) {
        guard text.hasPrefix("topo-"), let slash = text.lastIndex(of: "/"),
            let version = Int(text[text.index(after: slash)...]),
            version > 0
        else { return nil }
        self.init(String(text[text.index(text.startIndex, offsetBy: 5)..<slash]), version)
    }

    /// A string `topo-KIND/N`; a bare number is a plan written before this scheme (`"format": 2` or 3).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let number = try? c.decode(Int.self) {
            self.init("plan", number)
            return
        }
        let text = try c.decode(String.self)
        guard let parsed = DocumentFormat(text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "\"\(text)\" is not a topo document format (topo-KIND/N)")
        }
        self = parsed
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
