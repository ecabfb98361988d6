import Foundation

/// A lock file (`topo plan PROFILE --lock`, read by `topo apply PROFILE --locked`): the profile's
/// sha256, the material fingerprint of the host it was planned on, and the plan as `topo plan --json`
/// prints it. Applying locked applies exactly that plan's placement, or refuses, listing each difference.
public struct LockFile: Codable, Equatable, Sendable {
    public static let currentFormat = "topo-lock/1"
    public var format = LockFile.currentFormat
    public var profile: ProfileDigest
    public var host: Fingerprint
    public var plan: Plan

    public struct ProfileDigest: Codable, Equatable, Sendable {
        public var sha256: String
    }

    /// What must be the same on a host for a locked plan to mean the same there.
    public struct Fingerprint: Codable, Equatable, Sendable {
        public var cpuModel: String
        public var microcode: HostRecord.Microcode
        public var sockets: Int
        public var cores: Int
        public var threads: Int
        public var smt: Bool
        public var online: CPUSet
        /// Each node's id and CPUs, in order.
        public var nodes: [Node]
        public var kernelRelease: String

        public struct Node: Codable, Equatable, Sendable {
            public var id: Int
            public var cpus: CPUSet
        }

        public init(_ h: HostRecord) {
            cpuModel = h.cpu.model
            microcode = h.cpu.microcode
            sockets = h.cpu.sockets
            cores = h.cpu.cores
            threads = h.cpu.threads
            smt = h.cpu.smt
            online = h.cpu.online
            nodes = h.numa.map { Node(id: $0.id, cpus: $0.cpus) }
            kernelRelease = h.kernel.release
        }

        /// Each way `current` differs from this fingerprint, with both values.
        public func differences(_ current: Fingerprint) -> [String] {
            var out: [String] = []
            func compare<T: Equatable>(_ what: String, _ locked: T, _ now: T, _ show: (T) -> String) {
                if locked != now { out.append("\(what): locked \(show(locked)), this host has \(show(now))") }
            }
            compare("CPU model", cpuModel, current.cpuModel) { $0 }
            compare("microcode", microcode, current.microcode) { m in
                switch m { case .same(let s): s
                case .perCPU(let l): l.joined(separator: ",") }
            }
            compare("kernel", kernelRelease, current.kernelRelease) { $0 }
            compare("sockets", sockets, current.sockets) { String($0) }
            compare("cores", cores, current.cores) { String($0) }
            compare("threads", threads, current.threads) { String($0) }
            compare("SMT", smt, current.smt) { $0 ? "on" : "off" }
            compare("online CPUs", online, current.online) { $0.description }
            compare("NUMA nodes", nodes, current.nodes) { $0.map { "\($0.id):\($0.cpus)" }.joined(separator: " ") }
            return out
        }
    }

    public init(profileText: String, host: HostRecord, plan: Plan) {
        self.profile = ProfileDigest(sha256: Report.Source.sha256(profileText))
        self.host = Fingerprint(host)
        self.plan = plan
    }

    /// `api.yaml` → `api.lock.json`, beside it (`.yml` alike; any other name gets `.lock.json` added).
    public static func path(forProfile profile: String) -> String {
        for suffix in [".yaml", ".yml"] where profile.hasSuffix(suffix) { return String(profile.dropLast(suffix.count)) + ".lock.json" }
        return profile + ".lock.json"
    }

    /// Why this lock cannot be applied with `profileText` on a host recorded as `host` (empty when it
    /// can). That its CPUs and nodes exist is preflight's check, as for any plan.
    public func problems(profileText: String, profileName: String, host: HostRecord) -> [String] {
        var out: [String] = []
        let sha = Report.Source.sha256(profileText)
        if sha != profile.sha256 { out.append("the profile changed since the lock (its sha256 is \(sha), the lock's \(profile.sha256)): run topo plan --lock again") }
        if plan.name != profileName { out.append("the lock is for profile \(plan.name), not \(profileName)") }
        out += self.host.differences(Fingerprint(host)).map { "the host differs from the locked one: \($0)" }
        return out
    }

    public static func read(_ path: String) -> Result<LockFile, TopoFailure> {
        guard let st = Sys.stat(path) else { return .failure(TopoFailure(.invalid, "no lock file at \(path): write one with topo plan PROFILE --lock")) }
        guard st.st_size <= 16 << 20 else { return .failure(TopoFailure(.invalid, "\(path) is \(st.st_size) bytes; a lock file is at most 16 MiB")) }
        do {
            let lock = try JSONDecoder().decode(LockFile.self, from: Data(try Sys.read(path).utf8))
            guard lock.format == currentFormat else { return .failure(TopoFailure(.invalid, "\(path) is \(lock.format), this topo reads \(currentFormat)")) }
            return .success(lock)
        } catch {
            return .failure(TopoFailure(.invalid, "\(path) is not a lock file this topo can read (\(StateStore.reason(error)))"))
        }
    }
}
