/// ANSI colour for terminal output, or none: every renderer takes one, and the CLI decides
/// (`--color`, `NO_COLOR`, whether stdout is a terminal). With `enabled` false, text passes unchanged.
public struct TextStyle: Sendable {
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }
    public static let plain = TextStyle(enabled: false)

    public enum Color: Int, Sendable {
        case red = 31, green = 32, yellow = 33, blue = 34, magenta = 35, cyan = 36
        case brightRed = 91, brightGreen = 92, brightYellow = 93, brightBlue = 94, brightMagenta = 95, brightCyan = 96
    }

    /// Every SGR code this type writes: reset, bold, dim and the colours (what `TerminalText.safe` lets through).
    static let codes: Set<Int> = Set([0, 1, 2] + [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96])

    /// The colours workloads get in turn, in the CPU picture and tables.
    static let palette: [Color] = [
        .cyan, .yellow, .magenta, .green, .blue, .brightRed, .brightCyan, .brightYellow, .brightMagenta, .brightGreen,
        .brightBlue, .red,
    ]

    public func paint(_ text: String, _ color: Color) -> String {
        enabled ? "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m" : text
    }

    public func bold(_ text: String) -> String { enabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    public func dim(_ text: String) -> String { enabled ? "\u{1B}[2m\(text)\u{1B}[0m" : text }

    /// The n-th workload's colour (the palette repeats).
    public func workload(_ text: String, index: Int) -> String { paint(text, Self.palette[index % Self.palette.count]) }

    /// A verify or status word in its colour: pass/running green, warn yellow, fail red.
    public func status(_ word: String) -> String {
        switch word.lowercased() {
        case "pass", "ok", "running", "applied": paint(word, .green)
        case "warn", "warning", "incomplete", "exited", "skip": paint(word, .yellow)
        case "fail", "failed", "missing", "gone": paint(word, .red)
        default: word
        }
    }
}
