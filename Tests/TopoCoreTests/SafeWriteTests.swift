import Foundation
import Testing

@testable import TopoCore

/// What topo writes as root (reports, lock files, host-wide records) is a new file renamed into place,
/// never written through a link; its state directory is one only root can change.
@Suite struct SafeWriteTests {
    @Test func aFileIsWrittenWholeAndReplacesARegularFile() throws {
        let root = try FakeRoot()
        let path = "\(root.path)/r.json"
        try Sys.writeReplacing(path, "one\n")
        #expect(root.read("r.json") == "one\n")
        try Sys.writeReplacing(path, "two\n", mode: 0o600)
        #expect(root.read("r.json") == "two\n")
        #expect(Sys.stat(path).map { $0.st_mode & 0o777 } == 0o600)
        // No temporary file is left beside it.
        #expect(Sys.entries(root.path) == ["r.json"])
    }

    /// The attack of the security review: a link planted at the path a root command writes.
    @Test func aSymbolicLinkAtThePathIsRefusedAndItsTargetKept() throws {
        let root = try FakeRoot()
        try root.seed("victim", "precious\n")
        try FileManager.default.createSymbolicLink(
            atPath: "\(root.path)/result.json", withDestinationPath: "\(root.path)/victim")
        #expect {
            try Sys.writeReplacing("\(root.path)/result.json", "{}\n")
        } throws: { error in
            "\(error)".contains("is a symbolic link, and topo never writes through one")
                || "\(error)".contains("it is a symbolic link")
        }
        #expect(root.read("victim") == "precious\n")
        #expect(Sys.lstat("\(root.path)/result.json").map { $0.st_mode & S_IFMT == S_IFLNK } == true)
        // A dangling link too: it would create its target.
        try FileManager.default.createSymbolicLink(
            atPath: "\(root.path)/dangling.json", withDestinationPath: "\(root.path)/made-by-link")
        #expect(throws: SystemError.self) { try Sys.writeReplacing("\(root.path)/dangling.json", "{}\n") }
        #expect(!root.exists("made-by-link"))
        // A directory given by a link is refused as well.
        try root.mkdir("real")
        try FileManager.default.createSymbolicLink(
            atPath: "\(root.path)/linked", withDestinationPath: "\(root.path)/real")
        #expect(throws: SystemError.self) { try Sys.writeReplacing("\(root.path)/linked/x.json", "{}\n") }
        #expect(Sys.entries("\(root.path)/real").isEmpty)
    }

    @Test func somethingOtherThanARegularFileIsRefused() throws {
        let root = try FakeRoot()
        try root.mkdir("dir.json")
        #expect(throws: SystemError.self) { try Sys.writeReplacing("\(root.path)/dir.json", "{}\n") }
        #expect(mkfifo("\(root.path)/fifo.json", 0o600) == 0)
        #expect(throws: SystemError.self) { try Sys.writeReplacing("\(root.path)/fifo.json", "{}\n") }
        #expect(Sys.stat("\(root.path)/fifo.json").map { $0.st_mode & S_IFMT == S_IFIFO } == true)
    }

    @Test func aHostRecordIsNotWrittenThroughALink() throws {
        let root = try FakeRoot()
        try root.seed("victim", "precious\n")
        let state = StateStore(root: "\(root.path)/state")
        try root.mkdir("state")
        try FileManager.default.createSymbolicLink(
            atPath: "\(root.path)/state/host.json", withDestinationPath: "\(root.path)/victim")
        #expect(throws: SystemError.self) { try state.record(StateStore.HostChanges(createdRoot: true)) }
        #expect(root.read("victim") == "precious\n")
    }

    /// A state directory others can write (or one below a directory others can write that is not
    /// sticky) is refused before anything is read from or written to it.
    @Test func aStateDirectoryOthersCanChangeIsRefused() throws {
        let root = try FakeRoot()
        try root.mkdir("ok/state")
        #expect(StateStore(root: "\(root.path)/ok/state").ownershipProblem() == nil)
        // Not made yet: topo makes it 0700.
        #expect(StateStore(root: "\(root.path)/ok/new").ownershipProblem() == nil)
        try root.mkdir("open/state")
        try Sys.chmod("\(root.path)/open/state", 0o777)
        let open = try #require(StateStore(root: "\(root.path)/open/state").ownershipProblem())
        #expect(open.contains("is writable by group or others (mode 777)"), "\(open)")
        try Sys.chmod("\(root.path)/open/state", 0o755)
        try Sys.chmod("\(root.path)/open", 0o777)
        let above = try #require(StateStore(root: "\(root.path)/open/state").ownershipProblem())
        #expect(above.contains("above the state directory"), "\(above)")
        // Sticky, as /tmp: fine above the state directory, never for it.
        try Sys.chmod("\(root.path)/open", 0o1777)
        #expect(StateStore(root: "\(root.path)/open/state").ownershipProblem() == nil)
        try Sys.chmod("\(root.path)/open/state", 0o1777)
        #expect(StateStore(root: "\(root.path)/open/state").ownershipProblem() != nil)
        try FileManager.default.createSymbolicLink(
            atPath: "\(root.path)/link", withDestinationPath: "\(root.path)/ok/state")
        #expect(StateStore(root: "\(root.path)/link").ownershipProblem()?.contains("is a symbolic link") == true)
        #expect(throws: TopoFailure.self) { try StateStore(root: "\(root.path)/link").withLock {} }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to give a directory to another user"))
    func aStateDirectoryOwnedBySomeoneElseIsRefused() throws {
        let root = try FakeRoot()
        try root.mkdir("theirs")
        #expect(chown("\(root.path)/theirs", 65534, 65534) == 0)
        let problem = try #require(StateStore(root: "\(root.path)/theirs").ownershipProblem())
        #expect(problem.contains("is owned by uid 65534, not root"), "\(problem)")
    }
}

/// The one guarded read: a prefix of a long file, and nothing to unmount is no error.
@Suite struct GuardedReadTests {
    @Test func aPrefixIsTheFirstBytesOfALongFileAndRefusesAFIFO() throws {
        let root = try FakeRoot()
        try root.seed("long", String(repeating: "0123456789", count: 1000))
        let first = try GuardedFile.prefix("\(root.path)/long", bytes: 4096)
        #expect(first.utf8.count == 4096 && first.hasPrefix("0123456789"))
        #expect(try GuardedFile.prefix("\(root.path)/long", bytes: 20_000).utf8.count == 10_000)
        #expect(throws: SystemError.self) { try Sys.readBytes("\(root.path)/long", limit: 4096) }
        #expect(mkfifo("\(root.path)/fifo", 0o600) == 0)
        #expect(throws: GuardedFile.Problem.self) { try GuardedFile.prefix("\(root.path)/fifo", bytes: 4096) }
    }

    @Test func unmountingWhereNothingIsMountedIsFine() throws {
        let root = try FakeRoot()
        try root.mkdir("empty")
        try Mounts.unmountTree("\(root.path)/empty")
    }
}
