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
}
