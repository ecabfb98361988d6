import Foundation
import Testing

@testable import TopoCore

@Suite struct JournalTests {
    let cgroup = Resource.cgroup(CgroupResource(path: "topo/p", owner: "p", workload: nil, enable: [.cpu]))
    let launch = Resource.launch(
        LaunchResource(
            profile: "p", workload: "w", runtime: .process, image: nil, command: ["/bin/true"],
            environment: [], workdir: nil, user: nil, capabilities: [], cgroup: "topo/p/w",
            cpus: CPUSet([0]), memoryPolicy: .bind, policyNodes: CPUSet([0]), logPath: nil,
            netns: nil, hostsFile: nil))

    @Test func stepsReadBackWithTheirStateAndFacts() throws {
        let fake = try FakeRoot()
        let journal = Journal(path: "\(fake.path)/journal.jsonl", failpoint: nil)
        try journal.begin(1, cgroup)
        try journal.done(1)
        try journal.begin(2, launch)
        try journal.done(2, facts: Facts(pid: 4242))
        try journal.begin(3, cgroup)
        let read = Journal.read(journal.path)
        #expect(read.problems == [])
        #expect(read.steps.map(\.number) == [1, 2, 3])
        #expect(read.steps.map(\.done) == [true, true, false])
        #expect(read.steps[1].facts.pid == 4242)
        #expect(read.steps[2].resource == cgroup)
    }

    @Test func onlyALastLineWithoutItsNewlineCountsAsTornByACrash() throws {
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Journal(path: path, failpoint: nil).begin(1, cgroup)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"format\":2,\"resource\":{\"cgroup\":{\"_0\":{\"path\":\"to".utf8))
        try handle.close()
        let torn = Journal.read(path)
        #expect(torn.steps.map(\.resource) == [cgroup] && torn.problems == [])
        // The same line finished with a newline is no longer a torn write: it is a record topo cannot read.
        try Sys.appendDurably(path, "\n")
        let broken = Journal.read(path)
        #expect(broken.steps.map(\.resource) == [cgroup])
        #expect(
            broken.problems.count == 1 && broken.problems[0].contains("line 2: not a journal record"),
            "\(broken.problems)")
    }

    @Test func otherFormatsUnknownKindsAndStrayDoneLinesAreProblems() throws {
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Sys.appendDurably(path, #"{"format":1,"step":1,"action":{"createCgroup":{"_0":"topo/p"}}}"# + "\n")
        try Sys.appendDurably(path, #"{"format":2,"step":2,"resource":{"tapDevice":{"_0":{"name":"tap0"}}}}"# + "\n")
        try Sys.appendDurably(path, #"{"format":2,"step":7,"done":true}"# + "\n")
        let read = Journal.read(path)
        #expect(read.steps == [])
        #expect(read.problems.count == 3)
        #expect(read.problems[0].contains("line 1: journal format 1"))
        #expect(read.problems[1].contains("line 2: not a journal record"))
        #expect(read.problems[2].contains("line 3: marks step 7 done, but no line began it"))
        #expect(Journal.read("\(fake.path)/none.jsonl").problems.first?.contains("without its journal") == true)
    }

    /// Half a journal's lines say a step is done and nothing else: written and read without a JSON
    /// coder, byte for byte what the coder writes; any other line still goes through the coder.
    @Test func doneLinesAreTheCodersBytesAndReadWithoutIt() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for step in [1, 9, 10, 482, 123_456_789] {
            let record = JournalRecord(format: Journal.format, step: step, done: true)
            let line = try #require(record.doneLine)
            #expect(line == String(decoding: try encoder.encode(record), as: UTF8.self))
            let read = try #require(JournalRecord(doneLine: Substring(line)))
            #expect(
                read.step == step && read.format == Journal.format && read.done == true && read.resource == nil
                    && read.facts == nil)
        }
        #expect(JournalRecord(format: 2, step: 1, done: true, facts: Facts(pid: 7)).doneLine == nil)
        #expect(JournalRecord(format: 2, step: 1, resource: cgroup).doneLine == nil)
        for other in [
            #"{"done":true,"format":2,"step":07}"#, #"{"done":true,"format":2,"step":}"#,
            #"{"done":true,"format":2,"step":-1}"#,
            #"{"done":true,"format":2,"step":1234567890}"#, #"{"done": true,"format":2,"step":1}"#,
            #"{"done":true,"format":2,"step":1} "#,
            #"{"done":true,"format":2,"step":1,"facts":{"pid":3}}"#, #"{"done":true,"format":,"step":1}"#,
        ] {
            #expect(JournalRecord(doneLine: Substring(other)) == nil, "\(other)")
        }
        // A done line another writer spaced out is still a done line, read by the coder.
        let fake = try FakeRoot()
        let path = "\(fake.path)/journal.jsonl"
        try Journal(path: path, failpoint: nil).begin(1, cgroup)
        try Sys.appendDurably(path, #"{ "done": true, "format": 2, "step": 1 }"# + "\n")
        let read = Journal.read(path)
        #expect(read.problems == [] && read.steps.map(\.done) == [true])
    }

    @Test func failpointParsing() {
        #expect(Journal(path: "/x", failpoint: "after-step:7").killAfterStep == 7)
        #expect(Journal(path: "/x", failpoint: "before-step:7").killAfterStep == nil)
        #expect(Journal(path: "/x", failpoint: nil).killAfterStep == nil)
    }
}
