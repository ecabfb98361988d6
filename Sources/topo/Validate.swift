import ArgumentParser
import TopoCore

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check profiles without touching the host.",
        discussion: """
            Reports every problem at once, each as FILE:LINE:COLUMN, the field path and what to write instead, then one line per file. Exits 0 when every profile is valid (warnings are printed but do not fail), 2 when one is not. - reads a profile from standard input. Editors can check the same as you type with the profile schema (topo schema).

            Examples:
              topo validate Profiles/*.yaml
              cat my-profile.yaml | topo validate -
              topo validate --json my-profile.yaml | jq '.files[].diagnostics[].message'
            """
    )

    @Argument(
        help: "The profiles to check (YAML; - for standard input).", completion: .file(extensions: ["yaml", "yml"]))
    var profiles: [String]

    @Flag(
        help:
            "Print the result as JSON: {\"format\": \"topo-validate/1\", \"valid\", \"files\": [{\"file\", \"valid\", \"name\", \"diagnostics\"}]}."
    )
    var json = false

    @OptionGroup var color: ColorOptions

    func validate() throws {
        if profiles.isEmpty {
            throw ValidationError(
                "name a profile to check, e.g. topo validate Profiles/quickstart.yaml (- for standard input)")
        }
        if profiles.filter({ $0 == ProfileDecoder.standardInput }).count > 1 {
            throw ValidationError("standard input (-) can be read once")
        }
    }

    func run() throws {
        var reports: [Report] = []
        for profile in profiles {
            switch ProfileDecoder.decode(file: profile) {
            case .success(let decoded):
                reports.append(
                    Report(file: profile, valid: true, name: decoded.profile.name, diagnostics: decoded.warnings))
                if json { continue }
                for w in decoded.warnings { printError(w.description) }
                let p = decoded.profile
                print(
                    "\(profile): \(color.style.paint("valid", .green)) profile \(p.name): \(p.workloads.count) workload\(p.workloads.count == 1 ? "" : "s"), \(p.links.count) link\(p.links.count == 1 ? "" : "s")"
                )
            case .failure(let invalid):
                reports.append(Report(file: profile, valid: false, name: nil, diagnostics: invalid.diagnostics))
                if json { continue }
                if profiles.count == 1 { throw TopoFailure(.invalid, invalid.description) }
                printError(invalid.description)
                let n = invalid.errors.count
                print("\(profile): \(color.style.paint("invalid", .red)): \(n) error\(n == 1 ? "" : "s")")
            }
        }
        if json { print(JSONOutput.encode(.validate, Summary(valid: reports.allSatisfy(\.valid), files: reports))) }
        if reports.contains(where: { !$0.valid }) { throw ExitCode(ExitStatus.invalid.rawValue) }
    }

    /// Every file's result; `valid` when all are.
    struct Summary: Encodable {
        var valid: Bool
        var files: [Report]
    }

    struct Report: Encodable {
        var file: String
        var valid: Bool
        var name: String?
        var diagnostics: [Diagnostic]
    }
}
