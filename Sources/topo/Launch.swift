import ArgumentParser
import TopoCore

/// The launcher mode: topo re-executes itself as `topo __launch SPEC` to become a workload process.
struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__launch", abstract: "Internal: become a workload process.", shouldDisplay: false)

    @Argument var spec: String

    func run() throws {
        Launcher.run(specPath: spec)
    }
}
