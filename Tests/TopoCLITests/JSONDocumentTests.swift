import Foundation
import Testing

@testable import TopoCore

/// Every JSON document topo prints carries one versioning scheme (`"format": "topo-KIND/N"`) and is
/// described in docs/json.md with an example; the documents any host can make are made here and held
/// to their examples (the ones that need an applied profile are held to theirs in the lab).
@Suite struct JSONDocumentTests {
    static let markdown = (try? String(contentsOfFile: CLITests.repo + "/docs/json.md", encoding: .utf8)) ?? ""
    static let every = "Tests/Fixtures/profiles/every-field.yaml"
    static let host = "Tests/Fixtures/hosts/2s-8c-ht"

    func problems(_ output: String) -> [String] { DocumentShape.problems(output: output, markdown: Self.markdown) }

    /// Each document has a section and an example that parses, names its own format, and meets its own shape.
    @Test func everyDocumentIsDescribedWithAnExample() throws {
        let examples = DocumentShape.examples(markdown: Self.markdown)
        for format in DocumentFormat.all {
            let example = try #require(examples[format], "docs/json.md has no example under ### \(format)")
            #expect(problems(example) == [], "\(format)")
        }
        #expect(
            Set(examples.keys) == Set(DocumentFormat.all),
            "described but unknown: \(Set(examples.keys).subtracting(DocumentFormat.all))")
    }

    @Test func theDocumentsOfAnyHostAreAsDescribed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("topo-json-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: CLITests.repo + "/Profiles/quickstart.yaml", toPath: "\(dir)/q.yaml")
        let runs: [(String, [String], Int32)] = [
            ("plan", ["plan", Self.every, "--sysfs", Self.host, "--json"], 0),
            (
                "plan of a container profile",
                ["plan", "Profiles/api-gateway-containers.yaml", "--sysfs", Self.host, "--json"], 0
            ),
            ("dry run", ["apply", "--dry-run", Self.every, "--sysfs", Self.host, "--json"], 0),
            ("validate", ["validate", "--json", Self.every, "Tests/Fixtures/profiles/invalid/many-problems.yaml"], 2),
            ("invalid plan", ["plan", "Tests/Fixtures/profiles/invalid/many-problems.yaml", "--json"], 2),
            ("unsatisfiable plan", ["plan", Self.every, "--sysfs", "Tests/Fixtures/hosts/1n-2c", "--json"], 3),
            ("lock", ["plan", "\(dir)/q.yaml", "--lock", "--json"], 0),
            ("host", ["host", "--json"], 0),
            ("host of a tree", ["host", "--json", "--sysfs", Self.host], 0),
            ("export", ["host", "--export", "\(dir)/export", "--json"], 0),
            ("suggestion", ["host", "--suggest-cmdline", "Profiles/quiet.yaml", "--json"], 0),
            ("status", ["status", "--json", "--state-dir", "\(dir)/state"], 0),
        ]
        var formats: Set<String> = []
        for (name, args, status) in runs {
            let r = try CLITests.run(args)
            #expect(r.status == status, "\(name): \(r.stderr)")
            #expect(problems(r.stdout) == [], "\(name)")
            if let o = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
                let f = o["format"] as? String
            {
                formats.insert(f)
            }
        }
        #expect(
            formats == [
                "topo-plan/3", "topo-dry-run/1", "topo-validate/1", "topo-error/1", "topo-lock/1", "topo-host/1",
                "topo-host-export/1", "topo-host-suggestion/1", "topo-status/1",
            ])
    }

    /// A plan written before the scheme (`"format": 3`) is still read, as `topo-plan/3`; a document of
    /// another kind or an unknown spelling is refused.
    @Test func aFormatIsReadInEitherSpelling() throws {
        let decoder = JSONDecoder()
        #expect(
            try decoder.decode([DocumentFormat].self, from: Data(#"[3, "topo-plan/3", "topo-dry-run/1"]"#.utf8))
                == [.plan, .plan, .dryRun])
        #expect(
            DocumentFormat("topo-plan/0") == nil && DocumentFormat("plan/3") == nil
                && DocumentFormat("topo-plan/x") == nil)
        #expect(JSONOutput.line(.log, ["line": "x"]) == #"{"format":"topo-log/1","line":"x"}"#)
    }

    /// The shape check finds what it is for: an undescribed field, a field of another type.
    @Test func theShapeCheckFindsAnUndescribedFieldAndAnotherType() throws {
        let markdown =
            "### topo-log/1\n\n```json\n{\"format\": \"topo-log/1\", \"line\": \"x\", \"n\": 1, \"open\": {\"…\": \"see\"}}\n```\n"
        #expect(
            DocumentShape.problems(
                output: #"{"format": "topo-log/1", "line": "y", "open": {"any": 1}}"#, markdown: markdown) == [])
        #expect(
            DocumentShape.problems(output: #"{"format": "topo-log/1", "line": 2, "extra": true}"#, markdown: markdown)
                == ["topo-log/1: extra: not in the example", "topo-log/1: line: number, the example has string"])
        #expect(
            DocumentShape.problems(output: #"{"line": "y"}"#, markdown: markdown).first?.hasPrefix("no \"format\"")
                == true)
    }
}
