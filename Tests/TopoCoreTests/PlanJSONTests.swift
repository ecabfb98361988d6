import CTopoShim
import Foundation
import Testing

@testable import TopoCore

/// JSON is an interface: every field of a plan has a name, and a plan or journal an older topo wrote
/// (Swift's `_0` for an unlabelled value) still reads the same.
@Suite struct PlanJSONTests {
    @Test func noFieldIsNamedUnderscoreZero() throws {
        let p = try Planner(host: try fixtureHost("2s-8c-ht")).plan(
            try profile(
                """
                version: 1
                name: j
                host: { tune: { irqs: away, governor: performance, frequency: { max: 2GHz }, timerMigration: off, thp: never } }
                workloads:
                  a: { cpus: { count: 2 }, memory: { max: 1G }, pids: 64, cpu: { quota: 1.5, weight: 200 }, isolation: partition, run: { command: [/bin/true] } }
                  b: { cpus: { count: 2 }, io: [{ device: "8:0", rbps: 1M }] }
                links: [{ between: [a, b], netem: { delay: 1ms } }]
                """)
        ).get()
        let text = JSONOutput.encode(p)
        #expect(!text.contains("\"_0\""), "\(text.prefix(2000))")
        #expect(text.contains(#""cpus" : "#) && text.contains(#""launch" : {"#) && text.contains(#""partition" : {"#))
        #expect(try JSONDecoder().decode(Plan.self, from: Data(text.utf8)) == p)
        // The same plan as format 2 wrote it: each unlabelled value wrapped in {"_0": …}.
        var legacy = text
        for kind in Resource.Kind.allCases.map(\.rawValue) {
            legacy = legacy.replacingOccurrences(of: "\"\(kind)\" : {", with: "\"\(kind)\" : {\"_0\" : {")
        }
        legacy = wrapResourceObjects(legacy)
        #expect(legacy.contains("\"_0\""))
        #expect(try JSONDecoder().decode(Plan.self, from: Data(legacy.utf8)).resources == p.resources)
        let setting = try JSONDecoder().decode(CgroupSetting.self, from: Data(#"{"cpus":{"_0":"0-1"}}"#.utf8))
        #expect(setting == .cpus(CPUSet([0, 1])))
        let tune = try JSONDecoder().decode(
            TuneSetting.self, from: Data(#"{"governor":{"_0":"performance","cpus":"2-3"}}"#.utf8))
        #expect(tune == .governor("performance", cpus: CPUSet([2, 3])))
    }

    /// Closes each `{"_0" : {` opened above where its resource object closes (pretty-printed JSON:
    /// the resource object ends at the first line indented like the line that opened it).
    func wrapResourceObjects(_ text: String) -> String {
        var out: [String] = []
        var closeAt: [Int] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let indent = line.prefix { $0 == " " }.count
            if let last = closeAt.last, indent == last, line.trimmingCharacters(in: .whitespaces).hasPrefix("}") {
                out.append(String(line) + "}")
                closeAt.removeLast()
                continue
            }
            out.append(String(line))
            if line.contains("\" : {\"_0\" : {") { closeAt.append(indent) }
        }
        return out.joined(separator: "\n")
    }
}
