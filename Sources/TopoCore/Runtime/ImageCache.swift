import Foundation

/// OCI image layouts unpacked once per manifest digest under topo's state, shared read-only by every
/// container that runs that image (in any profile), and removed with the last container using it.
///
///     /run/topo/images/sha256-<hex>/rootfs                          the unpacked root filesystem
///     /run/topo/images/sha256-<hex>/users/<profile>.<workload>      one mark per container using it
///
/// Every caller holds the state lock (apply and down do), so marks and removals never race. A use is
/// marked before the image is unpacked, so a crash at any point leaves a mark that `down` finds by
/// the container's name alone, without the journal's facts.
public struct ImageCache: Sendable {
    public var root: String
    /// Unpacks the image `reference` (`DIR:TAG`) into a new directory `destination` (its root
    /// filesystem lands in `destination/rootfs`); why it failed, or nil.
    var unpack: @Sendable (_ reference: String, _ destination: String) -> String?

    public init(state: StateStore, unpack: @escaping @Sendable (String, String) -> String?) {
        self.root = "\(state.root)/\(Self.directoryName)"
        self.unpack = unpack
    }

    /// The cache's name in the state root (reserved: no profile may take it).
    public static let directoryName = "images"

    /// umoci from Debian, unpacking without keeping the layers' history in the tree.
    public static func umoci(_ runner: CommandRunner = CommandRunner()) -> @Sendable (String, String) -> String? {
        { reference, destination in
            let r = runner.run([OCIRuntime.umoci, "unpack", "--image", reference, destination])
            return r.status == 0 ? nil : "umoci unpack --image \(reference) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    /// The manifest digest a layout's tag names in its `index.json` (`sha256:` and 64 hex digits; any
    /// other spelling is refused, as it becomes a directory name).
    public static func digest(layout dir: String, tag: String) -> String? {
        guard let text = try? Sys.read("\(dir)/index.json"), text.utf8.count <= 1 << 20,
              let index = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let manifests = index["manifests"] as? [[String: Any]] else { return nil }
        let named = manifests.first { (($0["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String) == tag }
        guard let digest = named?["digest"] as? String, isDigest(digest) else { return nil }
        return digest
    }

    static func isDigest(_ s: String) -> Bool {
        s.hasPrefix("sha256:") && s.utf8.count == 71 && s.utf8.dropFirst(7).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    func directory(_ digest: String) -> String { "\(root)/\(digest.replacingOccurrences(of: ":", with: "-"))" }

    /// The root filesystem of `digest`, unpacked from `reference` unless it already is, and marked as
    /// used by `user` (`profile.workload`).
    public func acquire(reference: String, digest: String, user: String) -> Result<String, TopoFailure> {
        guard Self.isDigest(digest) else { return .failure(TopoFailure(.applyFailed, "image \(reference): \(digest) is not a sha256 digest")) }
        let dir = directory(digest)
        do {
            for d in [root, dir, "\(dir)/users"] where !Sys.isDirectory(d) { try Sys.mkdir(d, mode: 0o700) }
            try Sys.write("\(dir)/users/\(user)", "\(reference)\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, operation: "mark the use of")
        } catch { return .failure(TopoFailure(.applyFailed, "image cache \(dir): \(error)")) }
        if Sys.isDirectory("\(dir)/rootfs") { return .success("\(dir)/rootfs") }
        // Unpacked beside, then renamed into place: a crash never leaves a half-unpacked rootfs in use.
        let scratch = "\(dir)/unpacking"
        if Sys.exists(scratch) { _ = try? Sys.removeTree(scratch) }
        if let why = unpack(reference, scratch) {
            _ = try? Sys.removeTree(scratch)
            return .failure(TopoFailure(.applyFailed, why))
        }
        do { try Sys.rename("\(scratch)/rootfs", "\(dir)/rootfs") } catch { return .failure(TopoFailure(.applyFailed, "image cache: \(error)")) }
        _ = try? Sys.removeTree(scratch)
        return .success("\(dir)/rootfs")
    }

    /// Forgets every use by `user`, and removes each image no container uses any more (never through
    /// a mount); the cache directory goes with the last image. Returns the images removed.
    public func release(user: String) throws(TopoFailure) -> [String] {
        var removed: [String] = []
        for name in Sys.subdirectories(root) {
            let dir = "\(root)/\(name)", mark = "\(dir)/users/\(user)"
            guard Sys.exists(mark) else { continue }
            do {
                try Sys.unlink(mark)
                guard Sys.entries("\(dir)/users").isEmpty else { continue }
                let left = try Sys.removeTree(dir)
                if !left.isEmpty { throw SystemError("remove the image", dir, errno: EBUSY, diagnosis: "\(left.joined(separator: ", ")) is another filesystem") }
            } catch { throw TopoFailure(.hostCannot, "image cache: \(error)") }
            removed.append(dir)
        }
        if Sys.isDirectory(root) && Sys.entries(root).isEmpty { try? Sys.rmdir(root) }
        return removed
    }
}
