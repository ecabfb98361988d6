import ArgumentParser
import TopoCore

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a profile without touching the host.",
        discussion: """
            Reports every problem at once, each as FILE:LINE:COLUMN, the field path and what to write instead. Exits 0 when the profile is valid (warnings are printed but do not fail), 2 when it is not. Editors can check the same as you type with the profile schema (topo schema).

            Examples:  topo validate Profiles/quickstart.yaml
                       topo validate --json my-profile.yaml | jq '.diagnostics[].message'
            """
    )

    @Argument(help: "The profile to check (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var profile: String

    @Flag(help: "Print the diagnostics as JSON.")
    var json = false

    @OptionGroup var color: ColorOptions

    func run() throws {
        switch ProfileDecoder.decode(file: profile) {
        case .success(let decoded):
            if json {
                print(JSONOutput.encode(Report(valid: true, name: decoded.profile.name, diagnostics: decoded.warnings)))
            } else {
                for w in decoded.warnings { printError(w.description) }
                let p = decoded.profile
                print("\(profile): \(color.style.paint("valid", .green)) profile \(p.name): \(p.workloads.count) workload\(p.workloads.count == 1 ? "" : "s"), \(p.links.count) link\(p.links.count == 1 ? "" : "s")")
            }
        case .failure(let invalid):
            if json {
                print(JSONOutput.encode(Report(valid: false, name: nil, diagnostics: invalid.diagnostics)))
                throw ExitCode(ExitStatus.invalid.rawValue)
            }
            throw TopoFailure(.invalid, invalid.description)
        }
    }

    struct Report: Encodable {
        var valid: Bool
        var name: String?
        var diagnostics: [Diagnostic]
    }
}
