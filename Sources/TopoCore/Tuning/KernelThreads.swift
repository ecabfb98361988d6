import CTopoShim
import Foundation

/// `kernelThreads`: each kernel thread that is not bound to a CPU, off the CPUs to keep clear
/// (sched_setaffinity). A thread is keyed `thread PID STARTTIME`, so a pid reused by another thread
/// is never taken for it.
struct KernelThreads: TunableFamily {
    /// PF_KTHREAD and PF_NO_SETAFFINITY (include/linux/sched.h).
    static let kthreadFlag: UInt64 = 0x0020_0000
    static let noSetAffinityFlag: UInt64 = 0x0400_0000

    struct Thread {
        var pid: Int32
        var start: UInt64
        var cpus: CPUSet
    }

    func owns(_ s: TuneSetting) -> Bool { if case .kernelThreadsAway = s { true } else { false } }

    func clears(_ s: TuneSetting) -> CPUSet? { if case .kernelThreadsAway(let cpus) = s { cpus } else { nil } }

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        guard case .kernelThreadsAway(let cpus) = s else { return [] }
        return Self.threads(io).map {
            TuneTarget(key: "thread \($0.pid) \($0.start)", kind: .thread, want: cpus.description)
        }
    }

    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] { [] }

    func describe(_ s: TuneSetting, _ io: TuneIO) -> [String]? {
        guard case .kernelThreadsAway(let cpus) = s else { return nil }
        return [
            "sched_setaffinity: each kernel thread that is not per-CPU and may run on \(cpus), to its CPUs less \(cpus) \(HostTuner.recorded)"
        ]
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {}

    /// A kernel thread whose affinity may be changed (not bound to a CPU), from /proc/PID/stat and status.
    static func thread(_ pid: Int32, _ io: TuneIO) -> Thread? {
        guard let stat = io.files.read("proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let flags = UInt64(fields[6]), let start = UInt64(fields[19]),
            flags & kthreadFlag != 0, flags & noSetAffinityFlag == 0,
            let status = io.files.read("proc/\(pid)/status"),
            let list = Verifier.fields(status)["Cpus_allowed_list"], let cpus = try? CPUSet.parse(list).get()
        else { return nil }
        return Thread(pid: pid, start: start, cpus: cpus)
    }

    /// Every kernel thread whose affinity may be changed, kthreadd (whose affinity new ones inherit) first.
    static func threads(_ io: TuneIO) -> [Thread] {
        io.files.list("proc").compactMap(Int32.init).sorted().compactMap { thread($0, io) }
    }

    /// A thread's allowed CPUs, while it is the thread the key names.
    static func read(_ key: String, _ io: TuneIO) -> String? {
        let parts = key.split(separator: " ")
        guard parts.count == 3, let pid = Int32(parts[1]), let thread = thread(pid, io),
            String(thread.start) == parts[2]
        else { return nil }
        return thread.cpus.description
    }

    static func write(_ key: String, _ value: String, _ io: TuneIO) throws(SystemError) {
        let parts = key.split(separator: " ")
        guard parts.count == 3, let pid = Int32(parts[1]), let cpus = try? CPUSet.parse(value).get() else { return }
        let rc = io.setAffinity(pid, cpus)
        if rc != 0 { throw SystemError("sched_setaffinity", "pid \(pid)", value: value, errno: rc) }
    }

    /// sched_setaffinity(2) of a thread: 0, or the errno.
    static let schedSetAffinity: @Sendable (Int32, CPUSet) -> Int32 = { pid, cpus in
        var words = [UInt](repeating: 0, count: max(1, (cpus.ids.last ?? 0) / UInt.bitWidth + 1))
        for id in cpus { words[id / UInt.bitWidth] |= 1 << UInt(id % UInt.bitWidth) }
        let rc = words.withUnsafeBytes { buf in
            topo_set_affinity(pid, buf.baseAddress, buf.count)
        }
        return rc == 0 ? 0 : errno
    }
}
