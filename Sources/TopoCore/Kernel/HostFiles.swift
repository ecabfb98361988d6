/// Read-only access to kernel-provided files (sysfs, procfs) below one root directory.
/// Tests and `--sysfs` point the root at a fixture directory holding the same files.
public struct HostFiles: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public func path(_ relative: String) -> String {
        root == "/" ? "/" + relative : root + "/" + relative
    }

    /// The file's text, or nil when it is missing or unreadable.
    public func read(_ relative: String) -> String? { try? Sys.read(path(relative)) }

    /// Entry names of a directory, sorted; empty when it is missing.
    public func list(_ relative: String) -> [String] { Sys.entries(path(relative)).sorted() }

    public func exists(_ relative: String) -> Bool { Sys.exists(path(relative)) }
}
