extension Planner {
    /// Every object apply makes for `plan`, in the order it makes them: topo's root cgroup, the
    /// profile's cgroup, each workload's cgroup and its settings; the namespaces, veth pairs, addresses
    /// and qdiscs of the links; the hosts files; then each workload's launch. Pure.
    static func resources(of plan: Plan, layout: Layout, tune: HostTuning? = nil, online: CPUSet = .empty) -> [Resource]
    {
        let controllers = Controller.ordered(plan.workloads.flatMap(\.controllers))
        var out: [Resource] = [
            .cgroupRoot(CgroupRootResource(path: layout.topoCgroup, profile: plan.name, controllers: controllers))
        ]
        let profileCgroup = layout.profileCgroup(plan.name)
        out.append(.cgroup(CgroupResource(path: profileCgroup, owner: plan.name, workload: nil, enable: controllers)))
        for w in plan.workloads {
            out.append(.cgroup(CgroupResource(path: w.cgroupPath, owner: plan.name, workload: w.name, enable: [])))
            out += w.cgroup.map {
                .cgroupSetting(CgroupSettingResource(cgroup: w.cgroupPath, workload: w.name, setting: $0))
            }
        }
        for w in plan.workloads {
            if let ns = w.netns {
                out.append(.namespace(NamespaceResource(name: ns, workload: w.name, owner: plan.name)))
            }
        }
        for link in plan.links {
            out.append(
                .veth(
                    VethResource(ends: link.ends.map { .init(netns: $0.netns, interface: $0.interface) }, mtu: link.mtu)
                ))
        }
        for link in plan.links {
            out += link.ends.map {
                .address(
                    AddressResource(
                        netns: $0.netns, interface: $0.interface, workload: $0.workload, address: $0.address))
            }
        }
        for link in plan.links {
            out += link.shaping.map {
                .qdisc(
                    QdiscResource(netns: $0.netns, interface: $0.interface, from: $0.from, to: $0.to, netem: $0.netem))
            }
        }
        for w in plan.workloads {
            guard let ns = w.netns else { continue }
            out.append(
                .hostsFile(
                    HostsFileResource(
                        netns: ns, workload: w.name, owner: plan.name, directory: layout.hostsDirectory(ns),
                        contents: hostsFile(w))))
        }
        if let tune {
            out += tuneSettings(tune, plan: plan, online: online).map {
                .hostTune(TuneResource(profile: plan.name, setting: $0, bestEffort: tune.bestEffort))
            }
        }
        let state = StateStore(root: layout.stateRoot)
        for w in plan.workloads {
            guard let run = w.run else { continue }
            out.append(
                .launch(launch(w, profile: plan.name, command: run.command, logPath: state.logPath(plan.name, w.name))))
        }
        return out
    }

    /// The CPUs `irqs: away` and `kernelThreads: away` keep clear: those of exclusive and partition workloads.
    static func quietCPUs(_ plan: Plan) -> CPUSet {
        plan.workloads.filter { $0.isolation != .shared }.reduce(CPUSet()) { $0.union($1.cpus) }
    }

    /// `host.tune` as settings, in the order apply makes them: irqbalance stopped before interrupts move.
    static func tuneSettings(_ t: HostTuning, plan: Plan, online: CPUSet) -> [TuneSetting] {
        let quiet = quietCPUs(plan)
        let scope = t.scope == .all ? online : plan.workloads.reduce(CPUSet()) { $0.union($1.cpus) }
        var out: [TuneSetting] = []
        if t.irqsAway && !quiet.isEmpty {
            if t.irqbalance == .stop { out.append(.irqbalanceStopped) }
            out.append(.irqsAway(quiet))
        }
        if t.kernelThreadsAway && !quiet.isEmpty { out += [.workqueuesAway(quiet), .kernelThreadsAway(quiet)] }
        if let v = t.timerMigration { out.append(.timerMigration(v)) }
        if let v = t.statInterval { out.append(.statInterval(v)) }
        if let v = t.thp { out.append(.thp(v)) }
        if let g = t.governor { out.append(.governor(g, cpus: scope)) }
        if t.frequencyMin != nil || t.frequencyMax != nil {
            out.append(.frequency(min: t.frequencyMin, max: t.frequencyMax, cpus: scope))
        }
        if let v = t.boost { out.append(.boost(v)) }
        if let v = t.perfSampleRate { out.append(.perfSampleRate(v)) }
        if let v = t.aslr { out.append(.aslr(v)) }
        return out
    }

    /// A workload's launch: its planned command, or another one run inside it by `topo exec`.
    public static func launch(
        _ w: PlannedWorkload, profile: String, command: [String], logPath: String?
    ) -> LaunchResource {
        LaunchResource(
            profile: profile, workload: w.name, runtime: w.run?.runtime ?? .process, image: w.run?.image,
            command: command,
            environment: w.environment, workdir: w.run?.workdir, user: w.run?.user,
            capabilities: w.run?.capabilities ?? [], cgroup: w.cgroupPath, cpus: w.cpus,
            memoryPolicy: w.memoryPolicy, policyNodes: w.policyNodes, logPath: logPath,
            netns: w.netns, hostsFile: w.hostsFile, settings: w.cgroup)
    }

    /// The /etc/hosts a linked workload sees: localhost, itself, and each peer by name.
    static func hostsFile(_ w: PlannedWorkload) -> String {
        var lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        if let own = w.addresses.first { lines.append("\(own.address)\t\(w.name)") }
        lines += w.peers.map { "\($0.address)\t\($0.name)" }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The kernel command line that would isolate a plan's quiet CPUs at boot, which no run-time setting
/// can: `topo host --suggest-cmdline PROFILE`. topo never edits the boot loader.
public struct BootIsolation: Codable, Equatable, Sendable {
    /// The CPUs of exclusive and partition workloads.
    public var cpus: CPUSet
    /// Where interrupts and housekeeping go: the other online CPUs.
    public var housekeeping: CPUSet
    /// The parameters, `name=value`, in the order to add them.
    public var parameters: [String]
    /// What to know before using them.
    public var notes: [String] = []

    /// Nil when the plan has no exclusive or partition workload, or they hold every online CPU.
    public static func suggest(_ plan: Plan, online: CPUSet) -> BootIsolation? {
        let cpus = Planner.quietCPUs(plan).intersection(online)
        let housekeeping = online.subtracting(cpus)
        guard !cpus.isEmpty, !housekeeping.isEmpty else { return nil }
        var notes: [String] = []
        if cpus.contains(0) {
            notes.append(
                "CPU 0 keeps the boot-time timekeeping duty and nohz_full leaves it out; host.reserve: \"0\" keeps the workloads off it"
            )
        }
        return BootIsolation(
            cpus: cpus, housekeeping: housekeeping,
            parameters: [
                "isolcpus=managed_irq,domain,\(cpus)", "nohz_full=\(cpus)", "rcu_nocbs=\(cpus)",
                "irqaffinity=\(housekeeping)",
            ], notes: notes)
    }

    /// The isolation parameters a kernel command line already has, by name.
    public static func current(commandLine: String) -> [String: String] {
        var out: [String: String] = [:]
        for word in commandLine.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            if ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"].contains(name) {
                out[name] = parts.count > 1 ? String(parts[1]) : ""
            }
        }
        return out
    }
}
