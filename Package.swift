// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "topo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "topo", targets: ["topo"]),
        .library(name: "TopoCore", targets: ["TopoCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CNuma", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        // C that Swift cannot import or must not run (between fork and exec), and the rtnetlink messages over libmnl.
        .target(name: "CTopoShim", dependencies: ["CMnl"]),
        .target(
            name: "TopoCore",
            dependencies: [
                "CNuma", "CCap", "CTopoShim", "Yams",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "topo",
            dependencies: ["TopoCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "TopoCoreTests", dependencies: ["TopoCore"]),
        .testTarget(name: "TopoCLITests", dependencies: ["TopoCore"]),
        // Integration tests that run inside the lab VM (scripts/lab) and skip elsewhere, saying why.
        .testTarget(name: "TopoLabTests", dependencies: ["TopoCore"]),
    ]
)
