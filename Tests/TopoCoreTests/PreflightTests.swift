import Foundation
import Testing

@testable import TopoCore

@Suite struct PreflightTests {
    func plan(_ yaml: String) throws -> Plan {
        try Planner(host: try fixtureHost("1n-2c")).plan(try profile(yaml)).get()
    }

    func preflight(_ host: HostTopology, cgroupRoot: String = "/sys/fs/cgroup") -> Preflight {
        Preflight(host: host, drivers: .host(state: StateStore(root: "/nonexistent"), cgroupRoot: cgroupRoot))
    }

    @Test func cgroupV1HostsAreToldToUseTheLab() throws {
        var host = try fixtureHost("1n-2c")
        host.cgroup = CgroupProbe.classify(
            mounts: "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
        let problems = preflight(host).kernelProblems(
            for: try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\" } }"))
        #expect(problems.count == 1)
        #expect(problems[0].contains("cgroup v1 (hybrid)") && problems[0].contains("scripts/lab"))
    }

    @Test func missingControllersAreNamed() throws {
        let fake = try FakeRoot()
        try fake.seed("cgroup.controllers", "cpu pids\n")
        var host = try fixtureHost("1n-2c")
        host.cgroup = CgroupInfo(mode: .unified, mountPoint: fake.path, controllers: [], detail: "")
        let problems = preflight(host, cgroupRoot: fake.path).kernelProblems(
            for: try plan("version: 1\nname: x\nworkloads: { a: { cpus: \"0\", memory: { max: 1G } } }"))
        #expect(
            problems.map { $0.prefix(60) } == [
                "the cgroup v2 root \(fake.path) does not offer the cpuset controller".prefix(60),
                "the cgroup v2 root \(fake.path) does not offer the memory controller".prefix(60),
            ])
    }

    @Test func programsWorkdirsUsersAndRuntimesMustExist() throws {
        let problems = preflight(try fixtureHost("1n-2c")).workloadProblems(
            for: try plan(
                """
                version: 1
                name: x
                workloads:
                  a: { cpus: "0", run: { command: ["/no/such/program"], workdir: /no/such/dir, user: nosuchuser } }
                  b: { cpus: "1", run: { command: ["sh", "-c", "true"] } }
                """))
        #expect(
            problems == [
                "workload a runs /no/such/program, which is not an executable file on this host",
                "workload a: workdir /no/such/dir is not a directory on this host",
                "workload a: no user named nosuchuser on this host",
            ])
    }

    /// Containers: the runtime must be installed, the image a directory (docker is refused when the
    /// profile is read: ProfileDecoderTests)
    /// saying why; the program and workdir are looked up in the image.
    @Test func containerRuntimesAndImagesMustExist() throws {
        let fake = try FakeRoot()
        try fake.mkdir("rootfs/bin")
        try fake.mkdir("layout")
        try fake.seed("layout/oci-layout", "{}")
        let problems = preflight(try fixtureHost("1n-2c")).workloadProblems(
            for: try plan(
                """
                version: 1
                name: x
                workloads:
                  b: { cpus: "0", isolation: shared, run: { command: ["/bin/true"], runtime: crun, image: \(fake.path)/rootfs } }
                  c: { cpus: "1", isolation: shared, run: { command: ["/bin/true"], runtime: runc, image: \(fake.path)/layout } }
                """))
        #expect(
            problems.contains("workload b runs /bin/true, which is not an executable file in image \(fake.path)/rootfs")
        )
        #expect(
            problems.contains(
                "workload c: image layout \(fake.path)/layout has no tagged image: name one, image: \(fake.path)/layout:TAG"
            ), "\(problems)")
        for (runtime, binary) in OCIRuntime.binaries where !FileManager.default.isExecutableFile(atPath: binary) {
            #expect(problems.contains { $0.contains("runtime \(runtime.rawValue) is not installed") })
        }
    }

    /// An OCI image layout is `DIR` (its only tag) or `DIR:TAG`.
    @Test func imageLayoutsAreNamedByDirectoryAndTag() throws {
        let fake = try FakeRoot()
        try fake.seed("one/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        try fake.seed(
            "one/index.json",
            #"{"schemaVersion":2,"manifests":[{"digest":"sha256:aa","annotations":{"org.opencontainers.image.ref.name":"t"}}]}"#
        )
        try fake.seed("two/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        try fake.seed(
            "two/index.json",
            #"{"schemaVersion":2,"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"a"}},{"annotations":{"org.opencontainers.image.ref.name":"b"}}]}"#
        )
        #expect(OCIRuntime.reference("\(fake.path)/one").reference == "\(fake.path)/one:t")
        #expect(OCIRuntime.reference("\(fake.path)/two:b").reference == "\(fake.path)/two:b")
        #expect(
            OCIRuntime.reference("\(fake.path)/two").problem
                == "image layout \(fake.path)/two has several tags (a, b): name one, image: \(fake.path)/two:TAG")
        #expect(
            OCIRuntime.reference("\(fake.path)/one:nope").problem
                == "image layout \(fake.path)/one has no tag nope (it has t)")
        #expect(OCIRuntime.layout("/") == nil && OCIRuntime.layout(fake.path) == nil)
    }

    /// A workdir that is a symbolic link to a directory is a directory to chdir(2), and so to preflight.
    @Test func aWorkdirThatLinksToADirectoryIsAccepted() throws {
        let fake = try FakeRoot()
        try fake.mkdir("real")
        #expect(symlink("\(fake.path)/real", "\(fake.path)/link") == 0)
        try fake.seed("file", "x")
        #expect(symlink("\(fake.path)/file", "\(fake.path)/filelink") == 0)
        let problems = preflight(try fixtureHost("1n-2c")).workloadProblems(
            for: try plan(
                """
                version: 1
                name: x
                workloads:
                  a: { cpus: "0", run: { command: ["/bin/true"], workdir: \(fake.path)/link } }
                  b: { cpus: "1", run: { command: ["/bin/true"], workdir: \(fake.path)/filelink } }
                """))
        #expect(problems == ["workload b: workdir \(fake.path)/filelink is not a directory on this host"])
    }
}
