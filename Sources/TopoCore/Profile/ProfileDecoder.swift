import Foundation
import Yams

/// Turns profile text into a `Profile`, or into every problem it has. Touches no host state.
public enum ProfileDecoder {
    public static let profileNamePattern = "[a-z][a-z0-9-]{0,23}"
    public static let workloadNamePattern = "[a-z][a-z0-9-]{0,11}"

    /// The largest netem delay or jitter: tc hands the kernel a 32-bit count of scheduler ticks
    /// (1 µs = 15.625 ticks on every current kernel, /proc/net/psched), about 274 s.
    public static let maxNetemTime = Duration(nanoseconds: 274_000_000_000)

    /// Yams resolves each plain scalar's tag by trying a regular expression per type, also to hash
    /// every mapping key for its duplicate-key check. topo reads scalars as text and parses them
    /// itself (`YAMLReader`), so it resolves no tag at all: even Yams' one rule for the merge key `<<`
    /// is a regular expression, and compiling the first one starts ICU's regular-expression tables
    /// (12 % of the instructions of a whole `topo plan`, callgrind). `YAMLReader` knows the merge key by
    /// its text.
    static let resolver = Resolver.basic

    /// The decoded profile and its warnings.
    public struct Decoded: Sendable {
        public var profile: Profile
        public var warnings: [Diagnostic]
        /// The text the profile was decoded from: what apply keeps for `report` and `plan --lock` records,
        /// read once, so that it is the profile applied even when the file changes meanwhile.
        public var text: String
    }

    /// The argument that names standard input as a profile.
    public static let standardInput = "-"

    /// Reads at most `YAMLGuard.maxBytes` + 1 bytes of a regular file: a FIFO, a device or a huge file
    /// is refused by what it is, before anything is parsed.
    /// `-` reads standard input (named `<stdin>` in diagnostics).
    public static func decode(file path: String) -> Result<Decoded, ProfileInvalid> {
        let data: [UInt8]
        do {
            if path == standardInput {
                return decode(data: Data(try GuardedFile.standardInput(limit: YAMLGuard.maxBytes)), file: "<stdin>")
            }
            data = try GuardedFile.bytes(path, limit: YAMLGuard.maxBytes)
        } catch {
            let fix =
                error.reason.hasPrefix("is larger")
                ? "split the profile, or remove what it does not need"
                : "give the path of a profile, e.g. Profiles/quickstart.yaml"
            return .failure(
                ProfileInvalid(diagnostics: [
                    Diagnostic(
                        file: path, line: nil, column: nil, path: "",
                        message: "the profile \(error.reason)", fix: fix)
                ]))
        }
        return decode(data: Data(data), file: path)
    }

    public static func decode(data: Data, file: String) -> Result<Decoded, ProfileInvalid> {
        guard let text = String(data: data, encoding: .utf8) else {
            let offset = firstInvalidUTF8(Array(data))
            return .failure(
                ProfileInvalid(diagnostics: [
                    Diagnostic(
                        file: file, line: nil, column: nil, path: "",
                        message: "the profile is not UTF-8 text (bad byte at offset \(offset))",
                        fix: "save the file as UTF-8")
                ]))
        }
        return decode(text: text, file: file)
    }

    public static func decode(text: String, file: String) -> Result<Decoded, ProfileInvalid> {
        func fail(_ line: Int?, _ column: Int?, _ message: String, _ fix: String?) -> Result<Decoded, ProfileInvalid> {
            .failure(
                ProfileInvalid(diagnostics: [
                    Diagnostic(file: file, line: line, column: column, path: "", message: message, fix: fix)
                ]))
        }
        if let problem = YAMLGuard.check(text) { return fail(problem.line, nil, problem.message, problem.fix) }
        if text.utf8.contains(0) {
            return fail(nil, nil, "the profile contains a NUL byte", "save it as plain UTF-8 text")
        }
        let root: Node
        do {
            let parser = try Parser(yaml: text, resolver: resolver)
            guard let first = try parser.nextRoot() else {
                return fail(1, 1, "the profile is empty", "start from Profiles/quickstart.yaml")
            }
            if try parser.nextRoot() != nil {
                return fail(nil, nil, "the profile holds more than one YAML document", "keep one profile per file")
            }
            root = first
        } catch let error as YamlError {
            return .failure(ProfileInvalid(diagnostics: [yamlDiagnostic(error, file: file, text: text)]))
        } catch {
            return fail(nil, nil, "cannot parse: \(error)", nil)
        }
        let reader = YAMLReader(file: file)
        let profile = ProfileReading(reader: reader).profile(root)
        if reader.hasErrors || profile == nil {
            return .failure(ProfileInvalid(diagnostics: reader.diagnostics, unlisted: reader.suppressed))
        }
        return .success(
            Decoded(profile: profile!, warnings: Diagnostic.collapsingWarnings(reader.diagnostics), text: text))
    }

    /// libyaml's error in topo's words where libyaml's own would mislead: a tab that indents, a key
    /// longer than YAML allows, an alias never defined (named).
    static func yamlDiagnostic(_ error: YamlError, file: String, text: String) -> Diagnostic {
        func d(
            _ mark: Mark?, _ message: String, fix: String = "fix the YAML syntax at this place", column: Int? = nil
        ) -> Diagnostic {
            Diagnostic(
                file: file, line: mark?.line, column: column ?? mark?.column, path: "", message: message, fix: fix)
        }
        func line(_ mark: Mark) -> Substring? {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            return mark.line >= 1 && mark.line <= lines.count ? lines[mark.line - 1] : nil
        }
        switch error {
        case .scanner(_, let problem, let mark, _)
        where problem.contains("cannot start any token") && line(mark)?.contains("\t") == true:
            return d(
                mark, "line \(mark.line) is indented with a tab; YAML indents with spaces only",
                fix: "replace the tabs with spaces (2 per level, as in Profiles/)")
        case .scanner(_, _, let mark, _) where (line(mark)?.utf8.count ?? 0) > 1024,
            .parser(_, _, let mark, _) where (line(mark)?.utf8.count ?? 0) > 1024:
            let key = line(mark).map { $0.drop { $0 == " " || $0 == "-" }.prefix { $0 != ":" } } ?? ""
            return d(
                mark,
                "line \(mark.line) has a key of \(key.utf8.count) characters; YAML allows a key of at most 1024, and a workload's name is at most 12",
                fix: "use a shorter name", column: 1)
        case .composer(_, let problem, let mark, _) where problem.contains("undefined alias"):
            let name =
                line(mark).map {
                    String(
                        $0.unicodeScalars.dropFirst(max(0, mark.column - 1)).prefix {
                            !" ,]}\t".unicodeScalars.contains($0)
                        })
                } ?? ""
            return d(
                mark, "the alias \(printable(name)) has no anchor before it",
                fix: "define it first (&\(printable(String(name.dropFirst())))) or write the value out")
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let ctx = context.map { "\($0.text) (at \($0.mark)), " } ?? ""
            return d(mark, "YAML: \(ctx)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let again = duplicates.first.flatMap { secondOccurrence(of: $0, after: context.mark, in: context.text) }
            var diag = d(
                context.mark,
                "duplicate key \(duplicates.map { "\"\($0)\"" }.joined(separator: ", ")) in one mapping (first at \(context.mark))"
            )
            diag.fix = "keep one of them"
            if let again {
                diag.line = again.line
                diag.column = again.column
            }
            return diag
        case .reader(let problem, let offset, _, _):
            return d(nil, "YAML: \(problem)\(offset.map { " at byte \($0)" } ?? "")")
        default:
            return d(nil, "YAML: \(error)")
        }
    }

    /// Where a duplicated key appears again: the next line after `first` that has the key at the same column.
    static func secondOccurrence(of key: String, after first: Mark, in text: String) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line >= 1, first.line < lines.count else { return nil }
        for (i, line) in lines.enumerated().dropFirst(first.line) {
            let scalars = Array(line.unicodeScalars)
            guard scalars.count >= first.column else { continue }
            let rest = String(String.UnicodeScalarView(scalars[(first.column - 1)...]))
            if rest.hasPrefix(key + ":") || rest.hasPrefix("\"\(key)\":") || rest.hasPrefix("'\(key)':") {
                return (i + 1, first.column)
            }
        }
        return nil
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let n = b < 0x80 ? 1 : b >> 5 == 0b110 ? 2 : b >> 4 == 0b1110 ? 3 : b >> 3 == 0b11110 ? 4 : 0
            guard n > 0, i + n <= bytes.count, String(bytes: bytes[i..<i + n], encoding: .utf8) != nil else { return i }
            i += n
        }
        return i
    }

    /// Whether `name` is ASCII bytes only: a first byte in `first`, then lowercase letters, digits or
    /// '-', at most `maxLength` bytes. Checked on bytes, not Characters: a letter followed by a
    /// combining mark or a zero-width joiner is one Character that compares like the letter.
    public static func matches(_ name: String, first: ClosedRange<Character>, maxLength: Int) -> Bool {
        let bytes = Array(name.utf8)
        guard let head = bytes.first, let lo = first.lowerBound.asciiValue, let hi = first.upperBound.asciiValue,
            (lo...hi).contains(head), bytes.count <= maxLength
        else { return false }
        return bytes.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }
    }
}

/// The walk over one profile's tree. Each method reads one section and reports its problems.
struct ProfileReading {
    let reader: YAMLReader

    func profile(_ root: Node) -> Profile? {
        guard let f = reader.fields(root, "", allowed: ProfileKeys.profile, extensions: true) else { return nil }
        var version: Int?
        if let v = f["version"] {
            if case .scalar(let s) = v, s.string == "1", s.style == .plain {
                version = 1
            } else if let text = reader.string(v, "version") {
                reader.error(
                    v, "version", "profile version \(printable(text)) is not known to this topo (it reads version 1)",
                    fix: "write version: 1")
            }
        } else {
            reader.error(root, "version", "missing", fix: "add `version: 1` at the top")
        }
        var name = ""
        if let n = f["name"] {
            if let s = reader.string(n, "name") {
                if StateStore.reservedNames.contains(s) {
                    reader.error(
                        n, "name", "\"\(s)\" is reserved: topo keeps its own \(s) there, beside the profiles' state",
                        fix: "choose another name")
                } else if ProfileDecoder.matches(s, first: "a"..."z", maxLength: 24) {
                    name = s
                } else {
                    reader.error(
                        n, "name", "\"\(printable(s))\" is not a valid profile name",
                        fix:
                            "use 1-24 characters: a lowercase letter, then lowercase letters, digits or '-' (\(ProfileDecoder.profileNamePattern))"
                    )
                }
            }
        } else {
            reader.error(root, "name", "missing", fix: "add `name: my-benchmark`; it names everything topo creates")
        }
        let description = f["description"].flatMap { reader.string($0, "description") }
        let host = f["host"].map { self.host($0) } ?? HostRequirements()

        var workloads: [Workload] = []
        var workloadNodes: [Node] = []
        var workloadNames: [String] = []
        if let w = f["workloads"], let entries = reader.entries(w, "workloads", what: "workload names") {
            if entries.isEmpty { reader.error(w, "workloads", "no workloads", fix: "add at least one workload") }
            for (wname, key, value) in entries {
                let path = "workloads.\(wname)"
                guard ProfileDecoder.matches(wname, first: "a"..."z", maxLength: 12) else {
                    reader.error(
                        key, path, "\"\(printable(wname))\" is not a valid workload name",
                        fix:
                            "use 1-12 characters: a lowercase letter, then lowercase letters, digits or '-' (\(ProfileDecoder.workloadNamePattern))"
                    )
                    continue
                }
                workloadNames.append(wname)
                if let wl = workload(wname, value, path) {
                    workloads.append(wl)
                    workloadNodes.append(value)
                }
            }
        } else if f["workloads"] == nil {
            reader.error(root, "workloads", "missing", fix: "add a `workloads:` mapping with at least one workload")
        }

        var links: [LinkSpec] = []
        if let l = f["links"], let items = reader.sequence(l, "links", of: "links") {
            let names = workloadNames
            // Each parsed link keeps its own index and node: an invalid link earlier in the list must
            // not shift the names and lines of the diagnostics about later ones.
            var parsed: [(index: Int, node: Node, link: LinkSpec)] = []
            for (i, item) in items.enumerated() {
                if let link = self.link(item, "links[\(i)]", workloads: names) { parsed.append((i, item, link)) }
            }
            checkLinksTogether(parsed)
            links = parsed.map(\.link)
        }
        checkCPUListsTogether(workloads, workloadNodes)
        guard let version else { return nil }
        return Profile(
            version: version, name: name, description: description, host: host, workloads: workloads, links: links)
    }

    func host(_ node: Node) -> HostRequirements {
        var h = HostRequirements()
        guard let f = reader.fields(node, "host", allowed: ProfileKeys.host) else { return h }
        if let r = f["require"], let rf = reader.fields(r, "host.require", allowed: ProfileKeys.hostRequire) {
            h.numaNodes = rf["numaNodes"].flatMap { reader.int($0, "host.require.numaNodes", in: 1...1024) }
            h.cpus = rf["cpus"].flatMap { reader.int($0, "host.require.cpus", in: 1...CPUSet.maxID + 1) }
        }
        if let r = f["reserve"] {
            if case .scalar(let s) = r, s.style == .plain, !s.string.isEmpty,
                s.string.allSatisfy({ $0.isASCII && $0.isNumber })
            {
                reader.error(
                    r, "host.reserve", "\(s.string) is ambiguous",
                    fix:
                        "write \"\(s.string)\" (quoted) to reserve CPU \(s.string); reserve takes a cpulist, not a count"
                )
            } else if let set = reader.unit(r, "host.reserve", CPUSet.parse) {
                h.reserve = set
            }
        }
        if let s = f["smt"], let smt = reader.choice(s, "host.smt", SMTPolicy.self) { h.smt = smt }
        if let t = f["tune"] { h.tune = tune(t) }
        return h
    }

    /// `irqs: away` and `kernelThreads: away` take one word, for room to grow (`irqs: { away: … }`).
    enum Away: String, CaseIterable { case away }

    /// `off` or `on` — which YAML 1.1 readers (PyYAML, many editors) take for false and true, so those are read too.
    func onOff(_ node: Node, _ path: String) -> Switch? {
        if case .scalar(let s) = node, s.style == .plain, ["true", "false"].contains(s.string) {
            return s.string == "true" ? .on : .off
        }
        return reader.choice(node, path, Switch.self)
    }

    func tune(_ node: Node) -> HostTuning? {
        guard let f = reader.fields(node, "host.tune", allowed: ProfileKeys.hostTune) else { return nil }
        var t = HostTuning()
        if let n = f["irqs"], reader.choice(n, f.path("irqs"), Away.self) != nil { t.irqsAway = true }
        if let n = f["irqbalance"], let v = reader.choice(n, f.path("irqbalance"), IrqbalanceAction.self) {
            t.irqbalance = v
        }
        if let n = f["kernelThreads"], reader.choice(n, f.path("kernelThreads"), Away.self) != nil {
            t.kernelThreadsAway = true
        }
        t.timerMigration = f["timerMigration"].flatMap { onOff($0, f.path("timerMigration")) }
        t.statInterval = f["statInterval"].flatMap {
            reader.int($0, f.path("statInterval"), in: 1...3600, unit: " seconds")
        }
        t.thp = f["thp"].flatMap { reader.choice($0, f.path("thp"), THPMode.self) }
        if let n = f["governor"], let g = reader.string(n, f.path("governor")) {
            if g.utf8.count <= 15, g.utf8.first.map({ (0x61...0x7A).contains($0) }) == true,
                g.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F })
            {
                t.governor = g
            } else {
                reader.error(
                    n, f.path("governor"), "\"\(printable(g))\" is not a cpufreq governor name",
                    fix:
                        "write one of the names in /sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors, e.g. performance"
                )
            }
        }
        if let n = f["frequency"], let ff = reader.fields(n, f.path("frequency"), allowed: ProfileKeys.frequency) {
            t.frequencyMin = ff["min"].flatMap { reader.unit($0, ff.path("min"), Frequency.parse) }
            t.frequencyMax = ff["max"].flatMap { reader.unit($0, ff.path("max"), Frequency.parse) }
            if let lo = t.frequencyMin, let hi = t.frequencyMax, lo > hi {
                reader.error(n, ff.path("min"), "min \(lo) is above max \(hi)", fix: "make min at most max")
            }
            if ff["min"] == nil && ff["max"] == nil {
                reader.error(
                    n, f.path("frequency"), "sets neither min nor max", fix: "add min: or max:, e.g. max: 2.4GHz")
            }
        }
        if let n = f["scope"], let v = reader.choice(n, f.path("scope"), TuneScope.self) { t.scope = v }
        t.boost = f["boost"].flatMap { onOff($0, f.path("boost")) }
        t.perfSampleRate = f["perfSampleRate"].flatMap { reader.int($0, f.path("perfSampleRate"), in: 1...1_000_000) }
        t.aslr = f["aslr"].flatMap { onOff($0, f.path("aslr")) }
        if let n = f["bestEffort"] {
            switch reader.string(n, f.path("bestEffort")) {
            case "true": t.bestEffort = true
            case "false": t.bestEffort = false
            case nil: break
            case let other?:
                reader.error(
                    n, f.path("bestEffort"), "\"\(printable(other))\" is not true or false", fix: "write true or false")
            }
        }
        if t.irqbalance == .stop && !t.irqsAway {
            reader.warning(
                f["irqbalance"], f.path("irqbalance"),
                "irqbalance: stop without irqs: away stops irqbalance for nothing",
                fix: "add irqs: away, or remove irqbalance")
        }
        return t.isEmpty ? nil : t
    }

    func workload(_ name: String, _ node: Node, _ path: String) -> Workload? {
        guard let f = reader.fields(node, path, allowed: ProfileKeys.workload) else { return nil }
        var request: CPURequest?
        if let cpusNode = f["cpus"] {
            request = cpus(cpusNode, f.path("cpus"))
        } else {
            reader.error(
                node, f.path("cpus"), "missing", fix: "add `cpus: { count: 2 }` or a cpulist such as `cpus: \"0-1\"`")
        }
        // Read every other field even when cpus failed, so that all problems show at once.
        var w = Workload(name: name, cpus: request ?? .count(1, node: .auto))
        if let i = f["isolation"], let iso = reader.choice(i, f.path("isolation"), Isolation.self) { w.isolation = iso }
        if let m = f["memory"] { w.memory = memory(m, f.path("memory")) }
        if let c = f["cpu"] { w.cpu = cpu(c, f.path("cpu")) }
        if let p = f["pids"], !reader.isQuotedNumber(p, f.path("pids")) {
            w.pids = reader.limit(
                p, f.path("pids"),
                { text in
                    guard text.count <= 10, let n = Int(text), (1...4_194_304).contains(n) else {
                        return .failure(
                            UnitError(
                                "\"\(text)\" is not a process count",
                                fix: "write a number from 1 to 4194304 (PID_MAX_LIMIT) or max"))
                    }
                    return .success(n)
                })
        }
        if let io = f["io"] { w.io = ioLimits(io, f.path("io")) }
        if let r = f["run"] { w.run = run(r, f.path("run")) }
        return request == nil ? nil : w
    }

    func cpus(_ node: Node, _ path: String) -> CPURequest? {
        if case .scalar(let s) = node {
            if s.style == .plain, !s.string.isEmpty, s.string.allSatisfy({ $0.isASCII && $0.isNumber }) {
                reader.error(
                    node, path, "\(s.string) is ambiguous",
                    fix:
                        "write \"\(s.string)\" (quoted) for CPU \(s.string), or { count: \(s.string) } for \(s.string) CPUs"
                )
                return nil
            }
            guard let set = reader.unit(node, path, CPUSet.parse) else { return nil }
            if set.isEmpty {
                reader.error(node, path, "the cpulist is empty", fix: "name at least one CPU, e.g. \"0-1\"")
                return nil
            }
            return .list(set)
        }
        guard let f = reader.fields(node, path, allowed: ProfileKeys.cpuCount) else { return nil }
        guard let countNode = f["count"] else {
            reader.error(node, f.path("count"), "missing", fix: "write { count: N } or a cpulist string")
            return nil
        }
        let count = reader.int(countNode, f.path("count"), in: 1...CPUSet.maxID + 1)
        var choice: NodeChoice? = .auto
        if let n = f["node"], !(YAMLReader.isNull(n) == false && n.scalar?.string == "auto") {
            choice = reader.int(n, f.path("node"), in: 0...1023).map { .node($0) }
        }
        guard let count, let choice else { return nil }
        return .count(count, node: choice)
    }

    func memory(_ node: Node, _ path: String) -> MemorySpec {
        var m = MemorySpec()
        guard let f = reader.fields(node, path, allowed: ProfileKeys.memory) else { return m }
        if let p = f["policy"], let policy = reader.choice(p, f.path("policy"), MemoryPolicy.self) { m.policy = policy }
        if let n = f["nodes"], let nodes = reader.unit(n, f.path("nodes"), CPUSet.parse) {
            if nodes.isEmpty {
                reader.error(
                    n, f.path("nodes"), "the node list is empty",
                    fix:
                        "name at least one node, e.g. \"0\", or leave nodes out to use the nodes of the workload's CPUs"
                )
            } else if m.policy == .local {
                reader.error(
                    n, f.path("nodes"),
                    "policy local allocates on the node of the CPU that runs the thread and takes no nodes",
                    fix: "remove nodes, or choose policy bind, preferred or interleave")
            } else if m.policy == .preferred && nodes.count > 1 {
                reader.error(
                    n, f.path("nodes"), "policy preferred takes one node, not \"\(nodes)\"",
                    fix: "name one node, or use policy interleave or bind for several")
            } else {
                m.nodes = nodes
            }
        }
        m.max = f["max"].flatMap { reader.limit($0, f.path("max"), Bytes.parse) }
        m.high = f["high"].flatMap { reader.limit($0, f.path("high"), Bytes.parse) }
        m.swap = f["swap"].flatMap { reader.limit($0, f.path("swap"), Bytes.parse) }
        for (key, limit) in [("max", m.max), ("high", m.high)] {
            if case .value(let b) = limit, b.value < 1 << 20 {
                reader.error(
                    f[key], f.path(key), "\(b) bytes is too little for any process to start", fix: "give at least 1M")
            }
        }
        if case .value(let high) = m.high, case .value(let max) = m.max, high > max {
            reader.error(
                f["high"], f.path("high"), "memory.high \(high) is above memory.max \(max), so it would never apply",
                fix: "make high at most \(max), or leave it out")
        }
        return m
    }

    func cpu(_ node: Node, _ path: String) -> CPUSpec {
        var c = CPUSpec()
        guard let f = reader.fields(node, path, allowed: ProfileKeys.cpu) else { return c }
        if let q = f["quota"], let text = reader.string(q, f.path("quota")) {
            // The kernel refuses a cpu.max quota under 1 ms (1000 µs) of a 100 ms period: 0.01 CPU.
            if let micro = scaledInteger(text, factor: 1_000_000), micro >= 10_000,
                micro <= UInt64(CPUSet.maxID + 1) * 1_000_000,
                micro % 10 == 0
            {
                c.quotaMicro = micro
            } else {
                reader.error(
                    q, f.path("quota"), "\"\(text)\" is not a CPU quota",
                    fix: "write a number of CPUs from 0.01 to \(CPUSet.maxID + 1), e.g. 2 or 0.5 (at most 5 decimals)")
            }
        }
        c.weight = f["weight"].flatMap { reader.int($0, f.path("weight"), in: 1...10_000) }
        return c
    }

    func ioLimits(_ node: Node, _ path: String) -> [IOLimit] {
        guard let items = reader.sequence(node, path, of: "device limits") else { return [] }
        var limits: [IOLimit] = []
        for (i, item) in items.enumerated() {
            let p = "\(path)[\(i)]"
            guard let f = reader.fields(item, p, allowed: ProfileKeys.ioLimit) else { continue }
            guard let d = f["device"] else {
                reader.error(
                    item, f.path("device"), "missing",
                    fix: "name the block device as MAJOR:MINOR, e.g. \"8:0\" (see lsblk)")
                continue
            }
            guard let device = reader.unit(d, f.path("device"), parseDevice) else { continue }
            if limits.contains(where: { $0.device == device }) {
                reader.error(d, f.path("device"), "device \(device) is limited twice", fix: "merge the two entries")
            }
            let iops: (String) -> Result<Int, UnitError> = { text in
                guard text.count <= 12, let n = Int(text), n >= 1 else {
                    return .failure(
                        UnitError(
                            "\"\(text)\" is not an operation count",
                            fix: "write a positive number of operations per second, or max"))
                }
                return .success(n)
            }
            let limit = IOLimit(
                device: device,
                rbps: f["rbps"].flatMap { reader.limit($0, f.path("rbps"), Bytes.parse) },
                wbps: f["wbps"].flatMap { reader.limit($0, f.path("wbps"), Bytes.parse) },
                riops: f["riops"].flatMap { reader.limit($0, f.path("riops"), iops) },
                wiops: f["wiops"].flatMap { reader.limit($0, f.path("wiops"), iops) })
            if f.pairs.count == 1 {
                reader.error(item, p, "device \(device) has no limit", fix: "add rbps, wbps, riops or wiops")
            }
            for key in ["rbps", "wbps"] {
                if case .value(let b) = (key == "rbps" ? limit.rbps : limit.wbps), b.value == 0 {
                    reader.error(
                        f[key], f.path(key), "0 bytes per second would stop all I/O",
                        fix: "give a positive rate, or max")
                }
            }
            limits.append(limit)
        }
        return limits
    }

    func parseDevice(_ text: String) -> Result<DeviceNumber, UnitError> {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2,
            parts.allSatisfy({ !$0.isEmpty && $0.count <= 7 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let major = Int(parts[0]), let minor = Int(parts[1]), major < 4096, minor < 1 << 20
        else {
            return .failure(
                UnitError(
                    "\"\(text)\" is not a device number", fix: "write MAJOR:MINOR, e.g. \"8:0\" (lsblk shows them)"))
        }
        return .success(DeviceNumber(major: major, minor: minor))
    }

    func run(_ node: Node, _ path: String) -> RunSpec? {
        guard let f = reader.fields(node, path, allowed: ProfileKeys.run) else { return nil }
        var command: [String] = []
        if let c = f["command"] {
            if case .scalar = c, !YAMLReader.isNull(c) {
                reader.error(
                    c, f.path("command"), "command must be a list of arguments, not one string (topo runs no shell)",
                    fix: "write [\"/path/to/program\", \"--flag\"], or [\"/bin/sh\", \"-c\", \"...\"] for a shell")
            } else if let items = reader.sequence(c, f.path("command"), of: "arguments") {
                for (i, item) in items.enumerated() {
                    if let s = reader.string(item, "\(f.path("command"))[\(i)]") { command.append(s) }
                }
                if items.isEmpty {
                    reader.error(c, f.path("command"), "the command is empty", fix: "name the program to run")
                }
            }
        } else {
            reader.error(node, f.path("command"), "missing", fix: "add command: [\"/path/to/program\", \"args\"]")
        }
        var spec = RunSpec(command: command)
        if let e = f["env"], let entries = reader.entries(e, f.path("env"), what: "variable names") {
            for (name, key, value) in entries {
                let p = "\(f.path("env")).\(name)"
                guard let first = name.first, first == "_" || (first.isASCII && first.isLetter),
                    name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }), name.count <= 256
                else {
                    reader.error(
                        key, p, "\"\(printable(name))\" is not a variable name",
                        fix: "use letters, digits and _, not starting with a digit")
                    continue
                }
                if let v = reader.string(value, p) { spec.env.append((name, v)) }
            }
        }
        if let w = f["workdir"], let dir = reader.string(w, f.path("workdir")) {
            if dir.hasPrefix("/") {
                spec.workdir = dir
            } else {
                reader.error(
                    w, f.path("workdir"), "\"\(printable(dir))\" is not an absolute path",
                    fix: "write a path from /, e.g. /srv")
            }
        }
        if let u = f["user"], let user = reader.string(u, f.path("user")) {
            if user.split(separator: ":", omittingEmptySubsequences: false).contains(where: { UInt32($0) == UInt32.max }
            ) {
                reader.error(
                    u, f.path("user"),
                    "\"\(printable(user))\" holds the id 4294967295, which the kernel reads as \"leave unchanged\": the workload would stay root",
                    fix: "write a real uid and gid, e.g. \"65534:65534\"")
            } else if validUser(user) {
                spec.user = user
            } else {
                reader.error(
                    u, f.path("user"), "\"\(printable(user))\" is not a user",
                    fix: "write a uid, uid:gid (e.g. \"65534:65534\"), a user name, or root")
            }
        }
        if let c = f["capabilities"], let items = reader.sequence(c, f.path("capabilities"), of: "capability names") {
            for (i, item) in items.enumerated() {
                let p = "\(f.path("capabilities"))[\(i)]"
                guard let raw = reader.string(item, p) else { continue }
                let name = raw.uppercased().hasPrefix("CAP_") ? raw.uppercased() : "CAP_" + raw.uppercased()
                if Capabilities.all.contains(name) {
                    spec.capabilities.append(name)
                } else {
                    let guess = closest(to: name, among: Capabilities.all).map { "did you mean \($0)? " } ?? ""
                    reader.error(
                        item, p, "\"\(printable(raw))\" is not a Linux capability", fix: "\(guess)see capabilities(7)")
                }
            }
        }
        if let r = f["runtime"] {
            // docker cannot put a container in a namespace named by its path, which a linked workload needs.
            if reader.string(r, f.path("runtime")) == "docker" {
                reader.error(
                    r, f.path("runtime"),
                    "runtime docker cannot join a network namespace by its path (docker run --network ns:/run/netns/NS answers \"not found\"), so it cannot put a workload on its links",
                    fix:
                        "use runtime: crun or runc (image: / or a root filesystem directory), or podman for an image in its storage"
                )
            } else if let runtime = reader.choice(r, f.path("runtime"), Runtime.self) {
                spec.runtime = runtime
            }
        }
        if let i = f["image"], let image = reader.string(i, f.path("image")) {
            if spec.runtime == .process {
                reader.error(
                    i, f.path("image"), "image has no meaning for runtime process, which runs on the host's root",
                    fix: "remove image, or set runtime to crun, runc or podman")
            } else {
                spec.image = image
            }
        }
        if spec.runtime == .podman, let r = f["runtime"], spec.image == nil || spec.image == "/" {
            reader.error(
                f["image"] ?? r, f.path(f["image"] == nil ? "runtime" : "image"),
                "runtime podman runs an image from its own storage, and no image is named",
                fix: "set image: to an image podman has (podman images), or use runtime: crun or runc for the host root"
            )
        }
        return spec
    }

    func validUser(_ user: String) -> Bool {
        let parts = user.split(separator: ":", omittingEmptySubsequences: false)
        let isID: (Substring) -> Bool = {
            !$0.isEmpty && $0.count <= 10 && $0.allSatisfy { $0.isASCII && $0.isNumber } && UInt32($0) != nil
        }
        if parts.count == 2 { return isID(parts[0]) && isID(parts[1]) }
        if isID(parts[0]) { return parts.count == 1 }
        // useradd's portable names: [a-z_][a-z0-9_-]*[$]?, at most 32.
        guard parts.count == 1, let first = user.first, first == "_" || ("a"..."z").contains(first), user.count <= 32
        else { return false }
        return user.enumerated().allSatisfy { i, c in
            ("a"..."z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
                || (c == "$" && i == user.count - 1)
        }
    }

    func link(_ node: Node, _ path: String, workloads: [String]) -> LinkSpec? {
        guard let f = reader.fields(node, path, allowed: ProfileKeys.link) else { return nil }
        var between: [String] = []
        if let b = f["between"], let items = reader.sequence(b, f.path("between"), of: "two workload names") {
            for (i, item) in items.enumerated() {
                guard let name = reader.string(item, "\(f.path("between"))[\(i)]") else { continue }
                if workloads.contains(name) {
                    between.append(name)
                } else {
                    let guess = closest(to: name, among: workloads).map { "did you mean \"\($0)\"? " } ?? ""
                    reader.error(
                        item, "\(f.path("between"))[\(i)]", "no workload named \"\(printable(name))\"",
                        fix: "\(guess)name one of: \(workloads.joined(separator: ", "))")
                }
            }
            if items.count != 2 {
                reader.error(
                    b, f.path("between"), "a link joins exactly two workloads, not \(items.count)",
                    fix: "write between: [a, b]")
            } else if between.count == 2 && between[0] == between[1] {
                reader.error(
                    b, f.path("between"), "a link joins two different workloads", fix: "name two different workloads")
            }
        } else if f["between"] == nil {
            reader.error(node, f.path("between"), "missing", fix: "write between: [a, b] with two workload names")
        }
        let subnet = f["subnet"].flatMap { reader.unit($0, f.path("subnet"), IPv4Subnet.parse) }
        let mtu = f["mtu"].flatMap { reader.int($0, f.path("mtu"), in: 68...65535) }
        let netem = f["netem"].flatMap { self.netem($0, f.path("netem"), between: between) }
        guard between.count == 2, between[0] != between[1] else { return nil }
        return LinkSpec(between: between, subnet: subnet, mtu: mtu, netem: netem)
    }

    func netem(_ node: Node, _ path: String, between: [String]) -> NetemSpec? {
        guard let f = reader.fields(node, path, allowed: ProfileKeys.netem) else { return nil }
        var n = NetemSpec()
        if let fr = f["from"], let from = reader.string(fr, f.path("from")) {
            if between.count == 2 && !between.contains(from) {
                reader.error(
                    fr, f.path("from"), "\"\(printable(from))\" is not an end of this link",
                    fix: "name \(between[0]) or \(between[1]), or leave from out to shape both directions")
            } else {
                n.from = from
            }
        }
        if let r = f["rate"], let rate = reader.unit(r, f.path("rate"), BitRate.parse) {
            if rate.bitsPerSecond < 8 {
                reader.error(
                    r, f.path("rate"), "rate must be above 0 (at least 8bit, one byte per second)",
                    fix: "write a positive rate, e.g. 100mbit")
            } else {
                n.rate = rate
            }
        }
        for key in ["delay", "jitter"] {
            guard let d = f[key], let value = reader.unit(d, f.path(key), Duration.parse) else { continue }
            if value > ProfileDecoder.maxNetemTime {
                reader.error(d, f.path(key), "\(value) is above netem's limit of about 274s", fix: "write at most 274s")
                continue
            }
            if key == "delay" { n.delay = value } else { n.jitter = value }
        }
        if let d = f["distribution"], let dist = reader.choice(d, f.path("distribution"), NetemDistribution.self) {
            if n.jitter == nil {
                reader.error(
                    d, f.path("distribution"), "a distribution shapes the jitter, and there is none",
                    fix: "add jitter, or remove distribution")
            } else {
                n.distribution = dist
            }
        }
        n.loss = f["loss"].flatMap { reader.unit($0, f.path("loss"), Percent.parse) }
        n.duplicate = f["duplicate"].flatMap { reader.unit($0, f.path("duplicate"), Percent.parse) }
        n.reorder = f["reorder"].flatMap { reader.unit($0, f.path("reorder"), Percent.parse) }
        n.corrupt = f["corrupt"].flatMap { reader.unit($0, f.path("corrupt"), Percent.parse) }
        n.limit = f["limit"].flatMap { reader.int($0, f.path("limit"), in: 1...Int(UInt32.max), unit: " packets") }

        if let jitter = n.jitter, let delay = n.delay, jitter > delay {
            reader.error(
                f["jitter"], f.path("jitter"),
                "jitter \(jitter) around a delay of \(delay) asks for negative delays, which netem clamps to 0",
                fix:
                    "write delay: \(jitter) or more, or leave delay out: it then defaults to the jitter (packets wait 0 to \(Duration(nanoseconds: jitter.nanoseconds * 2)))"
            )
        }
        if let r = n.reorder, !r.isZero, (n.effectiveDelay ?? .zero) == .zero {
            reader.error(
                f["reorder"], f.path("reorder"), "netem reorders only delayed packets, and this link has no delay",
                fix: "add a delay, e.g. delay: 10ms")
        }
        if let jitter = n.jitter, jitter > .zero, n.rate == nil {
            reader.warning(
                f["jitter"], f.path("jitter"),
                "jitter without a rate reorders packets (each gets its own random delay)",
                fix: "add a rate to keep packets in order, or accept the reordering")
        }
        if let rate = n.rate, rate.bitsPerSecond > 10_000_000 {
            reader.warning(
                f["rate"], f.path("rate"), "above about 10mbit netem sends in timer-sized bursts, not a smooth stream",
                fix: "measure the shaped rate with a long transfer rather than single packets")
        }
        return n
    }

    /// Explicit CPU lists that overlap where isolation forbids it are a profile error, found without a
    /// host: the planner would refuse them on any machine.
    func checkCPUListsTogether(_ workloads: [Workload], _ nodes: [Node]) {
        let explicit = workloads.indices.compactMap {
            i -> (index: Int, w: (name: String, isolation: Isolation, cpus: CPUSet))? in
            guard case .list(let cpus) = workloads[i].cpus else { return nil }
            return (i, (workloads[i].name, workloads[i].isolation, cpus))
        }
        for c in Isolation.conflictMessages(explicit.map(\.w)) {
            let i = explicit[c.later].index
            reader.error(nodes[i], "workloads.\(workloads[i].name).cpus", c.message)
        }
    }

    func checkLinksTogether(_ links: [(index: Int, node: Node, link: LinkSpec)]) {
        var seen: [Set<String>: Int] = [:]
        for (i, node, link) in links {
            let pair = Set(link.between)
            if let j = seen[pair] {
                reader.error(
                    node, "links[\(i)]",
                    "\(link.between[0]) and \(link.between[1]) are already linked by links[\(j)]",
                    fix: "keep one link per pair")
            } else {
                seen[pair] = i
            }
        }
        // Only links with a subnet, as plain values: every pair is compared, so nothing heavy is copied per pair.
        let subnets = links.indices.compactMap { k in links[k].link.subnet.map { (k, $0) } }
        for (a, (k, x)) in subnets.enumerated() {
            for (l, y) in subnets[(a + 1)...] where x.overlaps(y) {
                reader.error(
                    links[l].node, "links[\(links[l].index)].subnet",
                    "\(y) overlaps links[\(links[k].index)]'s subnet \(x)", fix: "give each link its own subnet")
            }
        }
    }
}

/// A name as it may be shown in a message: control characters escaped, long names cut.
func printable(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars.prefix(48) {
        if scalar.value < 0x20 || scalar.value == 0x7F {
            out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return s.unicodeScalars.count > 48 ? out + "…" : out
}
