import Foundation
import Testing

@testable import TopoCore

/// The reproducibility record, its comparison, and lock files.
@Suite struct ReportTests {
    /// A host below a fake root: two CPUs with different microcode, boot parameters, cpufreq, THP.
    func fakeHost() throws -> FakeRoot {
        let root = try FakeRoot()
        try root.seed(
            "proc/cpuinfo",
            """
            processor\t: 0
            model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
            microcode\t: 0x5003604

            processor\t: 1
            model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
            microcode\t: 0x5003605

            """)
        try root.seed(
            "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=1 nohz_full=1 mitigations=off quiet\n")
        try root.seed("proc/sys/kernel/hostname", "bench-7\n")
        try root.seed("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
        try root.seed("proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1\n")
        try root.seed("proc/sys/kernel/randomize_va_space", "2\n")
        try root.seed("proc/sys/kernel/timer_migration", "0\n")
        try root.seed("proc/sys/vm/stat_interval", "10\n")
        try root.seed("proc/sys/kernel/perf_event_max_sample_rate", "1000\n")
        try root.seed("sys/devices/virtual/workqueue/cpumask", "00000003\n")
        try root.seed("proc/sys/kernel/numa_balancing", "0\n")
        try root.seed("proc/meminfo", "MemTotal:       16384000 kB\nMemFree: 1 kB\n")
        try root.seed("proc/42/comm", "irqbalance\n")
        for cpu in [0, 1] {
            try root.seed(
                "sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_governor", cpu == 0 ? "performance\n" : "powersave\n")
            try root.seed("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_driver", "intel_pstate\n")
            try root.seed("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_min_freq", "800000\n")
            try root.seed("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_max_freq", "3900000\n")
        }
        try root.seed("sys/devices/system/cpu/intel_pstate/no_turbo", "1\n")
        try root.seed("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n")
        try root.seed("sys/kernel/mm/transparent_hugepage/defrag", "always defer defer+madvise [madvise] never\n")
        try root.seed("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n")
        return root
    }

    func topology() -> HostTopology {
        HostTopology(
            cpus: [0, 1].map {
                HostTopology.CPU(id: $0, online: true, node: 0, package: 0, coreID: $0, siblings: CPUSet([$0]))
            },
            nodes: [HostTopology.Node(id: 0, cpus: CPUSet([0, 1]), memTotal: Bytes(16 << 30), distances: [10])],
            cgroup: CgroupInfo(
                mode: .unified, mountPoint: "/sys/fs/cgroup", controllers: ["cpuset", "memory"], detail: ""),
            source: "/sys")
    }

    @Test func theHostRecordReadsWhatBenchmarksDependOn() throws {
        let root = try fakeHost()
        let h = HostRecord.read(
            root: root.path, topology: topology(), versions: ["iproute2": "ip utility, iproute2-6.1.0"])
        #expect(h.hostname == "bench-7" && h.kernel.release == "6.1.0-18-amd64" && h.kernel.version.hasPrefix("#1 SMP"))
        #expect(h.kernel.parameters == ["isolcpus": "1", "nohz_full": "1", "mitigations": "off"])
        #expect(
            h.cpu.model == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
                && h.cpu.microcode == .perCPU(["0x5003604", "0x5003605"]))
        #expect(
            h.cpu.sockets == 1 && h.cpu.cores == 2 && h.cpu.threads == 2 && !h.cpu.smt
                && h.cpu.online == CPUSet([0, 1]))
        #expect(
            h.memoryBytes == 16_384_000 * 1024 && h.numa.count == 1
                && h.cgroup == HostRecord.Cgroup(mode: "unified", controllers: ["cpuset", "memory"]))
        // Different governors: two entries; the same would have been one.
        #expect(
            h.frequency.map(\.governor) == ["performance", "powersave"] && h.frequency[0].maxKHz == 3_900_000
                && h.frequency[1].cpus == CPUSet([1]))
        #expect(h.boost == "off" && h.transparentHugePages == ["enabled": "madvise", "defrag": "madvise"])
        #expect(
            h.irqbalance && h.aslr == 2 && h.numaBalancing == 0 && h.distribution == "Debian GNU/Linux 12 (bookworm)")
        // What host.tune sets is part of the record, so that diff names a tuned host against an untuned one.
        #expect(
            h.timerMigration == 0 && h.statInterval == 10 && h.perfSampleRate == 1000
                && h.workqueueCPUs == CPUSet([0, 1]))
        // Microcode: one string when every CPU agrees, a list when not.
        let json = JSONOutput.encode(h)
        #expect(
            json.contains("\"microcode\" : [")
                && JSONOutput.encode(HostRecord.Microcode(["0x1", "0x1"])).contains("\"0x1\""))
        #expect(try JSONDecoder().decode(HostRecord.self, from: Data(json.utf8)) == h)
    }

    func record(_ edit: (inout Report) -> Void = { _ in }) throws -> ReportDiff.JSON {
        let root = try fakeHost()
        let host = try fixtureHost("2s-8c-ht")
        let plan = try Planner(host: host).plan(
            profile(
                """
                version: 1
                name: r
                workloads:
                  a: { cpus: { count: 2, node: 0 }, memory: { max: 1G } }
                  b: { cpus: { count: 2, node: 1 } }
                links:
                  - { between: [a, b], netem: { delay: 1ms } }
                """)
        ).get()
        var report = Report(
            version: "0.1.0", host: HostRecord.read(root: root.path, topology: topology(), versions: [:]),
            profile: Report.Source(name: "r", path: "r.yaml", text: "text"), plan: plan, observed: nil, verify: nil)
        edit(&report)
        return try JSONDecoder().decode(ReportDiff.JSON.self, from: Data(JSONOutput.encode(report).utf8))
    }

    @Test func aRecordDiffersFromItselfInNothing() throws {
        let a = try record()
        #expect(ReportDiff.compare(a, a).isEmpty)
    }

    /// A changed profile text is shown by its hash and a unified diff of its lines, never both texts whole.
    @Test func aChangedProfileTextIsAUnifiedDiff() throws {
        let text = (1...12).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let a = try record { $0.profile.text = text }
        let b = try record {
            $0.profile.text = text.replacingOccurrences(of: "line 4\n", with: "line four\n").replacingOccurrences(
                of: "line 11\n", with: "")
        }
        let d = try #require(ReportDiff.compare(a, b).first { $0.path == "profile.text" })
        #expect(
            d.a?.hasPrefix("sha256:") == true && d.a?.hasSuffix("(13 lines)") == true
                && d.b?.hasSuffix("(12 lines)") == true, "\(d)")
        #expect(
            d.lines == [
                "@@ -2,5 +2,5 @@", " line 2", " line 3", "-line 4", "+line four", " line 5", " line 6",
                "@@ -9,5 +9,4 @@", " line 9", " line 10", "-line 11", " line 12", " ",
            ], "\(d.lines ?? [])")
        #expect(!(d.a ?? "").contains("line 1"))
    }

    @Test func materialDifferencesComeFirstAndNamesAndTimesNeverCount() throws {
        let a = try record()
        let b = try record { r in
            r.host.hostname = "bench-8"
            r.topo.time = "2030-01-01T00:00:00Z"
            r.host.transparentHugePages["enabled"] = "always"
            r.plan.workloads[0].cpus = CPUSet([6, 7])
            r.host.cpu.microcode = .same("0x5003700")
        }
        let d = ReportDiff.compare(a, b)
        #expect(
            d.first?.category == "microcode" && d.first?.path.hasPrefix("host.cpu.microcode") == true,
            "\(d.map(\.path))")
        #expect(
            d.contains {
                $0.path == "plan.workloads[a].cpus" && $0.category == "placement" && $0.material && $0.b == "\"6-7\""
            })
        let thp = try #require(d.firstIndex { $0.category == "transparent huge pages" })
        #expect(thp > (d.firstIndex { $0.category == "placement" } ?? Int.max))
        #expect(
            d.contains { $0.path == "host.hostname" && !$0.material }
                && d.contains { $0.path == "topo.time" && !$0.material })
        // Only names and times: nothing material.
        let c = try record { r in
            r.host.hostname = "elsewhere"
            r.topo.time = "2031-01-01T00:00:00Z"
        }
        #expect(!ReportDiff.compare(a, c).isEmpty && !ReportDiff.compare(a, c).contains(where: \.material))
    }

    @Test func aLockNamesEveryDifferenceOfProfileAndHost() throws {
        let root = try fakeHost()
        let host = HostRecord.read(root: root.path, topology: topology(), versions: [:])
        let plan = try Planner(host: topology()).plan(
            profile("version: 1\nname: l\nworkloads: { a: { cpus: \"0-1\" } }")
        ).get()
        let lock = LockFile(profileText: "version: 1\n", host: host, plan: plan)
        #expect(lock.problems(profileText: "version: 1\n", profileName: "l", host: host).isEmpty)
        var other = host
        other.cpu.microcode = .same("0x6")
        other.kernel.release = "6.12.0"
        let problems = lock.problems(profileText: "version: 1\n# changed\n", profileName: "l", host: other)
        #expect(problems.count == 3, "\(problems)")
        #expect(
            problems[0].contains("the profile changed since the lock")
                && problems.contains { $0.contains("microcode: locked 0x5003604,0x5003605, this host has 0x6") })
        #expect(
            LockFile.path(forProfile: "Profiles/api.yaml") == "Profiles/api.lock.json"
                && LockFile.path(forProfile: "x.yml") == "x.lock.json")
    }
}

/// `apply --locked`: a lock pins placement (each workload's CPUs, each link's subnet) and nothing else.
@Suite struct LockedPlanTests {
    static let text = """
        version: 1
        name: lk
        workloads:
          a: { cpus: { count: 2, node: 0 }, memory: { max: 1G }, run: { command: ["/bin/sleep", "60"], user: "65534:65534", capabilities: [] } }
          b: { cpus: { count: 2 }, isolation: shared, run: { command: ["/bin/sleep", "61"] } }
        links: [{ between: [a, b], netem: { delay: 1ms } }]
        """

    func setting() throws -> (host: HostTopology, profile: Profile, lock: LockFile) {
        let host = try fixtureHost("2s-8c-ht")
        let p = try profile(Self.text)
        let plan = try Planner(host: host).plan(p).get()
        return (
            host, p, LockFile(profileText: Self.text, host: HostRecord.read(topology: host, versions: [:]), plan: plan)
        )
    }

    func apply(
        _ lock: LockFile, _ s: (host: HostTopology, profile: Profile, lock: LockFile)
    ) -> Result<Plan, TopoFailure> {
        lock.plan(for: s.profile, text: Self.text, on: s.host, layout: .standard, source: "lk.lock.json")
    }

    @Test func anUnchangedLockGivesTheProfilesPlan() throws {
        let s = try setting()
        #expect(try apply(s.lock, s).get() == s.lock.plan)
    }

    /// The forgery of the security review: the launch's user, capabilities, command and log path edited.
    @Test func aLockWithAnEditedLaunchIsRefusedNamingEachField() throws {
        let s = try setting()
        var forged = s.lock
        let i = try #require(
            forged.plan.resources.firstIndex { if case .launch(let l) = $0 { l.workload == "a" } else { false } })
        guard case .launch(var l) = forged.plan.resources[i] else { return }
        l.user = nil
        l.capabilities = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"]
        l.command = ["/bin/sh", "-c", "id > /etc/pwned"]
        l.logPath = "/etc/lock-log"
        forged.plan.resources[i] = .launch(l)
        guard case .failure(let f) = apply(forged, s) else {
            Issue.record("a forged lock was accepted")
            return
        }
        #expect(f.status == .hostCannot)
        for field in ["launch.user", "launch.capabilities", "launch.command", "launch.logPath"] {
            #expect(f.message.contains("plan.resources[\(i)].\(field)"), "\(field): \(f.message)")
        }
        #expect(f.message.contains("/etc/lock-log") && f.message.contains("the profile plans"))
        // The plan's own copy of the run, edited alone, is refused too.
        var run = s.lock
        run.plan.workloads[0].run?.capabilities = ["CAP_SYS_ADMIN"]
        guard case .failure(let g) = apply(run, s) else {
            Issue.record("a forged run was accepted")
            return
        }
        #expect(g.message.contains("plan.workloads[a].run.capabilities"), "\(g.message)")
    }

    /// Another valid placement, as a lock made elsewhere on this host's shape would pin it, is honoured.
    @Test func aLockThatOnlyMovesCPUsValidlyIsHonoured() throws {
        let s = try setting()
        let a = try #require(s.lock.plan.workload(named: "a"))
        let node0 = try #require(s.host.nodes.first { $0.id == 0 })
        let moved = CPUSet(
            node0.cpus.ids.filter { !a.cpus.contains($0) && !s.lock.plan.workloads[1].cpus.contains($0) }.suffix(2))
        var pins = s.lock.pins
        pins.cpus["a"] = moved
        let plan = try Planner(host: s.host, pins: pins).plan(s.profile).get()
        let lock = LockFile(profileText: Self.text, host: HostRecord.read(topology: s.host, versions: [:]), plan: plan)
        let applied = try apply(lock, s).get()
        #expect(applied.workload(named: "a")?.cpus == moved && moved != a.cpus)
        #expect(
            applied.resources.contains {
                if case .cgroupSetting(let c) = $0, c.workload == "a", case .cpus(let set) = c.setting {
                    set == moved
                } else {
                    false
                }
            })
        // By hand: only the workload's `cpus` edited, and everything that follows from it re-derived.
        var edited = s.lock
        edited.plan.workloads[0].cpus = moved
        let again = try apply(edited, s).get()
        #expect(again == applied)
    }

    @Test func aPlacementTheProfileOrHostWouldNotAllowIsRefused() throws {
        let s = try setting()
        func refused(_ edit: (inout Plan) -> Void) throws -> String {
            var lock = s.lock
            edit(&lock.plan)
            guard case .failure(let f) = apply(lock, s) else {
                Issue.record("accepted")
                return ""
            }
            #expect(f.status == .hostCannot)
            return f.message
        }
        let far = try refused { $0.workloads[0].cpus = CPUSet([99, 98]) }
        #expect(far.contains("CPU 98-99, which this host does not have"), "\(far)")
        #expect(
            try refused { $0.workloads[0].cpus = CPUSet([0, 1, 2]) }.contains(
                "3 CPUs (0-2), but its profile asks for 2"))
        let b = s.lock.plan.workloads[1].cpus
        #expect(try refused { $0.workloads[0].cpus = b }.contains("both ask for CPU"))
        let node1 = try #require(s.host.nodes.first { $0.id == 1 }?.cpus.ids.prefix(2))
        #expect(try refused { $0.workloads[0].cpus = CPUSet(node1) }.contains("but its profile asks for node 0"))
        #expect(try refused { $0.workloads.removeLast() }.contains("the lock places no CPUs for workload b"))
        #expect(
            try refused { $0.workloads[0].run?.command = ["/bin/sh"] }.contains(
                "plan.workloads[a].run.command[0]: the lock has \"/bin/sh\""))
    }

    /// A link's subnet is placement too: the addresses, hosts files and variables follow it.
    @Test func aLockedSubnetIsHonoured() throws {
        let s = try setting()
        var lock = s.lock
        let subnet = IPv4Subnet(address: 10 << 24 | 9 << 8, prefix: 30)
        lock.plan.links[0].subnet = subnet
        let plan = try apply(lock, s).get()
        #expect(plan.links[0].subnet == subnet && plan.links[0].ends[0].address.description == "10.0.9.1/30")
        #expect(
            plan.resources.contains {
                if case .hostsFile(let h) = $0 { h.contents.contains("10.0.9.2\tb") } else { false }
            })
    }
}

/// `topo logs`: the last lines of a log, found from its end, and podman's k8s-file lines as text.
@Suite struct LogFileTests {
    func shown(_ log: LogFile, tail: Int?) throws -> String {
        let out = try FakeRoot()
        let path = "\(out.path)/out"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        var partial = Data()
        log.copy(from: tail.map { log.tailOffset(lines: $0) } ?? 0, to: handle, partial: &partial)
        try handle.close()
        return out.read("out") ?? ""
    }

    @Test func theLastLinesAreFoundFromTheEndAcrossBlocks() throws {
        let root = try FakeRoot()
        // 20,000 numbered lines: about 130 KiB, more than two of the blocks read from the end.
        let text = (1...20_000).map { "line \($0)" }.joined(separator: "\n") + "\n"
        try root.seed("a.log", text)
        let log = LogFile(path: "\(root.path)/a.log")
        #expect(try shown(log, tail: 2) == "line 19999\nline 20000\n")
        #expect(try shown(log, tail: 0) == "")
        #expect(try shown(log, tail: 15_000).hasPrefix("line 5001\n"))
        #expect(try shown(log, tail: 30_000) == text && (try shown(log, tail: nil)) == text)
        // A last line without its newline is a line.
        try root.seed("b.log", "one\ntwo\nthree")
        #expect(try shown(LogFile(path: "\(root.path)/b.log"), tail: 2) == "two\nthree")
        #expect(try shown(LogFile(path: "\(root.path)/missing.log"), tail: 5) == "")
    }

    @Test func podmansLinesAreShownAsTheirText() throws {
        let root = try FakeRoot()
        try root.seed(
            "c.log",
            "2026-11-29T12:44:40.364511470+00:00 stdout F hello\n2026-11-29T12:44:40.38+00:00 stderr F 10.1.1.1 peer\n")
        #expect(try shown(LogFile(path: "\(root.path)/c.log", k8sFormat: true), tail: nil) == "hello\n10.1.1.1 peer\n")
        #expect(try shown(LogFile(path: "\(root.path)/c.log", k8sFormat: true), tail: 1) == "10.1.1.1 peer\n")
    }
}
