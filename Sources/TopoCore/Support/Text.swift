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
