import Foundation
import Testing
import TopoCore

/// `host.tune` on a real kernel: interrupts, unbound workqueues, kernel threads, timer migration and
/// huge pages quieted for a partition, checked by verify, and every value exactly as it was after
/// `down` — also after apply was killed at any step. (The lab's emulated CPU has no cpufreq or boost:
/// those are covered against a fake sysfs in HostTunerTests.)
///
/// Kernel threads are compared for an exclusive workload only: making and removing a partition, the
/// kernel itself sets every unbound kernel thread to the CPUs outside partitions, so a node's kswapd
/// comes back on every CPU, not its node's — with or without host.tune.
extension LabTests {
    @Suite(.serialized) struct HostTuningLabTests {
        static let profile = """
            version: 1
            name: quiet
            host:
              smt: any
              tune: { irqs: away, kernelThreads: away, timerMigration: off, thp: never }
            workloads:
              p: { cpus: "1", isolation: partition, run: { command: ["/bin/sleep", "1051"] } }
            """

        static let irq = "/proc/irq"
        static let workqueues = "/sys/devices/virtual/workqueue"

        static func text(_ path: String) -> String {
            (Lab.read(path) ?? "unreadable").trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Everything host.tune may change, as the kernel reads it: the values down must give back exactly.
        /// Kernel threads: those that exist now and whose affinity may change (not per-CPU).
        static func snapshot(threads: [Int32]? = nil) -> [String: String] {
            var out: [String: String] = [:]
            for path in [
                "/proc/sys/kernel/timer_migration", "/proc/sys/vm/stat_interval",
                "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/defrag",
                "\(workqueues)/cpumask",
            ] {
                out[path] = text(path)
            }
            for wq in Sys.entries(workqueues) where Sys.exists("\(workqueues)/\(wq)/cpumask") {
                out["\(workqueues)/\(wq)/cpumask"] = text("\(workqueues)/\(wq)/cpumask")
            }
            for n in Sys.entries(irq) where Int(n) != nil && Sys.exists("\(irq)/\(n)/smp_affinity_list") {
                out["\(irq)/\(n)/smp_affinity_list"] = text("\(irq)/\(n)/smp_affinity_list")
            }
            for pid in threads ?? movableKernelThreads() {
                if let cpus = Lab.procStatus(pid, "Cpus_allowed_list") { out["thread \(pid)"] = cpus }
            }
            return out
        }

        /// Kernel threads (PF_KTHREAD) without PF_NO_SETAFFINITY.
        static func movableKernelThreads() -> [Int32] {
            Sys.entries("/proc").compactMap(Int32.init).filter { pid in
                guard let stat = Lab.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
                    return false
                }
                let f = stat[stat.index(after: close)...].split(separator: " ")
                guard f.count > 6, let flags = UInt64(f[6]) else { return false }
                return flags & 0x0020_0000 != 0 && flags & 0x0400_0000 == 0
            }
        }

        /// Sets values that are not the kernel's defaults, so that down is seen to restore these, not defaults.
        static func setNonDefaults() throws -> String? {
            try "always".write(
                toFile: "/sys/kernel/mm/transparent_hugepage/enabled", atomically: false, encoding: .utf8)
            try "3".write(toFile: "/proc/sys/vm/stat_interval", atomically: false, encoding: .utf8)
            // One movable interrupt pinned by hand to the CPU the partition will get.
            let last = "1"
            for n in Sys.entries(irq).filter({ Int($0) != nil }).sorted(by: { Int($0)! < Int($1)! }) {
                let path = "\(irq)/\(n)/smp_affinity_list"
                if (try? last.write(toFile: path, atomically: false, encoding: .utf8)) != nil, text(path) == last {
                    return n
                }
            }
            return nil
        }

        @Test func aPartitionIsQuietedVerifiedAndDownRestoresEveryValue() throws {
            let pinned = try #require(try Self.setNonDefaults(), "no interrupt in the lab VM can be moved")
            let threads: [Int32] = []
            let before = Self.snapshot(threads: threads)
            let path = try Lab.profile("quiet", Self.profile)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.topo("down", "quiet") }
            let cpus = Self.text("/sys/fs/cgroup/topo.quiet.p/cpuset.cpus")
            let quiet = try CPUSet.parse(cpus).get()
            #expect(!quiet.isEmpty)

            // Every interrupt off the partition's CPU, but those the kernel refused (named in apply's note).
            for n in Sys.entries(Self.irq) where Int(n) != nil && Sys.exists("\(Self.irq)/\(n)/smp_affinity_list") {
                let list = try CPUSet.parse(Self.text("\(Self.irq)/\(n)/smp_affinity_list")).get()
                #expect(
                    list.intersection(quiet).isEmpty || apply.stderr.contains("IRQ \(n):"),
                    "IRQ \(n) on \(list): \(apply.stderr)")
            }
            #expect(Self.text("\(Self.irq)/\(pinned)/smp_affinity_list") != cpus, "the interrupt pinned by hand moved")
            #expect(try #require(TuneValue.mask(Self.text("\(Self.workqueues)/cpumask"))).intersection(quiet).isEmpty)
            #expect(
                try CPUSet.parse(Lab.procStatus(2, "Cpus_allowed_list") ?? "").get().intersection(quiet).isEmpty,
                "kthreadd")
            #expect(Self.text("/proc/sys/kernel/timer_migration") == "0")
            #expect(Self.text("/sys/kernel/mm/transparent_hugepage/enabled").contains("[never]"))
            #expect(Self.text("/proc/sys/vm/stat_interval") == "3", "not tuned: untouched")

            let verify = try Lab.run(Lab.topo, ["verify", "quiet", "--json"])
            let checks =
                (((try Lab.json(verify.stdout) as? [String: Any])?["profiles"] as? [[String: Any]])?.first?["checks"]
                    as? [[String: Any]]) ?? []
            let tuneChecks = checks.filter { $0["id"] as? String == "host.tune" }
            #expect(tuneChecks.count == 5, "\(tuneChecks)")
            #expect(verify.status == 0, "\(checks.filter { $0["status"] as? String != "pass" })")

            // An interrupt moved back onto the partition's CPU by hand fails verify.
            try cpus.write(toFile: "\(Self.irq)/\(pinned)/smp_affinity_list", atomically: false, encoding: .utf8)
            let moved = try Lab.run(Lab.topo, ["verify", "quiet", "--json"])
            #expect(moved.status == 1, "\(moved)")
            #expect(moved.stdout.contains("IRQ \(pinned) on"))

            // Someone else's value meanwhile (neither what topo wrote nor what was there before) is reported
            // by down and left alone; everything else is restored.
            let online = Self.text("/sys/devices/system/cpu/online")
            try online.write(toFile: "\(Self.irq)/\(pinned)/smp_affinity_list", atomically: false, encoding: .utf8)
            let down = try Lab.topo("down", "quiet")
            #expect(down.status == 0, "\(down)")
            #expect(
                down.stderr.contains("IRQ \(pinned) reads \"\(online)\"")
                    && down.stderr.contains("changed by someone else meanwhile"), "\(down)")
            var after = Self.snapshot(threads: threads)
            #expect(after["\(Self.irq)/\(pinned)/smp_affinity_list"] == online)
            after["\(Self.irq)/\(pinned)/smp_affinity_list"] = before["\(Self.irq)/\(pinned)/smp_affinity_list"]
            for (key, value) in before where after[key] != value && (!key.hasPrefix("thread ") || after[key] != nil) {
                Issue.record("\(key): was \(value), after down \(after[key] ?? "missing")")
            }
            #expect(!Sys.exists("/run/topo/tune.json"))
            try "madvise".write(
                toFile: "/sys/kernel/mm/transparent_hugepage/enabled", atomically: false, encoding: .utf8)
            try "1".write(toFile: "/proc/sys/vm/stat_interval", atomically: false, encoding: .utf8)
        }

        /// An exclusive workload (a partition's CPUs the kernel takes from kernel threads itself): kthreadd
        /// and the other movable kernel threads leave its CPU, and come back on down.
        @Test func kernelThreadsLeaveAnExclusiveWorkloadsCPUAndComeBack() throws {
            let threads = Self.movableKernelThreads()
            let before = Self.snapshot(threads: threads)
            #expect(before["thread 2"] != nil, "kthreadd may move")
            let path = try Lab.profile(
                "kthreads",
                """
                version: 1
                name: kthreads
                host: { smt: any, tune: { kernelThreads: away } }
                workloads:
                  e: { cpus: "1", run: { command: ["/bin/sleep", "1052"] } }
                """)
            let apply = try Lab.topo("apply", path)
            #expect(apply.status == 0, "\(apply)")
            let moved = threads.filter {
                (Lab.procStatus($0, "Cpus_allowed_list").flatMap { try? CPUSet.parse($0).get() })?.contains(1) == false
            }
            #expect(moved.contains(2) && moved.count * 2 >= threads.count, "\(moved.count) of \(threads.count) moved")
            let record = Lab.read("/run/topo/tune.json") ?? ""
            #expect(record.contains("\"thread 2 "), "kthreadd's affinity is recorded")
            #expect(try Lab.topo("verify", "kthreads").status == 0)
            #expect(try Lab.topo("down", "kthreads").status == 0)
            let after = Self.snapshot(threads: threads)
            for (key, value) in before where after[key] != value && (!key.hasPrefix("thread ") || after[key] != nil) {
                Issue.record("\(key): was \(value), after down \(after[key] ?? "missing")")
            }
        }

        /// Two profiles may hold one setting at one value (restored once, by the last down), never at two.
        @Test func profilesShareOneValueAndAreRefusedAnother() throws {
            func profile(_ name: String, _ cpu: Int, _ value: String) throws -> String {
                try Lab.profile(
                    name,
                    """
                    version: 1
                    name: \(name)
                    host: { smt: any, tune: { timerMigration: \(value) } }
                    workloads: { w: { cpus: "\(cpu)", isolation: shared } }
                    """)
            }
            let before = Self.text("/proc/sys/kernel/timer_migration")
            #expect(before == "1")
            #expect(try Lab.topo("apply", try profile("tma", 0, "off")).status == 0)
            #expect(try Lab.topo("apply", try profile("tmb", 1, "off")).status == 0)
            let clash = try Lab.topo("apply", try profile("tmc", 1, "on"))
            #expect(
                clash.status == 3
                    && clash.stderr.contains("applied profile tma set /proc/sys/kernel/timer_migration to \"0\""),
                "\(clash)")
            #expect(try Lab.topo("down", "tma").status == 0)
            #expect(Self.text("/proc/sys/kernel/timer_migration") == "0", "tmb still holds it")
            #expect(try Lab.topo("down", "tmb").status == 0)
            #expect(Self.text("/proc/sys/kernel/timer_migration") == before)
            #expect(!Sys.exists("/run/topo/tune.json"))
        }

        /// SIGKILL of apply right after each step, then `down`: every value as it was before.
        @Test func aKillAfterAnyStepThenDownRestoresEveryValue() throws {
            _ = try Self.setNonDefaults()
            let threads: [Int32] = []
            let before = Self.snapshot(threads: threads)
            let path = try Lab.profile("quiet", Self.profile)
            try Lab.killAfterEachStep(
                path, name: "quiet", atLeast: 8,
                check: { n in
                    let after = Self.snapshot(threads: threads)
                    for (key, value) in before
                    where after[key] != value && (!key.hasPrefix("thread ") || after[key] != nil) {
                        Issue.record(
                            "after a kill at step \(n): \(key) was \(value), after down \(after[key] ?? "missing")")
                    }
                    #expect(!Sys.exists("/run/topo/tune.json"), "step \(n)")
                })
            try "madvise".write(
                toFile: "/sys/kernel/mm/transparent_hugepage/enabled", atomically: false, encoding: .utf8)
            try "1".write(toFile: "/proc/sys/vm/stat_interval", atomically: false, encoding: .utf8)
        }
    }
}
