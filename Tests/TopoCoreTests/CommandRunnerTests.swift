import CTopoShim
import Foundation
import Testing

@testable import TopoCore

/// The subprocess seam: output, exit status and stdin without a shell, deadlock or SIGPIPE.
@Suite struct CommandRunnerTests {
    let runner = CommandRunner()

    @Test func outputAndStatusComeBackSeparately() {
        let r = runner.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(r == CommandResult(status: 3, stdout: "out\n", stderr: "err\n"))
    }

    @Test func aLargeInputComesBackWhole() {
        // More than any pipe buffer both ways: written and read at once, or it would deadlock.
        let input = String(repeating: "0123456789abcdef\n", count: 1 << 16)
        let r = runner.run(["/bin/cat"], input: input)
        #expect(r.status == 0 && r.stdout.count == input.count && r.stdout == input)
    }

    @Test func aChildThatReadsNoInputDoesNotKillTopo() {
        let r = runner.run(["/bin/sh", "-c", "exit 0"], input: String(repeating: "x", count: 1 << 20))
        #expect(r.status == 0)
    }

    @Test func noInputMeansAnEmptyStdin() {
        #expect(runner.run(["/bin/cat"]) == CommandResult(status: 0, stdout: "", stderr: ""))
    }

    @Test func failuresToStartAndSignalsAreStatuses() {
        let missing = runner.run(["/no/such/program"])
        #expect(missing.status == 127 && missing.stderr.contains("/no/such/program"), "\(missing)")
        #expect(runner.run(["/bin/sh", "-c", "kill -9 $$"]).status == 128 + SIGKILL)
    }
}
