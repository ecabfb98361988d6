/// The steps every command shares: decode a profile, discover the host, plan — each failure mapped to its exit status.
public enum Loading {
    public static func profile(_ path: String) -> Result<ProfileDecoder.Decoded, TopoFailure> {
        ProfileDecoder.decode(file: path).mapError { TopoFailure(.invalid, $0.description) }
    }

    /// This host (`/sys`: what it cannot read is the host's, exit 3), or another machine's tree the
    /// command line names (`--sysfs`: one that cannot be read is bad input, exit 2).
    public static func host(sysfs: String) -> Result<HostTopology, TopoFailure> {
        HostDiscovery(sysfsRoot: sysfs).discover().mapError { e in
            sysfs == "/sys"
                ? TopoFailure(.hostCannot, "cannot discover the host: \(e)")
                : TopoFailure(.invalid, "cannot read the host in \(sysfs): \(e)")
        }
    }

    public static func plan(
        _ profile: Profile, on host: HostTopology, layout: Layout = .standard
    ) -> Result<Plan, TopoFailure> {
        Planner(host: host, layout: layout).plan(profile).mapError { failure in
            let n = failure.problems.count
            return TopoFailure(
                .hostCannot,
                "this host cannot satisfy profile \(profile.name) (\(n) problem\(n == 1 ? "" : "s")):\n"
                    + failure.collapsed.map { "  - \($0)" }.joined(separator: "\n"))
        }
    }

    /// The applied profile an argument names (`topo down ARG`): an applied profile's name first, even
    /// when a file or directory of that name is in the current directory; else a profile file's `name`;
    /// else the argument itself when it could be a profile name (then nothing is applied by that name).
    public static func appliedName(_ argument: String, applied: [String]) -> Result<String, TopoFailure> {
        if applied.contains(argument) { return .success(argument) }
        if Sys.exists(argument) { return profile(argument).map(\.profile.name) }
        guard ProfileDecoder.matches(argument, first: "a"..."z", maxLength: 24) else {
            return .failure(TopoFailure(.invalid, "\(argument) is neither a profile file nor a profile name"))
        }
        return .success(argument)
    }
}
