import Foundation

/// topo's state on the host: one directory per applied profile under a root (default `/run/topo`),
/// a host-wide record of what topo changed outside its own cgroups, and the lock that serializes changes.
///
///     /run/topo/lock                 flock'd by every apply and down
///     /run/topo/host.json            the topo root cgroup and root controllers topo enabled (the cgroup manager's)
///     /run/topo/netns.json           whether topo made /etc/netns (the hosts-file writer's)
///     /run/topo/tune.json            the host.tune values topo changed, their originals and holders (the tuner's)
///     /run/topo/<profile>/plan.json  the plan as applied (written once every step is made)
///     /run/topo/<profile>/journal.jsonl
///     /run/topo/<profile>/profile.yaml  the profile's text as applied
///     /run/topo/<profile>/logs/<workload>.log
///     /run/topo/images/              image layouts unpacked for containers (`ImageCache`)
public struct StateStore: Sendable {
    public let root: String

    public init(root: String = Layout.standard.stateRoot) { self.root = root }

    /// Names of topo's own entries in the state root that a profile name could take (`host.json` and
    /// its temporary file have a dot, which names never have).
    public static let reservedNames: Set<String> = ["lock", ImageCache.directoryName]

    public func profileDir(_ name: String) -> String { "\(root)/\(name)" }
    public func planPath(_ name: String) -> String { "\(profileDir(name))/plan.json" }
    public func journalPath(_ name: String) -> String { "\(profileDir(name))/journal.jsonl" }
    public func logPath(_ name: String, _ workload: String) -> String { "\(profileDir(name))/logs/\(workload).log" }
    /// The profile's text as it was applied, for `topo report NAME`.
    public func profileTextPath(_ name: String) -> String { "\(profileDir(name))/profile.yaml" }
    /// What the cgroup manager changed at the cgroup root (`HostChanges`).
    var hostPath: String { "\(root)/host.json" }
    /// Whether topo made `/etc/netns` (`NetnsHostsFiles`).
    var netnsPath: String { "\(root)/netns.json" }
    /// What `host.tune` changed, with each value's original and the profiles that hold it (`HostTuner`).
    var tunePath: String { "\(root)/tune.json" }

    /// Names of the profiles with a state directory (applied, or left half-applied by a crash).
    public func profiles() -> [String] {
        Sys.subdirectories(root).filter {
            ProfileDecoder.matches($0, first: "a"..."z", maxLength: 24) && !Self.reservedNames.contains($0)
        }
    }

    /// The plan a profile was applied with. A file that is there but cannot be read as a plan is an
    /// error that names it, never a missing plan: callers check overlaps and find workloads with it.
    public func plan(_ name: String) -> Result<Plan, TopoFailure> {
        let path = planPath(name)
        let text: String
        do { text = try Sys.read(path) } catch {
            return .failure(
                TopoFailure(.hostCannot, "profile \(name) has no readable plan: \(error); run `topo down \(name)`"))
        }
        do {
            return .success(try JSONDecoder().decode(Plan.self, from: Data(text.utf8)))
        } catch {
            return .failure(
                TopoFailure(
                    .hostCannot,
                    "\(path) is not a plan this topo can read (\(Self.reason(error))); run `topo down \(name)`, which needs only the journal"
                ))
        }
    }

    /// Creates the profile's state directory (mode 0700) with an empty journal, and the profile's text;
    /// the plan comes once apply has made every step (`record`). A state directory without a journal is
    /// one someone else changed, and `down` refuses to guess.
    func create(_ name: String, profileText: String?) throws(SystemError) {
        try ensureRoot()
        try Sys.mkdir(profileDir(name), mode: 0o700)
        try Sys.mkdir("\(profileDir(name))/logs", mode: 0o700)
        if let profileText {
            try Sys.write(
                profileTextPath(name), profileText, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
        }
        try Sys.write(journalPath(name), "", flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
    }

    /// Writes `plan.json`, once: `planText` is the plan as `JSONOutput.encode` writes it.
    func record(_ name: String, planText: String) throws(SystemError) {
        try Sys.write(planPath(name), planText, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
    }

    /// A decoding error in a few words, with where in the file it is.
    static func reason(_ error: Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
            let at = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return at.isEmpty
                ? c.debugDescription : "at \(at.hasPrefix(".") ? String(at.dropFirst()) : at): \(c.debugDescription)"
        default:
            return "\(error)"
        }
    }

    func ensureRoot() throws(SystemError) {
        if !Sys.isDirectory(root) {
            do { try Sys.mkdir(root, mode: 0o700) } catch { if error.errno != EEXIST { throw error } }
        }
    }

    /// Removes a profile's state directory and everything in it (only once its journal is fully undone),
    /// never through a mount: with anything mounted below it (a container's root bind-mounted from the
    /// host's, left by a crash), nothing is removed and the mounts are named; and the removal itself
    /// does not cross into another filesystem. A recursive removal through a bind of `/` would delete
    /// the host's own files.
    func remove(_ name: String) throws(TopoFailure) {
        let dir = profileDir(name)
        guard Sys.exists(dir) else { return }
        let mounts: [String]
        switch Mounts.read() {
        case .success(let table): mounts = Mounts.at(orBelow: dir, in: table)
        case .failure(let e):
            throw TopoFailure(.hostCannot, "\(dir) kept: cannot tell whether anything is mounted below it: \(e)")
        }
        guard mounts.isEmpty else {
            throw TopoFailure(
                .hostCannot,
                "\(dir) kept: \(mounts.joined(separator: ", ")) \(mounts.count == 1 ? "is" : "are") mounted below it, and topo never deletes through a mount; "
                    + "unmount \(mounts.count == 1 ? "it" : "them") (umount -R \(mounts[0])) and run topo down \(name) again"
            )
        }
        let left: [String]
        do { left = try Sys.removeTree(dir) } catch { throw TopoFailure(.hostCannot, "remove \(dir): \(error)") }
        if !left.isEmpty {
            throw TopoFailure(
                .hostCannot,
                "\(dir) partly kept: \(left.joined(separator: ", ")) \(left.count == 1 ? "is" : "are") on another filesystem (mounted there meanwhile), left in place"
            )
        }
    }

    // MARK: host-wide changes

    /// The cgroup manager's host-wide record: one owner writes it (a container runtime's controllers
    /// reach it through `CgroupManager.recordRootControllers`), and the last profile's cgroup root
    /// releases it.
    public struct HostChanges: Codable, Equatable, Sendable {
        /// topo made the topo root cgroup (and removes it when the last profile goes).
        public var createdRoot = false
        /// Controllers topo enabled in the cgroup root's `cgroup.subtree_control`.
        public var rootControllers: [String] = []
        /// Written by a topo before the hosts-file writer kept its own record (`netns.json`): read
        /// once, by that writer, so that a profile applied by it is still cleaned up.
        public var createdEtcNetns = false
        public var etcNetns: String?

        public init(
            createdRoot: Bool = false, rootControllers: [String] = [], createdEtcNetns: Bool = false,
            etcNetns: String? = nil
        ) {
            self.createdRoot = createdRoot
            self.rootControllers = rootControllers
            self.createdEtcNetns = createdEtcNetns
            self.etcNetns = etcNetns
        }

        /// Keys an older topo did not write read as their defaults: a record must never be lost.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            createdRoot = try c.decodeIfPresent(Bool.self, forKey: .createdRoot) ?? false
            rootControllers = try c.decodeIfPresent([String].self, forKey: .rootControllers) ?? []
            createdEtcNetns = try c.decodeIfPresent(Bool.self, forKey: .createdEtcNetns) ?? false
            etcNetns = try c.decodeIfPresent(String.self, forKey: .etcNetns)
        }
    }

    /// What topo changed on the host outside its own cgroups. No file means no change; a file that
    /// cannot be read is an error that names it — read as "no change", the last `down` would forget
    /// what to restore.
    func hostChanges() throws(TopoFailure) -> HostChanges {
        try readRecord(hostPath, missing: HostChanges(), holds: "what topo changed at the cgroup root")
    }

    /// Records host changes before they are made (an intent; undoing one never made is harmless).
    func record(_ changes: HostChanges) throws(SystemError) {
        try writeRecord(hostPath, changes)
    }

    /// A host-wide record of the state root (`host.json`, `tune.json`): `missing` when there is no file;
    /// a file that cannot be read is an error naming it and what it `holds`, never read as `missing`,
    /// or the last `down` would forget what to restore.
    func readRecord<T: Decodable>(_ path: String, missing: T, holds: String) throws(TopoFailure) -> T {
        let text: String
        do { text = try Sys.read(path) } catch {
            if error.errno == ENOENT { return missing }
            throw TopoFailure(.hostCannot, "\(error)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw TopoFailure(
                .hostCannot,
                "\(path) is not a record this topo can read (\(Self.reason(error))); "
                    + "it holds \(holds), so topo will not guess: fix or remove it by hand")
        }
    }

    /// Writes a host-wide record whole or not at all (a temporary file renamed over it).
    func writeRecord<T: Encodable>(_ path: String, _ value: T) throws(SystemError) {
        try ensureRoot()
        try Sys.writeReplacing(path, JSONOutput.encode(value) + "\n", mode: 0o600)
    }

    func forgetHostChanges() {
        try? Sys.unlink(hostPath)
    }

    /// Removes the state root when nothing is left in it but the lock.
    func removeRootIfEmpty() {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        if entries.allSatisfy({ $0 == "lock" }) {
            try? Sys.unlink("\(root)/lock")
            try? Sys.rmdir(root)
        }
    }

    /// The state root holds what `down` trusts and writes back as root (journals, `host.json`,
    /// `tune.json`), so no one but root — or the user topo runs as — may change it or anything above
    /// it: the root and each directory above it are owned by them and not writable by group or others
    /// (above the root, a sticky directory such as /tmp is fine: no one else can move what is in it),
    /// and a symbolic link on the way is theirs too. Nil when it holds; else why, with the fix.
    public func ownershipProblem() -> String? {
        let me = geteuid()
        func owner(_ st: stat) -> Bool { st.st_uid == 0 || st.st_uid == me }
        func mode(_ st: stat) -> String { "mode " + String(st.st_mode & 0o7777, radix: 8) }
        let fix = "use a state directory only root can write (--state-dir), or fix its owner and mode"
        var prefix = ""
        let parts = root.split(separator: "/")
        for (i, part) in parts.enumerated() {
            prefix += "/\(part)"
            let last = i == parts.count - 1
            guard let link = Sys.lstat(prefix) else { return nil }  // the rest is made by topo, 0700
            if link.st_mode & S_IFMT == S_IFLNK {
                if last { return "the state directory \(root) is a symbolic link; \(fix)" }
                if !owner(link) {
                    return
                        "\(prefix), on the way to the state directory \(root), is a symbolic link owned by uid \(link.st_uid); \(fix)"
                }
            }
            guard let st = Sys.stat(prefix), st.st_mode & S_IFMT == S_IFDIR else {
                return "\(prefix) is not a directory; \(fix)"
            }
            if !owner(st) {
                return
                    "\(last ? "the state directory \(root)" : "\(prefix), above the state directory \(root),") is owned by uid \(st.st_uid), not root; \(fix)"
            }
            let writable = st.st_mode & 0o022 != 0
            if writable && (last || st.st_mode & S_ISVTX == 0) {
                return
                    "\(last ? "the state directory \(root)" : "\(prefix), above the state directory \(root),") is writable by group or others (\(mode(st))): "
                    + "topo keeps there what it writes back as root; \(fix)"
            }
        }
        return nil
    }

    // MARK: lock

    /// Holds the state lock for the duration of `body`. The lock file may be removed by the holder
    /// (when the last profile goes), so after locking, the file is checked to still be the one locked.
    /// A state root that others could change is refused first (exit 3).
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        if let problem = ownershipProblem() { throw TopoFailure(.hostCannot, problem) }
        try ensureRoot()
        let path = "\(root)/lock"
        while true {
            let fd = Sys.retrying { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
            guard fd >= 0 else { throw SystemError("open", path, errno: errno) }
            do { try Sys.lockExclusive(fd, path: path) } catch {
                close(fd)
                throw error
            }
            var held = stat()
            if fstat(fd, &held) == 0, let current = Sys.stat(path), held.st_ino == current.st_ino,
                held.st_dev == current.st_dev
            {
                defer {
                    removeRootIfEmpty()  // leave no trace when nothing is applied
                    close(fd)
                }
                return try body()
            }
            close(fd)  // the file was removed while we waited; lock the new one
            try ensureRoot()
        }
    }
}
