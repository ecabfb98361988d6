import ArgumentParser
import TopoCore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove from the kernel's side that an applied profile's isolation holds.",
        discussion: """
            Reads what the kernel reports and compares it with the plan, one check per subject:
              cgroup.settings  every interface file holds its planned value; cpuset.cpus.effective is the plan's CPUs
              tasks.cpus       every thread in the workload's cgroup (and below) is allowed only on its CPUs
              tasks.mems       ... and only on its memory nodes
              tasks.policy     every process has the planned NUMA memory policy (numa_maps)
              tasks.escaped    the process apply started is still below the workload's cgroup
              partition.state  a partition still reads root, and the cgroup root no longer has its CPUs
              counters         cpu.stat throttling, memory.events, pids.events; an OOM kill is a warning
              links            namespaces (with topo's mark), veths (MTU), addresses and netem qdiscs as planned
              cpus.intruders   other tasks pinned onto an exclusive (warn) or partition (fail) workload's CPUs
              irqs.affinity    interrupts delivered to those CPUs (warn for exclusive, fail for partition)
            Exits 0 when nothing failed, 1 when a check failed (with --strict, a warning too), 3 when the
            profile is not applied.
            """
    )

    @Argument(help: "An applied profile's name, or a profile file; every applied profile when left out.")
    var profile: String?

    @Flag(help: "Print {\"profiles\": [{\"name\", \"checks\": [{\"id\", \"subject\", \"status\", \"expected\", \"found\", \"message\"}], \"summary\"}]}.")
    var json = false

    @Flag(help: "Count warnings as failures.")
    var strict = false

    struct Report: Encodable {
        var profiles: [Verifier.ProfileResult]
    }

    func run() throws {
        let state = StateStore()
        let names = try profile.map { [try Loading.appliedName($0, applied: state.profiles()).get()] } ?? state.profiles()
        let host = try Loading.host(sysfs: "/sys").get()
        let verifier = Verifier(state: state, drivers: .host(state: state))
        var results: [Verifier.ProfileResult] = []
        for name in names { results.append(try verifier.verify(name, online: host.onlineCPUs).get()) }
        let failed = results.flatMap(\.checks).contains { $0.status == .fail || (strict && $0.status == .warn) }
        if json {
            print(JSONOutput.encode(Report(profiles: results)))
        } else if results.isEmpty {
            print("nothing is applied; nothing to verify")
        } else {
            for r in results {
                for c in r.checks where c.status != .pass {
                    print("\(c.status.rawValue.uppercased()) \(c.id) \(c.subject): \(c.message)")
                }
                print("\(r.name): \(r.summary["pass"] ?? 0) passed, \(r.summary["warn"] ?? 0) warned, \(r.summary["fail"] ?? 0) failed")
            }
        }
        if failed { throw ExitCode(ExitStatus.verifyFailed.rawValue) }
    }
}
