import CNuma
import CTopoShim
import Foundation

/// Container workloads under an OCI runtime (crun or runc) from a bundle topo writes per workload
/// (`OCIBundle.config`). The container's cgroup is a child of the workload's (the workload cgroup holds
/// the plan's limits and enforces them from above); it joins the workload's network namespace by path
/// and sees its hosts file. The runtime is started with the workload's CPUs and NUMA memory policy
/// set on the starting thread, so the container inherits both. Its output goes to the workload's log.
public struct OCIRuntime: WorkloadRuntime {
    public var runtime: Runtime
    /// The runtime's binary: /usr/bin/crun, /usr/sbin/runc.
    public var binary: String
    public var cgroups: any CgroupManager
    public var state: StateStore
    public var runner = CommandRunner()

    public init(_ runtime: Runtime, binary: String, cgroups: any CgroupManager, state: StateStore) {
        self.runtime = runtime
        self.binary = binary
        self.cgroups = cgroups
        self.state = state
    }

    /// Where the Debian packages install each runtime.
    public static let binaries: [Runtime: String] = [.crun: "/usr/bin/crun", .runc: "/usr/sbin/runc"]

    func bundle(_ l: LaunchResource) -> String { "\(state.profileDir(l.profile))/bundles/\(l.workload)" }

    /// `image: /` (or none) is the host's root, attached read-only under the bundle; an OCI image layout
    /// is unpacked into the bundle with umoci; a directory is used as it is.
    func usesHostRoot(_ l: LaunchResource) -> Bool { l.image == nil || l.image == "/" }
    func rootfs(_ l: LaunchResource) -> String {
        if usesHostRoot(l) { return "\(bundle(l))/rootfs" }
        if Self.layout(l.image) != nil { return "\(bundle(l))/image/rootfs" }
        return l.image!
    }

    public static let umoci = "/usr/bin/umoci"

    /// An OCI image layout named by `image`: `DIR` or `DIR:TAG`, where DIR holds an `oci-layout` file.
    public static func layout(_ image: String?) -> (dir: String, tag: String?)? {
        guard let image, image != "/" else { return nil }
        if Sys.exists("\(image)/oci-layout") { return (image, nil) }
        if let colon = image.lastIndex(of: ":"), Sys.exists("\(image[..<colon])/oci-layout") {
            return (String(image[..<colon]), String(image[image.index(after: colon)...]))
        }
        return nil
    }

    /// The tags of a layout's images (`org.opencontainers.image.ref.name` in its index.json).
    static func tags(_ dir: String) -> [String] {
        guard let text = try? Sys.read("\(dir)/index.json"), let index = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return [] }
        return ((index["manifests"] as? [[String: Any]]) ?? []).compactMap { ($0["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String }
    }

    /// `DIR:TAG` for umoci: the tag given, or the layout's only one; nil and why when there is none.
    static func reference(_ image: String?) -> (reference: String?, problem: String?) {
        guard let (dir, tag) = layout(image) else { return (nil, "\(image ?? "") is not an OCI image layout") }
        let tags = Self.tags(dir)
        if let tag {
            return tags.contains(tag) ? ("\(dir):\(tag)", nil) : (nil, "image layout \(dir) has no tag \(tag) (it has \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))")
        }
        guard tags.count == 1 else {
            return (nil, "image layout \(dir) has \(tags.isEmpty ? "no tagged image" : "several tags (\(tags.joined(separator: ", ")))"): name one, image: \(dir):TAG")
        }
        return ("\(dir):\(tags[0])", nil)
    }

    public func problems(_ l: LaunchResource) -> [String] {
        var problems: [String] = []
        if !Sys.access(binary, X_OK) {
            problems.append("runtime \(runtime.rawValue) is not installed (\(binary) is missing): apt-get install \(runtime.rawValue)")
        }
        if Self.layout(l.image) != nil {
            if let why = Self.reference(l.image).problem { problems.append(why) }
            if !Sys.access(Self.umoci, X_OK) { problems.append("image \(l.image!) is an OCI image layout, and umoci, which unpacks it, is not installed: apt-get install umoci") }
        } else if let image = l.image, image != "/", !Sys.isDirectory(image, followingLinks: true) {
            problems.append("image \(image) is neither a directory (a container's root filesystem) nor an OCI image layout (DIR or DIR:TAG)")
        }
        return problems
    }

    // MARK: apply

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .launch(let l) = r else { throw TopoFailure(.applyFailed, "the \(runtime.rawValue) runtime does not make \(r.summary)") }
            return Facts(pid: try start(container: l))
        }
    }

    func start(container l: LaunchResource) throws(TopoFailure) -> Int32 {
        let id = OCIBundle.containerID(l), dir = bundle(l)
        func failed(_ what: String) -> TopoFailure { TopoFailure(.applyFailed, "container \(id) (\(runtime.rawValue)) for workload \(l.workload): \(what)") }
        do {
            for d in ["\(state.profileDir(l.profile))/bundles", dir] where !Sys.isDirectory(d) { try Sys.mkdir(d, mode: 0o700) }
            if usesHostRoot(l) {
                try Sys.mkdir(rootfs(l), mode: 0o755)
                if topo_attach_read_only_tree("/", rootfs(l)) != 0 { throw SystemError("attach a read-only copy of / at", rootfs(l), errno: errno) }
            }
        } catch { throw failed("\(error)") }
        if Self.layout(l.image) != nil {
            // Unpacked per workload, into the bundle (and gone with it).
            let resolved = Self.reference(l.image)
            guard let reference = resolved.reference else { throw failed(resolved.problem ?? "no image") }
            let r = runner.run([Self.umoci, "unpack", "--image", reference, "\(dir)/image"])
            guard r.status == 0 else { throw failed("umoci unpack --image \(reference) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        }
        let user: (uid: UInt32, gid: UInt32)
        switch OCIBundle.user(l.user) {
        case .success(let u): user = u
        case .failure(let f): throw failed(f.message)
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let config = OCIBundle.config(l, rootfs: rootfs(l), uid: user.uid, gid: user.gid, nofile: UInt64(limit.rlim_cur))
        do {
            try Sys.write("\(dir)/config.json", JSONOutput.encode(config) + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, operation: "write")
        } catch { throw failed("\(error)") }
        // `run -d` returns once the container runs; its stdio is handed to the container, so it goes to
        // the log (a pipe would never close). What the runtime says on failure is the log's new tail.
        let log = l.logPath ?? "/dev/null"
        let before = Sys.stat(log).map { Int($0.st_size) } ?? 0
        let rootBefore = rootControllers()
        let status = Self.spawnWaiting([binary, "run", "--detach", "--bundle", dir, id], output: log, cpus: l.cpus, policy: l.memoryPolicy, nodes: l.policyNodes)
        try recordControllers(enabledSince: rootBefore)
        guard status == 0 else {
            let said = ((try? Sys.read(log)) ?? "").utf8.dropFirst(before)
            throw failed("\(binary) run exited \(status): \(String(decoding: said, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "; "))")
        }
        let out = runner.run([binary, "state", id])
        guard out.status == 0, let json = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any],
              let pid = (json["pid"] as? NSNumber)?.int32Value, pid > 0 else {
            throw failed("\(binary) state: \(out.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        // The runtimes ignore linux.memoryPolicy; the container inherits the policy it was started
        // under. Read it back: a runtime that set another one fails the apply.
        let expected = Verifier.numaMapsPolicy(l.memoryPolicy, l.policyNodes)
        if let maps = try? Sys.read("/proc/\(pid)/numa_maps"), let policy = maps.split(separator: "\n").first?.split(separator: " ").dropFirst().first.map(String.init),
           !expected.contains(policy) {
            throw failed("its process \(pid) has memory policy \(policy), not \(expected[0])")
        }
        return pid
    }

    func rootControllers() -> Set<String> {
        Set((cgroups.read("", "cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// The runtimes enable every controller they know in each ancestor's `cgroup.subtree_control`, up to
    /// the cgroup root (runc adds rdma and misc): those at the root are recorded as topo's host changes,
    /// which the last `down` turns off again, as it does the ones topo enabled itself.
    func recordControllers(enabledSince before: Set<String>) throws(TopoFailure) {
        let added = rootControllers().subtracting(before)
        guard !added.isEmpty else { return }
        do {
            var changes = try state.hostChanges()
            changes.rootControllers = Array(Set(changes.rootControllers).union(added)).sorted()
            try state.record(changes)
        } catch let e as TopoFailure {
            throw e
        } catch {
            throw TopoFailure(.applyFailed, "record the controllers \(runtime.rawValue) enabled at the cgroup root (\(added.sorted().joined(separator: " "))): \(error)")
        }
    }

    /// Starts `argv` with stdin /dev/null and stdout and stderr appended to `output`, every signal at its
    /// default and none blocked, on `cpus` under the memory policy (set on this thread for the spawn,
    /// then put back), and waits for it.
    static func spawnWaiting(_ argv: [String], output: String, cpus: CPUSet, policy: MemoryPolicy, nodes: CPUSet) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | 0x80))  // 0x80: glibc's POSIX_SPAWN_SETSID, not imported
        var args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = NUMALibrary.onThisThread(cpus: cpus, policy: policy, nodes: nodes) {
            posix_spawn(&pid, argv[0], &actions, &attr, &args, environ)
        }
        guard rc == 0 else { return 127 }
        return Spawn.wait(pid)
    }

    // MARK: undo

    /// The runtime deletes the container (`delete --force` kills it first); then anything left in the
    /// workload's cgroup is killed as for a process workload, and the bundle goes: its root unmounted
    /// first and checked gone, and nothing removed through a mount.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .launch(let l) = resource else { return .nothing }
        let id = OCIBundle.containerID(l)
        let known = runner.run([binary, "state", id]).status == 0
        if known {
            let r = runner.run([binary, "delete", "--force", id])
            if r.status != 0 && runner.run([binary, "state", id]).status == 0 {
                throw TopoFailure(.hostCannot, "\(binary) delete --force \(id) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        try cgroups.stopAll(in: l.cgroup, owner: l.profile)
        let dir = bundle(l)
        if usesHostRoot(l), Sys.exists(rootfs(l)) {
            let mounted = { (try? Mounts.read().get()).map { Mounts.at(orBelow: self.rootfs(l), in: $0) } ?? [self.rootfs(l)] }
            if !mounted().isEmpty {
                do { try Sys.unmount(rootfs(l), detach: true) } catch {
                    throw TopoFailure(.hostCannot, "container \(id): unmount its root \(rootfs(l)): \(error); the bundle is kept")
                }
            }
            let still = mounted()
            guard still.isEmpty else { throw TopoFailure(.hostCannot, "container \(id): \(still.joined(separator: ", ")) still mounted after unmounting; the bundle is kept") }
        }
        if Sys.exists(dir) {
            do {
                let left = try Sys.removeTree(dir)
                if !left.isEmpty { throw SystemError("remove the bundle", dir, errno: EBUSY, diagnosis: "\(left.joined(separator: ", ")) is another filesystem") }
            } catch { throw TopoFailure(.hostCannot, "container \(id): \(error)") }
        }
        return known ? .removed("container \(id)") : .nothing
    }

    // MARK: observe, exec

    public func observe(_ resource: Resource) -> Observation { ProcessRuntime.observeLaunch(resource, cgroups) }

    /// The container's own process spec for a command run inside it: its user, capabilities and
    /// environment, written beside the bundle.
    func processFile(_ launch: LaunchResource, name: String) -> Result<String, TopoFailure> {
        let user: (uid: UInt32, gid: UInt32)
        switch OCIBundle.user(launch.user) {
        case .success(let u): user = u
        case .failure(let f): return .failure(f)
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let process = OCIBundle.config(launch, rootfs: rootfs(launch), uid: user.uid, gid: user.gid, nofile: UInt64(limit.rlim_cur)).process
        let path = "\(bundle(launch))/\(name).json"
        do {
            try Sys.write(path, JSONOutput.encode(process) + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, operation: "write")
        } catch { return .failure(TopoFailure(.hostCannot, "\(error)")) }
        return .success(path)
    }

    public func runInForeground(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        processFile(launch, name: "exec-\(getpid())").map { path in
            defer { try? Sys.unlink(path) }
            let argv: [String] = [binary, "exec", "--process", path, OCIBundle.containerID(launch)]
            var args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
            defer { args.forEach { free($0) } }
            var pid: pid_t = 0
            guard posix_spawn(&pid, binary, nil, nil, &args, environ) == 0 else { return 127 }
            return Spawn.wait(pid)
        }
    }

    public func start(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        processFile(launch, name: "probe-\(launch.workload)").flatMap { path in
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, launch.logPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let argv = [binary, "exec", "--process", path, OCIBundle.containerID(launch)]
            var args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
            defer { args.forEach { free($0) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, binary, &actions, nil, &args, environ)
            guard rc == 0 else { return .failure(TopoFailure(.hostCannot, "posix_spawn \(binary): \(String(cString: strerror(rc)))")) }
            return .success(pid)
        }
    }
}
