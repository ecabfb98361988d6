import Foundation

/// A journal line: a resource begun, or a step marked done with the facts apply learned.
/// Every line carries the journal format, so that a later topo knows what it reads.
struct JournalRecord: Codable, Sendable {
    var format: Int
    var step: Int
    var resource: Resource?
    var done: Bool?
    var facts: Facts?
}

extension JournalRecord {
    /// A step marked done with no facts, the line apply writes most, as the encoder writes it (keys
    /// sorted): `{"done":true,"format":2,"step":17}`. Made and read without a JSON coder — half a
    /// journal's lines; any other line goes through the coder.
    var doneLine: String? {
        guard resource == nil, done == true, facts == nil else { return nil }
        return "{\"done\":true,\"format\":\(format),\"step\":\(step)}"
    }

    init?(doneLine line: Substring) {
        let utf8 = line.utf8
        let head = #"{"done":true,"format":"#.utf8
        let middle = #","step":"#.utf8
        guard utf8.starts(with: head), utf8.last == UInt8(ascii: "}") else { return nil }
        let body = line.utf8.dropFirst(head.count).dropLast()
        guard let comma = body.firstIndex(of: UInt8(ascii: ",")), body[comma...].starts(with: middle),
            let format = Self.number(body[..<comma]), let step = Self.number(body[comma...].dropFirst(middle.count))
        else { return nil }
        self.init(format: format, step: step, done: true)
    }

    /// A non-negative decimal as the encoder writes one: digits only, no leading zero, at most 9.
    private static func number(_ digits: Substring.UTF8View.SubSequence) -> Int? {
        guard (1...9).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }),
            digits.count == 1 || digits.first != UInt8(ascii: "0")
        else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}

/// A journaled step as read back.
public struct JournalStep: Equatable, Sendable {
    public var number: Int
    public var resource: Resource
    public var done: Bool
    public var facts: Facts
}

/// A journal as read back: its steps, and every line `down` could not understand. A non-empty
/// `problems` means teardown cannot prove it undid everything, so it keeps the state for another try.
public struct JournalContents: Equatable, Sendable {
    public var steps: [JournalStep] = []
    public var problems: [String] = []
}

/// The append-only journal of one applied profile (`journal.jsonl` in its state directory).
public struct Journal: Sendable {
    /// The format of the lines this topo writes: 3 names every field of a resource (2 wrote Swift's
    /// `_0` for an unlabelled value, and is read still, so an older topo's profile can be taken down).
    public static let format = 3
    /// The formats this topo reads.
    public static let readable: Set<Int> = [2, 3]
    public let path: String
    /// The fault point: with TOPO_FAILPOINT=after-step:N, SIGKILL right after the N-th step is marked done.
    let killAfterStep: Int?

    /// The fault point a test asks for. Only a debug build (the one the lab's tests run) reads
    /// TOPO_FAILPOINT: a released topo, run as root, takes no behaviour from its environment.
    public static var failpointFromEnvironment: String? {
        #if DEBUG
            return ProcessInfo.processInfo.environment["TOPO_FAILPOINT"]
        #else
            return nil
        #endif
    }

    public init(path: String, failpoint: String? = Journal.failpointFromEnvironment) {
        self.path = path
        if let fp = failpoint, fp.hasPrefix("after-step:"), let n = Int(fp.dropFirst("after-step:".count)) {
            killAfterStep = n
        } else {
            killAfterStep = nil
        }
    }

    public func begin(_ step: Int, _ resource: Resource) throws(SystemError) { try begin([(step, resource)]) }

    /// Several steps begun, in one write (a batch's resources, before its driver starts).
    public func begin(_ steps: [(Int, Resource)]) throws(SystemError) {
        try append(steps.map { JournalRecord(format: Self.format, step: $0.0, resource: $0.1) })
    }

    public func done(_ step: Int, facts: Facts = Facts()) throws(SystemError) { try done([(step, facts)]) }

    /// Several steps marked done, in order and in one write. The fault point still kills right after
    /// its step's line: the lines after it are not written.
    public func done(_ steps: [(Int, Facts)]) throws(SystemError) {
        var lines = steps[...]
        let killed = killAfterStep.flatMap { n in steps.firstIndex { $0.0 == n } }
        if let killed { lines = steps[...killed] }
        try append(
            lines.map {
                JournalRecord(format: Self.format, step: $0.0, done: true, facts: $0.1 == Facts() ? nil : $0.1)
            })
        if killed != nil { try? Sys.kill(getpid(), SIGKILL) }
    }

    /// One line per record, appended and made durable in one write. A batch's records are encoded on
    /// every CPU: JSON encoding of resources is most of a large apply's own CPU time.
    private func append(_ records: [JournalRecord]) throws(SystemError) {
        guard !records.isEmpty else { return }
        let encode: @Sendable (JournalRecord) -> String = { record in
            if let line = record.doneLine { return line + "\n" }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return ((try? encoder.encode(record)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
        }
        let lines = records.count < 16 ? records.map(encode) : concurrentMap(records, encode)
        try Sys.appendDurably(path, lines.joined())
    }

    /// The steps in journal order. Only a last line without its newline may be cut short by a crash
    /// (the write was never finished, so its step was never begun as far as anyone can tell) and is
    /// skipped; any other line this topo cannot read — another format, a resource kind it does not know,
    /// a done line for no step — is a problem, named with its line number.
    public static func read(_ path: String) -> JournalContents {
        var contents = JournalContents()
        let text: String
        do {
            text = try Sys.read(path)
        } catch {
            contents.problems.append(
                "\(error): without its journal topo cannot tell what it made for this profile; "
                    + "check for its cgroups, namespaces and processes by hand, then remove \(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) (rm -r)"
            )
            return contents
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // Decoded on every CPU (a large profile's journal is hundreds of lines), read in order below.
        let decode: @Sendable (Substring) -> JournalRecord? = { line in
            line.isEmpty
                ? nil
                : JournalRecord(doneLine: line)
                    ?? (try? JSONDecoder().decode(JournalRecord.self, from: Data(line.utf8)))
        }
        let records = lines.count < 16 ? lines.map(decode) : concurrentMap(lines, decode)
        var begun: [Int: Int] = [:]  // step -> its index in contents.steps (the last line that began it)
        for (i, line) in lines.enumerated() where !line.isEmpty {
            let torn = i == lines.count - 1  // no newline after it
            guard let record = records[i] else {
                if !torn {
                    contents.problems.append(
                        "\(path) line \(i + 1): not a journal record this topo understands: \(line.prefix(200))")
                }
                continue
            }
            guard Self.readable.contains(record.format) else {
                contents.problems.append(
                    "\(path) line \(i + 1): journal format \(record.format), but this topo reads formats \(Self.readable.sorted().map(String.init).joined(separator: " and ")); run `topo down` with the topo that applied it"
                )
                continue
            }
            if let resource = record.resource {
                begun[record.step] = contents.steps.count
                contents.steps.append(JournalStep(number: record.step, resource: resource, done: false, facts: Facts()))
            } else if record.done == true, let s = begun[record.step] {
                contents.steps[s].done = true
                contents.steps[s].facts = record.facts ?? Facts()
            } else {
                contents.problems.append("\(path) line \(i + 1): marks step \(record.step) done, but no line began it")
            }
        }
        return contents
    }
}
