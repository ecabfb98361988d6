import ArgumentParser
import Foundation
import TopoCore

/// Where topo keeps its state and finds the cgroup tree: `--state-dir` and `--cgroup-root`, else
/// `TOPO_STATE_DIR` and `TOPO_CGROUP_ROOT`, else `/run/topo` and `/sys/fs/cgroup`. Every command that
/// reads or changes applied profiles takes them.
struct PathOptions: ParsableArguments {
    static let stateDirDefault = Layout.standard.stateRoot
    static let cgroupRootDefault = CgroupFS().root

    @Option(
        name: .customLong("state-dir"),
        help: ArgumentHelp(
            "Keep journals, plans and logs here (default: $TOPO_STATE_DIR, else /run/topo).", valueName: "dir"),
        completion: .directory)
    var stateDir: String?

    @Option(
        name: .customLong("cgroup-root"),
        help: ArgumentHelp(
            "The cgroup v2 hierarchy to work in (default: $TOPO_CGROUP_ROOT, else /sys/fs/cgroup).", valueName: "dir"),
        completion: .directory)
    var cgroupRoot: String?

    @Option(
        name: .customLong("cgroup-manager"),
        help: ArgumentHelp(
            "Who owns the cgroup tree: systemd (a delegated scope per profile), cgroupfs (topo writes it), or auto: systemd where it is PID 1, unless --cgroup-root is given (default: $TOPO_CGROUP_MANAGER, else auto).",
            valueName: "manager"))
    var cgroupManager: String?

    func validate() throws {
        if case .failure(let f) = choice { throw ValidationError(f.message) }
    }

    /// A variable's value, nil when it is unset or empty.
    static func environment(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }

    private var choice: Result<DriverSelection, TopoFailure> {
        DriverSelection.choose(
            stateDir: stateDir, cgroupRoot: cgroupRoot, manager: cgroupManager,
            environment: ProcessInfo.processInfo.environment)
    }

    /// The drivers and paths these options choose (validated before any command runs).
    var selection: DriverSelection { (try? choice.get()) ?? DriverSelection() }

    var stateRoot: String { selection.stateRoot }
    var cgroupRootPath: String { selection.cgroupRoot }
    var state: StateStore { selection.state }
    var layout: Layout { selection.layout }
    var drivers: Drivers { selection.drivers }
}

/// `--color auto|always|never`: colour only on a terminal, and not when `NO_COLOR` is set — unless
/// asked for with `--color always` (an explicit flag wins over the variable, as no-color.org asks).
struct ColorOptions: ParsableArguments {
    enum Choice: String, ExpressibleByArgument, CaseIterable {
        case auto, always, never
    }

    @Option(
        help: ArgumentHelp(
            "Colour the output: auto (on a terminal, unless NO_COLOR is set), always or never.", valueName: "when"))
    var color: Choice = .auto

    /// Whether to colour what goes to standard output.
    var enabled: Bool {
        switch color {
        case .always: true
        case .never: false
        case .auto:
            isatty(STDOUT_FILENO) == 1 && PathOptions.environment("NO_COLOR") == nil
                && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        }
    }

    var style: TextStyle { TextStyle(enabled: enabled) }
}

/// Completion of applied profile names and of one profile's workloads, read from the state directory
/// the command line names (or the default one) without taking any lock.
enum Completions {
    static func stateRoot(_ words: [String]) -> String {
        if let i = words.firstIndex(of: "--state-dir"), i + 1 < words.count { return words[i + 1] }
        if let w = words.first(where: { $0.hasPrefix("--state-dir=") }) {
            return String(w.dropFirst("--state-dir=".count))
        }
        return PathOptions.environment("TOPO_STATE_DIR") ?? PathOptions.stateDirDefault
    }

    /// For a profile argument: the applied profiles' names.
    static let profiles = CompletionKind.custom { words, _, prefix in
        StateStore(root: stateRoot(words)).profiles().filter { $0.hasPrefix(prefix) }
    }

    /// For a profile argument that may also be a file: the applied profiles' names, then YAML files.
    static let profilesOrFiles = CompletionKind.custom { words, _, prefix in
        let names = StateStore(root: stateRoot(words)).profiles().filter { $0.hasPrefix(prefix) }
        return names + yamlFiles(prefix)
    }

    /// For a workload argument: the workloads of the applied profile named before it.
    static let workloads = CompletionKind.custom { words, index, prefix in
        let state = StateStore(root: stateRoot(words))
        let applied = state.profiles()
        // The profile is the last applied name before the word being completed.
        guard let profile = words.prefix(max(0, min(index, words.count))).last(where: { applied.contains($0) }),
            case .success(let plan) = state.plan(profile)
        else { return [] }
        return plan.workloads.map(\.name).filter { $0.hasPrefix(prefix) }
    }

    /// YAML files and directories starting with `prefix`, for shells whose custom completion replaces file completion.
    static func yamlFiles(_ prefix: String) -> [String] {
        let dir = prefix.contains("/") ? String(prefix[...prefix.lastIndex(of: "/")!]) : ""
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else {
            return []
        }
        return names.sorted().compactMap { name in
            let path = dir + name
            guard path.hasPrefix(prefix), !name.hasPrefix(".") || prefix.hasSuffix("/.") else { return nil }
            if Sys.isDirectory(path) { return path + "/" }
            return name.hasSuffix(".yaml") || name.hasSuffix(".yml") ? path : nil
        }
    }
}
