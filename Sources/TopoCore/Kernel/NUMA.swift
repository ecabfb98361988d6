import CNuma

/// libnuma's view of the host, for cross-checking what sysfs says.
public enum NUMALibrary {
    public struct Counts: Equatable, Sendable {
        public var nodes: Int
        public var cpus: Int
    }

    /// Node and CPU counts from libnuma, or nil where it reports NUMA unavailable (numa_available() < 0).
    public static func configuredCounts() -> Counts? {
        guard numa_available() >= 0 else { return nil }
        return Counts(nodes: Int(numa_num_configured_nodes()), cpus: Int(numa_num_configured_cpus()))
    }
}
