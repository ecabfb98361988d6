import CTopoShim
import Foundation

/// OCI image layouts unpacked once per manifest digest under topo's state, shared read-only by every
/// container that runs that image (in any profile), and removed with the last container using it.
///
///     /run/topo/images/sha256-<hex>/rootfs                          the unpacked root filesystem
///     /run/topo/images/sha256-<hex>/users/<profile>.<workload>      one mark per container using it
///
///     /run/topo/images/host-root/rootfs                             one read-only copy of the host's /
///     /run/topo/images/host-root/users/<profile>.<workload>         shared by every `image: /` container
///
/// Every caller holds the state lock (apply and down do), so marks and removals never race. A use is
/// marked before the image is unpacked, so a crash at any point leaves a mark that `down` finds by
/// the container's name alone, without the journal's facts.
///
/// The host's root is copied once for all `image: /` containers, not once per container: a copy
/// of `/` holds every mount of the host, each earlier container's copy included, so the mount table
/// doubled with each container (11,776 mounts after 9; ENOSPC at 13). One shared copy adds the host's
/// mounts once, and each runtime binds it in the container's own mount namespace.
public struct ImageCache: Sendable {
    public var root: String
    /// Unpacks the image `reference` (`DIR:TAG`) into a new directory `destination` (its root
    /// filesystem lands in `destination/rootfs`); why it failed, or nil.
    var unpack: @Sendable (_ reference: String, _ destination: String) -> String?
    /// Attaches a read-only copy of the host's `/` at an empty directory; why it failed, or nil.
    var attachHostRoot: @Sendable (_ at: String) -> String?

    public init(
        state: StateStore, unpack: @escaping @Sendable (String, String) -> String?,
        attachHostRoot: @escaping @Sendable (String) -> String? = ImageCache.attachReadOnlyRoot
    ) {
        self.root = "\(state.root)/\(Self.directoryName)"
        self.unpack = unpack
        self.attachHostRoot = attachHostRoot
    }

    /// The shared copy's directory name: not a digest, so never an image's.
    static let hostRootName = "host-root"

    /// `topo_attach_read_only_tree("/", at)`: every mount read-only, nosuid and private.
    public static let attachReadOnlyRoot: @Sendable (String) -> String? = { at in
        topo_attach_read_only_tree("/", at) == 0
            ? nil : "\(SystemError("attach a read-only copy of / at", at, errno: errno))"
    }

    /// The cache's name in the state root (reserved: no profile may take it).
    public static let directoryName = "images"

    /// umoci from Debian, unpacking without keeping the layers' history in the tree.
    public static func umoci(_ runner: CommandRunner = CommandRunner()) -> @Sendable (String, String) -> String? {
        { reference, destination in
            let r = runner.run([OCIRuntime.umoci, "unpack", "--image", reference, destination])
            return r.status == 0
                ? nil
                : "umoci unpack --image \(reference) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    /// One manifest of a layout's `index.json`, as read once: what is unpacked is exactly this digest.
    public struct Manifest: Equatable, Sendable {
        public var tag: String
        /// `sha256:` and 64 hex digits (any other spelling is refused, as it becomes a directory name).
        public var digest: String
        public var mediaType: String
        public var size: Int
    }

    /// The manifest a layout's tag names in its `index.json` (read at most 1 MiB).
    public static func manifest(layout dir: String, tag: String) -> Manifest? {
        guard let text = try? GuardedFile.read("\(dir)/index.json", limit: 1 << 20),
            let index = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let manifests = index["manifests"] as? [[String: Any]]
        else { return nil }
        let named = manifests.first {
            (($0["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String) == tag
        }
        guard let digest = named?["digest"] as? String, isDigest(digest),
            let size = (named?["size"] as? NSNumber)?.intValue
        else { return nil }
        return Manifest(
            tag: tag, digest: digest,
            mediaType: named?["mediaType"] as? String ?? "application/vnd.oci.image.manifest.v1+json", size: size)
    }

    /// The manifest digest a layout's tag names in its `index.json`.
    public static func digest(layout dir: String, tag: String) -> String? { manifest(layout: dir, tag: tag)?.digest }

    static func isDigest(_ s: String) -> Bool {
        s.hasPrefix("sha256:") && s.utf8.count == 71
            && s.utf8.dropFirst(7).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    func directory(_ digest: String) -> String { "\(root)/\(digest.replacingOccurrences(of: ":", with: "-"))" }

    /// The root filesystem of the manifest a layout's index named when topo read it, unpacked unless it
    /// already is, and marked as used by `user`. umoci is given a layout of topo's own beside the
    /// scratch directory — the original's `oci-layout` and blobs, and an index naming only that digest
    /// — so an `index.json` changed between topo's read and umoci's cannot swap the image (umoci checks
    /// every blob against its digest as it reads it).
    public func acquire(layout dir: String, manifest: Manifest, user: String) -> Result<String, TopoFailure> {
        guard Self.isDigest(manifest.digest) else {
            return .failure(TopoFailure(.applyFailed, "image \(dir): \(manifest.digest) is not a sha256 digest"))
        }
        let pinned = "\(directory(manifest.digest)).layout"
        return acquire(reference: "\(pinned):topo", digest: manifest.digest, user: user) { () throws(SystemError) in
            if Sys.exists(pinned) { _ = try Sys.removeTree(pinned) }
            try Sys.mkdir(pinned, mode: 0o700)
            try Sys.write(
                "\(pinned)/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"# + "\n",
                flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
            let index: [String: Any] = [
                "schemaVersion": 2,
                "manifests": [
                    [
                        "mediaType": manifest.mediaType, "digest": manifest.digest, "size": manifest.size,
                        "annotations": ["org.opencontainers.image.ref.name": "topo"],
                    ]
                ],
            ]
            let data = (try? JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])) ?? Data()
            try Sys.write(
                "\(pinned)/index.json", String(decoding: data, as: UTF8.self),
                flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
            let blobs = URL(fileURLWithPath: dir).standardizedFileURL.path + "/blobs"
            guard symlink(blobs, "\(pinned)/blobs") == 0 else {
                throw SystemError("symlink", "\(pinned)/blobs", value: blobs, errno: errno)
            }
        } cleanup: {
            _ = try? Sys.removeTree(pinned)
        }
    }

    /// The root filesystem of `digest`, unpacked from `reference` unless it already is, and marked as
    /// used by `user` (`profile.workload`). `prepare` and `cleanup` run around an unpacking.
    public func acquire(
        reference: String, digest: String, user: String,
        prepare: () throws(SystemError) -> Void = {}, cleanup: () -> Void = {}
    ) -> Result<String, TopoFailure> {
        guard Self.isDigest(digest) else {
            return .failure(TopoFailure(.applyFailed, "image \(reference): \(digest) is not a sha256 digest"))
        }
        let dir = directory(digest)
        do {
            for d in [root, dir, "\(dir)/users"] where !Sys.isDirectory(d) { try Sys.mkdir(d, mode: 0o700) }
            try Sys.write(
                "\(dir)/users/\(user)", "\(reference)\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                operation: "mark the use of")
        } catch { return .failure(TopoFailure(.applyFailed, "image cache \(dir): \(error)")) }
        if Sys.isDirectory("\(dir)/rootfs") { return .success("\(dir)/rootfs") }
        // Unpacked beside, then renamed into place: a crash never leaves a half-unpacked rootfs in use.
        let scratch = "\(dir)/unpacking"
        if Sys.exists(scratch) { _ = try? Sys.removeTree(scratch) }
        defer { cleanup() }
        do { try prepare() } catch { return .failure(TopoFailure(.applyFailed, "image cache: \(error)")) }
        if let why = unpack(reference, scratch) {
            _ = try? Sys.removeTree(scratch)
            return .failure(TopoFailure(.applyFailed, why))
        }
        do { try Sys.rename("\(scratch)/rootfs", "\(dir)/rootfs") } catch {
            return .failure(TopoFailure(.applyFailed, "image cache: \(error)"))
        }
        _ = try? Sys.removeTree(scratch)
        return .success("\(dir)/rootfs")
    }

    /// The shared read-only copy of the host's `/`, attached unless it already is, and marked as used
    /// by `user` (`profile.workload`).
    public func acquireHostRoot(user: String) -> Result<String, TopoFailure> {
        let dir = "\(root)/\(Self.hostRootName)"
        let rootfs = "\(dir)/rootfs"
        do {
            for d in [root, dir, "\(dir)/users"] where !Sys.isDirectory(d) { try Sys.mkdir(d, mode: 0o700) }
            try Sys.write(
                "\(dir)/users/\(user)", "/\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                operation: "mark the use of")
            if try Self.isMounted(rootfs) { return .success(rootfs) }
            if !Sys.isDirectory(rootfs) { try Sys.mkdir(rootfs, mode: 0o755) }
        } catch { return .failure(TopoFailure(.applyFailed, "image cache \(dir): \(error)")) }
        if let why = attachHostRoot(rootfs) { return .failure(TopoFailure(.applyFailed, why)) }
        return .success(rootfs)
    }

    /// Whether a mount is attached exactly at `path` (mountinfo).
    static func isMounted(_ path: String) throws(SystemError) -> Bool {
        switch Mounts.read() {
        case .success(let table): return table.contains { $0.point == path }
        case .failure(let e): throw e
        }
    }

    /// Forgets every use by `user`, and removes each image no container uses any more (never through
    /// a mount: the host root's copy is unmounted first, and checked gone); the cache directory goes
    /// with the last image. Returns the images removed.
    public func release(user: String) throws(TopoFailure) -> [String] {
        var removed: [String] = []
        for name in Sys.subdirectories(root) {
            let dir = "\(root)/\(name)"
            let mark = "\(dir)/users/\(user)"
            guard Sys.exists(mark) else { continue }
            do {
                try Sys.unlink(mark)
                guard Sys.entries("\(dir)/users").isEmpty else { continue }
                if name == Self.hostRootName { try Mounts.unmountTree("\(dir)/rootfs") }
                let left = try Sys.removeTree(dir)
                if !left.isEmpty {
                    throw SystemError(
                        "remove the image", dir, errno: EBUSY,
                        diagnosis: "\(left.joined(separator: ", ")) is another filesystem")
                }
            } catch { throw TopoFailure(.hostCannot, "image cache: \(error)") }
            removed.append(dir)
        }
        if Sys.isDirectory(root) && Sys.entries(root).isEmpty { try? Sys.rmdir(root) }
        return removed
    }
}
