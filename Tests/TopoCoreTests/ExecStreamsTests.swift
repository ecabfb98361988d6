import Foundation
import Testing

@testable import TopoCore

/// `topo exec`'s streams: on a terminal the command gets a pty of exec's own, relayed both ways.
@Suite struct ExecStreamsTests {
    @Test func aCommandOnATerminalGetsAPtyOfItsOwn() throws {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        #expect(pipe(&input) == 0 && pipe(&output) == 0)
        let line = "hello from the caller\n"
        _ = line.withCString { write(input[1], $0, strlen($0)) }
        var seen: ExecStreams.Stdio?
        // The command names its stdin and controlling terminal, then echoes what the caller typed.
        let script = "readlink /proc/self/fd/0; tty; read l; echo \"got:$l\"; exit 3"
        let status = try ExecStreams.runOnPty(caller: (input[0], output[1])) { stdio in
            seen = stdio
            return Spawn.child(["/bin/sh", "-c", script], output: nil, detached: false, stdio: stdio).mapError {
                TopoFailure(.hostCannot, $0.description)
            }
        }.get()
        close(input[1])
        close(output[1])
        close(input[0])
        let text = String(
            decoding: FileHandle(fileDescriptor: output[0], closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
        let terminal = try #require(seen?.terminal)
        #expect(terminal.hasPrefix("/dev/pts/") && seen?.fds.count == 3)
        #expect(status == 3)
        let lines = text.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
        // Its stdin and its controlling terminal are exec's pty, and the caller's line went through it.
        #expect(lines.filter { $0 == terminal }.count == 2, "\(lines)")
        #expect(lines.contains("got:hello from the caller"), "\(lines)")
    }
}
