import ArgumentParser
import Foundation
import TopoCore

/// What `report`, `run` and `plan --lock` share: the host as a record, and a profile's source and plan.
enum Records {
    static func host(_ topology: HostTopology, runtimes: [Runtime]) -> HostRecord {
        HostRecord.read(topology: topology, versions: HostRecord.toolVersions(runtimes: runtimes))
    }

    /// The profile an argument names and its plan: an applied profile's own plan (and the text it was
    /// applied with), or a profile file planned on this host (its applied plan, when it is applied).
    static func profile(
        _ argument: String?, state: StateStore, topology: HostTopology, layout: Layout
    ) throws -> (source: TopoCore.Report.Source, plan: TopoCore.Plan) {
        let applied = state.profiles()
        guard let argument else {
            guard applied.count == 1 else {
                throw TopoFailure(
                    .invalid,
                    applied.isEmpty
                        ? "nothing is applied: name a profile file to report on its plan"
                        : "several profiles are applied (\(applied.joined(separator: ", "))): name one")
            }
            return try appliedProfile(applied[0], state: state)
        }
        if applied.contains(argument) { return try appliedProfile(argument, state: state) }
        guard Sys.exists(argument) else {
            throw TopoFailure(.invalid, "\(argument) is neither an applied profile nor a profile file")
        }
        let decoded = try Loading.profile(argument).get()
        let plan =
            applied.contains(decoded.profile.name)
            ? try state.plan(decoded.profile.name).get()
            : try Loading.plan(decoded.profile, on: topology, layout: layout).get()
        return (TopoCore.Report.Source(name: decoded.profile.name, path: argument, text: decoded.text), plan)
    }

    static func appliedProfile(
        _ name: String, state: StateStore
    ) throws -> (source: TopoCore.Report.Source, plan: TopoCore.Plan) {
        let plan = try state.plan(name).get()
        return (TopoCore.Report.Source(name: name, path: nil, text: try? Sys.read(state.profileTextPath(name))), plan)
    }

    static func runtimes(_ plan: TopoCore.Plan) -> [Runtime] { plan.workloads.compactMap { $0.run?.runtime } }

    /// Writes JSON to `path` (0644, a new file renamed over it; never through a symbolic link) or prints it.
    static func write(_ json: String, to path: String?) throws {
        guard let path else { return print(json) }
        do {
            try Sys.writeReplacing(path, json + "\n", mode: 0o644)
        } catch { throw TopoFailure(.hostCannot, "\(error)") }
    }

    static func summary(_ r: TopoCore.Report) -> String {
        var lines = [
            "\(r.profile.name) on \(r.host.hostname), \(r.topo.time)",
            "  host: \(r.host.cpu.model), microcode \(microcode(r.host.cpu.microcode)), \(r.host.cpu.sockets) socket(s), \(r.host.cpu.cores) cores, \(r.host.cpu.threads) threads, SMT \(r.host.cpu.smt ? "on" : "off"), \(r.host.numa.count) NUMA node(s)",
            "  kernel \(r.host.kernel.release)\(r.host.kernel.parameters.isEmpty ? "" : " (" + r.host.kernel.parameters.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? $0.key : "\($0.key)=\($0.value)" }.joined(separator: " ") + ")"), cgroup \(r.host.cgroup.mode)",
            "  governor \(Set(r.host.frequency.compactMap(\.governor)).sorted().joined(separator: ",").nonEmpty ?? "unknown"), boost \(r.host.boost ?? "unknown"), THP \(r.host.transparentHugePages["enabled"] ?? "unknown"), irqbalance \(r.host.irqbalance ? "running" : "not running")",
            "  profile sha256 \(r.profile.sha256 ?? "unknown")",
        ]
        for w in r.plan.workloads {
            lines.append("  \(w.name): CPUs \(w.cpus), memory \(w.memoryPolicy.rawValue) \(w.mems)")
        }
        if let v = r.verify {
            lines.append(
                "  verify: \(v.summary["pass"] ?? 0) passed, \(v.summary["warn"] ?? 0) warned, \(v.summary["fail"] ?? 0) failed"
            )
        } else {
            lines.append("  not applied: plan only, nothing observed or verified")
        }
        if let run = r.run {
            lines.append(
                "  run: exit \(run.exitStatus.map(String.init) ?? "unknown")\(run.interrupted.map { ", interrupted by \($0)" } ?? ""), \(String(format: "%.1f", run.wallSeconds)) s"
            )
        }
        return lines.joined(separator: "\n")
    }

    static func microcode(_ m: HostRecord.Microcode) -> String {
        switch m {
        case .same(let s): s
        case .perCPU(let l): "differs per CPU (\(Set(l).sorted().joined(separator: ", ")))"
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract:
            "Record what a benchmark result depends on: the host, the profile, its plan, the kernel's side, verify.",
        usage:
            "topo report [--json] [-o <file>] [--active] [<profile>]\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            The host part holds what pyperf's metadata and BenchExec's system info hold: CPU model and microcode, sockets, cores, threads, SMT, NUMA nodes with memory and distances, kernel release and boot parameters (isolcpus, nohz_full, rcu_nocbs, mitigations, ...), cgroup mode, each CPU's frequency driver, governor and range, boost, transparent huge pages, irqbalance, ASLR, NUMA balancing, the distribution and the versions of iproute2, libnuma and the runtimes in use; and then what only topo knows: the profile (text and sha256), the plan, every workload and link as the kernel shows it, and verify's checks. Prints a short summary; --json prints the record (format topo-report/1), which `topo diff` compares.

            Examples:
              topo report api-gateway --json -o before.json
              topo report Profiles/api-gateway.yaml    # not applied: host and plan only
            """
    )

    @Argument(
        help: "An applied profile's name or a profile file; the only applied profile when omitted.",
        completion: Completions.profilesOrFiles)
    var profile: String?

    @Flag(help: "Print the record as JSON.")
    var json = false

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Write the JSON record to this file (and print the summary).", valueName: "file"))
    var output: String?

    @Flag(help: "Run verify's active probes too (as verify --active).")
    var active = false

    @OptionGroup var paths: PathOptions

    @OptionGroup var color: ColorOptions

    func run() throws {
        let state = paths.state
        let topology = try Loading.host(sysfs: "/sys").get()
        let (source, plan) = try Records.profile(profile, state: state, topology: topology, layout: paths.layout)
        let report = TopoCore.Report.make(
            version: Topo.configuration.version, host: Records.host(topology, runtimes: Records.runtimes(plan)),
            source: source, plan: plan, state: state, drivers: paths.drivers,
            online: topology.onlineCPUs, active: active)
        if let output { try Records.write(JSONOutput.encode(report), to: output) }
        if json && output == nil { print(JSONOutput.encode(report)) } else { print(Records.summary(report)) }
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two reports: what differs that matters for comparing their results, most material first.",
        discussion: """
            Order: CPU model, microcode, kernel, SMT, NUMA layout, placement, limits, link shaping, frequency and boost, transparent huge pages, other host settings, the rest of the plan; then what is never material (host names, times, pids, what the kernel showed, the results). Exits 0 when nothing material differs, 1 when something does, 2 when a file is not a report.

            Examples:
              topo diff before.json after.json
            """
    )

    @Argument(
        help: "The first report (topo report --json, or topo run --report).", completion: .file(extensions: ["json"]))
    var a: String

    @Argument(help: "The second report.", completion: .file(extensions: ["json"]))
    var b: String

    @Flag(help: "Print {\"material\": bool, \"differences\": [{\"path\", \"category\", \"material\", \"a\", \"b\"}]}.")
    var json = false

    @OptionGroup var color: ColorOptions

    struct Output: Encodable {
        var material: Bool
        var differences: [ReportDiff.Difference]
    }

    static let maximumBytes = 64 << 20

    func read(_ path: String) throws -> ReportDiff.JSON {
        let bytes: [UInt8]
        do { bytes = try GuardedFile.bytes(path, limit: Self.maximumBytes) } catch {
            throw TopoFailure(
                .invalid, error.reason == "does not exist" ? "no report at \(path)" : "the report \(error)")
        }
        do {
            let data = Data(bytes)
            let value = try JSONDecoder().decode(ReportDiff.JSON.self, from: data)
            guard case .object(let o) = value, case .string(let format)? = o["format"], format.hasPrefix("topo-report/")
            else {
                throw TopoFailure(.invalid, "\(path) is not a topo report (no \"format\": \"topo-report/…\")")
            }
            return value
        } catch let f as TopoFailure { throw f } catch {
            throw TopoFailure(.invalid, "\(path) is not a topo report: it is not JSON")
        }
    }

    func run() throws {
        let differences = ReportDiff.compare(try read(a), try read(b))
        let material = differences.contains(where: \.material)
        if json {
            print(JSONOutput.encode(.diff, Output(material: material, differences: differences)))
        } else if differences.isEmpty {
            print("no differences")
        } else {
            for d in differences {
                print(
                    "\(d.material ? color.style.paint("MATERIAL", .red) : "        ") \(d.category): \(d.path): \(d.a ?? "(none)") → \(d.b ?? "(none)")"
                )
                for line in d.lines ?? [] { print("            \(line)") }
            }
            print(
                material ? "material differences: results are not comparable as they stand" : "nothing material differs"
            )
        }
        if material { throw ExitCode(ExitStatus.verifyFailed.rawValue) }
    }
}
