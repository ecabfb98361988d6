import Foundation

/// A lock file (`topo plan PROFILE --lock`, read by `topo apply PROFILE --locked`): the profile's
/// sha256, the material fingerprint of the host it was planned on, and the plan as `topo plan --json`
/// prints it. A lock pins placement and nothing else: `--locked` plans the profile again on the lock's
/// CPUs and link subnets (`pins`), and refuses when that plan differs from the lock's in anything
/// (`differences`), or the placement is not valid for the profile on this host. A lock file is input
/// like any other — it may come from a repository — so it can never add a command, a user, a
/// capability or a path that the profile it was made from does not have.
public struct LockFile: Codable, Equatable, Sendable {
    public static let currentFormat = DocumentFormat.lock
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
                switch m {
                case .same(let s): s
                case .perCPU(let l): l.joined(separator: ",")
                }
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
        for suffix in [".yaml", ".yml"] where profile.hasSuffix(suffix) {
            return String(profile.dropLast(suffix.count)) + ".lock.json"
        }
        return profile + ".lock.json"
    }

    /// Why this lock cannot be applied with `profileText` on a host recorded as `host` (empty when it
    /// can). That its CPUs and nodes exist is preflight's check, as for any plan.
    public func problems(profileText: String, profileName: String, host: HostRecord) -> [String] {
        var out: [String] = []
        let sha = Report.Source.sha256(profileText)
        if sha != profile.sha256 {
            out.append(
                "the profile changed since the lock (its sha256 is \(sha), the lock's \(profile.sha256)): run topo plan --lock again"
            )
        }
        if plan.name != profileName { out.append("the lock is for profile \(plan.name), not \(profileName)") }
        out += self.host.differences(Fingerprint(host)).map { "the host differs from the locked one: \($0)" }
        return out
    }

    /// The plan `apply --locked` applies: `profile` planned again on this host with the lock's
    /// placement, once the profile's text, its name and the host are the locked ones, the placement is
    /// valid for the profile, and the plan is the lock's in every field. Exit 3 otherwise, naming each
    /// problem (`source` says where the lock is).
    public func plan(
        for profile: Profile, text: String, on host: HostTopology, layout: Layout, source: String
    ) -> Result<Plan, TopoFailure> {
        var problems = self.problems(
            profileText: text, profileName: profile.name, host: HostRecord.read(topology: host, versions: [:]))
        var planned: Plan?
        if problems.isEmpty {
            switch Planner(host: host, layout: layout, pins: pins).plan(profile) {
            case .failure(let f):
                problems += f.collapsed.map { "the locked placement does not fit the profile on this host: \($0)" }
            case .success(let p):
                planned = p
                problems += differences(from: p).map {
                    "the lock differs from the profile in more than placement: \($0)"
                }
            }
        }
        guard let planned, problems.isEmpty else {
            return .failure(
                TopoFailure(
                    .hostCannot,
                    "cannot apply \(profile.name) as locked in \(source); nothing was changed:\n"
                        + Problems.collapse(problems).map { "  - \($0)" }.joined(separator: "\n")
                        + "\n(a lock pins each workload's CPUs and each link's subnet, nothing else: make it again with topo plan --lock)"
                ))
        }
        return .success(planned)
    }

    /// What the lock pins, and all it is taken for: each workload's CPUs and each link's subnet.
    public var pins: Planner.Pins { Planner.Pins(plan) }

    /// Each way the lock's plan differs from `derived`, the profile planned again on the lock's
    /// placement: one line per field, named by its path in the plan (`resources[14].launch.user`),
    /// with both values. A lock is a placement, so anything else that differs — a command, a user, a
    /// capability, a limit, a path — is a lock that was edited or made by another topo, and refused.
    ///
    /// Fields that follow from the placement (a workload's nodes, its cgroup's `cpuset.cpus`, its
    /// launch's CPUs, idle siblings, addresses and the hosts files and variables that carry them) are
    /// not compared: apply uses the re-derived plan's, so a lock whose only edit is a workload's `cpus`
    /// is honoured.
    public func differences(from derived: Plan, limit: Int = 20) -> [String] {
        func flat(_ plan: Plan) -> [String: String] {
            guard let json = try? JSONDecoder().decode(ReportDiff.JSON.self, from: Data(JSONOutput.encode(plan).utf8))
            else { return [:] }
            return ReportDiff.flatten(json)
        }
        let locked = flat(plan)
        let planned = flat(derived)
        let paths = Set(locked.keys).union(planned.keys)
            .filter { locked[$0] != planned[$0] && !Self.followsFromPlacement($0, locked[$0], planned[$0]) }.sorted()
        var out = paths.prefix(limit).map { path in
            return
                "plan.\(path): the lock has \(locked[path].map { Self.shown($0) } ?? "nothing"), the profile plans \(planned[path].map { Self.shown($0) } ?? "nothing")"
        }
        if paths.count > limit { out.append("and \(paths.count - limit) more differences") }
        return out
    }

    /// The JSON keys whose values the planner derives from the CPUs and subnets alone.
    static let placementKeys: Set<String> = [
        "cpus", "mems", "policyNodes", "cpuNodes", "idle", "subnet", "address", "addresses",
        "contents", "irqsAway", "workqueuesAway", "kernelThreadsAway",
    ]

    /// Whether a leaf of the plan is one the placement decides (its path's last key, or a variable
    /// that carries an address), so that both sides may differ there.
    static func followsFromPlacement(_ path: String, _ a: String?, _ b: String?) -> Bool {
        let keys = path.replacingOccurrences(of: #"\[[^\]]*\]"#, with: "", options: .regularExpression)
            .split(separator: ".").filter { $0 != "_0" }
        guard let last = keys.last else { return false }
        if placementKeys.contains(String(last)) { return true }
        if last == "environment", let a, let b {
            let carriesAddress = { (v: String) in v.hasPrefix("\"TOPO_ADDRESSES=") || v.hasPrefix("\"TOPO_PEER_") }
            return carriesAddress(a) && carriesAddress(b) && a.prefix { $0 != "=" } == b.prefix { $0 != "=" }
        }
        return false
    }

    /// A JSON value as a message shows it: at most 120 characters, control characters escaped.
    static func shown(_ text: String) -> String {
        let escaped = text.unicodeScalars.map {
            $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0)
        }.joined()
        return escaped.count > 120 ? String(escaped.prefix(120)) + "…" : escaped
    }

    public static func read(_ path: String) -> Result<LockFile, TopoFailure> {
        let bytes: [UInt8]
        do { bytes = try GuardedFile.bytes(path, limit: 16 << 20) } catch {
            if error.reason == "does not exist" {
                return .failure(
                    TopoFailure(.invalid, "no lock file at \(path): write one with topo plan PROFILE --lock"))
            }
            return .failure(TopoFailure(.invalid, "the lock file \(error)"))
        }
        do {
            let lock = try JSONDecoder().decode(LockFile.self, from: Data(bytes))
            guard lock.format == currentFormat else {
                return .failure(TopoFailure(.invalid, "\(path) is \(lock.format), this topo reads \(currentFormat)"))
            }
            return .success(lock)
        } catch {
            return .failure(
                TopoFailure(.invalid, "\(path) is not a lock file this topo can read (\(StateStore.reason(error)))"))
        }
    }
}
