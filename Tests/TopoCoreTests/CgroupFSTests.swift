import Foundation
import Testing

@testable import TopoCore

/// The cgroupfs writer against a temporary directory seeded like a cgroup tree.
@Suite struct CgroupFSTests {
    @Test func aFailedWriteNamesPathValueKernelWordsAndTheMissingController() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.controllers", "cpuset cpu memory pids\n")
        try fake.seed("topo/x/cgroup.controllers", "cpu\n")
        let fs = CgroupFS(root: fake.path)
        do {
            try fs.write("topo/x", "memory.max", "4294967296")
            Issue.record("the write succeeded")
        } catch {
            #expect(
                error.description
                    == "write \(fake.path)/topo/x/memory.max \"4294967296\": No such file or directory (the memory controller is not enabled for this cgroup: its parent's cgroup.subtree_control lacks it (the root offers: cpuset cpu memory pids))"
            )
            #expect(error.errno == ENOENT)
        }
    }

    @Test func writesWithoutAControllerProblemAreNotRediagnosed() throws {
        let fake = try FakeRoot()
        try fake.mkdir("x")
        let fs = CgroupFS(root: fake.path)
        #expect(throws: SystemError.self) { try fs.write("x", "cgroup.procs", "1") }
        do { try fs.write("x", "cgroup.procs", "1") } catch { #expect(error.diagnosis == nil) }
    }

    /// Child cgroups are the subdirectories, at any depth below; a cgroup without any is answered from
    /// its link count, and its files are never taken for children.
    @Test func childrenAreSubdirectoriesOnly() throws {
        let fake = try FakeRoot()
        try fake.seed("w/cgroup.procs", "7\n")
        try fake.seed("w/a/cgroup.procs", "8\n9\n")
        try fake.seed("w/a/deep/cgroup.procs", "10\n")
        try fake.seed("w/b/cgroup.procs", "")
        let fs = CgroupFS(root: fake.path)
        #expect(fs.children("w").sorted() == ["w/a", "w/b"])
        #expect(fs.children("w/a") == ["w/a/deep"] && fs.children("w/b") == [] && fs.children("w/gone") == [])
        #expect(fs.allProcs("w").sorted() == [7, 8, 9, 10])
    }

    @Test func enableWritesOnlyTheMissingControllers() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.subtree_control", "cpu\n")
        let fs = CgroupFS(root: fake.path)
        #expect(try fs.enable(["cpu", "memory", "pids"], below: "") == ["memory", "pids"])
        #expect(fake.read("cgroup.subtree_control") == "+memory +pids")
    }

    @Test func procsEventsAndChildren() throws {
        let fake = try FakeRoot()
        try fake.seed("a/cgroup.procs", "12\n34\n")
        try fake.seed("a/b/cgroup.procs", "56\n")
        try fake.seed("a/cgroup.events", "populated 1\nfrozen 0\n")
        let fs = CgroupFS(root: fake.path)
        #expect(fs.procs("a") == [12, 34])
        #expect(fs.allProcs("a") == [12, 34, 56])
        #expect(fs.children("a") == ["a/b"])
        #expect(fs.isPopulated("a"))
        #expect(!fs.isPopulated("a/b"))
    }

    @Test func removeTreeGoesDeepestFirstAndToleratesAbsence() throws {
        let fake = try FakeRoot()
        try fake.mkdir("t/w/own/deeper")
        try fake.mkdir("t/v")
        let fs = CgroupFS(root: fake.path)
        try fs.removeTree("t")
        #expect(!fake.exists("t"))
        try fs.removeTree("t")  // already gone
    }

    @Test(.enabled(if: FakeRoot.supportsTrustedXattrs, "needs root and a filesystem with trusted.* attributes"))
    func createMarksOwnership() throws {
        let fake = try FakeRoot()
        let fs = CgroupFS(root: fake.path)
        try fs.create("topo", owner: "topo")
        #expect(fs.owner("topo") == "topo")
        try fake.mkdir("foreign")
        #expect(fs.owner("foreign") == nil)
        #expect(throws: SystemError.self) { try fs.create("topo", owner: "topo") }
    }
}

/// Removing topo's state never follows a link or crosses into another filesystem.
@Suite struct RemoveTreeTests {
    @Test func aTreeGoesButWhatItsLinksPointAtStays() throws {
        let base = NSTemporaryDirectory() + "topo-rmtree-\(getpid())"
        let outside = base + "-outside"
        try FileManager.default.createDirectory(atPath: base + "/a/b", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try "x".write(toFile: outside + "/keep", atomically: false, encoding: .utf8)
        try "y".write(toFile: base + "/a/b/file", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: base + "/a/link", withDestinationPath: outside)
        #expect(try Sys.removeTree(base) == [])
        #expect(!FileManager.default.fileExists(atPath: base))
        #expect(FileManager.default.fileExists(atPath: outside + "/keep"))
        #expect(try Sys.removeTree(base) == [])  // already gone
    }
}

/// What `/proc/PID/cgroup` calls a cgroup, wherever topo's cgroup root is.
@Suite struct HierarchyPathTests {
    @Test func aCgroupRootBelowTheHierarchysRootIsPartOfThePath() {
        let mounts = [
            Mounts.Entry(point: "/sys/fs/cgroup", type: "cgroup2", root: "/"),
            Mounts.Entry(point: "/mnt/lab", type: "cgroup2", root: "/lab"),
            Mounts.Entry(point: "/sys", type: "sysfs", root: "/"),
        ]
        #expect(CgroupFS(root: "/sys/fs/cgroup").hierarchyPath("topo/p/w", mounts: mounts) == "/topo/p/w")
        #expect(
            CgroupFS(root: "/sys/fs/cgroup/somewhere").hierarchyPath("topo/p/w", mounts: mounts)
                == "/somewhere/topo/p/w")
        #expect(CgroupFS(root: "/sys/fs/cgroup/somewhere").hierarchyPath("", mounts: mounts) == "/somewhere")
        // A second mount of a cgroup below the root (its mountinfo root is that cgroup).
        #expect(CgroupFS(root: "/mnt/lab/x").hierarchyPath("topo/p/w", mounts: mounts) == "/lab/x/topo/p/w")
        #expect(CgroupFS(root: "/tmp/fake").hierarchyPath("topo/p/w", mounts: mounts) == "/topo/p/w")
        #expect(
            Mounts.parse(mountinfo: "30 24 0:26 /lab /mnt/lab rw - cgroup2 cgroup2 rw\n") == [
                Mounts.Entry(point: "/mnt/lab", type: "cgroup2", root: "/lab")
            ])
    }
}

@Suite struct CgroupLayoutTests {
    /// A partition needs a partition root for a parent: the cgroup root, not topo's own cgroups.
    @Test func partitionsSitBelowTheCgroupRootOthersBelowTopo() throws {
        let plan = try Planner(host: try fixtureHost("2s-8c-ht")).plan(
            try profile(
                """
                version: 1
                name: lab
                workloads:
                  a: { cpus: { count: 2 } }
                  b: { cpus: { count: 2 }, isolation: partition }
                """)
        ).get()
        #expect(plan.workloads.map(\.cgroupPath) == ["topo/lab/a", "topo.lab.b"])
        let cgroups = plan.resources.compactMap { if case .cgroup(let c) = $0 { c.path } else { nil } }
        #expect(cgroups == ["topo/lab", "topo/lab/a", "topo.lab.b"])
    }

    /// Before rmdir a partition becomes a member, so its CPUs are back when `down` returns (the kernel
    /// would return them only when the removed cgroup goes offline, later).
    @Test func aPartitionIsMadeAMemberBeforeItIsRemoved() throws {
        let fake = try FakeRoot()
        try fake.seed("topo.lab.b/cpuset.cpus.partition", "root invalid (Parent unable to distribute cpu downstream)\n")
        let cgroups = CgroupFS(root: fake.path)
        cgroups.releasePartition("topo.lab.b")
        cgroups.releasePartition("topo/lab")  // no cpuset: nothing written
        // cgroupfs takes the write whole; a plain file keeps the old tail after it.
        #expect(fake.read("topo.lab.b/cpuset.cpus.partition")?.hasPrefix("member") == true)
        #expect(!fake.exists("topo/lab/cpuset.cpus.partition"))
    }
}

/// Typed settings: the kernel's encoding written, and the kernel's value read back and compared the
/// way the kernel normalises it.
@Suite struct CgroupSettingTests {
    let page: UInt64 = 4096

    @Test func kernelEncodings() {
        #expect(
            CgroupSetting.cpuMax(quota: Duration(nanoseconds: 150_000_000), period: CPUSpec.period).kernelValue
                == "150000 100000")
        #expect(CgroupSetting.memoryMax(.value(Bytes(1 << 30))).kernelValue == "1073741824")
        #expect(CgroupSetting.swapMax(.max).kernelValue == "max")
        let io = IOLimit(
            device: DeviceNumber(major: 8, minor: 0), rbps: .value(Bytes(1 << 20)), wbps: nil, riops: nil, wiops: .max)
        #expect(CgroupSetting.ioMax(io).kernelValue == "8:0 rbps=1048576 wiops=max")
    }

    @Test func readBackKnowsTheKernelsNormalisations() {
        // CPU lists in any order or grouping.
        #expect(CgroupSetting.cpus(CPUSet([0, 1, 2, 5])).differences(kernel: "0-2,5", pageSize: page) == [])
        #expect(
            CgroupSetting.cpus(CPUSet([0, 1])).differences(kernel: "0-2", pageSize: page) == [
                "cpuset.cpus: planned 0-1, kernel has \"0-2\""
            ])
        // Memory limits rounded down to whole pages.
        #expect(CgroupSetting.memoryMax(.value(Bytes(10_000))).differences(kernel: "8192", pageSize: page) == [])
        #expect(CgroupSetting.memoryMax(.value(Bytes(10_000))).differences(kernel: "max", pageSize: page).count == 1)
        #expect(CgroupSetting.memoryHigh(.max).differences(kernel: "max", pageSize: page) == [])
        // cpu.max with its period.
        let quota = CgroupSetting.cpuMax(quota: Duration(nanoseconds: 50_000_000), period: CPUSpec.period)
        #expect(quota.differences(kernel: "50000 100000", pageSize: page) == [])
        #expect(
            quota.differences(kernel: "max 100000", pageSize: page) == [
                "cpu.max: planned 50000 100000, kernel has \"max 100000\""
            ])
        // io.max prints all four keys on the device's line, and no line when all are max.
        let io = IOLimit(
            device: DeviceNumber(major: 8, minor: 0), rbps: .value(Bytes(1 << 20)), wbps: nil, riops: nil, wiops: nil)
        #expect(
            CgroupSetting.ioMax(io).differences(
                kernel: "8:16 rbps=1 wbps=max riops=max wiops=max\n8:0 rbps=1048576 wbps=max riops=max wiops=max",
                pageSize: page) == [])
        #expect(CgroupSetting.ioMax(io).differences(kernel: "", pageSize: page).count == 1)
        let none = IOLimit(device: DeviceNumber(major: 8, minor: 0), rbps: .max, wbps: nil, riops: nil, wiops: nil)
        #expect(CgroupSetting.ioMax(none).differences(kernel: "", pageSize: page) == [])
        // A partition the kernel invalidated is a difference, in its own words.
        #expect(
            CgroupSetting.partition.differences(
                kernel: "root invalid (Cpu list in cpuset.cpus not exclusive)", pageSize: page)
                == [
                    "cpuset.cpus.partition: planned root, kernel has \"root invalid (Cpu list in cpuset.cpus not exclusive)\""
                ])
        #expect(CgroupSetting.pidsMax(.value(64)).differences(kernel: "64", pageSize: page) == [])
    }

    /// Apply and observe through the cgroupfs manager against a directory seeded like a cgroup.
    @Test func theManagerWritesAndObservesSettings() throws {
        let scene = try Scene()
        // cgroupfs makes the file; a plain directory does not
        try scene.fake.seed("cg/topo/demo/a/memory.max", "max\n")
        let manager = try #require(scene.drivers.cgroups as? CgroupfsManager)
        let memory = Resource.cgroupSetting(
            CgroupSettingResource(cgroup: "topo/demo/a", workload: "a", setting: .memoryMax(.value(Bytes(268_435_456))))
        )
        #expect(manager.apply([memory]).count == 1)
        #expect(scene.fake.read("cg/topo/demo/a/memory.max") == "268435456")
        #expect(manager.observe(memory).differences == [])
        try scene.fake.seed("cg/topo/demo/a/memory.max", "max\n")
        #expect(
            manager.observe(memory).differences == ["memory.max: planned 268435456 bytes (256M), kernel has \"max\""])
        let missing = Resource.cgroupSetting(
            CgroupSettingResource(cgroup: "topo/demo/b", workload: "b", setting: .pidsMax(.max)))
        #expect(!manager.observe(missing).found)
    }
}
