import Foundation

@testable import TopoCore

/// A temporary directory standing in for /sys/fs/cgroup or /run/topo, seeded with the files a test needs.
final class FakeRoot {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "topo-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func seed(_ relative: String, _ contents: String) throws {
        let full = "\(path)/\(relative)"
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: full, atomically: false, encoding: .utf8)
    }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: "\(path)/\(relative)", withIntermediateDirectories: true)
    }

    func read(_ relative: String) -> String? { try? String(contentsOfFile: "\(path)/\(relative)", encoding: .utf8) }
    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: "\(path)/\(relative)") }

    /// Whether this filesystem keeps trusted.* attributes (root on ext4/tmpfs does).
    static let supportsTrustedXattrs: Bool = {
        guard let root = try? FakeRoot() else { return false }
        return (try? Sys.setxattr(root.path, "trusted.topo.probe", "1")) != nil
    }()
}
