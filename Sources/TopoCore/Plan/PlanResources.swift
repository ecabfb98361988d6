extension Planner {
    /// Every object apply makes for `plan`, in the order it makes them: topo's root cgroup, the
    /// profile's cgroup, each workload's cgroup and its settings; the namespaces, veth pairs, addresses
    /// and qdiscs of the links; the hosts files; then each workload's launch. Pure.
    static func resources(of plan: Plan, layout: Layout) -> [Resource] {
        let controllers = Controller.ordered(plan.workloads.flatMap(\.controllers))
        var out: [Resource] = [.cgroupRoot(CgroupRootResource(path: layout.topoCgroup, profile: plan.name, controllers: controllers))]
        let profileCgroup = layout.profileCgroup(plan.name)
        out.append(.cgroup(CgroupResource(path: profileCgroup, owner: plan.name, workload: nil, enable: controllers)))
        for w in plan.workloads {
            out.append(.cgroup(CgroupResource(path: w.cgroupPath, owner: plan.name, workload: w.name, enable: [])))
            out += w.cgroup.map { .cgroupSetting(CgroupSettingResource(cgroup: w.cgroupPath, workload: w.name, setting: $0)) }
        }
        for w in plan.workloads {
            if let ns = w.netns { out.append(.namespace(NamespaceResource(name: ns, workload: w.name, owner: plan.name))) }
        }
        for link in plan.links {
            out.append(.veth(VethResource(ends: link.ends.map { .init(netns: $0.netns, interface: $0.interface) }, mtu: link.mtu)))
        }
        for link in plan.links {
            out += link.ends.map { .address(AddressResource(netns: $0.netns, interface: $0.interface, workload: $0.workload, address: $0.address)) }
        }
        for link in plan.links {
            out += link.shaping.map { .qdisc(QdiscResource(netns: $0.netns, interface: $0.interface, from: $0.from, to: $0.to, netem: $0.netem)) }
        }
        for w in plan.workloads {
            guard let ns = w.netns else { continue }
            out.append(.hostsFile(HostsFileResource(netns: ns, workload: w.name, owner: plan.name, directory: layout.hostsDirectory(ns), contents: hostsFile(w))))
        }
        let state = StateStore(root: layout.stateRoot)
        for w in plan.workloads {
            guard let run = w.run else { continue }
            out.append(.launch(launch(w, profile: plan.name, command: run.command, logPath: state.logPath(plan.name, w.name))))
        }
        return out
    }

    /// A workload's launch: its planned command, or another one run inside it by `topo exec`.
    public static func launch(_ w: PlannedWorkload, profile: String, command: [String], logPath: String?) -> LaunchResource {
        LaunchResource(profile: profile, workload: w.name, runtime: w.run?.runtime ?? .process, image: w.run?.image, command: command,
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
