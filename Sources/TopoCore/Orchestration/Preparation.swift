/// What `apply` and `run` do before anything changes, and `apply --dry-run` without the host checks:
/// decode the profile, plan it on the host (or take its lock's plan), check the host (`Preflight`).
public struct Preparation: Sendable {
    /// The plan to apply.
    public var plan: Plan
    /// The profile's text, as read (the state directory and the report keep it).
    public var text: String
    /// The host it was planned on.
    public var host: HostTopology

    /// The profile at `path` planned on the host `discover` finds (asked once the profile is known to be
    /// valid: an invalid profile is exit 2 on any host): its lock's placement when `locked` (the lock
    /// beside the profile's file, refused when anything in it changed), else the planner's. `warn`
    /// hears the profile's warnings.
    public static func plan(
        _ path: String, locked: Bool, layout: Layout, host discover: () -> Result<HostTopology, TopoFailure>,
        warn: (String) -> Void
    ) -> Result<Preparation, TopoFailure> {
        Result { () throws(TopoFailure) -> Preparation in
            let decoded = try Loading.profile(path).get()
            let host = try discover().get()
            for w in decoded.warnings { warn(w.description) }
            let plan: Plan
            if locked {
                let lock = LockFile.path(forProfile: path)
                plan = try LockFile.read(lock).get().plan(
                    for: decoded.profile, text: decoded.text, on: host, layout: layout, source: lock
                ).get()
            } else {
                plan = try Loading.plan(decoded.profile, on: host, layout: layout).get()
            }
            return Preparation(plan: plan, text: decoded.text, host: host)
        }
    }

    /// `plan`, then the host checks: every refusal of `preflight` refuses the whole (exit 3, nothing
    /// changed, each problem on a line); its warnings go to `warn` when there is none.
    public static func prepare(
        _ path: String, locked: Bool, layout: Layout, host discover: () -> Result<HostTopology, TopoFailure>,
        preflight: (HostTopology) -> Preflight, warn: (String) -> Void
    ) -> Result<Preparation, TopoFailure> {
        plan(path, locked: locked, layout: layout, host: discover, warn: warn).flatMap { prepared in
            let found = preflight(prepared.host).check(prepared.plan)
            guard found.refusals.isEmpty else {
                let how = locked ? "as locked in \(LockFile.path(forProfile: path))" : "on this host"
                return .failure(
                    TopoFailure(
                        .hostCannot,
                        "cannot apply \(prepared.plan.name) \(how); nothing was changed:\n"
                            + Problems.collapse(found.refusals).map { "  - \($0)" }.joined(separator: "\n")))
            }
            for w in found.warnings { warn("warning: \(w)") }
            return .success(prepared)
        }
    }
}
