import Foundation
import Testing
@testable import TopoCore

/// Black-box tests: run the built `topo` binary and check its output and exit code.
@Suite struct CLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The `topo` built beside this test bundle.
    static var binary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        if dir.path.hasSuffix(".xctest") || dir.lastPathComponent == "Contents" { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("topo").path
    }

    struct Outcome { var status: Int32; var stdout: String; var stderr: String }

    func topo(_ args: String...) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: Self.repo)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func binaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "\(Self.binary)")
    }

    @Test func validateAcceptsEveryShippedProfile() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.repo + "/Profiles").filter { $0.hasSuffix(".yaml") }.sorted()
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

    @Test func validateJSON() throws {
        let r = try topo("validate", "--json", "Tests/Fixtures/profiles/invalid/duplicate-key.yaml")
        #expect(r.status == 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["valid"] as? Bool == false)
        let diagnostics = try #require(object["diagnostics"] as? [[String: Any]])
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
        #expect(r.stderr.contains("workload server asks for 4 CPUs on node 0; node 0 has 2 online CPUs (0-1), none reserved"))
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

    @Test func badSysfsExits3() throws {
        let r = try topo("host", "--sysfs", "/nonexistent")
        #expect(r.status == 3 && r.stderr.contains("/nonexistent/devices/system/cpu/online"))
    }

    /// Commands that read or clear state work on any host and leave no trace when nothing is applied.
    @Test func statusDownAndExecWithNothingApplied() throws {
        let hadState = FileManager.default.fileExists(atPath: "/run/topo")
        let status = try topo("status", "--json")
        #expect(status.status == 0)
        if !hadState {
            #expect(status.stdout.replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "\n", with: "") == "{\"profiles\":[]}")
            let down = try topo("down", "no-such-profile")
            #expect(down.status == 0 && down.stdout.contains("nothing to remove"))
            #expect(!FileManager.default.fileExists(atPath: "/run/topo"), "down must not leave its state directory behind")
        }
        #expect(try topo("down").status == 2)
        #expect(try topo("down", "x", "--all").status == 2)
        #expect(try topo("down", "Not_A_Name").status == 2)
        let exec = try topo("exec", "no-such-profile", "w", "--", "/bin/true")
        #expect(exec.status == 2 && exec.stderr.contains("not applied"))
        #expect(try topo("exec", "p", "w").status == 2)
    }

    @Test func thisHostIsDiscovered() throws {
        let r = try topo("host", "--json")
        #expect(r.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let cpus = try #require(object["cpus"] as? [[String: Any]])
        #expect(cpus.count == ProcessInfo.processInfo.processorCount || cpus.count >= ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// The launcher run for real on this host, where it must fail before touching anything: its
/// failure travels back over the status pipe with the operation, the path and the kernel's words.
@Suite struct LauncherTests {
    static func spec(cgroupProcs: String) -> LaunchSpec {
        let launch = LaunchResource(profile: "p", workload: "w", runtime: .process, image: nil, command: ["/bin/true"],
                                    environment: ["PATH=/usr/bin:/bin"], workdir: nil, user: nil, capabilities: [], cgroup: "x",
                                    cpus: CPUSet([0]), memoryPolicy: .local, policyNodes: .empty, logPath: nil, netns: nil, hostsFile: nil)
        return LaunchSpec(launch, cgroupProcs: cgroupProcs, cgroupMount: nil, readOnly: [], newSession: true, keepStdin: false)
    }

    @Test func aFailureBeforeExecComesBackOverTheStatusPipe() throws {
        let dir = NSTemporaryDirectory() + "topo-launcher-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = Self.spec(cgroupProcs: "\(dir)/no-such-cgroup/cgroup.procs")
        let result = Spawn.launch(spec, specPath: "\(dir)/spec.json", executable: CLITests.binary)
        guard case .failure(let failure) = result else { Issue.record("the launcher reported success"); return }
        #expect(failure.description == "topo launcher: join cgroup: write \(dir)/no-such-cgroup/cgroup.procs \"0\": No such file or directory")
    }

    @Test func anUnreadableSpecIsReported() throws {
        let spec = Self.spec(cgroupProcs: "/x")
        let result = Spawn.launch(spec, specPath: "/nonexistent-dir/spec.json", executable: CLITests.binary)
        guard case .failure(let failure) = result else { Issue.record("launched without a spec"); return }
        #expect(failure.description.contains("/nonexistent-dir/spec.json"))
    }
}

/// The veth/netem probe on this host: it may find netem missing (this development machine has no
/// sch_netem), but it must say so in the kernel's words and leave no namespace behind.
@Suite(.enabled(if: getuid() == 0, "needs root to create a network namespace"), .serialized)  // one counts the others' namespaces
struct LinkProbeTests {
    /// topo's namespace mark, read in-process over rtnetlink from a socket opened inside the namespace.
    @Test func theLoopbackAliasIsReadInsideTheNamespace() throws {
        let ns = "topo-marktest-\(getpid())"
        let runner = CommandRunner()
        #expect(runner.run([IPRoute2Links.ip, "netns", "add", ns]).status == 0)
        defer { _ = runner.run([IPRoute2Links.ip, "netns", "del", ns]) }
        #expect(try IPRoute2Links.loopbackAlias(ns).get() == nil)
        #expect(runner.run([IPRoute2Links.ip, "-n", ns, "link", "set", "lo", "alias", "topo:demo"]).status == 0)
        #expect(try IPRoute2Links.loopbackAlias(ns).get() == "topo:demo")
        // The host's own loopback is not what was read.
        #expect(runner.run([IPRoute2Links.ip, "-j", "link", "show", "lo"]).stdout.contains("topo:demo") == false)
        guard case .failure(let e) = IPRoute2Links.loopbackAlias("no-such-\(getpid())") else { Issue.record("read a missing namespace"); return }
        #expect(e.errno == ENOENT && e.description.contains("no-such-"))
    }

    /// `status` and `verify` read each namespace in-process: links, MTU, up, alias and IPv4 addresses.
    @Test func aNamespaceIsReadOverRtnetlink() throws {
        let ns = "topo-readtest-\(getpid())"
        let runner = CommandRunner()
        #expect(runner.run([IPRoute2Links.ip, "netns", "add", ns]).status == 0)
        defer { _ = runner.run([IPRoute2Links.ip, "netns", "del", ns]) }
        let setup = ["link set lo alias topo:demo", "link set lo up", "link add to-b mtu 9000 type veth peer name to-a mtu 9000",
                     "addr add 10.77.0.1/30 dev to-b", "addr add 10.77.0.2/30 dev to-a", "link set to-b up"]
        let r = runner.run([IPRoute2Links.ip, "-n", ns, "-batch", "-"], input: setup.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let state = IPRoute2Links.NamespaceState.read(ns, qdiscs: true)
        #expect(state.exists && state.problem == nil)
        #expect(state.links["lo"]?.alias == "topo:demo" && state.links["lo"]?.up == true)
        #expect(state.links["lo"]?.addresses == [try IPv4Interface.parse("127.0.0.1/8").get()])
        #expect(state.links["to-b"]?.mtu == 9000 && state.links["to-b"]?.up == true && state.links["to-a"]?.up == false)
        #expect(state.links["to-b"]?.addresses == [try IPv4Interface.parse("10.77.0.1/30").get()])
        #expect(state.links["to-a"]?.addresses == [try IPv4Interface.parse("10.77.0.2/30").get()])
        #expect(state.netem.isEmpty)  // no netem qdisc here (and this host has no sch_netem)
        #expect(!IPRoute2Links.NamespaceState.read("no-such-\(getpid())", qdiscs: false).exists)
        // More links than the first read has room for: it reads again with all of it.
        let many = (0..<20).map { "link add x\($0) type veth peer name y\($0)" }
        #expect(runner.run([IPRoute2Links.ip, "-n", ns, "-batch", "-"], input: many.joined(separator: "\n") + "\n").status == 0)
        let crowded = IPRoute2Links.NamespaceState.read(ns, qdiscs: true)
        #expect(crowded.problem == nil && crowded.links.count == 43 && crowded.links["y19"] != nil, "\(crowded.links.keys.sorted())")
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
}
