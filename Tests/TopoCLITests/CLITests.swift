import Foundation
import Testing

@testable import TopoCore

/// Black-box tests: run the built `topo` binary and check its output and exit code.
@Suite struct CLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The `topo` built beside this test bundle.
    static var binary: String {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        if dir.path.hasSuffix(".xctest") || dir.lastPathComponent == "Contents" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("topo").path
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func topo(_ args: String...) throws -> Outcome { try Self.run(args) }

    /// Runs topo with `args` in the repository, with `environment` added to (or, for a nil value, taken from) this process's.
    static func run(_ args: [String], environment: [String: String?] = [:]) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: Self.repo)
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            p.environment = env
        }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func binaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "\(Self.binary)")
    }

    @Test func validateAcceptsEveryShippedProfile() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.repo + "/Profiles").filter {
            $0.hasSuffix(".yaml")
        }.sorted()
        #expect(names.count >= 7, "\(names)")
        for name in names {
            let r = try topo("validate", "Profiles/\(name)")
            #expect(r.status == 0, "\(name): \(r.stderr)")
            #expect(r.stdout.contains("valid profile"))
        }
    }

    @Test func invalidProfileExits2WithEveryProblem() throws {
        let r = try topo("validate", "Tests/Fixtures/profiles/invalid/many-problems.yaml")
        #expect(r.status == 2)
        #expect(r.stderr.contains("many-problems.yaml:14:12: error: workloads.server.memory.max: \"4X\" is not a size"))
        #expect(r.stderr.contains("27 errors"))
    }

    /// Every command's help at 80 columns: its USAGE names every option it lists, and no example
    /// is wrapped mid-command (each line under "Examples:" fits and is indented).
    @Test(arguments: [
        "validate", "plan", "host", "apply", "status", "verify", "exec", "logs", "run", "report", "diff", "down",
        "schema",
    ])
    func helpListsEveryOptionInUsageAndWrapsNoExample(command: String) throws {
        let r = try Self.run([command, "--help"], environment: ["COLUMNS": "80"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let usageStart = try #require(lines.firstIndex { $0.hasPrefix("USAGE:") })
        let usage = lines[usageStart...].prefix { !$0.isEmpty }.joined(separator: " ")
        let optionsStart = try #require(lines.firstIndex { $0 == "OPTIONS:" })
        for line in lines[optionsStart...] {
            guard line.hasPrefix("  -") else { continue }
            // The option's names: `-v, --verbose <x>` before the description's column.
            let head = line.dropFirst(2).components(separatedBy: "  ").first ?? ""
            let names = head.split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ",")) }
                .filter { $0.hasPrefix("-") }
            if names.contains("--help") || names.contains("--version") || names.isEmpty { continue }
            #expect(
                names.contains { usage.contains("[\($0)") || usage.contains(" \($0)") || usage.contains("(\($0)") },
                "topo \(command): USAGE lacks \(names.joined(separator: ", ")): \(usage)")
        }
        if let examples = lines.firstIndex(where: { $0.hasPrefix("Examples:") }) {
            #expect(lines[examples] == "Examples:", "topo \(command): examples start on a line of their own")
            for line in lines[(examples + 1)...].prefix(while: { !$0.isEmpty }) {
                #expect(
                    line.hasPrefix("  ") && line.count <= 80, "topo \(command): an example wrapped or too long: \(line)"
                )
            }
        }
    }

    @Test func validateJSON() throws {
        let r = try topo("validate", "--json", "Tests/Fixtures/profiles/invalid/duplicate-key.yaml")
        #expect(r.status == 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["format"] as? String == "topo-validate/1" && object["valid"] as? Bool == false)
        let file = try #require((object["files"] as? [[String: Any]])?.first)
        #expect(
            file["file"] as? String == "Tests/Fixtures/profiles/invalid/duplicate-key.yaml"
                && file["valid"] as? Bool == false)
        let diagnostics = try #require(file["diagnostics"] as? [[String: Any]])
        #expect(diagnostics.first?["line"] as? Int == 6)
    }

    @Test func missingProfileExits2() throws {
        let r = try topo("validate", "no/such/profile.yaml")
        #expect(r.status == 2 && r.stderr.contains("does not exist"))
    }

    @Test func usageErrorsExit2() throws {
        #expect(try topo("plan").status == 2)
        #expect(try topo("frobnicate").status == 2)
        #expect(try topo("host", "--bogus").status == 2)
    }

    @Test func helpTeachesAndExits0() throws {
        let r = try topo("--help")
        #expect(r.status == 0)
        #expect(r.stdout.contains("Exit codes"))
        #expect(try topo("plan", "--help").stdout.contains("--sysfs"))
    }

    @Test func planJSONIsStableAndKeepsTheContract() throws {
        let a = try topo("plan", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht", "--json")
        let b = try topo("plan", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/2s-8c-ht", "--json")
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout == b.stdout)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as? [String: Any])
        let workloads = try #require(object["workloads"] as? [[String: Any]])
        #expect(workloads.map { $0["cpus"] as? String } == ["0-1,16-17", "8-9,24-25"])
        #expect(workloads.map { $0["mems"] as? String } == ["0", "1"])
    }

    @Test func impossiblePlanExits3SayingWhatTheHostHas() throws {
        let r = try topo("plan", "Profiles/api-gateway.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c")
        #expect(r.status == 3)
        #expect(
            r.stderr.contains(
                "workload server asks for 4 CPUs on node 0; node 0 has 2 online CPUs (0-1), none reserved"))
    }

    @Test func planTextShowsTableAndPicture() throws {
        let r = try topo("plan", "Profiles/quickstart.yaml", "--sysfs", "Tests/Fixtures/hosts/1n-2c")
        #expect(r.status == 0)
        #expect(r.stdout.contains("WORKLOAD"))
        #expect(r.stdout.contains("[0 A] [1 L]"))
    }

    @Test func hostOnAFixtureAndAsJSON() throws {
        let r = try topo("host", "--sysfs", "Tests/Fixtures/hosts/4n-unequal-memonly")
        #expect(r.status == 0)
        #expect(r.stdout.contains("node 3 · memory only"))
        let j = try topo("host", "--sysfs", "Tests/Fixtures/hosts/4n-unequal-memonly", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        #expect((object["nodes"] as? [Any])?.count == 4)
    }

    /// A --sysfs tree is input the command line names: one topo cannot read is bad input (exit 2).
    @Test func aBadSysfsTreeExits2() throws {
        let r = try topo("host", "--sysfs", "/nonexistent")
        #expect(r.status == 2 && r.stderr.contains("/nonexistent/devices/system/cpu/online"))
    }

    /// Commands that read or clear state work on any host and leave no trace when nothing is applied.
    @Test func statusDownAndExecWithNothingApplied() throws {
        let hadState = FileManager.default.fileExists(atPath: "/run/topo")
        let status = try topo("status", "--json")
        #expect(status.status == 0)
        if !hadState {
            #expect(
                status.stdout.replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "\n", with: "")
                    == "{\"format\":\"topo-status/1\",\"profiles\":[]}")
            let down = try topo("down", "no-such-profile")
            #expect(down.status == 0 && down.stdout.contains("nothing to remove"))
            #expect(
                !FileManager.default.fileExists(atPath: "/run/topo"), "down must not leave its state directory behind")
        }
        #expect(try topo("down").status == 2)
        #expect(try topo("down", "x", "--all").status == 2)
        #expect(try topo("down", "Not_A_Name").status == 2)
        let exec = try topo("exec", "no-such-profile", "w", "--", "/bin/true")
        #expect(exec.status == 3 && exec.stderr.contains("not applied"))
        #expect(try topo("exec", "p", "w").status == 2)
    }

    @Test func thisHostIsDiscovered() throws {
        let r = try topo("host", "--json")
        #expect(r.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let cpus = try #require(object["cpus"] as? [[String: Any]])
        #expect(
            cpus.count == ProcessInfo.processInfo.processorCount
                || cpus.count >= ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// The launcher run for real on this host, where it must fail before touching anything: its
/// failure travels back over the status pipe with the operation, the path and the kernel's words.
@Suite struct LauncherTests {
    static func spec(
        cgroupProcs: String, command: [String] = ["/bin/true"], environment: [String] = ["PATH=/usr/bin:/bin"]
    ) -> LaunchSpec {
        let launch = LaunchResource(
            profile: "p", workload: "w", runtime: .process, image: nil, command: command,
            environment: environment, workdir: nil, user: nil, capabilities: [], cgroup: "x",
            cpus: CPUSet([0]), memoryPolicy: .local, policyNodes: .empty, logPath: nil, netns: nil, hostsFile: nil)
        return LaunchSpec(
            launch, cgroupProcs: cgroupProcs, cgroupMount: nil, readOnly: [], newSession: true, keepStdin: false)
    }

    @Test func aFailureBeforeExecComesBackOverTheStatusPipe() throws {
        let dir = NSTemporaryDirectory() + "topo-launcher-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = Self.spec(cgroupProcs: "\(dir)/no-such-cgroup/cgroup.procs")
        guard case .failure(let failure) = Launcher.launch(spec) else {
            Issue.record("the launcher reported success")
            return
        }
        #expect(
            failure.description
                == "topo launcher: join cgroup: write \(dir)/no-such-cgroup/cgroup.procs \"0\": No such file or directory"
        )
    }

    @Test func aMissingUserIsRefusedBeforeAnyChild() {
        var spec = Self.spec(cgroupProcs: "/x/cgroup.procs")
        spec.user = "no-such-user-\(getpid())"
        guard case .failure(let failure) = Launcher.launch(spec) else {
            Issue.record("launched as a missing user")
            return
        }
        #expect(failure.description == "topo launcher: no user named no-such-user-\(getpid())")
    }

    /// exec's search, as execvpe's: the workload's PATH in order, the name alone when it holds a slash.
    @Test func commandsAreSearchedAlongTheWorkloadsPath() {
        #expect(
            Launcher.candidates("sleep", environment: ["A=1", "PATH=/opt/bin:/usr/bin"]) == [
                "/opt/bin/sleep", "/usr/bin/sleep",
            ])
        #expect(Launcher.candidates("./run", environment: ["PATH=/opt/bin"]) == ["./run"])
        #expect(Launcher.candidates("true", environment: []) == ["/bin/true", "/usr/bin/true"])
    }
}

/// iproute2's `ip`, which these tests use to look from outside at what topo made.
private let ip = "/usr/sbin/ip"

/// The veth/netem probe on this host: it may find netem missing (this development machine has no
/// sch_netem), but it must say so in the kernel's words and leave no namespace behind.
// one counts the others' namespaces
@Suite(.enabled(if: getuid() == 0, "needs root to create a network namespace"), .serialized)
struct LinkProbeTests {
    /// topo's namespace mark, read in-process over rtnetlink from a socket opened inside the namespace.
    @Test func theLoopbackAliasIsReadInsideTheNamespace() throws {
        let ns = "topo-marktest-\(getpid())"
        let runner = CommandRunner()
        #expect(runner.run([ip, "netns", "add", ns]).status == 0)
        defer { _ = runner.run([ip, "netns", "del", ns]) }
        #expect(try NetlinkLinks.loopbackAlias(ns).get() == nil)
        #expect(runner.run([ip, "-n", ns, "link", "set", "lo", "alias", "topo:demo"]).status == 0)
        #expect(try NetlinkLinks.loopbackAlias(ns).get() == "topo:demo")
        // The host's own loopback is not what was read.
        #expect(runner.run([ip, "-j", "link", "show", "lo"]).stdout.contains("topo:demo") == false)
        guard case .failure(let e) = NetlinkLinks.loopbackAlias("no-such-\(getpid())") else {
            Issue.record("read a missing namespace")
            return
        }
        #expect(e.errno == ENOENT && e.description.contains("no-such-"))
    }

    /// `status` and `verify` read each namespace in-process: links, MTU, up, alias and IPv4 addresses.
    @Test func aNamespaceIsReadOverRtnetlink() throws {
        let ns = "topo-readtest-\(getpid())"
        let runner = CommandRunner()
        #expect(runner.run([ip, "netns", "add", ns]).status == 0)
        defer { _ = runner.run([ip, "netns", "del", ns]) }
        let setup = [
            "link set lo alias topo:demo", "link set lo up", "link add to-b mtu 9000 type veth peer name to-a mtu 9000",
            "addr add 10.77.0.1/30 dev to-b", "addr add 10.77.0.2/30 dev to-a", "link set to-b up",
        ]
        let r = runner.run([ip, "-n", ns, "-batch", "-"], input: setup.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let state = NetlinkLinks.NamespaceState.read(ns, qdiscs: true)
        #expect(state.exists && state.problem == nil)
        #expect(state.links["lo"]?.alias == "topo:demo" && state.links["lo"]?.up == true)
        #expect(state.links["lo"]?.addresses == [try IPv4Interface.parse("127.0.0.1/8").get()])
        #expect(state.links["to-b"]?.mtu == 9000 && state.links["to-b"]?.up == true && state.links["to-a"]?.up == false)
        #expect(state.links["to-b"]?.addresses == [try IPv4Interface.parse("10.77.0.1/30").get()])
        #expect(state.links["to-a"]?.addresses == [try IPv4Interface.parse("10.77.0.2/30").get()])
        #expect(state.netem.isEmpty)  // no netem qdisc here (and this host has no sch_netem)
        #expect(!NetlinkLinks.NamespaceState.read("no-such-\(getpid())", qdiscs: false).exists)
        // More links than the first read has room for: it reads again with all of it.
        let many = (0..<20).map { "link add x\($0) type veth peer name y\($0)" }
        #expect(runner.run([ip, "-n", ns, "-batch", "-"], input: many.joined(separator: "\n") + "\n").status == 0)
        let crowded = NetlinkLinks.NamespaceState.read(ns, qdiscs: true)
        #expect(
            crowded.problem == nil && crowded.links.count == 43 && crowded.links["y19"] != nil,
            "\(crowded.links.keys.sorted())")
    }

    @Test func probeReportsInTheKernelsWordsAndCleansUp() throws {
        let before = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        let problems = LinkProbe().problems(netem: true)
        for p in problems {
            #expect(p.contains("netem") || p.contains("veth") || p.contains("namespace"), "\(p)")
        }
        let after = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        #expect(after == before, "the probe left a namespace behind")
        #expect(LinkProbe().problems(netem: false).isEmpty || !problems.isEmpty)
    }

    /// The netlink driver makes namespaces, a veth pair, addresses and link state with no `ip` process,
    /// and `ip` (the independent reader) sees what the plan says; undo removes what carries the mark.
    /// netem cannot be tried here (no sch_netem): the lab's link tests cover qdiscs.
    @Test func theNetlinkDriverMakesWhatIpSees() throws {
        let tag = "\(getpid())"
        let a = NamespaceResource(name: "topo.nl\(tag).a", workload: "a", owner: "nl\(tag)")
        let b = NamespaceResource(name: "topo.nl\(tag).b", workload: "b", owner: "nl\(tag)")
        let veth = VethResource(
            ends: [.init(netns: a.name, interface: "to-b"), .init(netns: b.name, interface: "to-a")], mtu: 9000)
        let addrA = AddressResource(
            netns: a.name, interface: "to-b", workload: "a", address: try IPv4Interface.parse("10.78.0.1/30").get())
        let addrB = AddressResource(
            netns: b.name, interface: "to-a", workload: "b", address: try IPv4Interface.parse("10.78.0.2/30").get())
        let batch: [Resource] = [.namespace(a), .namespace(b), .veth(veth), .address(addrA), .address(addrB)]
        let driver = NetlinkLinks()
        let results = driver.apply(batch)
        defer { for n in [a, b] { _ = try? driver.undo(.namespace(n), done: true, facts: Facts()) } }
        for (r, result) in zip(batch, results) {
            guard case .success = result else {
                Issue.record("\(r.summary): \(String(describing: result))")
                return
            }
        }
        guard case .success(let facts) = results[0] else { return }
        #expect(facts.inode == NetlinkLinks.inode(a.name) && facts.inode != nil)
        let runner = CommandRunner()
        #expect(runner.run([ip, "netns", "list"]).stdout.contains(a.name))
        let linkA = runner.run([ip, "-n", a.name, "-o", "link", "show"]).stdout
        #expect(
            linkA.contains("to-b@") && linkA.contains("mtu 9000") && linkA.contains("alias topo:nl\(tag)"), "\(linkA)")
        #expect(
            runner.run([ip, "-n", b.name, "-o", "addr", "show", "dev", "to-a"]).stdout.contains("inet 10.78.0.2/30"))
        // The two ends talk: the pair, the addresses and the link state are as planned.
        #expect(runner.run([ip, "netns", "exec", a.name, "ping", "-c", "1", "-W", "2", "10.78.0.2"]).status == 0)
        #expect(driver.observe(batch).allSatisfy { $0.found && $0.differences.isEmpty }, "\(driver.observe(batch))")
        // A second namespace of the same name is refused, in the kernel's or the filesystem's words, and the first stays.
        guard case .failure(let again) = driver.apply([.namespace(a)])[0] else {
            Issue.record("made \(a.name) twice")
            return
        }
        #expect(again.description.contains(a.name) && again.description.contains("File exists"), "\(again)")
        #expect(NetlinkLinks.inode(a.name) == facts.inode)
        // A failure names the request, the object and the kernel's words.
        let bad = AddressResource(
            netns: a.name, interface: "no-such", workload: "a", address: try IPv4Interface.parse("10.78.0.5/30").get())
        guard case .failure(let missing) = driver.apply([.address(bad)])[0] else {
            Issue.record("added an address to no interface")
            return
        }
        #expect(
            missing.description.contains("add address 10.78.0.5/30 to no-such") && missing.description.contains(a.name),
            "\(missing)")
        #expect(try driver.undo(.namespace(a), done: true, facts: facts) == .removed("netns \(a.name)"))
        #expect(try driver.undo(.namespace(b), done: true, facts: Facts()) == .removed("netns \(b.name)"))
        #expect(!runner.run([ip, "netns", "list"]).stdout.contains("nl\(tag)"))
    }

    /// A watcher's kept route sockets: reused while each namespace stays bound with the same inode, and
    /// closed once it goes — a socket would otherwise hold a namespace that `down` removed alive.
    @Test func keptRouteSocketsGoWithTheirNamespaces() throws {
        let tag = "\(getpid())"
        let a = NamespaceResource(name: "topo.ks\(tag).a", workload: "a", owner: "ks\(tag)")
        let b = NamespaceResource(name: "topo.ks\(tag).b", workload: "b", owner: "ks\(tag)")
        let veth = VethResource(
            ends: [.init(netns: a.name, interface: "to-b"), .init(netns: b.name, interface: "to-a")], mtu: 1500)
        let batch: [Resource] = [.namespace(a), .namespace(b), .veth(veth)]
        let plain = NetlinkLinks()
        let made = plain.apply(batch)
        defer { for n in [a, b] { _ = try? plain.undo(.namespace(n), done: true, facts: Facts()) } }
        guard made.allSatisfy({ if case .success = $0 { true } else { false } }) else {
            Issue.record("\(made)")
            return
        }
        let sockets = NamespaceSockets()
        let kept = NetlinkLinks(sockets: sockets)
        // The kept sockets by descriptor and socket inode: tests running beside this one open and close
        // descriptors of their own, so the process's count proves nothing.
        let socket = { (fd: Int32) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")
        }
        #expect(kept.observe(batch).allSatisfy { $0.found && $0.differences.isEmpty })
        #expect(sockets.count == 2)
        let first: [String] = sockets.descriptors.map { "\($0) \(socket($0) ?? "closed")" }
        #expect(first.count == 2 && first.allSatisfy { $0.contains("socket:") })
        for _ in 0..<3 { #expect(kept.observe(batch).allSatisfy { $0.found && $0.differences.isEmpty }) }
        let again: [String] = sockets.descriptors.map { "\($0) \(socket($0) ?? "closed")" }
        #expect(again == first, "a round opened sockets again")
        _ = try plain.undo(.namespace(a), done: true, facts: Facts())
        let after = kept.observe(batch)
        #expect(after[0].found == false && after[1].found)
        #expect(sockets.count == 1)
        _ = try plain.undo(.namespace(b), done: true, facts: Facts())
        sockets.releaseStale()
        #expect(sockets.count == 0)
        // Each kept socket is closed: its descriptor is gone, or names another object now.
        let fds = sockets.descriptors
        #expect(fds.isEmpty)
        for entry in first {
            let fd = Int32(entry.split(separator: " ")[0])!
            #expect("\(fd) \(socket(fd) ?? "closed")" != entry, "\(entry) is still open")
        }
    }
}
