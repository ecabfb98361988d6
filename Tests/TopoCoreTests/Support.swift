import Foundation

@testable import TopoCore

/// Paths into the repository, found from this file's place so tests run from any directory.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static func path(_ relative: String) -> String { root + "/" + relative }
    static func host(_ name: String) -> String { path("Tests/Fixtures/hosts/\(name)") }
}

func fixtureHost(_ name: String) throws -> HostTopology {
    try HostDiscovery(sysfsRoot: Repo.host(name)).discover().get()
}

func decode(_ yaml: String) -> Result<ProfileDecoder.Decoded, ProfileInvalid> {
    ProfileDecoder.decode(text: yaml, file: "test.yaml")
}

func profile(_ yaml: String) throws -> Profile {
    try decode(yaml).get().profile
}

/// The error messages of an invalid profile, without locations.
func errors(_ yaml: String) -> [String] {
    switch decode(yaml) {
    case .success: return []
    case .failure(let invalid): return invalid.errors.map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" }
    }
}
