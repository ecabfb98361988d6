import Foundation

/// topo's state on the host: one directory per applied profile under a root (default `/run/topo`),
/// a host-wide record of what topo changed outside its own cgroups, and the lock that serializes changes.
///
///     /run/topo/lock                 flock'd by every apply and down
///     /run/topo/host.json            the topo root cgroup and root controllers topo enabled
///     /run/topo/<profile>/plan.json  the plan as applied
///     /run/topo/<profile>/journal.jsonl
///     /run/topo/<profile>/logs/<workload>.log
///     /run/topo/<profile>/launch/<workload>.json
public struct StateStore: Sendable {
    public let root: String

    public init(root: String = "/run/topo") { self.root = root }

    public func profileDir(_ name: String) -> String { "\(root)/\(name)" }
    public func planPath(_ name: String) -> String { "\(profileDir(name))/plan.json" }
    public func journalPath(_ name: String) -> String { "\(profileDir(name))/journal.jsonl" }
    public func logPath(_ name: String, _ workload: String) -> String { "\(profileDir(name))/logs/\(workload).log" }
    public func launchSpecPath(_ name: String, _ workload: String) -> String { "\(profileDir(name))/launch/\(workload).json" }
    var hostPath: String { "\(root)/host.json" }

    /// Names of the profiles with a state directory (applied, or left half-applied by a crash).
    public func profiles() -> [String] {
        Sys.subdirectories(root).filter { ProfileDecoder.matches($0, first: "a"..."z", maxLength: 24) }
    }

    public func plan(_ name: String) -> Plan? {
        guard let data = FileManager.default.contents(atPath: planPath(name)) else { return nil }
        return try? JSONDecoder().decode(Plan.self, from: data)
    }

    /// Creates the profile's state directory (mode 0700) with its plan.
    func create(_ plan: Plan) throws(SystemError) {
        try ensureRoot()
        try Sys.mkdir(profileDir(plan.name), mode: 0o700)
        for sub in ["logs", "launch"] { try Sys.mkdir("\(profileDir(plan.name))/\(sub)", mode: 0o700) }
        try Sys.write(planPath(plan.name), JSONOutput.encode(plan) + "\n", flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, operation: "create")
    }

    func ensureRoot() throws(SystemError) {
        if !Sys.isDirectory(root) {
            do { try Sys.mkdir(root, mode: 0o700) } catch { if error.errno != EEXIST { throw error } }
        }
    }

    /// Removes a profile's state directory and everything in it.
    func remove(_ name: String) throws(SystemError) {
        let dir = profileDir(name)
        guard Sys.exists(dir) else { return }
        do {
            try FileManager.default.removeItem(atPath: dir)
        } catch {
            throw SystemError("remove", dir, errno: (error as NSError).code == 0 ? EIO : Int32((error as NSError).code))
        }
    }

    // MARK: host-wide changes

    public struct HostChanges: Codable, Equatable, Sendable {
        /// topo made the topo root cgroup (and removes it when the last profile goes).
        public var createdRoot = false
        /// Controllers topo enabled in the cgroup root's `cgroup.subtree_control`.
        public var rootControllers: [String] = []
        /// topo made `/etc/netns` (and removes it, if empty, when the last profile goes).
        public var createdEtcNetns = false

        public init(createdRoot: Bool = false, rootControllers: [String] = [], createdEtcNetns: Bool = false) {
            self.createdRoot = createdRoot
            self.rootControllers = rootControllers
            self.createdEtcNetns = createdEtcNetns
        }

        /// Keys an older topo did not write read as their defaults: a record must never be lost.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            createdRoot = try c.decodeIfPresent(Bool.self, forKey: .createdRoot) ?? false
            rootControllers = try c.decodeIfPresent([String].self, forKey: .rootControllers) ?? []
            createdEtcNetns = try c.decodeIfPresent(Bool.self, forKey: .createdEtcNetns) ?? false
        }
    }

    func hostChanges() -> HostChanges {
        guard let data = FileManager.default.contents(atPath: hostPath) else { return HostChanges() }
        return (try? JSONDecoder().decode(HostChanges.self, from: data)) ?? HostChanges()
    }

    /// Records host changes before they are made (an intent; undoing one never made is harmless).
    func record(_ changes: HostChanges) throws(SystemError) {
        try ensureRoot()
        let tmp = hostPath + ".tmp"
        try Sys.write(tmp, JSONOutput.encode(changes) + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, operation: "write")
        guard rename(tmp, hostPath) == 0 else { throw SystemError("rename", tmp, value: hostPath, errno: errno) }
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

    // MARK: lock

    /// Holds the state lock for the duration of `body`. The lock file may be removed by the holder
    /// (when the last profile goes), so after locking, the file is checked to still be the one locked.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try ensureRoot()
        let path = "\(root)/lock"
        while true {
            let fd = Sys.retrying { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
            guard fd >= 0 else { throw SystemError("open", path, errno: errno) }
            guard Sys.retrying({ flock(fd, LOCK_EX) }) == 0 else {
                let e = errno
                close(fd)
                throw SystemError("flock", path, errno: e)
            }
            var held = stat(), current = stat()
            if fstat(fd, &held) == 0, stat(path, &current) == 0, held.st_ino == current.st_ino, held.st_dev == current.st_dev {
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
