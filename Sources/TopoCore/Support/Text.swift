extension String {
    /// Without leading and trailing ASCII spaces, tabs and line ends: what the kernel's one-line files
    /// (cgroup interface files, `/proc` entries) end with. Works on the UTF-8 bytes, where Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` breaks the text into characters first; a watch
    /// round trims hundreds of these.
    var trimmedASCIIWhitespace: String {
        let bytes = utf8
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        guard let first = bytes.firstIndex(where: { !blank($0) }) else { return "" }
        let last = bytes.lastIndex(where: { !blank($0) })!
        if first == bytes.startIndex && bytes.index(after: last) == bytes.endIndex { return self }
        return String(self[first...last])
    }
}

/// What topo prints as text reaches a terminal, and profile strings (commands, names, images,
/// environment values) are printed in it: a control character there would let a profile rewrite the
/// dry run a reviewer reads (clear the screen, move the cursor, retitle the window, conceal a line).
public enum TerminalText {
    /// `text` with every control character but newline and tab — C0, DEL and C1, ESC among them —
    /// written as `\u00XX` (the form JSON's strings use, so JSON printed through here stays JSON), except
    /// the colour sequences `TextStyle` itself writes (`ESC [ n m` for its own n).
    public static func safe(_ text: String) -> String {
        let bytes = text.utf8
        // Most text has no control character at all: nothing is copied then.
        if !bytes.contains(where: { ($0 < 0x20 && $0 != 0x0A && $0 != 0x09) || $0 == 0x7F || $0 == 0xC2 }) {
            return text
        }
        var out = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let v = scalars[i].value
            if v == 0x1B, let end = styleEnd(scalars, at: i) {
                out.append(contentsOf: scalars[i..<end])
                i = end
                continue
            }
            if (v < 0x20 && v != 0x0A && v != 0x09) || (0x7F...0x9F).contains(v) {
                out.append(contentsOf: String(format: "\\u%04x", v).unicodeScalars)
            } else {
                out.append(scalars[i])
            }
            i += 1
        }
        return String(out)
    }

    /// The end of a colour sequence `TextStyle` writes starting at `i` (`ESC [ 0 m`, `ESC [ 31 m`, …), or nil.
    static func styleEnd(_ s: [Unicode.Scalar], at i: Int) -> Int? {
        guard i + 3 < s.count, s[i + 1] == "[" else { return nil }
        var j = i + 2
        var digits = ""
        while j < s.count, j - i < 6, ("0"..."9").contains(s[j]) {
            digits.unicodeScalars.append(s[j])
            j += 1
        }
        guard j < s.count, s[j] == "m", let n = Int(digits), TextStyle.codes.contains(n) else { return nil }
        return j + 1
    }
}
