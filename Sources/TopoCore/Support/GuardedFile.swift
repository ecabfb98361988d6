import Foundation
import SystemPackage

/// Reading a file that someone other than topo may have made (a profile, a lock, a report, an image
/// layout's index, a process's `numa_maps`) through `Sys.readBytes`, the one guarded read: only a
/// regular file, and at most `limit` bytes of it — a FIFO, a device, a directory or a file that grows
/// without end (`/dev/zero` behind a link) is refused with what it is, never read or waited on. Here
/// the refusal is said of the file (`p.lock.json is a FIFO, not a file`), for messages about input.
public enum GuardedFile {
    public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
        public var path: String
        /// What is wrong, after the path: `is a FIFO`, `is larger than 256 KiB`.
        public var reason: String
        public var description: String { "\(path) \(reason)" }
    }

    /// The file's text (UTF-8, invalid bytes replaced).
    public static func read(_ path: String, limit: Int) throws(Problem) -> String {
        String(decoding: try bytes(path, limit: limit), as: UTF8.self)
    }

    /// `Sys.readBytes` (the one guarded read: a regular file, to a bound), its refusal said of the file.
    public static func bytes(_ path: String, limit: Int) throws(Problem) -> [UInt8] {
        do { return try Sys.readBytes(path, limit: limit) } catch {
            switch error.errno {
            case ENOENT: throw Problem(path: path, reason: "does not exist")
            case ELOOP: throw Problem(path: path, reason: "is a loop of symbolic links")
            case EFBIG: throw Problem(path: path, reason: "is larger than \(describe(limit))")
            case 0:
                throw Problem(
                    path: path,
                    reason: (error.diagnosis ?? "is not a regular file").replacingOccurrences(of: "it is ", with: "is ")
                )
            default: throw Problem(path: path, reason: "cannot be read: \(error.kernelWords)")
            }
        }
    }

    /// Standard input, read to its end, at most `limit` bytes (a profile piped in: `topo validate -`).
    public static func standardInput(limit: Int) throws(Problem) -> [UInt8] {
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while out.count <= limit {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Problem(path: "standard input", reason: "cannot be read: \(Errno(rawValue: errno))")
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        if out.count > limit { throw Problem(path: "standard input", reason: "is larger than \(describe(limit))") }
        return out
    }

    /// The first `bytes` bytes of a file (its first lines), however long it is.
    public static func prefix(_ path: String, bytes: Int) throws(Problem) -> String {
        do { return String(decoding: try Sys.readBytes(path, limit: bytes, truncating: true), as: UTF8.self) } catch {
            throw Problem(
                path: path, reason: error.errno == 0 ? "is not a regular file" : "cannot be read: \(error.kernelWords)")
        }
    }

    /// `256 KiB`, `16 MiB`, or bytes.
    static func describe(_ bytes: Int) -> String {
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}
