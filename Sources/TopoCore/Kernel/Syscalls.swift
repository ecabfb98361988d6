import CTopoShim
import Foundation
import SystemPackage

/// A failed system call, with the operation, the path, the value and the kernel's words:
/// `write /sys/fs/cgroup/topo/x/cpuset.cpus "0-3": Invalid argument`.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var value: String?
    public var errno: Int32
    /// A cause found after the fact (e.g. which controller is missing), shown after the kernel's words.
    public var diagnosis: String?

    public init(_ operation: String, _ path: String, value: String? = nil, errno: Int32, diagnosis: String? = nil) {
        self.operation = operation
        self.path = path
        self.value = value
        self.errno = errno
        self.diagnosis = diagnosis
    }

    public var kernelWords: String { Errno(rawValue: errno).description }

    public var description: String {
        var text = "\(operation) \(path)"
        if let value { text += " \"\(value.replacingOccurrences(of: "\n", with: "\\n"))\"" }
        // errno 0: topo's own refusal (a FIFO where a file should be), said in its words alone.
        if errno == 0 { return text + ": " + (diagnosis ?? "refused") }
        text += ": \(kernelWords)"
        if let diagnosis { text += " (\(diagnosis))" }
        return text
    }
}

/// The one seam for file-level system calls: EINTR is retried here, errors carry their context.
public enum Sys {
    @inline(__always)
    static func retrying(_ body: () -> Int32) -> Int32 {
        while true {
            let r = body()
            if r < 0 && errno == EINTR { continue }
            return r
        }
    }

    /// One write(2) of all the bytes, retried on EINTR; the count written, or -1 with errno set.
    private static func writeOnce(_ fd: Int32, _ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { buf in
            var r: Int
            repeat { r = Glibc.write(fd, buf.baseAddress, buf.count) } while r < 0 && errno == EINTR
            return r
        }
    }

    /// Writes `value` in one write(2), as kernel interface files require.
    public static func write(
        _ path: String, _ value: String, flags: Int32 = O_WRONLY | O_CLOEXEC, mode: mode_t = 0o600,
        operation: String = "write"
    ) throws(SystemError) {
        let fd = retrying { open(path, flags, mode) }
        guard fd >= 0 else { throw SystemError(operation, path, value: value, errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = writeOnce(fd, bytes)
        guard n == bytes.count else { throw SystemError(operation, path, value: value, errno: n < 0 ? errno : EIO) }
    }

    /// Writes a whole file, or nothing, and never through a link: what topo writes as root (reports,
    /// lock files, its host-wide records) goes where a workload or another user may have planted a
    /// symbolic link. The directory is opened `O_DIRECTORY|O_NOFOLLOW`; the contents go into a new
    /// temporary file in it (`openat` with `O_CREAT|O_EXCL|O_NOFOLLOW`), are made durable, and the file
    /// is renamed over `path` in that same directory. An existing `path` that is a symbolic link, or
    /// anything but a regular file, is refused and left as it is.
    public static func writeReplacing(_ path: String, _ contents: String, mode: mode_t = 0o644) throws(SystemError) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty, name != ".", name != ".." else { throw SystemError("write", path, errno: EISDIR) }
        let dirFD = retrying { open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard dirFD >= 0 else {
            let e = errno
            throw SystemError(
                "open directory", dir, errno: e,
                diagnosis: e == ELOOP || e == ENOTDIR && lstat(dir).map { $0.st_mode & S_IFMT == S_IFLNK } == true
                    ? "it is a symbolic link; topo writes only into the directory itself" : nil)
        }
        defer { close(dirFD) }
        var st = Glibc.stat()
        if fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            if st.st_mode & S_IFMT == S_IFLNK {
                throw SystemError(
                    "write", path, errno: ELOOP,
                    diagnosis:
                        "it is a symbolic link, and topo never writes through one: remove it or name another file")
            }
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw SystemError("write", path, errno: EEXIST, diagnosis: "it is there and not a regular file")
            }
        }
        var tmp = ""
        var fd: Int32 = -1
        for attempt in 0..<16 {
            tmp = ".\(name.prefix(200)).topo-\(getpid())-\(attempt).tmp"
            fd = retrying { openat(dirFD, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) }
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw SystemError("create", "\(dir)/\(tmp)", errno: errno) }
        let bytes = Array(contents.utf8)
        var failure: SystemError?
        let written = writeOnce(fd, bytes)
        if written != bytes.count {
            failure = SystemError("write", "\(dir)/\(tmp)", errno: written < 0 ? errno : EIO)
        } else if fchmod(fd, mode) != 0 {
            failure = SystemError("chmod \(String(mode, radix: 8))", "\(dir)/\(tmp)", errno: errno)
        } else if retrying({ fsync(fd) }) != 0 {
            failure = SystemError("fsync", "\(dir)/\(tmp)", errno: errno)
        }
        close(fd)
        if failure == nil && retrying({ renameat(dirFD, tmp, dirFD, name) }) != 0 {
            failure = SystemError("rename", "\(dir)/\(tmp)", value: path, errno: errno)
        }
        if let failure {
            unlinkat(dirFD, tmp, 0)
            throw failure
        }
    }

    /// Appends a line and makes it durable before returning (the journal's write).
    public static func appendDurably(_ path: String, _ line: String) throws(SystemError) {
        let fd = retrying { open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw SystemError("open", path, errno: errno) }
        defer { close(fd) }
        let bytes = Array(line.utf8)
        let n = writeOnce(fd, bytes)
        guard n == bytes.count else { throw SystemError("append to", path, errno: n < 0 ? errno : EIO) }
        guard retrying({ fdatasync(fd) }) == 0 else { throw SystemError("fdatasync", path, errno: errno) }
    }

    /// The most `read` takes from one file: far above any kernel interface file or state file topo
    /// reads, and far below what would exhaust memory (`/dev/zero` behind a link is refused anyway).
    public static let readLimit = 64 << 20

    /// A whole file's text. Only a regular file is read — every kernel interface file in /proc, /sys and
    /// a cgroup filesystem is one — and at most `limit` bytes of it: a FIFO (opened without blocking),
    /// a device, a directory or a file larger than that is an error that says what it is, never a hang
    /// or an allocation without bound.
    public static func read(_ path: String, limit: Int = readLimit) throws(SystemError) -> String {
        String(decoding: try readBytes(path, limit: limit), as: UTF8.self)
    }

    /// Opens `path` for reading only if it is a regular file — a FIFO, device, socket or directory is
    /// refused by what it is (opened without blocking, so a FIFO never waits for a writer) — and
    /// returns its descriptor (the caller closes it) and its stat.
    public static func openRegular(_ path: String) throws(SystemError) -> (fd: Int32, stat: Glibc.stat) {
        let fd = retrying { open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("read", path, errno: errno) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw SystemError("read", path, errno: e)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            let what: String
            switch st.st_mode & S_IFMT {
            case S_IFDIR: what = "a directory"
            case S_IFIFO: what = "a FIFO"
            case S_IFCHR: what = "a character device"
            case S_IFBLK: what = "a block device"
            case S_IFSOCK: what = "a socket"
            default: what = "not a regular file"
            }
            throw SystemError("read", path, errno: 0, diagnosis: "it is \(what), not a file")
        }
        return (fd, st)
    }

    /// `read`'s bytes, undecoded (a profile's, whose UTF-8 is checked by the decoder). `truncating`:
    /// the first `limit` bytes of a longer file, not an error (a process's first `numa_maps` line).
    public static func readBytes(
        _ path: String, limit: Int = readLimit, truncating: Bool = false
    ) throws(SystemError) -> [UInt8] {
        let (fd, st) = try openRegular(path)
        defer { close(fd) }
        if st.st_size > limit && !truncating {
            throw SystemError(
                "read", path, errno: EFBIG,
                diagnosis: "it is \(st.st_size) bytes; topo reads at most \(GuardedFile.describe(limit)) of it")
        }
        // Most files topo reads (cgroup and /proc entries) are a few hundred bytes: a page-sized buffer
        // on the stack, never zero-filled, read until EOF (a watch round reads thousands of them).
        var out = [UInt8]()
        let failed: Int32? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer in
            while true {
                var n: Int
                repeat { n = Glibc.read(fd, buffer.baseAddress, buffer.count) } while n < 0 && errno == EINTR
                if n < 0 { return errno }
                if n == 0 { return nil }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<min(n, limit + 1 - out.count)]))
                if truncating && out.count >= limit {
                    out.removeLast(out.count - limit)
                    return nil
                }
                if out.count > limit { return EFBIG }  // a file that grows as it is read (procfs reports size 0)
            }
        }
        if let failed {
            throw SystemError(
                "read", path, errno: failed,
                diagnosis: failed == EFBIG ? "it is larger than \(GuardedFile.describe(limit))" : nil)
        }
        return out
    }

    public static func mkdir(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        guard retrying({ Glibc.mkdir(path, mode) }) == 0 else { throw SystemError("mkdir", path, errno: errno) }
    }

    /// Makes `path` and any missing parent; an existing directory is fine.
    public static func mkdirs(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if isDirectory(path, followingLinks: true) { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try mkdirs(String(path[..<slash]), mode: mode)
        }
        guard retrying({ Glibc.mkdir(path, mode) }) == 0 || errno == EEXIST else {
            throw SystemError("mkdir", path, errno: errno)
        }
    }

    public static func rmdir(_ path: String) throws(SystemError) {
        guard retrying({ Glibc.rmdir(path) }) == 0 else { throw SystemError("rmdir", path, errno: errno) }
    }

    public static func unlink(_ path: String) throws(SystemError) {
        guard retrying({ Glibc.unlink(path) }) == 0 else { throw SystemError("unlink", path, errno: errno) }
    }

    /// Sets a mode exactly, whatever the process's umask did to it at creation.
    public static func chmod(_ path: String, _ mode: mode_t) throws(SystemError) {
        guard retrying({ Glibc.chmod(path, mode) }) == 0 else {
            throw SystemError("chmod \(String(mode, radix: 8))", path, errno: errno)
        }
    }

    public static func rename(_ from: String, _ to: String) throws(SystemError) {
        guard retrying({ Glibc.rename(from, to) }) == 0 else {
            throw SystemError("rename", from, value: to, errno: errno)
        }
    }

    /// umount2(2); `detach` is MNT_DETACH (what `ip netns del` uses). A path that is no mount point (EINVAL) is fine.
    public static func unmount(_ path: String, detach: Bool) throws(SystemError) {
        guard retrying({ umount2(path, detach ? Int32(MNT_DETACH) : 0) }) == 0 || errno == EINVAL else {
            throw SystemError("umount", path, errno: errno)
        }
    }

    /// flock(2), waiting for the lock.
    public static func lockExclusive(_ fd: Int32, path: String) throws(SystemError) {
        guard retrying({ flock(fd, LOCK_EX) }) == 0 else { throw SystemError("flock", path, errno: errno) }
    }

    /// kill(2); a process already gone (ESRCH) is fine.
    public static func kill(_ pid: pid_t, _ signal: Int32) throws(SystemError) {
        guard Glibc.kill(pid, signal) == 0 || errno == ESRCH else {
            throw SystemError("kill \(signal)", "pid \(pid)", errno: errno)
        }
    }

    /// stat(2), following links; nil when the path cannot be stat'ed.
    public static func stat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 ? st : nil
    }

    /// The link itself, for a symbolic link (lstat).
    public static func lstat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st : nil
    }

    /// Whether the path is there for `mode` (F_OK, X_OK, ...), as access(2) says.
    public static func access(_ path: String, _ mode: Int32) -> Bool { Glibc.access(path, mode) == 0 }

    /// A user from the passwd database (getpwnam_r/getpwuid_r through getpwnam/getpwuid): uid, gid, name.
    public struct User: Equatable, Sendable {
        public var uid: uid_t
        public var gid: gid_t
        public var name: String
    }

    public static func user(named name: String) -> User? {
        guard let pw = getpwnam(name) else { return nil }
        return User(uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid, name: String(cString: pw.pointee.pw_name))
    }

    public static func user(id: uid_t) -> User? {
        guard let pw = getpwuid(id) else { return nil }
        return User(uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid, name: String(cString: pw.pointee.pw_name))
    }

    public static func setxattr(_ path: String, _ name: String, _ value: String) throws(SystemError) {
        let bytes = Array(value.utf8)
        let r = bytes.withUnsafeBytes { topo_setxattr(path, name, $0.baseAddress, $0.count) }
        guard r == 0 else { throw SystemError("setxattr \(name) on", path, value: value, errno: errno) }
    }

    /// The attribute's value, or nil when it is absent (or the file is gone).
    public static func getxattr(_ path: String, _ name: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { topo_getxattr(path, name, $0.baseAddress, $0.count) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) }

    /// Whether `path` is a directory of a cgroup v2 filesystem (statfs: CGROUP2_SUPER_MAGIC): the root of
    /// a cgroup2 mount or a cgroup below it.
    public static func isCgroup2(_ path: String) -> Bool {
        topo_filesystem_type(path) == 0x6367_7270 && isDirectory(path, followingLinks: true)
    }

    /// Whether the path is a directory itself (not a link to one), or with `followingLinks` a directory
    /// or a link that leads to one (what chdir(2) accepts).
    public static func isDirectory(_ path: String, followingLinks: Bool = false) -> Bool {
        var st = Glibc.stat()
        return fstatat(AT_FDCWD, path, &st, followingLinks ? 0 : AT_SYMLINK_NOFOLLOW) == 0
            && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Removes `path` and everything below it without crossing into another filesystem (`rm -r
    /// --one-file-system`): a directory on another device is left in place, with the directories above
    /// it, and returned. Symbolic links are removed, never followed.
    public static func removeTree(_ path: String) throws(SystemError) -> [String] {
        guard let top = lstat(path) else { return [] }
        var left: [String] = []
        func remove(_ dir: String) throws(SystemError) {
            for name in entries(dir) {
                let child = "\(dir)/\(name)"
                guard let st = lstat(child) else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    if st.st_dev != top.st_dev {
                        left.append(child)
                        continue
                    }
                    try remove(child)
                    if left.contains(where: { $0.hasPrefix(child + "/") }) { continue }
                    try rmdir(child)
                } else {
                    try unlink(child)
                }
            }
        }
        if top.st_mode & S_IFMT != S_IFDIR {
            try unlink(path)
            return []
        }
        try remove(path)
        if left.isEmpty { try rmdir(path) }
        return left
    }

    /// Names of the subdirectories of `path`, sorted.
    public static func subdirectories(_ path: String) -> [String] { entries(path, directoriesOnly: true).sorted() }

    /// Entry names of a directory (without `.` and `..`), in the directory's order; empty when it is missing.
    public static func entries(_ path: String, directoriesOnly: Bool = false) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // The type first: a cgroup's directory holds dozens of files and few (often no) directories,
            // and a watch round lists every workload's.
            if directoriesOnly && entry.pointee.d_type != UInt8(DT_DIR) { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            names.append(name)
        }
        return names
    }
}
