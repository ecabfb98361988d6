import Foundation
import Testing
import TopoCore

/// The JSON documents only an applied profile gives — status (also apply's), verify, a watcher's lines,
/// report (also run's), diff and logs — each held to its example in docs/json.md, so the description
/// is the output's and a consumer can rely on it. docs/json.md's other documents are checked on any
/// host (TopoCLITests' JSONDocumentTests).
extension LabTests {
    @Suite struct DocumentTests {
        static let yaml = """
            version: 1
            name: docs
            host:
              tune: { thp: never, bestEffort: true }
            workloads:
              a:
                cpus: { count: 1 }
                isolation: shared
                memory: { max: 64M }
                run: { command: ["/bin/sh", "-c", "echo ready; exec sleep 3003"] }
              b: { cpus: { count: 1 }, isolation: shared, pids: 16 }
            links:
              - { between: [a, b], netem: { delay: 1ms } }
            """

        /// Each document's problems against docs/json.md.
        func problems(_ output: String) -> [String] {
            let markdown = Lab.read("\(Lab.repo)/docs/json.md") ?? ""
            return DocumentShape.problems(output: output, markdown: markdown)
        }

        @Test func everyDocumentOfAnAppliedProfileIsAsDescribed() throws {
            let path = try Lab.profile("docs", Self.yaml)
            let applied = try Lab.topo("apply", path, "--json")
            defer { _ = try? Lab.topo("down", "docs") }
            #expect(applied.status == 0, "\(applied)")
            var outputs: [(String, String)] = [("apply", applied.stdout)]
            usleep(200_000)  // a's first line reaches its log
            for (name, args) in [
                ("status", ["status", "--json"]), ("verify", ["verify", "docs", "--json"]),
                ("verify-active", ["verify", "docs", "--active", "--json"]),
                ("watch", ["verify", "docs", "--watch", "0.2", "--count", "2", "--json"]),
                ("logs", ["logs", "docs", "a", "--json"]), ("report", ["report", "docs", "--json"]),
            ] {
                let r = try Lab.run(Lab.topo, args)
                // An active probe may fail on a loaded lab machine; its document is what is checked here.
                #expect(r.status == 0 || (name == "verify-active" && r.status == 1), "\(name): \(r)")
                outputs.append((name, r.stdout))
            }
            #expect(outputs.first { $0.0 == "logs" }?.1.contains("ready") == true, "the log line of a")
            // diff of two reports that differ in placement and in what was observed.
            let a = "/tmp/docs-a-\(getpid()).json"
            let b = "/tmp/docs-b-\(getpid()).json"
            defer { for f in [a, b] { try? FileManager.default.removeItem(atPath: f) } }
            let report = try #require(outputs.first { $0.0 == "report" }?.1)
            try report.write(toFile: a, atomically: true, encoding: .utf8)
            try report.replacingOccurrences(of: "\"memoryMax\" : \"64M\"", with: "\"memoryMax\" : \"128M\"").write(
                toFile: b, atomically: true, encoding: .utf8)
            let diff = try Lab.topo("diff", a, b, "--json")
            #expect(diff.status == 1, "\(diff)")
            outputs.append(("diff", diff.stdout))
            #expect(try Lab.topo("down", "docs").status == 0)
            // run: its report has the run's own section.
            let out = "/tmp/docs-run-\(getpid()).json"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let run = try Lab.topo("run", path, "--report", out, "--", "/bin/true")
            #expect(run.status == 0, "\(run)")
            outputs.append(("run-report", Lab.read(out) ?? ""))
            for (name, output) in outputs {
                let found = problems(output)
                // The output goes with the problems, for whoever brings docs/json.md up to date.
                #expect(found.isEmpty, "\(name): \(found.joined(separator: "\n"))\n\(output.prefix(60_000))")
            }
            #expect(Lab.leftovers(marker: "sleep 3003") == [])
        }
    }
}
