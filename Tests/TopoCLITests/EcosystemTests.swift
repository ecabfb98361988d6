import Foundation
import Testing

@testable import TopoCore

/// What fits topo into the tools around it: the profile schema, the dry run, exported hosts,
/// completions, colour, state and cgroup paths, help text. Black-box, through the built binary.
@Suite struct EcosystemTests {
    typealias Outcome = CLITests.Outcome
    func topo(_ args: String..., environment: [String: String?] = [:]) throws -> Outcome {
        try CLITests.run(args, environment: environment)
    }
    static let repo = CLITests.repo

    /// A new directory under the system's temporary directory, removed by the caller.
    func temporaryDirectory() throws -> String {
        var template = Array("\(NSTemporaryDirectory())/topo-eco.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    /// Runs a program to its end: its exit status and standard output (standard error discarded).
    func output(
        of program: String, _ args: [String], environment: [String: String?] = [:], in directory: String = repo
    ) throws -> (status: Int32, stdout: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func files(below dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).sorted()
    }

    // MARK: schema

    @Test func schemaIsPrintedAndIsTheRepositorysCopy() throws {
        let r = try topo("schema")
        #expect(r.status == 0)
        let file = try String(contentsOfFile: Self.repo + "/docs/profile.schema.json", encoding: .utf8)
        #expect(
            r.stdout == file,
            "docs/profile.schema.json differs from `topo schema`: run topo schema > docs/profile.schema.json")
    }

    /// The schema names exactly the keys, choices and reserved names the decoder knows: a key added
    /// to one and not the other fails here.
    @Test func schemaNamesExactlyWhatTheDecoderAccepts() throws {
        let schema = try #require(
            try JSONSerialization.jsonObject(with: Data(ProfileSchema.json.utf8)) as? [String: Any])
        let defs = try #require(schema["$defs"] as? [String: [String: Any]])
        for (definition, keys) in ProfileKeys.byDefinition {
            let properties = definition == "profile" ? schema["properties"] : defs[definition]?["properties"]
            let named = Set((properties as? [String: Any])?.keys.map { $0 } ?? [])
            #expect(
                named == Set(keys),
                "schema \(definition): \(named.symmetricDifference(Set(keys)).sorted()) named by only one of schema and decoder"
            )
            if definition != "profile" {
                #expect(defs[definition]?["additionalProperties"] as? Bool == false, "\(definition)")
            }
        }
        func choices(_ def: String, _ key: String) -> Set<String> {
            Set(((defs[def]?["properties"] as? [String: Any])?[key] as? [String: Any])?["enum"] as? [String] ?? [])
        }
        #expect(choices("workload", "isolation") == Set(Isolation.allCases.map(\.rawValue)))
        #expect(choices("memory", "policy") == Set(MemoryPolicy.allCases.map(\.rawValue)))
        #expect(choices("run", "runtime") == Set(Runtime.allCases.map(\.rawValue)))
        #expect(choices("host", "smt") == Set(SMTPolicy.allCases.map(\.rawValue)))
        #expect(choices("netem", "distribution") == Set(NetemDistribution.allCases.map(\.rawValue)))
        #expect(choices("hostTune", "thp") == Set(THPMode.allCases.map(\.rawValue)))
        #expect(choices("hostTune", "irqbalance") == Set(IrqbalanceAction.allCases.map(\.rawValue)))
        #expect(choices("hostTune", "scope") == Set(TuneScope.allCases.map(\.rawValue)))
        #expect(
            Set((defs["switch"]?["enum"] as? [Any] ?? []).compactMap { $0 as? String })
                == Set(Switch.allCases.map(\.rawValue)))
        let name = try #require((schema["properties"] as? [String: Any])?["name"] as? [String: Any])
        #expect(name["pattern"] as? String == "^\(ProfileDecoder.profileNamePattern)$")
        #expect(Set(((name["not"] as? [String: Any])?["enum"] as? [String]) ?? []) == StateStore.reservedNames)
        let workloads = try #require((schema["properties"] as? [String: Any])?["workloads"] as? [String: Any])
        #expect(
            (workloads["propertyNames"] as? [String: Any])?["pattern"] as? String
                == "^\(ProfileDecoder.workloadNamePattern)$")
    }

    static let python = "/usr/bin/python3"
    static var hasValidator: Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import jsonschema, yaml"]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Every shipped profile is valid under the schema by python3-jsonschema's draft 2020-12
    /// validator, and the invalid fixtures whose faults a schema can express are not.
    @Test(
        .enabled(
            if: hasValidator,
            "needs /usr/bin/python3 with jsonschema and yaml (scripts/test installs python3-jsonschema and python3-yaml)"
        ))
    func anEstablishedValidatorAgreesWithTheDecoder() throws {
        let script = """
            import glob, json, sys, yaml, jsonschema
            schema = json.load(open("docs/profile.schema.json"))
            jsonschema.Draft202012Validator.check_schema(schema)
            v = jsonschema.Draft202012Validator(schema)
            for path in sys.argv[1:]:
                errors = sorted(e.message for e in v.iter_errors(yaml.safe_load(open(path))))
                print(json.dumps({"path": path, "errors": errors}))
            """
        let profiles = try FileManager.default.contentsOfDirectory(atPath: Self.repo + "/Profiles").filter {
            $0.hasSuffix(".yaml")
        }.sorted().map { "Profiles/\($0)" }
        // duplicate-key.yaml (JSON has no duplicate keys) and syntax.yaml (not YAML) are beyond a schema.
        let invalid = ["many-problems", "missing", "netem"].map { "Tests/Fixtures/profiles/invalid/\($0).yaml" }
        let run = try output(of: Self.python, ["-c", script] + profiles + invalid)
        #expect(run.status == 0)
        var seen: [String: [String]] = [:]
        for line in run.stdout.split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            seen[o["path"] as! String] = o["errors"] as? [String]
        }
        #expect(profiles.count >= 8)
        for path in profiles { #expect(seen[path] == [], "\(path): \(seen[path] ?? ["not checked"])") }
        for path in invalid { #expect(!(seen[path] ?? []).isEmpty, "\(path) passed the schema") }
        #expect(
            seen["Tests/Fixtures/profiles/invalid/many-problems.yaml"]?.contains { $0.contains("descripton") } == true)
    }

    /// Schema and decoder agree on each value's type: every number of every shipped profile written
    /// quoted (`count: "1"`, a string in YAML) and every string that reads as a number written bare
    /// (`pids: "64"` → `pids: 64`) gets the same verdict from both.
    @Test(
        .enabled(
            if: hasValidator,
            "needs /usr/bin/python3 with jsonschema and yaml (scripts/test installs python3-jsonschema and python3-yaml)"
        ))
    func schemaAndDecoderAgreeOnQuotedAndBareNumbers() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import copy, glob, json, os, sys, yaml, jsonschema
            v = jsonschema.Draft202012Validator(json.load(open("docs/profile.schema.json")))
            out = sys.argv[1]
            def leaves(node, path=()):
                if isinstance(node, dict):
                    for k, x in node.items(): yield from leaves(x, path + (k,))
                elif isinstance(node, list):
                    for i, x in enumerate(node): yield from leaves(x, path + (i,))
                else:
                    yield path, node
            def retyped(value):
                if isinstance(value, bool): return None
                if isinstance(value, (int, float)): return str(value)
                if isinstance(value, str):
                    try: return int(value)
                    except ValueError: return None
                return None
            for profile in sorted(glob.glob("Profiles/*.yaml")):
                doc = yaml.safe_load(open(profile))
                for n, (path, value) in enumerate(leaves(doc)):
                    other = retyped(value)
                    if other is None: continue
                    changed = copy.deepcopy(doc)
                    node = changed
                    for k in path[:-1]: node = node[k]
                    node[path[-1]] = other
                    name = os.path.join(out, f"{os.path.basename(profile)[:-5]}-{n}.yaml")
                    yaml.safe_dump(changed, open(name, "w"), sort_keys=False)
                    print(json.dumps({"file": name, "path": ".".join(map(str, path)), "schema": not any(True for _ in v.iter_errors(changed))}))
            """
        let made = try output(of: Self.python, ["-c", script, dir])
        #expect(made.status == 0)
        var schema: [String: (path: String, valid: Bool)] = [:]
        for line in made.stdout.split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            schema[o["file"] as! String] = (o["path"] as! String, o["schema"] as! Bool)
        }
        #expect(schema.count >= 40, "only \(schema.count) values retyped")
        let r = try CLITests.run(["validate", "--json"] + schema.keys.sorted())
        let files = try #require(
            (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["files"]
                as? [[String: Any]])
        #expect(files.count == schema.count)
        for file in files {
            let name = file["file"] as! String
            let valid = file["valid"] as! Bool
            #expect(
                schema[name]?.valid == valid,
                "\(schema[name]?.path ?? name): the schema says \(schema[name]?.valid == true ? "valid" : "invalid"), topo \(valid ? "valid" : "invalid")"
            )
        }
    }

    @Test func everyShippedProfileNamesTheSchemaForEditors() throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.repo + "/Profiles")
        where name.hasSuffix(".yaml") {
            let text = try String(contentsOfFile: "\(Self.repo)/Profiles/\(name)", encoding: .utf8)
            #expect(text.hasPrefix("# yaml-language-server: $schema=../docs/profile.schema.json\n"), "\(name)")
        }
    }

    // MARK: dry run

    /// Every step, in order, with the kernel's paths and values; nothing made (a temporary state
    /// directory and cgroup root stay empty), on a host that is not this one.
    @Test func dryRunPrintsEveryStepAndTouchesNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: "\(dir)/cgroup", withIntermediateDirectories: false)
        let r = try topo(
            "apply", "--dry-run", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht",
            "--state-dir", "\(dir)/state", "--cgroup-root", "\(dir)/cgroup")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(files(below: dir) == ["cgroup", "state"], "the dry run made \(files(below: dir))")
        let out = r.stdout
        #expect(out.contains("host checks (privileges, cgroup v2, controllers, programs, users) are skipped"))
        #expect(out.contains("\(dir)/cgroup/cgroup.subtree_control — conditional"))
        #expect(out.contains("mkdir \(dir)/cgroup/topo/api-gateway/server, marked trusted.topo.owner=api-gateway"))
        #expect(out.contains("write \"0-1,16-17\" to \(dir)/cgroup/topo/api-gateway/server/cpuset.cpus"))
        #expect(out.contains("write \"4294967296\" to \(dir)/cgroup/topo/api-gateway/server/memory.max"))
        #expect(out.contains("write \"4096\" to \(dir)/cgroup/topo/api-gateway/server/pids.max"))
        #expect(
            out.contains(
                "create network namespace topo.api-gateway.server, bound at /run/netns/topo.api-gateway.server"))
        #expect(out.contains("create veth pair"))
        #expect(out.contains("add root qdisc netem on"))
        #expect(out.contains("start workload server: /usr/bin/iperf3 --server --port 8080"))
        #expect(out.contains("output appended to \(dir)/state/api-gateway/logs/server.log"))
        #expect(out.contains("capabilities kept: none (every other one dropped)"))
        // One numbered step per resource of the plan, in order.
        let plan = try topo("plan", "--json", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht")
        let resources = try #require(
            (try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["resources"] as? [Any])
        let numbers = out.split(separator: "\n").compactMap { line -> Int? in
            let t = line.drop { $0 == " " }
            guard let dot = t.firstIndex(of: "."), line.hasPrefix(" ") else { return nil }
            return Int(t[..<dot])
        }
        #expect(numbers == Array(1...resources.count))
        #expect(out.contains("\(resources.count) steps"))
    }

    /// A cgroup v1 host, a host without root: the dry run needs neither (it reads only the profile
    /// and the sysfs tree it is given).
    @Test(
        .enabled(
            if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
                && getpwnam("nobody") != nil,
            "runs the dry run as nobody: needs root to switch to it, setpriv and a nobody user"))
    func dryRunNeedsNoRootAndNoCgroup2() throws {
        let nobody = try #require(getpwnam("nobody"))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let profile = "\(dir)/p.yaml"
        try FileManager.default.copyItem(atPath: Self.repo + "/Profiles/quickstart.yaml", toPath: profile)
        chmod(profile, 0o644)
        let (status, text) = try output(
            of: "/usr/bin/setpriv",
            [
                "--reuid", String(nobody.pointee.pw_uid), "--regid", String(nobody.pointee.pw_gid), "--clear-groups",
                CLITests.binary, "apply", "--dry-run", profile, "--sysfs", Self.repo + "/Tests/Fixtures/hosts/1n-2c",
            ])
        #expect(status == 0, "\(text)")
        #expect(text.contains("start workload app: /bin/sleep infinity"))
    }

    @Test func dryRunOptionsAreChecked() throws {
        #expect(try topo("apply", "Profiles/quickstart.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c").status == 2)
        #expect(
            try topo(
                "apply", "--dry-run", "--locked", "Profiles/quickstart.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c"
            ).status == 2)
        #expect(try topo("apply", "--dry-run", "Profiles/quickstart.yaml", "--state-dir", "relative/dir").status == 2)
        let invalid = try topo("apply", "--dry-run", "Tests/Fixtures/profiles/invalid/netem.yaml")
        #expect(invalid.status == 2 && invalid.stdout.isEmpty)
    }

    // MARK: host --export

    /// The export holds only the files the planner reads, and plans exactly like the host it came from.
    @Test func anExportedHostPlansLikeThisHost() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try topo("host", "--export", "\(dir)/h")
        #expect(r.status == 0, "\(r.stderr)")
        let listed = r.stdout.split(separator: "\n").map(String.init)
        let written = files(below: "\(dir)/h").filter { !Sys.isDirectory("\(dir)/h/\($0)") }
        #expect(Set(listed) == Set(written.map { "\(dir)/h/\($0)" }))
        #expect(
            written.allSatisfy { $0.hasPrefix("devices/system/cpu/") || $0.hasPrefix("devices/system/node/") },
            "\(written)")
        let bytes = written.reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: "\(dir)/h/\($1)")[.size] as? Int) ?? 0)
        }
        #expect(bytes < 64 << 10, "\(bytes) bytes")
        func topology(_ json: String) throws -> [String] {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return try ["cpus", "nodes"].map {
                String(
                    decoding: try JSONSerialization.data(withJSONObject: o[$0] as Any, options: .sortedKeys),
                    as: UTF8.self)
            }
        }
        #expect(
            try topology(topo("host", "--json").stdout)
                == topology(topo("host", "--json", "--sysfs", "\(dir)/h").stdout))
        let here = try topo("plan", "--json", "Profiles/quickstart.yaml")
        let there = try topo("plan", "--json", "Profiles/quickstart.yaml", "--sysfs", "\(dir)/h")
        #expect(here.status == 0 && here.stdout == there.stdout)
        // Never into a directory with something in it.
        let again = try topo("host", "--export", "\(dir)/h")
        #expect(again.status == 3 && again.stderr.contains("not empty"))
    }

    // MARK: completions

    /// A state directory with `names` applied, each with quickstart's plan (workloads app and load).
    func fakeState(_ names: [String]) throws -> String {
        let dir = try temporaryDirectory()
        let plan = try topo("plan", "--json", "Profiles/quickstart.yaml").stdout
        for name in names {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(name)/logs", withIntermediateDirectories: true)
            try plan.replacingOccurrences(of: "\"name\" : \"quickstart\"", with: "\"name\" : \"\(name)\"")
                .write(toFile: "\(dir)/\(name)/plan.json", atomically: false, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: "\(dir)/\(name)/applied", contents: Data("1\n".utf8))
        }
        return dir
    }

    /// bash's completion function, as `topo --generate-completion-script bash` defines it, run for a command line.
    func complete(_ words: [String], state: String) throws -> [String] {
        let script = try topo("--generate-completion-script", "bash").stdout
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try script.write(toFile: "\(dir)/topo.bash", atomically: false, encoding: .utf8)
        let quoted = words.map { "'\($0)'" }.joined(separator: " ")
        let path =
            URL(fileURLWithPath: CLITests.binary).deletingLastPathComponent().path + ":"
            + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let text = try output(
            of: "/bin/bash",
            [
                "-c",
                """
                source "\(dir)/topo.bash"
                COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); COMP_LINE="\(words.joined(separator: " "))"; COMP_POINT=${#COMP_LINE}
                _topo topo "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"   # as bash calls it: command, word, previous word
                printf '%s\\n' "${COMPREPLY[@]}"
                """,
            ], environment: ["PATH": path, "TOPO_STATE_DIR": state], in: dir
        ).stdout
        return text.split(separator: "\n").map(String.init)
    }

    @Test func bashCompletesAppliedProfilesAndTheirWorkloads() throws {
        let state = try fakeState(["alpha", "beta"])
        defer { try? FileManager.default.removeItem(atPath: state) }
        #expect(try complete(["topo", "down", ""], state: state) == ["alpha", "beta"])
        #expect(try complete(["topo", "status", "b"], state: state) == ["beta"])
        #expect(try complete(["topo", "exec", ""], state: state) == ["alpha", "beta"])
        #expect(try complete(["topo", "logs", "alpha", ""], state: state) == ["app", "load"])
        #expect(try complete(["topo", "exec", "beta", "l"], state: state) == ["load"])
        #expect(try complete(["topo", "apply", "--color", ""], state: state) == ["auto", "always", "never"])
        for shell in ["zsh", "fish"] {
            let r = try topo("--generate-completion-script", shell)
            #expect(r.status == 0 && r.stdout.contains("---completion"), "\(shell)")
        }
    }

    // MARK: output

    @Test func colourOnlyWhenAskedOrOnATerminalWithoutNoColor() throws {
        let esc = "\u{1B}["
        let args = ["plan", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht"]
        #expect(try CLITests.run(args).stdout.contains(esc) == false)  // a pipe
        #expect(try CLITests.run(args + ["--color", "always"]).stdout.contains(esc))
        #expect(try CLITests.run(args + ["--color", "always"], environment: ["NO_COLOR": "1"]).stdout.contains(esc))
        #expect(try CLITests.run(args + ["--color", "never"]).stdout.contains(esc) == false)
        #expect(try CLITests.run(args + ["--color", "sometimes"]).status == 2)
        // The picture keeps its layout: the same text once the escapes are taken out.
        let coloured = try CLITests.run(args + ["--color", "always"]).stdout
        let plain = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        #expect(plain == (try CLITests.run(args).stdout))
    }

    /// On a terminal (script(1) gives the command one): colour, unless NO_COLOR is set.
    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"),
            "needs script(1) for a terminal (scripts/test installs bsdutils)"))
    func colourOnATerminalUnlessNoColor() throws {
        let esc = "\u{1B}["
        let args = ["plan", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht"]
        func onTerminal(_ env: [String: String?]) throws -> String {
            let command = ([CLITests.binary] + args).joined(separator: " ")
            return try output(
                of: "/usr/bin/script", ["-qec", command, "/dev/null"],
                environment: env.merging(["TERM": "xterm"]) { a, _ in a }
            ).stdout
        }
        #expect(try onTerminal(["NO_COLOR": nil]).contains(esc))
        #expect(try onTerminal(["NO_COLOR": "1"]).contains(esc) == false)
    }

    @Test func stateDirectoryFromTheOptionOrTheEnvironment() throws {
        let state = try fakeState(["alpha"])
        defer { try? FileManager.default.removeItem(atPath: state) }
        let byOption = try topo("status", "--json", "--state-dir", state)
        let byEnvironment = try topo("status", "--json", environment: ["TOPO_STATE_DIR": state])
        #expect(byOption.stdout.contains("\"name\" : \"alpha\""))
        #expect(byOption.stdout == byEnvironment.stdout)
        #expect(try topo("status", "--state-dir", "relative").status == 2)
        #expect(try topo("status", environment: ["TOPO_STATE_DIR": "../x"]).status == 2)
        #expect(try topo("status", "nope", "--state-dir", state).status == 3)
        let empty = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(try topo("status", "--state-dir", empty).stdout == "nothing is applied\n")
    }

    @Test func logsAsJSONLines() throws {
        let state = try fakeState(["alpha"])
        defer { try? FileManager.default.removeItem(atPath: state) }
        try "first\nsecond \"quoted\"\n\u{FF}\u{FE}bytes\nno newline".write(
            toFile: "\(state)/alpha/logs/app.log", atomically: false, encoding: .isoLatin1)
        let r = try topo("logs", "alpha", "app", "--json", "--state-dir", state)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try r.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
        }
        #expect(lines.map { $0?["line"] } == ["first", "second \"quoted\"", "\u{FFFD}\u{FFFD}bytes", "no newline"])
        #expect(lines.allSatisfy { $0?["profile"] == "alpha" && $0?["workload"] == "app" })
        let tail = try topo("logs", "alpha", "app", "--json", "--tail", "1", "--state-dir", state)
        #expect(tail.stdout.split(separator: "\n").count == 1)
    }

    /// A log that is not a file (a FIFO, a link to /dev/zero) is refused by what it is, at once.
    @Test func aLogThatIsNotAFileIsRefused() throws {
        let state = try fakeState(["alpha"])
        defer { try? FileManager.default.removeItem(atPath: state) }
        let log = "\(state)/alpha/logs/app.log"
        #expect(mkfifo(log, 0o600) == 0)
        let started = Date()
        let fifo = try topo("logs", "alpha", "app", "--state-dir", state)
        #expect(fifo.status == 3 && fifo.stderr.contains(log) && fifo.stderr.contains("FIFO"), "\(fifo)")
        try FileManager.default.removeItem(atPath: log)
        try FileManager.default.createSymbolicLink(atPath: log, withDestinationPath: "/dev/zero")
        let zero = try topo("logs", "alpha", "app", "--json", "--state-dir", state)
        #expect(zero.status == 3 && zero.stderr.contains("character device"), "\(zero)")
        #expect(Date().timeIntervalSince(started) < 5)
    }

    // MARK: help

    /// The boot isolation for a profile's exclusive CPUs on a 2-socket host, as text and JSON; topo never edits the boot loader.
    @Test func hostSuggestsTheBootCommandLineForAProfile() throws {
        let text = try topo(
            "host", "--suggest-cmdline", "Profiles/reserve.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht")
        #expect(text.status == 0, "\(text)")
        #expect(
            text.stdout.contains(
                "isolcpus=managed_irq,domain,1,17 nohz_full=1,17 rcu_nocbs=1,17 irqaffinity=0,2-16,18-31"),
            "\(text.stdout)")
        #expect(text.stdout.contains("topo never edits the boot loader"))
        let json = try topo(
            "host", "--suggest-cmdline", "Profiles/quiet.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c", "--json")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
        let isolation = try #require(object["isolation"] as? [String: Any])
        #expect(isolation["cpus"] as? String == "1" && isolation["housekeeping"] as? String == "0")
        let shared = try topo(
            "host", "--suggest-cmdline", "Profiles/cpu-quota.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht")
        #expect(shared.status == 0 && shared.stdout.contains("nothing to isolate at boot"), "\(shared)")
        #expect(try topo("host", "--suggest-cmdline", "Profiles/missing.yaml").status == 2)
    }

    /// Under the systemd manager the dry run asks systemd for the profile's scope and writes only below it.
    @Test func theSystemdManagerIsChosenByOptionOrEnvironment() throws {
        let dry = try topo(
            "apply", "--dry-run", "--cgroup-manager", "systemd", "Profiles/quickstart.yaml", "--sysfs",
            "Tests/Fixtures/hosts/1n-2c")
        #expect(dry.status == 0, "\(dry)")
        #expect(
            dry.stdout.contains(
                "systemd-run --scope --unit=topo-quickstart.scope --slice=topo --property=Delegate=yes"),
            "\(dry.stdout)")
        let writes = dry.stdout.split(separator: "\n").filter { $0.contains("write \"") || $0.contains("mkdir ") }
        #expect(
            !writes.isEmpty && writes.allSatisfy { $0.contains("/sys/fs/cgroup/topo.slice/topo-quickstart.scope/") },
            "\(writes)")
        let env = try CLITests.run(
            ["plan", "--json", "Profiles/quickstart.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c"],
            environment: ["TOPO_CGROUP_MANAGER": "bogus"])
        #expect(
            env.status == 2 && env.stderr.contains("takes auto, systemd or cgroupfs"),
            "plan plans for the manager apply would use: \(env)")
        let bad = try topo("status", "--cgroup-manager", "bogus")
        #expect(bad.status == 2 && bad.stderr.contains("takes auto, systemd or cgroupfs"), "\(bad)")
    }

    /// --json is honoured on failure and with --lock, and the dry run gives its steps as data.
    @Test func jsonOnFailureWithALockAndForTheDryRun() throws {
        let invalid = try topo("plan", "--json", "Tests/Fixtures/profiles/invalid/many-problems.yaml")
        let failed = try #require(
            try JSONSerialization.jsonObject(with: Data(invalid.stdout.utf8)) as? [String: Any], "\(invalid)")
        #expect(invalid.status == 2 && failed["ok"] as? Bool == false && failed["status"] as? Int == 2)
        #expect(((failed["diagnostics"] as? [[String: Any]])?.count ?? 0) > 10)
        let cannot = try topo("plan", "--json", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c")
        let refused = try #require(
            try JSONSerialization.jsonObject(with: Data(cannot.stdout.utf8)) as? [String: Any], "\(cannot)")
        #expect(cannot.status == 3 && (refused["message"] as? String)?.contains("cannot satisfy") == true)
        let dry = try topo(
            "apply", "--dry-run", "--json", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht")
        let run = try #require(
            try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any], "\(dry)")
        let steps = try #require(run["steps"] as? [[String: Any]])
        let plan = try #require(
            try JSONSerialization.jsonObject(
                with: Data(
                    try topo("plan", "--json", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht")
                        .stdout.utf8)) as? [String: Any])
        #expect(dry.status == 0 && steps.count == (plan["resources"] as? [Any])?.count && steps.count > 10)
        #expect(
            steps.first?["kind"] as? String == "cgroupRoot" && (steps.first?["does"] as? [String])?.isEmpty == false)
        #expect(!dry.stdout.contains("\"_0\""))
        let dir = NSTemporaryDirectory() + "topo-lockjson-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: CLITests.repo + "/Profiles/quickstart.yaml", toPath: "\(dir)/q.yaml")
        let lock = try topo("plan", "--json", "--lock", "\(dir)/q.yaml")
        if lock.status == 0 {  // this host can place quickstart (2 CPUs)
            let written = try #require(
                try JSONSerialization.jsonObject(with: Data(lock.stdout.utf8)) as? [String: Any], "\(lock)")
            #expect(
                written["format"] as? String == "topo-lock/1"
                    && FileManager.default.fileExists(atPath: "\(dir)/q.lock.json"))
        } else {
            #expect(
                (try JSONSerialization.jsonObject(with: Data(lock.stdout.utf8)) as? [String: Any])?["ok"] as? Bool
                    == false, "\(lock)")
        }
    }

    /// A misspelt command, or help about one that does not exist: exit 2 and the nearest command.
    @Test func aMisspeltCommandSuggestsTheNearest() throws {
        let typo = try topo("valdate", "Profiles/quickstart.yaml")
        #expect(
            typo.status == 2 && typo.stderr.contains("unknown command 'valdate' (did you mean 'validate'?)"), "\(typo)")
        let help = try topo("help", "nosuch")
        #expect(help.status == 2 && help.stderr.contains("unknown command 'nosuch'"), "\(help)")
        #expect(try topo("help", "validate").status == 0)
    }

    /// Several profiles at once, one line each; `-` is standard input (validate, plan).
    @Test func validateTakesSeveralFilesAndStandardInput() throws {
        let several = try topo(
            "validate", "Profiles/quickstart.yaml", "Profiles/reserve.yaml",
            "Tests/Fixtures/profiles/invalid/missing.yaml")
        #expect(several.status == 2, "\(several)")
        let lines = several.stdout.split(separator: "\n")
        #expect(
            lines.count == 3 && lines[0].hasPrefix("Profiles/quickstart.yaml: valid")
                && lines[2].contains("missing.yaml: invalid"), "\(several.stdout)")
        let json = try topo("validate", "--json", "Profiles/quickstart.yaml", "Profiles/reserve.yaml")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let array = try #require(object["files"] as? [[String: Any]])
        #expect(
            json.status == 0 && object["valid"] as? Bool == true
                && array.map { $0["file"] as? String } == ["Profiles/quickstart.yaml", "Profiles/reserve.yaml"])
        func piped(_ args: [String], _ input: String) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = args
            p.currentDirectoryURL = URL(fileURLWithPath: CLITests.repo)
            let stdin = Pipe()
            let out = Pipe()
            p.standardInput = stdin
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let profile = try String(contentsOfFile: CLITests.repo + "/Profiles/quickstart.yaml", encoding: .utf8)
        let (status, text) = try piped(["validate", "-"], profile)
        #expect(status == 0 && text.contains("valid profile quickstart"), "\(text)")
        let (planned, table) = try piped(["plan", "-", "--sysfs", "Tests/Fixtures/hosts/1n-2c"], profile)
        #expect(planned == 0 && table.contains("plan quickstart"), "\(table)")
        #expect(try piped(["validate", "-"], "version: 1\nname: Bad\n").0 == 2)
        #expect(try topo("apply", "--locked", "-").status == 2)
    }

    @Test func anUnknownCommandIsAnErrorEvenWithHelp() throws {
        let r = try topo("lgos", "--help")
        #expect(r.status == 2 && r.stdout.isEmpty)
        #expect(r.stderr.contains("unknown command 'lgos' (did you mean 'logs'?)"))
        #expect(try topo("logs", "--help").status == 0)
        #expect(try topo("help", "logs").status == 0)
    }

    static let commands = [
        "validate", "plan", "host", "apply", "status", "verify", "exec", "logs", "run", "report", "diff", "down",
        "schema",
    ]

    /// At 80 columns no line is longer; at 5000 a paragraph is one line (argument-parser wraps it to
    /// the terminal, so a hard break in the source would show as a ragged line); each command shows an example.
    @Test func helpWrapsCleanlyAndShowsAnExample() throws {
        for command in [""] + Self.commands {
            let args = command.isEmpty ? ["--help"] : [command, "--help"]
            let narrow = try CLITests.run(args, environment: ["COLUMNS": "80"])
            #expect(narrow.status == 0)
            for line in narrow.stdout.split(separator: "\n") where line.count > 80 {
                Issue.record("topo \(command) --help: \(line.count) columns: \(line)")
            }
            let wide = try CLITests.run(args, environment: ["COLUMNS": "5000"]).stdout
            let prose = wide.components(separatedBy: "USAGE:")[0].split(
                separator: "\n", omittingEmptySubsequences: false)
            for (a, b) in zip(prose, prose.dropFirst())
            where !a.isEmpty && !b.isEmpty && !a.hasPrefix(" ") && !b.hasPrefix(" ") && !a.hasSuffix(":") {
                Issue.record("topo \(command) --help: a paragraph broken by hand after \"\(a.suffix(40))\"")
            }
            if !command.isEmpty { #expect(wide.contains("Example"), "topo \(command) --help has no example") }
        }
    }
}
