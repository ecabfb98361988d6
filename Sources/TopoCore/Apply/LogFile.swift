import Foundation

/// A workload's output file (`/run/topo/PROFILE/logs/WORKLOAD.log`), read for `topo logs`: the whole
/// file or its last lines, found from the end a block at a time so a log of gigabytes costs what its
/// tail costs, and followed as it grows.
public struct LogFile: Sendable {
    public var path: String
    /// podman writes the container's output in its k8s-file format (`TIME STREAM TAG text`): shown as the text.
    public var k8sFormat: Bool

    public init(path: String, k8sFormat: Bool = false) {
        self.path = path
        self.k8sFormat = k8sFormat
    }

    static let block = 64 << 10

    /// Whether the log can be read as a file: a log that is a FIFO, a device or a link to one (a
    /// workload's doing, or a planted file) is refused by what it is, never read or waited on.
    public func check() throws(SystemError) {
        guard Sys.exists(path) else { return }  // no output yet
        let (fd, _) = try Sys.openRegular(path)
        close(fd)
    }

    /// The log opened as a regular file, or nil (absent, or not a file: `check` says why).
    func handle() -> FileHandle? {
        guard let (fd, _) = try? Sys.openRegular(path) else { return nil }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// The offset where the last `lines` lines start (0 when the file has fewer).
    public func tailOffset(lines: Int) -> UInt64 {
        guard lines > 0 else { return size }
        guard let handle = handle() else { return 0 }
        var end = size
        // A last line without its newline counts as a line; a final newline ends the last one.
        var newlines = 0
        var skippedFinal = false
        while end > 0 {
            let start = end > UInt64(Self.block) ? end - UInt64(Self.block) : 0
            try? handle.seek(toOffset: start)
            let data = (try? handle.read(upToCount: Int(end - start))) ?? Data()
            for i in stride(from: data.count - 1, through: 0, by: -1) where data[data.startIndex + i] == 0x0A {
                if !skippedFinal && start + UInt64(i) == size - 1 {
                    skippedFinal = true
                    continue
                }
                newlines += 1
                if newlines == lines { return start + UInt64(i) + 1 }
            }
            end = start
        }
        return 0
    }

    public var size: UInt64 { Sys.stat(path).map { UInt64($0.st_size) } ?? 0 }

    /// Writes the file from `offset` to its current end to `out` and returns the new offset. A file
    /// that shrank (truncated, or made anew) is read again from its start.
    @discardableResult
    public func copy(from offset: UInt64, to out: FileHandle, partial: inout Data) -> UInt64 {
        copy(from: offset, partial: &partial) { out.write($0) }
    }

    /// As `copy(from:to:partial:)`, handing each block as shown to `emit`.
    @discardableResult
    public func copy(from offset: UInt64, partial: inout Data, emit: (Data) -> Void) -> UInt64 {
        var offset = offset
        if size < offset {
            offset = 0
            partial = Data()
        }
        guard let handle = handle() else { return offset }
        try? handle.seek(toOffset: offset)
        while let chunk = try? handle.read(upToCount: Self.block), !chunk.isEmpty {
            offset += UInt64(chunk.count)
            emit(render(chunk, partial: &partial))
        }
        return offset
    }

    /// The bytes as shown: as they are, or, in k8s-file format, each complete line's text.
    func render(_ chunk: Data, partial: inout Data) -> Data {
        guard k8sFormat else { return chunk }
        partial.append(chunk)
        guard let last = partial.lastIndex(of: 0x0A) else { return Data() }
        let complete = partial[partial.startIndex...last]
        partial = Data(partial[partial.index(after: last)...])
        var out = Data()
        for line in complete.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            out.append(Self.k8sText(Data(line)))
            out.append(0x0A)
        }
        return out
    }

    /// `2026-11-29T12:44:40.36+00:00 stdout F hello` → `hello`; a line of another shape as it is.
    static func k8sText(_ line: Data) -> Data {
        var spaces = 0
        for (i, byte) in line.enumerated() where byte == 0x20 {
            spaces += 1
            if spaces == 3 { return Data(line.dropFirst(i + 1)) }
        }
        return line
    }
}
