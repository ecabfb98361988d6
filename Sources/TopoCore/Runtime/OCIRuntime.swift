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
    /// Image layouts, unpacked once per digest and shared.
    public var images: ImageCache
    /// The topo binary bound into each container for `verify --active`'s probes.
    public var executable: String
    var support: ContainerSupport { ContainerSupport(runtime: runtime, cgroups: cgroups, state: state) }

    public init(
        _ runtime: Runtime, binary: String, cgroups: any CgroupManager, state: StateStore,
        executable: String = Spawn.selfExecutable
    ) {
        self.runtime = runtime
        self.binary = binary
        self.cgroups = cgroups
        self.state = state
        self.images = ImageCache(state: state, unpack: ImageCache.umoci())
        self.executable = executable
    }

    public var probeExecutable: String? { ContainerSupport.probePath }

    /// Where the Debian packages install each runtime.
    public static let binaries: [Runtime: String] = [.crun: "/usr/bin/crun", .runc: "/usr/sbin/runc"]

    func bundle(_ l: LaunchResource) -> String { "\(state.profileDir(l.profile))/bundles/\(l.workload)" }

    /// `image: /` (or none) is the host's root, attached read-only under the bundle; an OCI image layout
    /// is unpacked once per digest into topo's image cache; a directory is used as it is.
    func usesHostRoot(_ l: LaunchResource) -> Bool { Self.isHostRoot(l.image) }

    /// Whether an image names the host's root: none, or a path that resolves to `/` (`//`, `/.`, `/tmp/..`,
    /// a link to `/`) — never used as it is, which would give the container the host's writable root.
    static func isHostRoot(_ image: String?) -> Bool {
        guard let image else { return true }
        if image == "/" { return true }
        guard image.hasPrefix("/"), let resolved = realpath(image, nil) else { return false }
        defer { free(resolved) }
        return String(cString: resolved) == "/"
    }

    /// The cache's name for the container's use of an image.
    static func imageUser(_ l: LaunchResource) -> String { "\(l.profile).\(l.workload)" }

    public static let umoci = "/usr/bin/umoci"

    /// An OCI image layout named by `image`: `DIR` or `DIR:TAG`, where DIR holds an `oci-layout` file.
    public static func layout(_ image: String?) -> (dir: String, tag: String?)? {
        guard let image, !isHostRoot(image) else { return nil }
        if Sys.exists("\(image)/oci-layout") { return (image, nil) }
        if let colon = image.lastIndex(of: ":"), Sys.exists("\(image[..<colon])/oci-layout") {
            return (String(image[..<colon]), String(image[image.index(after: colon)...]))
        }
        return nil
    }

    /// The tags of a layout's images (`org.opencontainers.image.ref.name` in its index.json).
    static func tags(_ dir: String) -> [String] {
        guard let text = try? GuardedFile.read("\(dir)/index.json", limit: 1 << 20),
            let index = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else { return [] }
        return ((index["manifests"] as? [[String: Any]]) ?? []).compactMap {
            ($0["annotations"] as? [String: Any])?["org.opencontainers.image.ref.name"] as? String
        }
    }

    /// `DIR:TAG` for umoci: the tag given, or the layout's only one; nil and why when there is none.
    static func reference(_ image: String?) -> (reference: String?, problem: String?) {
        guard let (dir, tag) = layout(image) else { return (nil, "\(image ?? "") is not an OCI image layout") }
        let tags = Self.tags(dir)
        if let tag {
            return tags.contains(tag)
                ? ("\(dir):\(tag)", nil)
                : (
                    nil,
                    "image layout \(dir) has no tag \(tag) (it has \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))"
                )
        }
        guard tags.count == 1 else {
            return (
                nil,
                "image layout \(dir) has \(tags.isEmpty ? "no tagged image" : "several tags (\(tags.joined(separator: ", ")))"): name one, image: \(dir):TAG"
            )
        }
        return ("\(dir):\(tags[0])", nil)
    }

    /// The host's root for `image: /`, an image directory as it is; an image layout's files are known
    /// once it is unpacked.
    public func filesystemRoot(_ l: LaunchResource) -> String? {
        if usesHostRoot(l) { return "" }
        return Self.layout(l.image) == nil ? l.image : nil
    }

    /// A container of the workload's id that exists already is someone else's: refused under the lock,
    /// before anything is made.
    public func conflicts(_ resources: [Resource]) -> [String] {
        resources.compactMap { if case .launch(let l) = $0 { existing(l) } else { nil } }
    }

    public func problems(_ l: LaunchResource) -> [String] {
        var problems: [String] = []
        if !Sys.access(binary, X_OK) {
            problems.append(
                "runtime \(runtime.rawValue) is not installed (\(binary) is missing): apt-get install \(runtime.rawValue)"
            )
        }
        if Self.layout(l.image) != nil {
            let resolved = Self.reference(l.image)
            if let why = resolved.problem { problems.append(why) }
            if let reference = resolved.reference, let dir = Self.layout(l.image)?.dir,
                ImageCache.manifest(layout: dir, tag: String(reference.dropFirst(dir.count + 1))) == nil
            {
                problems.append("image layout \(dir): its index.json gives \(reference) no sha256 manifest digest")
            }
            if !Sys.access(Self.umoci, X_OK) {
                problems.append(
                    "image \(l.image!) is an OCI image layout, and umoci, which unpacks it, is not installed: apt-get install umoci"
                )
            }
        } else if let image = l.image, !Self.isHostRoot(image), !Sys.isDirectory(image, followingLinks: true) {
            problems.append(
                "image \(image) is neither a directory (a container's root filesystem) nor an OCI image layout (DIR or DIR:TAG)"
            )
        }
        return problems
    }

    // MARK: apply

    public func startedBy(_ l: LaunchResource) -> String {
        "start workload \(l.workload) as container \(OCIBundle.containerID(l)): \(binary) run --bundle \(bundle(l)) with root \(usesHostRoot(l) ? "a read-only view of the host's /" : l.image ?? "/"), running \(l.commandLine) in \(cgroups.path(l.cgroup))"
    }

    public func apply(_ batch: [Resource]) -> [Result<Facts, TopoFailure>?] {
        applyEach(batch) { r in
            guard case .launch(let l) = r else {
                throw TopoFailure(.applyFailed, "the \(runtime.rawValue) runtime does not make \(r.summary)")
            }
            return try start(container: l)
        }
    }

    /// A container of the workload's id that exists already is someone else's (a container topo made
    /// is gone once its profile is down): named, and never touched. Checked once, under the state lock
    /// (`conflicts`); one made after that makes `run` fail, and undo leaves it alone (`owns`).
    func existing(_ l: LaunchResource) -> String? {
        let id = OCIBundle.containerID(l)
        guard Sys.access(binary, X_OK), runner.run([binary, "state", id]).status == 0 else { return nil }
        return
            "a \(runtime.rawValue) container named \(id) already exists and is not one topo made for this apply; topo will not touch it (\(binary) delete \(id), if it is stale)"
    }

    func start(container l: LaunchResource) throws(TopoFailure) -> Facts {
        let id = OCIBundle.containerID(l)
        let dir = bundle(l)
        func failed(_ what: String) -> TopoFailure {
            TopoFailure(.applyFailed, "container \(id) (\(runtime.rawValue)) for workload \(l.workload): \(what)")
        }
        var rootfs = l.image ?? "/"
        do {
            for d in ["\(state.profileDir(l.profile))/bundles", dir] where !Sys.isDirectory(d) {
                try Sys.mkdir(d, mode: 0o700)
            }
        } catch { throw failed("\(error)") }
        if usesHostRoot(l) {
            switch images.acquireHostRoot(user: Self.imageUser(l)) {
            case .success(let path): rootfs = path
            case .failure(let f): throw failed(f.message)
            }
        }
        if let layout = Self.layout(l.image) {
            let resolved = Self.reference(l.image)
            guard let reference = resolved.reference else { throw failed(resolved.problem ?? "no image") }
            guard
                let manifest = ImageCache.manifest(
                    layout: layout.dir, tag: String(reference.dropFirst(layout.dir.count + 1)))
            else {
                throw failed("image layout \(layout.dir): no sha256 manifest digest for \(reference) in its index.json")
            }
            switch images.acquire(layout: layout.dir, manifest: manifest, user: Self.imageUser(l)) {
            case .success(let path): rootfs = path
            case .failure(let f): throw failed(f.message)
            }
        }
        let mark = Self.newMark()
        let config: OCIConfig
        switch self.config(l, rootfs: rootfs, mark: mark) {
        case .success(let c): config = c
        case .failure(let f): throw failed(f.message)
        }
        do {
            try Sys.write(
                "\(dir)/config.json", JSONOutput.encode(config) + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                operation: "write")
        } catch { throw failed("\(error)") }
        // `run -d` returns once the container runs; its stdio is handed to the container, so it goes to
        // the log (a pipe would never close). What the runtime says on failure is the log's new tail.
        let log = l.logPath ?? "/dev/null"
        let before = Sys.stat(log).map { Int($0.st_size) } ?? 0
        let rootBefore = support.rootControllers()
        let status = ContainerSupport.runWaiting(
            [binary, "run", "--detach", "--bundle", dir, id], output: log, placement: l)
        try support.recordControllers(enabledSince: rootBefore)
        guard status == 0 else {
            throw failed("\(binary) run exited \(status): \(ContainerSupport.said(log, after: before))")
        }
        let out = runner.run([binary, "state", id])
        guard out.status == 0,
            let json = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any],
            let pid = (json["pid"] as? NSNumber)?.int32Value, pid > 0
        else {
            throw failed("\(binary) state: \(out.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if let problem = ContainerSupport.policyProblem(pid, l) { throw failed(problem) }
        return Facts(pid: pid, mark: mark)
    }

    /// A nonce for a container's mark: 16 random bytes, in hex.
    static func newMark() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    /// The bundle's configuration for the launch: its user looked up on this host, the open-files
    /// limit topo has (as a process workload inherits it), this topo binary bound for the probes, and
    /// topo's mark.
    func config(_ l: LaunchResource, rootfs: String, mark: String? = nil) -> Result<OCIConfig, TopoFailure> {
        OCIBundle.user(l.user).map { user in
            OCIBundle.config(
                l, rootfs: rootfs, uid: user.uid, gid: user.gid, nofile: ContainerSupport.openFilesLimit(),
                probe: executable,
                hostRoot: usesHostRoot(l), mark: mark)
        }
    }

    /// Whether the container the runtime knows by the workload's id is the one topo made: it runs
    /// from this workload's bundle, whose configuration carries the profile and the mark apply
    /// journaled (an older topo's bundle has no annotations: its place alone says it is topo's).
    func owns(state json: String, _ l: LaunchResource, mark: String?) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let bundle = object["bundle"] as? String, bundle == self.bundle(l),
            let text = try? Sys.read("\(bundle)/config.json"), text.utf8.count <= 1 << 20,
            let config = try? JSONDecoder().decode(OCIConfig.self, from: Data(text.utf8))
        else { return false }
        guard let annotations = config.annotations else { return mark == nil }
        return annotations[OCIBundle.profileAnnotation] == l.profile
            && (mark == nil || annotations[OCIBundle.markAnnotation] == mark)
    }

    // MARK: undo

    /// The runtime deletes the container (`delete --force` kills it first); then anything left in the
    /// workload's cgroup is killed as for a process workload, and the bundle goes: its root unmounted
    /// first and checked gone, and nothing removed through a mount.
    public func undo(_ resource: Resource, done: Bool, facts: Facts) throws(TopoFailure) -> Undone {
        guard case .launch(let l) = resource else { return .nothing }
        let id = OCIBundle.containerID(l)
        let state = runner.run([binary, "state", id])
        let known = state.status == 0 && owns(state: state.stdout, l, mark: facts.mark)
        let notOurs = state.status == 0 && !known
        if known {
            let r = runner.run([binary, "delete", "--force", id])
            if r.status != 0 && runner.run([binary, "state", id]).status == 0 {
                throw TopoFailure(
                    .hostCannot,
                    "\(binary) delete --force \(id) failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
                )
            }
        }
        try cgroups.stopAll(in: l.cgroup, owner: l.profile)
        let dir = bundle(l)
        let rootfs = "\(dir)/rootfs"
        // A bundle of an older topo holds the container's own copy of / (one is shared in the image cache now).
        if usesHostRoot(l), Sys.exists(rootfs) {
            do { try Mounts.unmountTree(rootfs) } catch {
                throw TopoFailure(.hostCannot, "container \(id): its root: \(error); the bundle is kept")
            }
        }
        if Sys.exists(dir) {
            do {
                let left = try Sys.removeTree(dir)
                if !left.isEmpty {
                    throw SystemError(
                        "remove the bundle", dir, errno: EBUSY,
                        diagnosis: "\(left.joined(separator: ", ")) is another filesystem")
                }
            } catch { throw TopoFailure(.hostCannot, "container \(id): \(error)") }
        }
        // Its use of a cached image, found by name (a crash may have come before the facts were journaled).
        let released = try images.release(user: Self.imageUser(l))
        if notOurs {
            return .leftAlone(
                "\(runtime.rawValue) container \(id) is not the one topo made (another bundle, or no mark of \(l.profile)'s): left alone"
            )
        }
        return known
            ? .removed("container \(id)" + released.map { " and image \($0)" }.joined())
            : released.isEmpty ? .nothing : .removed("image \(released.joined(separator: ", "))")
    }

    // MARK: observe, exec

    public func observe(_ resource: Resource) -> Observation { ProcessRuntime.observeLaunch(resource, cgroups) }

    /// The container's own process spec for a command run inside it: its user, capabilities and
    /// environment, written beside the bundle.
    func processFile(_ launch: LaunchResource, name: String) -> Result<String, TopoFailure> {
        config(launch, rootfs: "/").flatMap { config in
            let path = "\(bundle(launch))/\(name).json"
            do {
                try Sys.write(
                    path, JSONOutput.encode(config.process) + "\n", flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    operation: "write")
            } catch { return .failure(TopoFailure(.hostCannot, "\(error)")) }
            return .success(path)
        }
    }

    func execArguments(_ launch: LaunchResource, process: String) -> [String] {
        [binary, "exec", "--process", process, OCIBundle.containerID(launch)]
    }

    public func runInForeground(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        processFile(launch, name: "exec-\(getpid())").flatMap { path in
            defer { try? Sys.unlink(path) }
            return ExecStreams.run { stdio in
                Spawn.child(execArguments(launch, process: path), output: nil, detached: false, stdio: stdio).mapError {
                    TopoFailure(.hostCannot, $0.description)
                }
            }
        }
    }

    public func start(_ launch: LaunchResource, profile: String) -> Result<Int32, TopoFailure> {
        processFile(launch, name: "probe-\(launch.workload)").flatMap { path in
            Spawn.child(execArguments(launch, process: path), output: launch.logPath ?? "/dev/null", detached: true)
                .mapError { TopoFailure(.hostCannot, $0.description) }
        }
    }
}
