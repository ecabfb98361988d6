/// `thp`: transparent huge pages' `enabled` and, with it, `defrag` — huge pages never or only where
/// asked, and no direct compaction stalls for `always`.
struct TransparentHugePages: TunableFamily {
    static let directory = "sys/kernel/mm/transparent_hugepage"

    func owns(_ s: TuneSetting) -> Bool { if case .thp = s { true } else { false } }

    func targets(_ s: TuneSetting, _ io: TuneIO) -> [TuneTarget] {
        guard case .thp(let mode) = s else { return [] }
        return [
            TuneTarget(key: "\(Self.directory)/enabled", kind: .selection, want: mode.rawValue),
            TuneTarget(key: "\(Self.directory)/defrag", kind: .selection, want: mode == .never ? "never" : "madvise"),
        ]
    }

    func problems(_ t: TuneResource, _ io: TuneIO) -> [String] {
        fileProblems(t, io, missing: "the kernel does not offer it")
    }

    func show(_ io: TuneIO, online: CPUSet, into settings: inout [String: String]) {
        for key in ["enabled", "defrag"] {
            if let t = io.files.read("\(Self.directory)/\(key)") {
                settings["transparent_hugepage.\(key)"] = TuneValue.selected(t)
            }
        }
    }
}
