import Foundation

@testable import TopoCore

/// Drivers that touch nothing of the host's: cgroups kept in memory, workloads as plain child
/// processes of the test. The orchestration (run, watch, preparation) runs on them without root.
final class FakeHost: @unchecked Sendable {
    private let lock = NSLock()
    private var cgroups: Set<String> = []
    private var settings: [String: String] = [:]
    /// A cgroup whose removal fails (a teardown that leaves something).
    var failUndo: String?

    func made(_ cgroup: String) -> Bool { lock.withLock { cgroups.contains(cgroup) } }
    var cgroupCount: Int { lock.withLock { cgroups.count } }
    func make(_ cgroup: String) { lock.withLock { _ = cgroups.insert(cgroup) } }
    func remove(_ cgroup: String) { lock.withLock { _ = cgroups.remove(cgroup) } }
    func set(_ cgroup: String, _ file: String, _ value: String) {
        lock.withLock { settings["\(cgroup)/\(file)"] = value }
    }
    func setting(_ cgroup: String, _ file: String) -> String? { lock.withLock { settings["\(cgroup)/\(file)"] } }
}

struct MemoryCgroups: CgroupManager {
    let host: FakeHost
    var description: String { "cgroups in memory" }
    func path(_ cgroup: String) -> String { "/fake-cgroup/\(cgroup)" }
    func procsPath(_ cgroup: String) -> String { "/fake-cgroup/\(cgroup)/cgroup.procs" }
    func exists(_ cgroup: String) -> Bool { host.made(cgroup) }
    func stopAll(_ cgroups: [(cgroup: String, owner: String)]) -> [TopoFailure?] { cgroups.map { _ in nil } }
    func offeredControllers() -> [String] { ["cpuset", "cpu", "memory", "pids"] }
    func read(_ cgroup: String, _ file: String) -> String? { host.setting(cgroup, file) }
    func threads(_ cgroup: String) -> [Int32] { [] }
    func processes(_ cgroup: String) -> [Int32] { [] }
    func hierarchyPath(_ cgroup: String) -> String { "/\(cgroup)" }
    func recordRootControllers(_ added: Set<String>) throws(TopoFailure) {}

    func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            switch r {
            case .cgroupRoot(let c): host.make(c.path)
            case .cgroup(let c): host.make(c.path)
            case .cgroupSetting(let s): host.set(s.cgroup, s.setting.file, s.setting.humanValue)
            default: throw TopoFailure(.applyFailed, "the memory cgroups do not make \(r.summary)")
            }
            return Facts()
        }
    }

    func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        let path: String
        switch resource {
        case .cgroupRoot(let c): path = c.path
        case .cgroup(let c): path = c.path
        default: return .nothing
        }
        if path == host.failUndo { throw TopoFailure(.hostCannot, "\(path) cannot be removed: it is busy") }
        host.remove(path)
        return .removed(path)
    }

    func describe(_ resource: Resource) -> [String] { [resource.summary] }

    func observe(_ resource: Resource) -> Observation {
        switch resource {
        case .cgroupRoot(let c): Observation(resource, found: host.made(c.path))
        case .cgroup(let c): Observation(resource, found: host.made(c.path))
        case .cgroupSetting(let s): Observation(resource, found: host.made(s.cgroup))
        default: Observation(resource, found: false)
        }
    }
}

/// Starts each launch's command as a child of the test (output to /dev/null): `BenchmarkRun` can wait
/// for it as it waits for the launcher's. Undo kills it only while it is still an unreaped child, so a
/// reused pid is never signalled.
struct ChildRuntime: WorkloadRuntime {
    func runInForeground(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> { .success(0) }
    func start(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        Spawn.child(launch.command, output: "/dev/null", detached: false).mapError {
            TopoFailure(.applyFailed, $0.description)
        }
    }
    func startedBy(_ launch: LaunchResource) -> String { "start \(launch.workload) as a child of the test" }

    func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .launch(let l) = r else { throw TopoFailure(.applyFailed, "not a launch: \(r.summary)") }
            return Facts(pid: try start(l, profile: "").get())
        }
    }

    func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard let pid = facts.pid else { return .nothing }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == 0 else { return .nothing }  // exited (reaped now) or reaped already
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return .removed("pid \(pid)")
    }

    func observe(_ resource: Resource) -> Observation { Observation(resource, found: true) }
}

extension Drivers {
    /// The drivers of `selection`, with cgroups in `host` and workloads as the test's children.
    static func fake(_ selection: DriverSelection, _ host: FakeHost) -> Drivers {
        var drivers = Drivers.host(selection)
        let cgroups = MemoryCgroups(host: host)
        drivers.cgroups = cgroups
        drivers.runtimes = [.process: ChildRuntime()]
        return drivers
    }
}
