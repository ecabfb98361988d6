import Testing

@testable import TopoCore

@Suite struct HostDiscoveryTests {
    @Test func twoSocketsWithSiblingsNAndNPlus16() throws {
        let host = try fixtureHost("2s-8c-ht")
        #expect(host.nodes.map(\.id) == [0, 1])
        #expect(host.nodes[0].cpus.description == "0-7,16-23")
        #expect(host.nodes[1].cpus.description == "8-15,24-31")
        #expect(host.cores.count == 16 && host.hasSMT)
        #expect(host.cpu(3)?.siblings == CPUSet([3, 19]))
        #expect(host.cpu(27)?.package == 1 && host.cpu(27)?.coreID == 3 && host.cpu(27)?.node == 1)
        #expect(host.nodes[0].memTotal == Bytes(64 << 30))
        #expect(host.nodes[0].distances == [10, 21])
    }

    /// Exported from the lab VM with `topo host --export` (its 2×2 and 2×4+SMT shapes): what the
    /// kernel really writes there, not a shape written by make-hosts.py.
    @Test func labShapesAsTheirKernelWroteThem() throws {
        let small = try fixtureHost("lab-2n-2c")
        #expect(small.nodes.map(\.cpus.description) == ["0-1", "2-3"] && !small.hasSMT)
        #expect(
            small.nodes.allSatisfy { ($0.memTotal?.value ?? 0) > 512 << 20 } && small.nodes[0].distances == [10, 20])
        let smt = try fixtureHost("lab-2n-4c-smt")
        #expect(smt.nodes.map(\.cpus.description) == ["0-3", "4-7"] && smt.hasSMT && smt.cores.count == 4)
        #expect(smt.cpu(5)?.siblings == CPUSet([4, 5]))
        let meminfo = try String(
            contentsOfFile: Repo.host("lab-2n-4c-smt") + "/devices/system/node/node0/meminfo", encoding: .utf8)
        #expect(
            meminfo.split(separator: "\n").count == 1 && meminfo.contains("MemTotal:"),
            "an export keeps only MemTotal: \(meminfo)")
    }

    /// `--cgroup-root` is accepted on a cgroup2 filesystem (statfs), wherever it is mounted.
    @Test func cgroup2DirectoriesAreKnownByTheirFilesystem() throws {
        #expect(!Sys.isCgroup2("/tmp") && !Sys.isCgroup2("/no/such/dir"))
        let mounts = (try? Sys.read("/proc/self/mountinfo")) ?? ""
        for line in mounts.split(separator: "\n") where line.contains(" - cgroup2 ") {
            let point = String(line.split(separator: " ")[4])
            #expect(Sys.isCgroup2(point), "\(point) is a cgroup2 mount")
        }
    }

    @Test func adjacentSiblingsOnTwoNodesOfOneSocket() throws {
        let host = try fixtureHost("1s-2n-adjacent")
        #expect(host.cores.first == CPUSet([0, 1]))
        #expect(Set(host.cpus.compactMap(\.package)) == [0])
        #expect(host.nodes[1].distances == [11, 10])
    }

    @Test func memoryOnlyNodeHasNoCPUs() throws {
        let host = try fixtureHost("4n-unequal-memonly")
        #expect(host.nodes.map { $0.cpus.count } == [4, 2, 6, 0])
        #expect(host.nodes[3].isMemoryOnly && !host.nodes[2].isMemoryOnly)
        #expect(!host.hasSMT)
    }

    @Test func offlineCPUsAreKnownButNotOnline() throws {
        let host = try fixtureHost("offline-cpus")
        #expect(host.allCPUs.description == "0-7")
        #expect(host.onlineCPUs.description == "0-2,4-5")
        #expect(host.cores == [CPUSet([0, 4]), CPUSet([1, 5]), CPUSet([2])])
        #expect(host.cpu(6)?.online == false)
    }

    @Test func fixturesAreNotProbedForCgroupsOrNetem() throws {
        let host = try fixtureHost("1n-2c")
        #expect(host.cgroup.mode == .unknown)
        if case .unknown = host.netem {} else { Issue.record("netem should be unknown for a fixture: \(host.netem)") }
    }

    @Test func aDirectoryThatIsNotSysfsIsAnError() {
        #expect(throws: HostDiscovery.Failure.self) {
            try HostDiscovery(sysfsRoot: Repo.path("Profiles")).discover().get()
        }
    }

    @Test func mountinfoLinesGiveMountPointsAndTypes() {
        let info = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            35 22 0:30 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
            90 35 0:44 / /run/topo/p/bundles/a\\040b/rootfs ro master:1 - ext4 /dev/sda1 ro
            91 35 0:45 / /run/topology rw - tmpfs tmpfs rw
            """
        let entries = Mounts.parse(mountinfo: info)
        #expect(entries.map(\.type) == ["ext4", "tmpfs", "ext4", "tmpfs"])
        #expect(Mounts.at(orBelow: "/run/topo/p", in: entries) == ["/run/topo/p/bundles/a b/rootfs"])
        #expect(Mounts.at(orBelow: "/run/topo", in: entries) == ["/run/topo/p/bundles/a b/rootfs"])
        #expect(Mounts.at(orBelow: "/run", in: entries).count == 3)
    }

    @Test func cgroupModesFromMountTables() {
        let unified =
            "sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"
        #expect(CgroupProbe.classify(mounts: unified).mode == .unified)
        let hybrid = """
            tmpfs /sys/fs/cgroup tmpfs rw 0 0
            cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
            """
        let h = CgroupProbe.classify(mounts: hybrid)
        #expect(h.mode == .hybrid && h.mountPoint == "/sys/fs/cgroup/unified" && h.detail.contains("cpuset,memory"))
        let legacy = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
        #expect(CgroupProbe.classify(mounts: legacy).mode == .legacy)
        #expect(CgroupProbe.classify(mounts: "proc /proc proc rw 0 0\n").mode == .none)
        #expect(Mounts.unescape("/mnt/a\\040b") == "/mnt/a b")
    }

    @Test func memTotalFromNodeMeminfo() {
        #expect(
            HostDiscovery.memTotal("Node 0 MemTotal:       16318508 kB\nNode 0 MemFree: 1 kB")
                == Bytes(16_318_508 * 1024))
        #expect(HostDiscovery.memTotal("garbage") == nil)
    }
}
