import Foundation
import Synchronization

/// Read-only access to kernel-provided files (sysfs, procfs) below one root directory.
/// Tests and `--sysfs` point the root at a fixture directory holding the same files.
public struct HostFiles: Sendable {
    public let root: String
    /// When set, every file read and every `cpuN` directory listed is noted (`topo host --export`).
    public let log: ReadLog?

    public init(root: String, log: ReadLog? = nil) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.log = log
    }

    public func path(_ relative: String) -> String {
        root == "/" ? "/" + relative : root + "/" + relative
    }

    /// The file's text, or nil when it is missing or unreadable.
    public func read(_ relative: String) -> String? {
        if case .success(let text) = readIfPresent(relative) { return text }
        return nil
    }

    /// The file's text; nil when it is missing; the error when it is there and cannot be read as a file
    /// (a `--sysfs` tree whose file is a FIFO, `/dev/zero` behind a link, a loop of links).
    public func readIfPresent(_ relative: String) -> Result<String?, SystemError> {
        do {
            let text = try Sys.read(path(relative))
            if let log { log.files.withLock { $0[relative] = text } }
            return .success(text)
        } catch {
            return error.errno == ENOENT || error.errno == ENOTDIR ? .success(nil) : .failure(error)
        }
    }

    /// Entry names of a directory, sorted; empty when it is missing.
    public func list(_ relative: String) -> [String] {
        let names = Sys.entries(path(relative)).sorted()
        if let log {
            let dirs = names.filter { $0.hasPrefix("cpu") && Int($0.dropFirst(3)) != nil }.map { "\(relative)/\($0)" }
            log.directories.withLock { $0.formUnion(dirs) }
        }
        return names
    }

    public func exists(_ relative: String) -> Bool { Sys.exists(path(relative)) }

    /// What a discovery read: each file's relative path and text, and the directories it listed.
    public final class ReadLog: Sendable {
        public let files = Mutex<[String: String]>([:])
        public let directories = Mutex<Set<String>>([])
        public init() {}
    }
}
