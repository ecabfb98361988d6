import Foundation
import Synchronization
import Testing

@testable import TopoCore

/// The systemd cgroup manager's plan and its decisions, without systemd: the cgroup paths under a
/// delegated scope, when it is chosen, what it says it will do, and what it refuses. The lab
/// (SystemdLabTests, with systemd as PID 1) makes and removes the scopes for real.
@Suite struct SystemdManagerTests {
    @Test func aProfileLivesInItsScopeInTopoSlice() throws {
        let layout = Layout(manager: .systemd)
        #expect(layout.topoCgroup == "topo.slice")
        #expect(layout.profileCgroup("api") == "topo.slice/topo-api.scope")
        #expect(layout.workloadCgroup("api", "server", .exclusive) == "topo.slice/topo-api.scope/server")
        #expect(
            Layout().workloadCgroup("api", "server", .partition) == "topo.api.server",
            "cgroupfs keeps partitions at the root")
        let plan = try Planner(host: try fixtureHost("2s-8c-ht"), layout: layout).plan(
            try profile(
                """
                version: 1
                name: api
                workloads:
                  server: { cpus: { count: 2 }, memory: { max: 1G } }
                """)
        ).get()
        let cgroups = plan.resources.compactMap { r -> CgroupResource? in if case .cgroup(let c) = r { c } else { nil }
        }
        #expect(cgroups.map(\.path) == ["topo.slice/topo-api.scope", "topo.slice/topo-api.scope/server"])
        #expect(plan.workloads[0].cgroupPath == "topo.slice/topo-api.scope/server")
    }

    @Test func systemdIsChosenWhereItIsPIDOneAndBootedTheHost() throws {
        let root = try FakeRoot()
        try root.seed("proc/1/comm", "systemd\n")
        #expect(
            CgroupManagerKind.detect(HostFiles(root: root.path)) == .cgroupfs,
            "no /run/systemd/system: not booted by systemd")
        try root.mkdir("run/systemd/system")
        #expect(CgroupManagerKind.detect(HostFiles(root: root.path)) == .systemd)
        try root.seed("proc/1/comm", "init\n")
        #expect(CgroupManagerKind.detect(HostFiles(root: root.path)) == .cgroupfs)
    }

    final class Calls: Sendable { let list = Mutex<[String]>([]) }

    /// Undo stops only a unit that is provably topo's: its cgroup marked for the profile, or the unit
    /// carrying topo's description for it.
    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs trusted.* attributes (root on tmpfs or ext4)"))
    func undoStopsOnlyAScopeThatIsTopos() throws {
        let cgroups = try FakeRoot()
        let state = try FakeRoot()
        let calls = Calls()
        let scopePath = cgroups.path + "/topo.slice/topo-api.scope"
        func manager(description: String) -> SystemdManager {
            SystemdManager(
                inner: CgroupfsManager(fs: CgroupFS(root: cgroups.path), state: StateStore(root: state.path))
            ) { args in
                calls.list.withLock { $0.append(args.joined(separator: " ")) }
                if args.first == "stop" { try? FileManager.default.removeItem(atPath: scopePath) }  // as systemd does
                switch args.last {
                case "topo-api.scope" where args.contains("LoadState"):
                    return CommandResult(status: 0, stdout: "loaded\n", stderr: "")
                case "topo-api.scope" where args.contains("Description"):
                    return CommandResult(status: 0, stdout: description + "\n", stderr: "")
                default: return CommandResult(status: 0, stdout: "", stderr: "")
                }
            }
        }
        let scope = Resource.cgroup(
            CgroupResource(path: "topo.slice/topo-api.scope", owner: "api", workload: nil, enable: [.cpuset]))
        try cgroups.mkdir("topo.slice/topo-api.scope")
        let foreign = try manager(description: "someone's scope").undo(scope, done: true, facts: Facts())
        guard case .leftAlone = foreign else {
            Issue.record("\(foreign)")
            return
        }
        #expect(!calls.list.withLock { $0 }.contains("stop topo-api.scope"))
        // A unit topo started but was killed before marking: its description says whose it is.
        let unmarked = try manager(description: "topo profile api").undo(scope, done: false, facts: Facts())
        #expect(calls.list.withLock { $0 }.contains("stop topo-api.scope"))
        guard case .removed = unmarked else {
            Issue.record("\(unmarked)")
            return
        }
        #expect(!cgroups.exists("topo.slice/topo-api.scope"))
    }

    @Test func theDryRunSaysWhatSystemdIsAskedFor() throws {
        let m = SystemdManager(
            inner: CgroupfsManager(fs: CgroupFS(root: "/sys/fs/cgroup"), state: StateStore(root: "/run/topo")))
        let lines = m.describe(
            .cgroup(
                CgroupResource(
                    path: "topo.slice/topo-api.scope", owner: "api", workload: nil, enable: [.cpuset, .memory])))
        #expect(
            lines.first?.hasPrefix("systemd-run --scope --unit=topo-api.scope --slice=topo --property=Delegate=yes")
                == true, "\(lines)")
        #expect(
            lines.contains(
                "write \"+cpuset +memory\" to /sys/fs/cgroup/topo.slice/topo-api.scope/cgroup.subtree_control"))
        #expect(
            m.describe(.cgroupRoot(CgroupRootResource(path: "topo.slice", profile: "api", controllers: [.cpuset])))
                .first?.contains("nothing is written there") == true)
    }
}
