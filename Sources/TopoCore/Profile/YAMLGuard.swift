/// Bounds checked on a profile's raw text before it reaches the YAML parser.
///
/// The parser builds its tree recursively and expands aliases by value, so deeply nested input
/// (`[[[[…` or `- - - - …`) would exhaust the stack and an alias bomb would make hashing the
/// keys exponential. A profile is a small, shallow document; these bounds are far above any real
/// one and far below what could hurt.
enum YAMLGuard {
    static let maxBytes = 256 * 1024
    static let maxDepth = 128
    static let maxAliases = 16

    /// Nil when the text is within bounds, otherwise what is wrong and the line it was found on.
    static func check(_ text: String) -> (line: Int, message: String, fix: String)? {
        let bytes = Array(text.utf8)
        if bytes.count > maxBytes {
            return (1, "the profile is \(bytes.count) bytes; topo reads profiles of at most \(maxBytes) bytes",
                    "split it into smaller profiles")
        }
        var line = 1
        var flowDepth = 0
        var aliases = 0
        var i = 0
        var atLineStart = true
        var indent = 0
        var indicators = 0
        func isBoundary(_ b: UInt8?) -> Bool {
            guard let b else { return true }
            return b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == UInt8(ascii: "[")
                || b == UInt8(ascii: "{") || b == UInt8(ascii: ",") || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
        }
        while i < bytes.count {
            let b = bytes[i]
            let previous: UInt8? = i > 0 ? bytes[i - 1] : nil
            if b == 0x0A {
                line += 1; atLineStart = true; indent = 0; indicators = 0; i += 1; continue
            }
            if atLineStart {
                if b == 0x20 { indent += 1; i += 1; continue }
                // Compact block indicators ("- - - x", "? ? x") each open a level on one line.
                if (b == UInt8(ascii: "-") || b == UInt8(ascii: "?") || b == UInt8(ascii: ":")),
                   i + 1 < bytes.count, bytes[i + 1] == 0x20 {
                    indicators += 1; i += 2; continue
                }
                atLineStart = false
            }
            if indent + indicators + flowDepth > maxDepth {
                return (line, "the profile nests deeper than \(maxDepth) levels", "flatten it; a topo profile needs only a few levels")
            }
            switch b {
            case UInt8(ascii: "#") where isBoundary(previous) && previous != UInt8(ascii: "-"):
                while i < bytes.count, bytes[i] != 0x0A { i += 1 }
                continue
            case UInt8(ascii: "'") where isBoundary(previous), UInt8(ascii: "\"") where isBoundary(previous):
                let quote = b
                i += 1
                while i < bytes.count, bytes[i] != quote {
                    if bytes[i] == 0x0A { line += 1 }
                    if quote == UInt8(ascii: "\"") && bytes[i] == UInt8(ascii: "\\") { i += 1 }
                    i += 1
                }
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                flowDepth += 1
                if indent + indicators + flowDepth > maxDepth {
                    return (line, "the profile nests deeper than \(maxDepth) levels", "flatten it; a topo profile needs only a few levels")
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                flowDepth = max(0, flowDepth - 1)
            case UInt8(ascii: "*") where isBoundary(previous):
                aliases += 1
                if aliases > maxAliases {
                    return (line, "the profile uses more than \(maxAliases) aliases", "repeat the values instead of aliasing them")
                }
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
