import Foundation
import Synchronization
import Testing

@testable import TopoCore

/// `host.tune` against a fake procfs and sysfs: what is written, the record of originals and holders,
/// and what `down` restores — exactly the values read before, never one someone else changed meanwhile.
/// The lab (HostTuningLabTests) does the same on the real kernel, where cpufreq and boost do not exist.
@Suite struct HostTunerTests {
    /// A host with 4 CPUs, cpufreq (intel_pstate), huge pages, 4 interrupts, 2 workqueues and one
    /// kernel thread whose affinity may be changed.
    func host() throws -> (FakeRoot, FakeRoot) {
        let root = try FakeRoot()
        let state = try FakeRoot()
        let seeds: [(String, String)] = [
            ("sys/devices/system/cpu/online", "0-3\n"),
            ("proc/sys/kernel/timer_migration", "1\n"),
            ("proc/sys/vm/stat_interval", "1\n"),
            ("proc/sys/kernel/perf_event_max_sample_rate", "100000\n"),
            ("proc/sys/kernel/randomize_va_space", "2\n"),
            ("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n"),
            ("sys/kernel/mm/transparent_hugepage/defrag", "always defer defer+madvise [madvise] never\n"),
            ("sys/devices/system/cpu/intel_pstate/no_turbo", "0\n"),
            ("sys/devices/virtual/workqueue/cpumask", "f\n"),
            ("sys/devices/virtual/workqueue/writeback/cpumask", "f\n"),
            ("proc/irq/0/smp_affinity_list", "0\n"),
            ("proc/irq/1/smp_affinity_list", "0-3\n"),
            ("proc/irq/9/smp_affinity_list", "3\n"),
            ("proc/irq/24/smp_affinity_list", "1-2\n"),
            ("proc/1/comm", "init\n"),
            // kthreadd-like: PF_KTHREAD, affinity changeable; and a per-CPU one (PF_NO_SETAFFINITY).
            ("proc/2/stat", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0\n"),
            ("proc/2/status", "Name:\tkthreadd\nCpus_allowed_list:\t0-3\n"),
            ("proc/15/stat", "15 (migration/1) S 2 0 0 0 -1 69238848 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0\n"),
            ("proc/15/status", "Name:\tmigration/1\nCpus_allowed_list:\t1\n"),
        ]
        for (path, text) in seeds { try root.seed(path, text) }
        for cpu in 0..<4 {
            try root.seed("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_governor", "powersave\n")
            try root.seed(
                "sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_available_governors", "performance powersave\n")
            try root.seed("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_min_freq", "800000\n")
            try root.seed("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_max_freq", "3000000\n")
        }
        return (root, state)
    }

    final class Calls: Sendable {
        let affinity = Mutex<[String]>([])
        let systemctl = Mutex<[String]>([])
        let active = Mutex(true)
    }

    func tuner(_ root: FakeRoot, _ state: FakeRoot, _ calls: Calls = Calls()) -> HostTuner {
        let rootPath = root.path
        return HostTuner(
            files: HostFiles(root: root.path), state: StateStore(root: state.path),
            setAffinity: { pid, cpus in
                calls.affinity.withLock { $0.append("\(pid) \(cpus)") }
                // The fake kernel takes it: the thread's status shows the new list.
                try? "Name:\tkthreadd\nCpus_allowed_list:\t\(cpus)\n".write(
                    toFile: "\(rootPath)/proc/\(pid)/status", atomically: false, encoding: .utf8)
                return 0
            },
            systemctl: { args in
                calls.systemctl.withLock { $0.append(args.joined(separator: " ")) }
                switch args.first {
                case "is-active":
                    return CommandResult(
                        status: 0, stdout: calls.active.withLock { $0 } ? "active\n" : "inactive\n", stderr: "")
                case "stop": calls.active.withLock { $0 = false }
                case "start": calls.active.withLock { $0 = true }
                default: break
                }
                return CommandResult(status: 0, stdout: "", stderr: "")
            })
    }

    func tune(_ profile: String, _ setting: TuneSetting, bestEffort: Bool = false) -> Resource {
        .hostTune(TuneResource(profile: profile, setting: setting, bestEffort: bestEffort))
    }

    func trimmed(_ root: FakeRoot, _ path: String) -> String? {
        root.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func scalarsAreSetThenRestoredExactlyAndTheRecordGoes() throws {
        let (root, state) = try host()
        let t = tuner(root, state)
        let all = CPUSet([0, 1, 2, 3])
        let resources: [Resource] = [
            tune("a", .timerMigration(.off)), tune("a", .statInterval(10)), tune("a", .thp(.never)),
            tune("a", .governor("performance", cpus: CPUSet([2, 3]))),
            tune(
                "a", .frequency(min: Frequency(kHz: 2_400_000), max: Frequency(kHz: 2_400_000), cpus: CPUSet([2, 3]))),
            tune("a", .boost(.off)), tune("a", .perfSampleRate(1000)), tune("a", .aslr(.off)),
        ]
        for r in resources {
            #expect(t.problems(r.tune!) == [], "\(r.summary)")
            #expect(try #require(t.apply([r]).first ?? nil).get() == Facts())
        }
        #expect(trimmed(root, "proc/sys/kernel/timer_migration") == "0")
        #expect(trimmed(root, "proc/sys/vm/stat_interval") == "10")
        #expect(trimmed(root, "sys/kernel/mm/transparent_hugepage/enabled") == "never")
        #expect(trimmed(root, "sys/kernel/mm/transparent_hugepage/defrag") == "never")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor") == "performance")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor") == "powersave")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu3/cpufreq/scaling_min_freq") == "2400000")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu3/cpufreq/scaling_max_freq") == "2400000")
        #expect(trimmed(root, "sys/devices/system/cpu/intel_pstate/no_turbo") == "1")
        #expect(trimmed(root, "proc/sys/kernel/perf_event_max_sample_rate") == "1000")
        #expect(trimmed(root, "proc/sys/kernel/randomize_va_space") == "0")
        #expect(state.exists("tune.json"))
        for r in resources { #expect(t.observe(r).differences == [], "\(r.summary)") }
        _ = all

        for r in resources.reversed() {
            guard case .removed = try t.undo(r, done: true, facts: Facts()) else {
                Issue.record("\(r.summary) not restored")
                continue
            }
        }
        #expect(trimmed(root, "proc/sys/kernel/timer_migration") == "1")
        #expect(trimmed(root, "proc/sys/vm/stat_interval") == "1")
        #expect(trimmed(root, "sys/kernel/mm/transparent_hugepage/enabled") == "madvise")
        #expect(trimmed(root, "sys/kernel/mm/transparent_hugepage/defrag") == "madvise")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor") == "powersave")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu3/cpufreq/scaling_min_freq") == "800000")
        #expect(trimmed(root, "sys/devices/system/cpu/cpu3/cpufreq/scaling_max_freq") == "3000000")
        #expect(trimmed(root, "sys/devices/system/cpu/intel_pstate/no_turbo") == "0")
        #expect(trimmed(root, "proc/sys/kernel/perf_event_max_sample_rate") == "100000")
        #expect(trimmed(root, "proc/sys/kernel/randomize_va_space") == "2")
        #expect(!state.exists("tune.json"), "nothing held: no record left")
    }

    @Test func aValueChangedByOthersMeanwhileIsReportedAndLeftAlone() throws {
        let (root, state) = try host()
        let t = tuner(root, state)
        let r = tune("a", .aslr(.off))
        _ = t.apply([r])
        try root.seed("proc/sys/kernel/randomize_va_space", "1\n")
        #expect(t.observe(r).differences.first?.contains("topo wrote \"0\", kernel has \"1\"") == true)
        let undone = try t.undo(r, done: true, facts: Facts())
        guard case .leftAlone(let why) = undone else {
            Issue.record("\(undone)")
            return
        }
        #expect(why.contains("changed by someone else meanwhile") && why.contains("it was \"2\""), "\(why)")
        #expect(trimmed(root, "proc/sys/kernel/randomize_va_space") == "1")
        #expect(!state.exists("tune.json"))
    }

    @Test func twoProfilesShareOneValueAndTheLastRestoresIt() throws {
        let (root, state) = try host()
        let t = tuner(root, state)
        let a = tune("a", .timerMigration(.off))
        let b = tune("b", .timerMigration(.off))
        _ = t.apply([a])
        #expect(t.conflicts(b.tune!) == [])
        _ = t.apply([b])
        #expect(try t.undo(a, done: true, facts: Facts()) == .nothing)
        #expect(trimmed(root, "proc/sys/kernel/timer_migration") == "0", "b still holds it")
        #expect(t.observe(b).differences == [])
        #expect(try t.undo(b, done: true, facts: Facts()) == .removed("host.tune.timerMigration: 1 value restored"))
        #expect(trimmed(root, "proc/sys/kernel/timer_migration") == "1", "the value before a, not a's")
        // Another value for one setting is refused while a holds it.
        _ = t.apply([a])
        let clash = t.conflicts(tune("c", .timerMigration(.on)).tune!)
        #expect(
            clash.count == 1 && clash[0].contains("applied profile a") && clash[0].contains("asks for \"1\""),
            "\(clash)")
    }

    @Test func interruptsAndWorkqueuesMoveOffTheQuietCPUsAndBack() throws {
        let (root, state) = try host()
        let t = tuner(root, state)
        let a = tune("a", .irqsAway(CPUSet([2, 3])))
        let b = tune("b", .irqsAway(CPUSet([1])))
        _ = t.apply([a])
        #expect(trimmed(root, "proc/irq/0/smp_affinity_list") == "0", "already clear: untouched")
        #expect(trimmed(root, "proc/irq/1/smp_affinity_list") == "0-1")
        #expect(
            trimmed(root, "proc/irq/9/smp_affinity_list") == "0-1", "only on a quiet CPU: to every other online CPU")
        #expect(trimmed(root, "proc/irq/24/smp_affinity_list") == "1")
        _ = t.apply([b])
        #expect(trimmed(root, "proc/irq/1/smp_affinity_list") == "0")
        #expect(trimmed(root, "proc/irq/24/smp_affinity_list") == "0", "held by both: clear of 1-3")
        // An interrupt moved back by hand shows in observe.
        try root.seed("proc/irq/1/smp_affinity_list", "0-3\n")
        #expect(t.observe(a).differences.contains { $0.contains("IRQ 1") })
        try root.seed("proc/irq/1/smp_affinity_list", "0\n")
        _ = try t.undo(a, done: true, facts: Facts())
        #expect(trimmed(root, "proc/irq/1/smp_affinity_list") == "0,2-3", "b still keeps CPU 1 clear, and only it")
        #expect(trimmed(root, "proc/irq/24/smp_affinity_list") == "2", "only b's CPU is kept clear now")
        #expect(trimmed(root, "proc/irq/9/smp_affinity_list") == "3", "b never held it: restored")
        _ = try t.undo(b, done: true, facts: Facts())
        for (irq, was) in [("0", "0"), ("1", "0-3"), ("9", "3"), ("24", "1-2")] {
            #expect(trimmed(root, "proc/irq/\(irq)/smp_affinity_list") == was, "IRQ \(irq)")
        }

        let w = tune("a", .workqueuesAway(CPUSet([2, 3])))
        _ = t.apply([w])
        #expect(trimmed(root, "sys/devices/virtual/workqueue/cpumask") == "00000003")
        #expect(trimmed(root, "sys/devices/virtual/workqueue/writeback/cpumask") == "00000003")
        _ = try t.undo(w, done: true, facts: Facts())
        #expect(trimmed(root, "sys/devices/virtual/workqueue/cpumask") == "f")
        #expect(!state.exists("tune.json"))
    }

    @Test func aKillBeforeTheWriteLeavesARecordDownRestoresFrom() throws {
        let (root, state) = try host()
        let t = tuner(root, state)
        let r = tune("a", .statInterval(30))
        _ = t.apply([r])
        // As if apply was killed after recording its intent and before writing: the file still reads the original.
        try root.seed("proc/sys/vm/stat_interval", "1\n")
        #expect(try t.undo(r, done: false, facts: Facts()) == .removed("host.tune.statInterval: 1 value restored"))
        #expect(trimmed(root, "proc/sys/vm/stat_interval") == "1")
        #expect(!state.exists("tune.json"))
    }

    @Test func kernelThreadsThatMayMoveMoveAndComeBack() throws {
        let (root, state) = try host()
        let calls = Calls()
        let t = tuner(root, state, calls)
        let r = tune("a", .kernelThreadsAway(CPUSet([2, 3])))
        _ = t.apply([r])
        #expect(calls.affinity.withLock { $0 } == ["2 0-1"], "kthreadd moved; the per-CPU migration thread not")
        #expect(t.observe(r).differences == [])
        _ = try t.undo(r, done: true, facts: Facts())
        #expect(calls.affinity.withLock { $0 } == ["2 0-1", "2 0-3"])
        // A thread that ended meanwhile (another start time) is neither restored nor an error.
        _ = t.apply([r])
        try root.seed("proc/2/stat", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n")
        #expect(try t.undo(r, done: true, facts: Facts()) == .nothing)
        #expect(calls.affinity.withLock { $0.count } == 3)
    }

    @Test func irqbalanceIsStoppedThroughSystemdAndStartedAgain() throws {
        let (root, state) = try host()
        let calls = Calls()
        let t = tuner(root, state, calls)
        let r = tune("a", .irqbalanceStopped)
        try root.seed("proc/812/comm", "irqbalance\n")
        #expect(t.problems(r.tune!).first?.contains("systemd is not PID 1") == true)
        #expect(
            InterruptAffinity().warnings(tune("a", .irqsAway(CPUSet([3]))).tune!, stopsIrqbalance: false, t.io).first?
                .contains("pid 812") == true)
        #expect(
            InterruptAffinity().warnings(tune("a", .irqsAway(CPUSet([3]))).tune!, stopsIrqbalance: true, t.io).isEmpty)
        try root.seed("proc/1/comm", "systemd\n")
        #expect(t.problems(r.tune!) == [])
        _ = t.apply([r])
        #expect(calls.systemctl.withLock { $0 }.contains("stop irqbalance.service"))
        _ = try t.undo(r, done: true, facts: Facts())
        #expect(calls.systemctl.withLock { $0 }.last == "start irqbalance.service")
    }

    @Test func whatTheHostCannotMakeIsRefusedOrUnderBestEffortSkipped() throws {
        let (root, state) = try host()
        let t = tuner(root, state)
        try FileManager.default.removeItem(atPath: "\(root.path)/sys/devices/system/cpu/cpu3/cpufreq")
        let governor = tune("a", .governor("performance", cpus: CPUSet([2, 3])))
        #expect(
            t.problems(governor.tune!).first?.contains("no cpufreq driver") == true, "\(t.problems(governor.tune!))")
        #expect(
            t.problems(tune("a", .governor("ondemand", cpus: CPUSet([2]))).tune!).first?.contains(
                "offers performance powersave, not ondemand") == true)
        #expect(t.problems(tune("a", .thp(.always)).tune!) == [])
        try root.seed("sys/kernel/mm/transparent_hugepage/enabled", "[madvise] never\n")
        #expect(t.problems(tune("a", .thp(.always)).tune!).first?.contains("not always") == true)
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o444], ofItemAtPath: "\(root.path)/proc/sys/kernel/randomize_va_space")
        #expect(t.problems(tune("a", .aslr(.off)).tune!).first?.contains("read-only") == true)
        try FileManager.default.removeItem(atPath: "\(root.path)/sys/devices/system/cpu/intel_pstate")
        #expect(t.problems(tune("a", .boost(.off)).tune!).first?.contains("neither") == true)

        let best = tune("a", .governor("performance", cpus: CPUSet([2, 3])), bestEffort: true)
        #expect(try #require(t.apply([best]).first ?? nil).get() == Facts())
        #expect(trimmed(root, "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor") == "performance")
        // What it made holds; what this host cannot make (CPU 3's governor) is said, for verify to warn of.
        let seen = t.observe(best).differences
        #expect(seen.count == 1 && seen[0].contains("cpu3/cpufreq/scaling_governor is missing"), "\(seen)")
        #expect(
            t.preflight(
                [best],
                PreflightContext(
                    host: try fixtureHost("1n-2c"),
                    plan: Plan(
                        name: "a", workloads: [], links: [], reserved: .empty,
                        idle: .empty, smt: .any, warnings: [], resources: [best]),
                    veth: .available("test"))
            ).warnings.first?.hasSuffix("(bestEffort: left as it is)") == true)
        _ = try t.undo(best, done: true, facts: Facts())
        #expect(trimmed(root, "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor") == "powersave")
    }

    @Test func masksReadAndWriteInTheKernelsGroups() {
        #expect(TuneValue.mask("00000000,0000000f") == CPUSet([0, 1, 2, 3]))
        #expect(TuneValue.mask("ff\n") == CPUSet(0..<8))
        #expect(TuneValue.mask("xyz") == nil && TuneValue.mask("") == nil)
        #expect(TuneValue.maskText(CPUSet([0, 1, 33])) == "00000002,00000003")
        #expect(TuneValue.maskText(CPUSet()) == "00000000")
        #expect(TuneValue.selected("always [madvise] never") == "madvise" && TuneValue.selected("never") == "never")
        #expect(TuneKind.cpuList.same("0-3", "0,1,2,3") && !TuneKind.cpuList.same("0-2", "0-3"))
    }

    @Test func theStateShowsSettingsInterruptsBootIsolationAndWhatIsHeld() throws {
        let (root, state) = try host()
        try root.seed("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=2-3 nohz_full=2-3 quiet\n")
        let t = tuner(root, state)
        _ = t.apply([tune("a", .timerMigration(.off))])
        let s = t.currentState()
        #expect(s.settings["kernel.timer_migration"] == "0")
        #expect(s.settings["transparent_hugepage.enabled"] == "madvise")
        #expect(s.settings["cpufreq.governor"] == "powersave on CPU 0-3")
        #expect(s.settings["workqueue.cpumask"] == "CPU 0-3")
        #expect(s.irqs == 4 && s.pinnedIRQs == 3)
        #expect(s.commandLine == ["isolcpus": "2-3", "nohz_full": "2-3"])
        #expect(s.held.count == 1 && s.held[0].contains("was \"1\"") && s.held[0].contains("(a)"), "\(s.held)")
    }
}

extension Resource {
    var tune: TuneResource? { if case .hostTune(let t) = self { t } else { nil } }
}

/// `host.tune` in the profile, and the settings the planner makes of it.
@Suite struct HostTuneProfileTests {
    let base = """
        version: 1
        name: t
        host:
          reserve: "0"
          tune:
        """

    func with(_ tune: String) -> String {
        base + "\n" + tune.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n") + """

            workloads:
              p: { cpus: { count: 2 }, isolation: partition }
              e: { cpus: { count: 2 } }
              s: { cpus: { count: 1 }, isolation: shared }
            """
    }

    @Test func everyKeyDecodes() throws {
        let p = try profile(
            with(
                """
                irqs: away
                irqbalance: stop
                kernelThreads: away
                timerMigration: off
                statInterval: 10
                thp: never
                governor: performance
                frequency: { min: 2.4GHz, max: 2400MHz }
                scope: all
                boost: off
                perfSampleRate: 1000
                aslr: off
                bestEffort: true
                """))
        let t = try #require(p.host.tune)
        #expect(
            t.irqsAway && t.kernelThreadsAway && t.irqbalance == .stop && t.timerMigration == .off
                && t.statInterval == 10)
        #expect(
            t.thp == .never && t.governor == "performance" && t.scope == .all && t.boost == .off
                && t.perfSampleRate == 1000 && t.aslr == .off)
        #expect(
            t.frequencyMin == Frequency(kHz: 2_400_000) && t.frequencyMax == Frequency(kHz: 2_400_000) && t.bestEffort)
        #expect(try profile(with("{}")).host.tune == nil)
        // YAML 1.1 readers take off and on for booleans; the booleans mean the same.
        #expect(try profile(with("aslr: false\nboost: true")).host.tune.map { [$0.aslr, $0.boost] } == [.off, .on])
    }

    @Test func badValuesAreErrorsWithTheirPath() {
        let problems = errors(
            with(
                """
                irqs: elsewhere
                timerMigration: 0
                statInterval: 0
                thp: sometimes
                governor: Performance!
                frequency: { min: 3GHz, max: 2GHz }
                boost: maybe
                bestEffort: yes
                isolcpus: 2-3
                """))
        for expected in [
            "host.tune.irqs: \"elsewhere\" is not one of away", "host.tune.timerMigration: \"0\" is not one of off, on",
            "host.tune.statInterval: 0 is outside 1-3600 seconds",
            "host.tune.thp: \"sometimes\" is not one of never, madvise, always",
            "host.tune.governor: \"Performance!\" is not a cpufreq governor name",
            "host.tune.frequency.min: min 3GHz is above max 2GHz",
            "host.tune.boost: \"maybe\" is not one of off, on", "host.tune.bestEffort: \"yes\" is not true or false",
            "host.tune.isolcpus: unknown key \"isolcpus\"",
        ] {
            #expect(problems.contains(expected), "\(expected) in \(problems)")
        }
        #expect(
            errors(with("frequency: { max: 2.4 }")).contains {
                $0.hasPrefix("host.tune.frequency.max: \"2.4\" is not a CPU frequency")
            })
    }

    @Test func thePlannerKeepsExclusiveAndPartitionCPUsQuietAndOrdersTheSettings() throws {
        let host = try fixtureHost("1s-2n-adjacent")
        let plan = try Planner(host: host).plan(
            try profile(
                with(
                    """
                    irqs: away
                    irqbalance: stop
                    kernelThreads: away
                    timerMigration: off
                    governor: performance
                    """))
        ).get()
        let quiet = plan.workloads.filter { $0.isolation != .shared }.reduce(CPUSet()) { $0.union($1.cpus) }
        let settings = plan.resources.compactMap(\.tune).map(\.setting)
        let scope = plan.workloads.reduce(CPUSet()) { $0.union($1.cpus) }
        #expect(
            settings == [
                .irqbalanceStopped, .irqsAway(quiet), .workqueuesAway(quiet), .kernelThreadsAway(quiet),
                .timerMigration(.off),
                .governor("performance", cpus: scope),
            ])
        // After the hosts files, before the first launch: workloads start on quiet CPUs, and stop before they are restored.
        let kinds = plan.resources.map(\.kind)
        #expect(kinds.firstIndex(of: .hostTune)! > (kinds.lastIndex(of: .cgroupSetting) ?? 0))
        let suggestion = try #require(BootIsolation.suggest(plan, online: host.onlineCPUs))
        #expect(suggestion.cpus == quiet && suggestion.housekeeping == host.onlineCPUs.subtracting(quiet))
        #expect(
            suggestion.parameters == [
                "isolcpus=managed_irq,domain,\(quiet)", "nohz_full=\(quiet)", "rcu_nocbs=\(quiet)",
                "irqaffinity=\(suggestion.housekeeping)",
            ])
    }

    @Test func awayWithNoQuietCPUsWarnsAndWithNoCPULeftIsRefused() throws {
        let shared = try Planner(host: try fixtureHost("1n-2c")).plan(
            try profile(
                """
                version: 1
                name: t
                host: { tune: { irqs: away } }
                workloads: { s: { cpus: { count: 1 }, isolation: shared } }
                """)
        ).get()
        #expect(shared.warnings.contains { $0.contains("this profile has none") })
        #expect(!shared.resources.contains { $0.kind == .hostTune })
        let all = Planner(host: try fixtureHost("1n-2c")).plan(
            try profile(
                """
                version: 1
                name: t
                host: { tune: { kernelThreads: away }, smt: any }
                workloads: { e: { cpus: "0-1" } }
                """))
        guard case .failure(let f) = all else {
            Issue.record("planned: \(all)")
            return
        }
        #expect(
            f.problems.contains { $0.contains("need a CPU outside the exclusive and partition workloads") },
            "\(f.problems)")
    }
}

@Suite struct TunableFamilyTests {
    /// Every setting is exactly one family's: the tuner routes by it.
    @Test func everySettingHasExactlyOneFamily() {
        let cpus = CPUSet([1])
        let every: [TuneSetting] = [
            .irqbalanceStopped, .irqsAway(cpus), .workqueuesAway(cpus), .kernelThreadsAway(cpus), .timerMigration(.off),
            .statInterval(10), .thp(.never), .governor("performance", cpus: cpus),
            .frequency(min: nil, max: nil, cpus: cpus),
            .boost(.off), .perfSampleRate(1), .aslr(.off),
        ]
        for s in every {
            let owners = HostTuner.families.filter { $0.owns(s) }.map { String(describing: type(of: $0)) }
            #expect(owners.count == 1, "host.tune.\(s.name) is owned by \(owners)")
        }
    }
}
