import Foundation

/// Hosts files for linked workloads, `/etc/netns/NS/hosts`: `ip netns exec NS` binds them over
/// /etc/hosts by iproute2's convention, and the launcher does the same in the workload's own mount
/// namespace. topo makes the directory; a directory of that name that topo did not make is refused.
public struct NetnsHostsFiles: ResourceDriver {
    /// Its own host-wide record (`netns.json`): topo made `/etc/netns`, and the undo that leaves it
    /// empty removes it.
    public var state: StateStore
    public var etcNetns: String

    public init(state: StateStore, etcNetns: String) {
        self.state = state
        self.etcNetns = etcNetns
    }

    public func describe(_ r: Resource) -> [String] {
        guard case .hostsFile(let h) = r else { return ["\(r.summary): not a hosts file"] }
        let names = h.contents.split(separator: "\n").compactMap { $0.split(separator: "\t").last }.filter {
            !$0.contains("localhost")
        }
        return [
            "mkdir \(h.directory), marked \(CgroupFS.ownerAttribute)=\(h.owner) (and \(h.parent) when missing, recorded for the last `topo down`)",
            "write \(h.path), mode 0644: localhost\(names.isEmpty ? "" : ", " + names.joined(separator: ", "))",
        ]
    }

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .hostsFile(let h) = r else {
                throw TopoFailure(.applyFailed, "the hosts-file writer does not make \(r.summary)")
            }
            try write(h)
            return Facts()
        }
    }

    /// The directory (and `/etc/netns`, recorded host-wide before it is made), then the file, mode 0644
    /// whatever the caller's umask: a workload may run as any user.
    func write(_ h: HostsFileResource) throws {
        if !Sys.exists(h.parent) {
            try state.writeRecord(state.netnsPath, Made(directory: h.parent))
            do { try Sys.mkdir(h.parent, mode: 0o755) } catch { if error.errno != EEXIST { throw error } }
            try Sys.chmod(h.parent, 0o755)
        }
        do {
            try Sys.mkdir(h.directory, mode: 0o755)
        } catch {
            if error.errno == EEXIST {
                throw TopoFailure(
                    .hostCannot, "\(h.directory) appeared during apply and is not topo's; topo will not adopt it")
            }
            throw error
        }
        // topo's owner mark, as on its cgroups. A filesystem without extended attributes gets none; the
        // file's exact contents are the proof there.
        do {
            try Sys.setxattr(h.directory, CgroupFS.ownerAttribute, h.owner)
        } catch {
            if error.errno != ENOTSUP && error.errno != EOPNOTSUPP { throw error }
        }
        try Sys.chmod(h.directory, 0o755)
        try Sys.write(
            h.path, h.contents, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: mode_t(HostsFileResource.mode),
            operation: "create")
        try Sys.chmod(h.path, mode_t(HostsFileResource.mode))
    }

    /// The file, and its directory unless it holds files topo did not write — only when the directory
    /// is provably topo's: it carries topo's mark for this profile, or (no mark: a filesystem without
    /// extended attributes) its `hosts` is exactly the planned one. A directory apply refused to adopt
    /// is left alone, also by the rollback of that apply.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .hostsFile(let h) = resource else { return .nothing }
        let undone = try remove(h)
        try releaseParent(h.parent)
        return undone
    }

    /// What topo made of `/etc/netns`: the directory, when it made it.
    struct Made: Codable, Equatable {
        var directory: String
    }

    /// `/etc/netns` when topo made it and it is empty now (the last hosts file of the last profile
    /// went), then the record. A record an older topo kept in `host.json` counts too.
    func releaseParent(_ parent: String) throws(TopoFailure) {
        let legacy = try state.hostChanges()
        let made = try state.readRecord(
            state.netnsPath, missing: legacy.createdEtcNetns ? legacy.etcNetns.map { Made(directory: $0) } : nil,
            holds: "whether topo made \(parent)")
        guard let made, made.directory == parent, Sys.isDirectory(parent), Sys.entries(parent).isEmpty else { return }
        do { try Sys.rmdir(parent) } catch {
            if error.errno != ENOENT && error.errno != ENOTEMPTY { throw TopoFailure(.hostCannot, "\(error)") }
        }
        try? Sys.unlink(state.netnsPath)
        if legacy.createdEtcNetns {
            var changes = legacy
            changes.createdEtcNetns = false
            changes.etcNetns = nil
            try? state.record(changes)
        }
    }

    /// The file, and its directory, when they are provably topo's.
    func remove(_ h: HostsFileResource) throws(TopoFailure) -> Undone {
        guard Sys.isDirectory(h.directory) else { return .nothing }
        let ours =
            Sys.getxattr(h.directory, CgroupFS.ownerAttribute).map { $0 == h.owner }
            ?? ((try? Sys.read(h.path)) == h.contents)
        guard ours else { return .leftAlone("\(h.directory): not made by topo for \(h.owner), left alone") }
        do {
            try Sys.unlink(h.path)
        } catch {
            if error.errno != ENOENT { throw TopoFailure(.hostCannot, "\(error)") }
        }
        do {
            try Sys.rmdir(h.directory)
            return .removed(h.directory)
        } catch {
            switch error.errno {
            case ENOENT: return .nothing
            case ENOTEMPTY: return .leftAlone("\(h.directory): holds files topo did not write, left in place")
            default: throw TopoFailure(.hostCannot, "\(error)")
            }
        }
    }

    /// A hosts-file directory of a planned namespace that is there already is someone else's.
    public func conflicts(_ resources: [Resource]) -> [String] {
        observe(resources).compactMap { seen in
            guard seen.found, case .hostsFile(let h) = seen.resource else { return nil }
            return
                "\(h.directory) already exists and is not in a journal of topo's; topo will not adopt it (remove it, if it is stale)"
        }
    }

    public func observe(_ resource: Resource) -> Observation {
        guard case .hostsFile(let h) = resource else {
            return Observation(resource, found: false, kernel: "not a hosts file")
        }
        guard Sys.isDirectory(h.directory) else { return Observation(resource, found: false) }
        guard let text = try? Sys.read(h.path) else {
            return Observation(resource, found: true, differences: ["\(h.path) is missing"])
        }
        return Observation(
            resource, found: true, differences: text == h.contents ? [] : ["\(h.path) differs from the plan"])
    }
}
