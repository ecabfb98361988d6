import ArgumentParser
import TopoCore

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Place a profile on this host and show where everything goes, without changing anything.",
        usage:
            "topo plan [--sysfs <dir>] [--json] [--lock] <profile>\n[--state-dir <dir>] [--cgroup-root <dir>]\n[--cgroup-manager <manager>] [--color <when>]",
        discussion: """
            Prints a table of workloads (CPUs, NUMA nodes, memory policy, cgroup limits) and links, then a picture of every CPU per NUMA node with the workload it goes to. The same host and profile always give the same plan. Exits 2 for an invalid profile, 3 when this host cannot satisfy it (saying what the host has). --lock writes api.lock.json beside api.yaml: `topo apply api.yaml --locked` then plans the profile again on exactly that placement (each workload's CPUs, each link's subnet), and refuses (exit 3) when the profile or the host's CPUs, microcode, kernel or NUMA layout changed since, or when anything in the lock besides placement differs from the profile's plan. Plan with the same --state-dir and --cgroup-manager that apply will use.

            Examples:
              topo plan Profiles/api-gateway.yaml
              topo plan Profiles/api-gateway.yaml \\
                  --sysfs Tests/Fixtures/hosts/2s-8c-ht    # another machine's shape
            """
    )

    @Argument(
        help: "The profile to plan (YAML; - for standard input).", completion: .file(extensions: ["yaml", "yml"]))
    var profile: String

    @Option(
        help: ArgumentHelp(
            "Read the topology from this sysfs tree instead of /sys (a fixture of another machine, or topo host --export).",
            valueName: "dir"),
        completion: .directory)
    var sysfs = "/sys"

    @Flag(
        help:
            "Print the plan as JSON (with --lock, the lock written; when it cannot plan, {\"ok\": false, \"status\", \"message\", \"diagnostics\"})."
    )
    var json = false

    @Flag(
        help:
            "Write the plan, the profile's sha256 and this host's fingerprint to PROFILE.lock.json beside the profile, for apply --locked."
    )
    var lock = false

    @OptionGroup var paths: PathOptions
    @OptionGroup var color: ColorOptions

    func validate() throws {
        if lock && sysfs != "/sys" { throw ValidationError("--lock records this host; it cannot be used with --sysfs") }
        if lock && profile == ProfileDecoder.standardInput {
            throw ValidationError(
                "--lock writes the lock beside the profile's file; it cannot go with - (standard input)")
        }
    }

    /// What `plan --json` prints when it cannot plan: the exit status, the message, and the profile's
    /// diagnostics when it is invalid (the shape `validate --json` gives them).
    struct Failed: Encodable {
        var ok = false
        var status: Int32
        var message: String
        var diagnostics: [Diagnostic]
    }

    func run() throws {
        guard json else { return try planned() }
        do { try planned() } catch let failure as TopoFailure {
            var diagnostics: [Diagnostic] = []
            if failure.status == .invalid, case .failure(let invalid) = ProfileDecoder.decode(file: profile) {
                diagnostics = invalid.diagnostics
            }
            print(
                JSONOutput.encode(
                    .error, Failed(status: failure.status.rawValue, message: failure.message, diagnostics: diagnostics))
            )
            throw ExitCode(failure.status.rawValue)
        }
    }

    func planned() throws {
        let decoded = try Loading.profile(profile).get()
        let host = try Loading.host(sysfs: sysfs).get()
        let plan = try Loading.plan(decoded.profile, on: host, layout: paths.layout).get()
        if lock {
            let file = LockFile(
                profileText: decoded.text, host: HostRecord.read(topology: host, versions: [:]), plan: plan)
            let path = LockFile.path(forProfile: profile)
            let text = JSONOutput.encode(file)
            try Records.write(text, to: path)
            if json {
                print(text)
            } else {
                print("locked \(plan.name) to this host in \(path): apply it with topo apply \(profile) --locked")
            }
            return
        }
        if json {
            print(JSONOutput.encode(plan))
            return
        }
        for w in decoded.warnings { printError(w.description) }
        for w in plan.warnings { printError("warning: \(w)") }
        print("plan \(plan.name) on \(host.source == "/sys" ? "this host" : host.source)\n")
        print(TopologyPicture.table(plan))
        print("")
        print(TopologyPicture.render(host: host, plan: plan, style: color.style))
    }
}
