import Foundation

/// All cgroup v2 filesystem I/O, rooted at one directory (`/sys/fs/cgroup`, or a temporary directory in tests).
/// Cgroups are named by their path relative to the root, e.g. `topo/api-gateway/server`.
public struct CgroupFS: Sendable {
    public let root: String

    /// The extended attribute that marks a cgroup as made by topo; its value names the owner.
    /// cgroupfs (kernfs) keeps `trusted.*` attributes; topo never adopts or removes a cgroup without it.
    public static let ownerAttribute = "trusted.topo.owner"

    public init(root: String = "/sys/fs/cgroup") {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public func path(_ cgroup: String) -> String { cgroup.isEmpty ? root : "\(root)/\(cgroup)" }
    public func path(_ cgroup: String, _ file: String) -> String { "\(path(cgroup))/\(file)" }

    public func exists(_ cgroup: String) -> Bool { Sys.isDirectory(path(cgroup)) }

    /// A cgroup's path from the hierarchy's root, as `/proc/PID/cgroup` names it: the root directory's
    /// own place in the hierarchy (the cgroup2 mount it is on, that mount's root, and the directories
    /// from its mount point down to `root`), then the cgroup's path below it. With no cgroup2 mount found
    /// for `root` (a test's directory), the root stands for the hierarchy's root.
    public func hierarchyPath(_ cgroup: String, mounts: [Mounts.Entry]? = try? Mounts.read().get()) -> String {
        var base = ""
        let holding = (mounts ?? []).filter {
            $0.type == "cgroup2" && (root == $0.point || root.hasPrefix($0.point == "/" ? "/" : $0.point + "/"))
        }
        if let mount = holding.max(by: { $0.point.count < $1.point.count }) {
            let below = String(root.dropFirst(mount.point.count))
            base = (mount.root == "/" ? "" : mount.root) + (below.isEmpty || below.hasPrefix("/") ? below : "/" + below)
        }
        let full = base + (cgroup.isEmpty ? "" : "/" + cgroup)
        return full.isEmpty ? "/" : full
    }

    public func read(_ cgroup: String, _ file: String) throws(SystemError) -> String {
        try Sys.read(path(cgroup, file))
    }

    /// Writes one interface file. A failure that a missing controller explains is re-diagnosed as exactly that.
    public func write(_ cgroup: String, _ file: String, _ value: String) throws(SystemError) {
        do {
            try Sys.write(path(cgroup, file), value)
        } catch var error {
            error.diagnosis = diagnose(cgroup, file, error.errno)
            throw error
        }
    }

    /// Why writing `file` in `cgroup` failed, when the cgroup's controllers tell (as crun does).
    func diagnose(_ cgroup: String, _ file: String, _ err: Int32) -> String? {
        let controller = String(file.prefix { $0 != "." })
        guard ["cpuset", "cpu", "memory", "pids", "io"].contains(controller) else { return nil }
        if err == ENOENT || err == EACCES || err == EPERM || err == EOPNOTSUPP {
            let offered =
                (try? read(cgroup, "cgroup.controllers"))?.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(
                    String.init) ?? []
            if !offered.contains(controller) {
                let rootOffers = (try? read("", "cgroup.controllers"))?.trimmingCharacters(in: " \n") ?? "?"
                return
                    "the \(controller) controller is not enabled for this cgroup: its parent's cgroup.subtree_control lacks it (the root offers: \(rootOffers))"
            }
        }
        if err == EINVAL && controller == "cpuset" {
            return "the value must be a subset of the parent's effective cpuset"
        }
        return nil
    }

    /// Creates a cgroup and marks it as topo's, owned by `owner`.
    public func create(_ cgroup: String, owner: String) throws(SystemError) {
        try Sys.mkdir(path(cgroup))
        do {
            try Sys.setxattr(path(cgroup), Self.ownerAttribute, owner)
        } catch {
            try? Sys.rmdir(path(cgroup))
            throw error
        }
    }

    /// The owner recorded on a cgroup, nil when it is not topo's (or does not exist).
    public func owner(_ cgroup: String) -> String? { Sys.getxattr(path(cgroup), Self.ownerAttribute) }

    public func children(_ cgroup: String) -> [String] {
        // A directory's link count is 2 plus its subdirectories on cgroupfs (kernfs), as on ext4 and
        // tmpfs: a cgroup with none is not listed (one stat instead of reading dozens of file entries;
        // a watch round asks this of every workload twice). Filesystems that do not count report 1.
        if let st = Sys.stat(path(cgroup)), st.st_nlink == 2 { return [] }
        return Sys.subdirectories(path(cgroup)).map { cgroup.isEmpty ? $0 : "\(cgroup)/\($0)" }
    }

    /// PIDs of the processes directly in the cgroup.
    public func procs(_ cgroup: String) -> [Int32] {
        ((try? read(cgroup, "cgroup.procs")) ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    /// PIDs in the cgroup and every cgroup below it.
    public func allProcs(_ cgroup: String) -> [Int32] {
        procs(cgroup) + children(cgroup).flatMap { allProcs($0) }
    }

    /// Whether any process lives in the cgroup or below (`populated` in cgroup.events).
    public func isPopulated(_ cgroup: String) -> Bool {
        guard let events = try? read(cgroup, "cgroup.events") else { return false }
        return events.split(separator: "\n").contains("populated 1")
    }

    public func controllers(_ cgroup: String) -> [String] {
        ((try? read(cgroup, "cgroup.controllers")) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(
            String.init)
    }

    public func subtreeControl(_ cgroup: String) -> [String] {
        ((try? read(cgroup, "cgroup.subtree_control")) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(
            String.init)
    }

    /// Enables controllers for the cgroup's children; returns those it had to add.
    @discardableResult
    public func enable(_ controllers: [String], below cgroup: String) throws(SystemError) -> [String] {
        let present = subtreeControl(cgroup)
        let missing = controllers.filter { !present.contains($0) }
        if !missing.isEmpty {
            try write(cgroup, "cgroup.subtree_control", missing.map { "+\($0)" }.joined(separator: " "))
        }
        return missing
    }

    /// Kills every process in the cgroup and below: `cgroup.kill` (Linux 5.14+), or freeze, SIGKILL, thaw.
    public func killAll(_ cgroup: String) throws(SystemError) {
        if Sys.exists(path(cgroup, "cgroup.kill")) {
            try write(cgroup, "cgroup.kill", "1")
            return
        }
        let freezable = Sys.exists(path(cgroup, "cgroup.freeze"))
        if freezable { try write(cgroup, "cgroup.freeze", "1") }
        for pid in allProcs(cgroup) { try Sys.kill(pid, SIGKILL) }
        if freezable { try write(cgroup, "cgroup.freeze", "0") }
    }

    /// Waits until `cgroup.events` says `populated 0`, polling for at most `timeout` seconds.
    public func waitEmpty(_ cgroup: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var delay: useconds_t = 500
        while isPopulated(cgroup) {
            if Date() > deadline { return false }
            usleep(delay)
            delay = min(delay * 2, 50_000)
        }
        return true
    }

    /// A cpuset partition hands its CPUs back to its parent when its cgroup goes offline, which the
    /// kernel does some time after rmdir returns; making it a `member` first hands them back at once, so
    /// that when `down` returns the host has every CPU again and a new partition on them is valid.
    func releasePartition(_ cgroup: String) {
        guard let state = try? read(cgroup, "cpuset.cpus.partition"), !state.hasPrefix("member") else { return }
        try? write(cgroup, "cpuset.cpus.partition", "member")
    }

    /// Removes a cgroup and every cgroup below it, deepest first; EBUSY (a process still leaving)
    /// is retried a bounded number of times. A cgroup already gone counts as removed.
    public func removeTree(_ cgroup: String, attempts: Int = 50) throws(SystemError) {
        for child in children(cgroup) { try removeTree(child, attempts: attempts) }
        releasePartition(cgroup)
        var delay: useconds_t = 1000
        for attempt in 1...attempts {
            do {
                try Sys.rmdir(path(cgroup))
                return
            } catch {
                if error.errno == ENOENT { return }
                if error.errno != EBUSY || attempt == attempts { throw error }
                usleep(delay)
                delay = min(delay * 2, 100_000)
            }
        }
    }
}
