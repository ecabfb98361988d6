import Foundation

/// Apply's mirror: undoes a profile from its journal alone, in reverse order. Objects already gone
/// are fine; anything without topo's owner mark for this profile is left alone.
public struct Teardown: Sendable {
    public var cgroups: CgroupFS
    public var state: StateStore
    public var runner = CommandRunner()
    public var etcNetns = Links.etcNetnsDirectory

    public init(cgroups: CgroupFS, state: StateStore) {
        self.cgroups = cgroups
        self.state = state
    }

    public struct Report: Equatable, Sendable {
        public var removed: [String] = []
        public var skipped: [String] = []
        /// What could not be undone; non-empty means the host may not be clean.
        public var problems: [String] = []
    }

    /// Removes one profile. The caller holds the state lock (apply's rollback) or takes it (`down`).
    public func remove(_ profile: String) -> Report {
        var report = Report()
        let steps = Journal.read(state.journalPath(profile))
        // Processes first, everywhere: a namespace lives on while a process is inside it.
        for step in steps.reversed() {
            if case .createCgroup(let cg) = step.action { stopProcesses(cg, owner: profile, &report) }
        }
        for step in steps.reversed() {
            switch step.action {
            case .createCgroup(let cg):
                removeCgroup(cg, owner: profile, &report)
            case .prepareHost:
                releaseHost(leaving: profile, &report)
            case .createNamespaces(let names):
                removeNamespaces(names, inodes: step.inodes, &report)
            case .hostsFile(let ns):
                removeHostsFile(ns, &report)
            case .launch, .write, .enableControllers, .configureNamespace, .shape:
                break  // processes die with their cgroup; files, addresses and qdiscs go with their objects
            }
        }
        do {
            try state.remove(profile)
        } catch {
            report.problems.append("\(error)")
        }
        state.removeRootIfEmpty()
        return report
    }

    func stopProcesses(_ cg: String, owner: String, _ report: inout Report) {
        guard cgroups.exists(cg), cgroups.owner(cg) == owner, cgroups.isPopulated(cg) else { return }
        do {
            try cgroups.killAll(cg)
            if !cgroups.waitEmpty(cg) {
                report.problems.append("\(cgroups.path(cg)): processes \(cgroups.allProcs(cg)) still there 10s after SIGKILL")
            }
        } catch {
            report.problems.append("\(error)")
        }
    }

    /// Deletes the namespaces topo made (their veths go with them) in one `ip -force -batch`. A namespace
    /// whose inode differs from the one recorded at creation is someone else's and stays.
    func removeNamespaces(_ names: [String], inodes: [String: UInt64]?, _ report: inout Report) {
        var ours: [String] = []
        for name in names where Links.exists(name) {
            if let recorded = inodes?[name], Links.inode(name) != recorded {
                report.skipped.append("network namespace \(name): not the one topo made, left alone")
            } else if inodes != nil && inodes?[name] == nil {
                report.skipped.append("network namespace \(name): existed before topo's batch created its own, left alone")
            } else {
                ours.append(name)
            }
        }
        guard !ours.isEmpty else { return }
        _ = runner.run([Links.ip, "-force", "-batch", "-"], input: Links.deleteBatch(ours).joined(separator: "\n") + "\n")
        for name in ours {
            if Links.exists(name) { report.problems.append("network namespace \(name) is still there after ip netns del") } else {
                report.removed.append("netns \(name)")
            }
        }
    }

    /// `/etc/netns/NS/hosts` and its directory. A directory that holds files topo did not write stays.
    func removeHostsFile(_ ns: String, _ report: inout Report) {
        let dir = "\(etcNetns)/\(ns)"
        if unlink("\(dir)/hosts") != 0 && errno != ENOENT { report.problems.append("\(SystemError("unlink", "\(dir)/hosts", errno: errno))") }
        if rmdir(dir) == 0 {
            report.removed.append(dir)
        } else if errno == ENOTEMPTY {
            report.skipped.append("\(dir): holds files topo did not write, left in place")
        } else if errno != ENOENT {
            report.problems.append("\(SystemError("rmdir", dir, errno: errno))")
        }
    }

    func removeCgroup(_ cg: String, owner: String, _ report: inout Report) {
        guard cgroups.exists(cg) else { return }
        guard cgroups.owner(cg) == owner else {
            report.skipped.append("\(cgroups.path(cg)): not made by topo for \(owner), left alone")
            return
        }
        do {
            try cgroups.removeTree(cg)  // its processes were stopped first (stopProcesses)
            report.removed.append(cgroups.path(cg))
        } catch {
            report.problems.append("\(error)")
        }
    }

    /// When no other profile is applied: remove the topo root if topo made it and restore the root's
    /// `cgroup.subtree_control`. A controller something else has started to use since (EBUSY) stays.
    func releaseHost(leaving profile: String, _ report: inout Report) {
        guard state.profiles().allSatisfy({ $0 == profile }) else { return }
        let changes = state.hostChanges()
        if changes.createdRoot && cgroups.exists(Applier.topoRoot) && cgroups.owner(Applier.topoRoot) == "topo" {
            if cgroups.children(Applier.topoRoot).isEmpty {
                do {
                    try cgroups.removeTree(Applier.topoRoot)
                    report.removed.append(cgroups.path(Applier.topoRoot))
                } catch { report.problems.append("\(error)") }
            } else {
                report.skipped.append("\(cgroups.path(Applier.topoRoot)): still has cgroups in it, left in place")
            }
        }
        if changes.createdEtcNetns && Sys.isDirectory(etcNetns) && Sys.entries(etcNetns).isEmpty {
            do {
                try Sys.rmdir(etcNetns)
                report.removed.append(etcNetns)
            } catch { report.skipped.append("\(etcNetns) stays: \(error)") }
        }
        for c in changes.rootControllers where cgroups.subtreeControl("").contains(c) {
            do {
                try cgroups.write("", "cgroup.subtree_control", "-\(c)")
            } catch {
                report.skipped.append("controller \(c) stays enabled at the cgroup root: \(error)")
            }
        }
        state.forgetHostChanges()
    }
}
