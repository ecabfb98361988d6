import ArgumentParser
import Foundation
import TopoCore

/// `topo __probe KIND`: one measurement of `verify --active`, run inside a workload. It prints one JSON
/// object, or why it could not measure on stderr (exit 1); an alarm ends it after `--seconds`.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__probe", abstract: "Internal: a verify --active measurement inside a workload.",
        shouldDisplay: false)

    enum Kind: String, ExpressibleByArgument { case memory, cpu, serve, link }

    @Argument var kind: Kind
    @Option var seconds: UInt32 = 10
    @Option var bytes: Int = 1 << 20
    @Option var milliseconds: Int = 300
    @Option var to: String?
    @Option var port: UInt16 = 0
    @Option var count: Int = 500
    @Option var intervalMicroseconds: Int = 2000
    @Option var rateSeconds: Double = 0
    @Option var warmup: Double = 0.5

    func run() throws {
        alarm(seconds)  // SIGALRM's default action ends a probe that overruns, whatever it waits on
        switch kind {
        case .memory: emit(Probe.memory(bytes: bytes))
        case .cpu: emit(Probe.cpu(milliseconds: milliseconds))
        case .serve: Probe.serve(warmup: warmup)
        case .link:
            guard let to, case .success(let address) = IPv4Address.parse(to) else {
                throw ValidationError("--to takes an IPv4 address")
            }
            emit(
                Probe.link(
                    to: address, port: port, count: count, intervalMicroseconds: intervalMicroseconds,
                    rateSeconds: rateSeconds, warmup: warmup))
        }
    }

    func emit<T: Encodable>(_ result: Result<T, SystemError>) {
        switch result {
        case .success(let value): print(JSONOutput.line(value))
        case .failure(let e):
            FileHandle.standardError.write(Data("topo probe: \(e)\n".utf8))
            Foundation.exit(1)
        }
    }
}
