import Crypto
import Foundation

/// A reproducibility record (`topo report`, and what `topo run --report` writes): the host as it was,
/// the profile and its plan, the kernel's side of every workload and link, and verify's result; for a
/// run, the command, its status and time. Stable and versioned by `format`; `topo diff` compares two.
public struct Report: Codable, Equatable, Sendable {
    public static let currentFormat = DocumentFormat.report
    public var format = Report.currentFormat
    public var topo: Tool
    public var host: HostRecord
    public var profile: Source
    /// As `topo plan --json` prints it.
    public var plan: Plan
    /// The applied profile as `topo status` reads it from the kernel; nil when it is not applied.
    public var observed: StatusReport.ProfileStatus?
    /// The static checks (and the probes, after `--active`) when the record was made.
    public var verify: Verifier.ProfileResult?
    public var run: RunRecord?

    public struct Tool: Codable, Equatable, Sendable {
        public var version: String
        /// ISO 8601, UTC.
        public var time: String
    }

    public struct Source: Codable, Equatable, Sendable {
        public var name: String
        public var path: String?
        public var sha256: String?
        public var text: String?

        public init(name: String, path: String?, text: String?) {
            self.name = name
            self.path = path
            self.text = text
            self.sha256 = text.map(Self.sha256)
        }

        public static func sha256(_ text: String) -> String {
            SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
        }
    }

    /// What `topo run` did between its two verifies.
    public struct RunRecord: Codable, Equatable, Sendable {
        /// The command run (on the host, or in `inWorkload`), or nil when `waited` names the workload waited for.
        public var command: [String]?
        public var inWorkload: String?
        public var waited: String?
        /// The command's (or the waited workload's) exit status; nil when it could not be known.
        public var exitStatus: Int32?
        /// The signal that interrupted the run (`SIGINT`, `SIGTERM`, `SIGHUP`), if one did.
        public var interrupted: String?
        public var wallSeconds: Double
        public var verifyBefore: Verifier.ProfileResult?
        /// The last lines of each workload's log (at most `logTailLines` lines and `logTailBytes` bytes each).
        public var logTails: [String: String]

        public init(
            command: [String]?, inWorkload: String?, waited: String?, exitStatus: Int32?, interrupted: String?,
            wallSeconds: Double,
            verifyBefore: Verifier.ProfileResult?, logTails: [String: String]
        ) {
            self.command = command
            self.inWorkload = inWorkload
            self.waited = waited
            self.exitStatus = exitStatus
            self.interrupted = interrupted
            self.wallSeconds = wallSeconds
            self.verifyBefore = verifyBefore
            self.logTails = logTails
        }
    }

    public static let logTailLines = 40, logTailBytes = 8 << 10

    public init(
        version: String, time: Date = Date(), host: HostRecord, profile: Source, plan: Plan,
        observed: StatusReport.ProfileStatus?, verify: Verifier.ProfileResult?, run: RunRecord? = nil
    ) {
        let formatter = ISO8601DateFormatter()
        self.topo = Tool(version: version, time: formatter.string(from: time))
        self.host = host
        self.profile = profile
        self.plan = plan
        self.observed = observed
        self.verify = verify
        self.run = run
    }

    /// The tail of a log file: its last `logTailLines` lines, within its last `logTailBytes` bytes.
    public static func tail(_ path: String) -> String? {
        guard let st = Sys.stat(path), let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = UInt64(st.st_size)
        let from = size > UInt64(logTailBytes) ? size - UInt64(logTailBytes) : 0
        try? handle.seek(toOffset: from)
        let data = (try? handle.readToEnd()) ?? Data()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(logTailLines + 1).joined(separator: "\n")
    }

    /// A record of the profile `name` as it is now: applied (observed and verified, unless `verified`
    /// is the result of a verify just made) or only planned.
    public static func make(
        version: String, host: HostRecord, source: Source, plan: Plan, state: StateStore, drivers: Drivers,
        online: CPUSet, active: Bool = false, verified: Verifier.ProfileResult? = nil, run: RunRecord? = nil
    ) -> Report {
        let applied = state.profiles().contains(plan.name)
        let observed =
            applied ? StatusReport.read(state: state, drivers: drivers).profiles.first { $0.name == plan.name } : nil
        let verify =
            !applied
            ? nil
            : verified
                ?? (try? Verifier(state: state, drivers: drivers).verify(plan.name, online: online, active: active)
                    .get())
        return Report(
            version: version, host: host, profile: source, plan: plan, observed: observed, verify: verify, run: run)
    }
}
