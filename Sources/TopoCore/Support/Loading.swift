/// The steps every command shares: decode a profile, discover the host, plan — each failure mapped to its exit status.
public enum Loading {
    public static func profile(_ path: String) -> Result<ProfileDecoder.Decoded, TopoFailure> {
        ProfileDecoder.decode(file: path).mapError { TopoFailure(.invalid, $0.description) }
    }

    public static func host(sysfs: String) -> Result<HostTopology, TopoFailure> {
        HostDiscovery(sysfsRoot: sysfs).discover().mapError { TopoFailure(.hostCannot, "cannot discover the host: \($0)") }
    }

    public static func plan(_ profile: Profile, on host: HostTopology) -> Result<Plan, TopoFailure> {
        Planner(host: host).plan(profile).mapError { failure in
            let n = failure.problems.count
            return TopoFailure(.hostCannot, "this host cannot satisfy profile \(profile.name) (\(n) problem\(n == 1 ? "" : "s")):\n"
                + failure.problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
    }
}
