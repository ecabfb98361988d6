import Foundation

/// The mount table of this mount namespace, from /proc/self/mountinfo (proc(5): the fifth field is the
/// mount point, octal-escaped; the filesystem type is the first field after the " - " separator).
public enum Mounts {
    public struct Entry: Equatable, Sendable {
        public var point: String
        public var type: String
        /// What of its filesystem the mount shows (the fourth field): `/` for a whole cgroup2 hierarchy,
        /// a cgroup's path for a mount of a cgroup below its root.
        public var root: String = "/"
    }

    public static func read(_ path: String = "/proc/self/mountinfo") -> Result<[Entry], SystemError> {
        do { return .success(parse(mountinfo: try Sys.read(path))) } catch { return .failure(error) }
    }

    public static func parse(mountinfo: String) -> [Entry] {
        mountinfo.split(separator: "\n").compactMap { line in
            let halves = line.components(separatedBy: " - ")
            let fields = halves[0].split(separator: " ")
            guard halves.count == 2, fields.count > 4, let type = halves[1].split(separator: " ").first else {
                return nil
            }
            return Entry(point: unescape(String(fields[4])), type: String(type), root: unescape(String(fields[3])))
        }
    }

    /// Mount points at `path` or below it.
    public static func at(orBelow path: String, in entries: [Entry]) -> [String] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        return entries.map(\.point).filter { $0 == path || $0.hasPrefix(prefix) }
    }

    /// Unmounts whatever is mounted at `path` or below it (detached, as `umount -l`), then reads the
    /// table again: an error names what is still mounted. Nothing mounted there is fine. A table that
    /// cannot be read counts as `path` still mounted: nothing is removed through a mount on a guess.
    public static func unmountTree(_ path: String) throws(SystemError) {
        let mounted = { (try? read().get()).map { at(orBelow: path, in: $0) } ?? [path] }
        if !mounted().isEmpty { try Sys.unmount(path, detach: true) }
        let still = mounted()
        guard still.isEmpty else {
            throw SystemError(
                "unmount", path, errno: EBUSY, diagnosis: "\(still.joined(separator: ", ")) still mounted")
        }
    }

    /// The kernel escapes space, tab, newline and backslash in mount paths as octal (`\040`).
    public static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = [UInt8]()
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
                let v = UInt8(String(decoding: b[i + 1...i + 3], as: UTF8.self), radix: 8)
            {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
