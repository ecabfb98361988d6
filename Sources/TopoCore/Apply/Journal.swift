import Foundation

/// One thing apply does to the host. Each is journaled before it is done and marked after,
/// so that teardown can undo exactly what was made, from the journal alone.
public enum JournalAction: Codable, Equatable, Sendable {
    /// The topo root cgroup and the root's controllers; recorded host-wide in `host.json`.
    case prepareHost(controllers: [String])
    /// A cgroup made by topo (path relative to the cgroup root).
    case createCgroup(String)
    /// Controllers enabled in a topo cgroup's `cgroup.subtree_control`.
    case enableControllers(cgroup: String, controllers: [String])
    /// One interface file written in a topo cgroup.
    case write(cgroup: String, file: String, value: String)
    /// A workload process started inside its cgroup.
    case launch(workload: String, cgroup: String)
    /// Network namespaces and the veth pairs between them (one `ip -batch`); the done line records
    /// each namespace's inode, so that down never deletes a later namespace of the same name.
    case createNamespaces([String])
    /// Loopback, addresses and links set up inside one namespace.
    case configureNamespace(String)
    /// netem qdiscs added inside one namespace.
    case shape(String)
    /// `/etc/netns/NS/hosts` written for a linked workload: `ip netns exec NS` and the workload's own
    /// `/etc/hosts` both resolve its peers by name.
    case hostsFile(netns: String)
}

/// A journal line: an action begun, or a step marked done (with the pid, for launches).
struct JournalLine: Codable {
    var step: Int
    var action: JournalAction?
    var done: Bool?
    var pid: Int32?
    var inodes: [String: UInt64]?
}

/// A journaled step as read back.
public struct JournalStep: Equatable, Sendable {
    public var number: Int
    public var action: JournalAction
    public var done: Bool
    public var pid: Int32?
    public var inodes: [String: UInt64]?
}

/// The append-only journal of one applied profile (`journal.jsonl` in its state directory).
public struct Journal: Sendable {
    public let path: String
    /// The fault point: with TOPO_FAILPOINT=after-step:N, SIGKILL right after the N-th step is marked done.
    let killAfterStep: Int?

    public init(path: String, failpoint: String? = ProcessInfo.processInfo.environment["TOPO_FAILPOINT"]) {
        self.path = path
        if let fp = failpoint, fp.hasPrefix("after-step:"), let n = Int(fp.dropFirst("after-step:".count)) {
            killAfterStep = n
        } else {
            killAfterStep = nil
        }
    }

    public func begin(_ step: Int, _ action: JournalAction) throws(SystemError) {
        try append(JournalLine(step: step, action: action))
    }

    public func done(_ step: Int, pid: Int32? = nil, inodes: [String: UInt64]? = nil) throws(SystemError) {
        try append(JournalLine(step: step, done: true, pid: pid, inodes: inodes))
        if let n = killAfterStep, n == step { Glibc.kill(getpid(), SIGKILL) }
    }

    private func append(_ line: JournalLine) throws(SystemError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        try Sys.appendDurably(path, text + "\n")
    }

    /// The steps in journal order. A line cut short by a crash is ignored: its action was never begun
    /// as far as the journal can tell, and teardown tolerates objects that do not exist.
    public static func read(_ path: String) -> [JournalStep] {
        guard let text = try? Sys.read(path) else { return [] }
        var steps: [JournalStep] = []
        let decoder = JSONDecoder()
        for line in text.split(separator: "\n") {
            guard let entry = try? decoder.decode(JournalLine.self, from: Data(line.utf8)) else { continue }
            if let action = entry.action {
                steps.append(JournalStep(number: entry.step, action: action, done: false))
            } else if entry.done == true, let i = steps.lastIndex(where: { $0.number == entry.step }) {
                steps[i].done = true
                steps[i].pid = entry.pid
                steps[i].inodes = entry.inodes
            }
        }
        return steps
    }
}
