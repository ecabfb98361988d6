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

extension NUMALibrary {
    /// Runs `body` (a posix_spawn) with this thread's CPU affinity and memory policy set to the given
    /// ones, then puts both back: a child inherits the spawning thread's, and the rest of topo keeps its own.
    static func onThisThread<T>(cpus: CPUSet, policy: MemoryPolicy, nodes: CPUSet, _ body: () -> T) -> T {
        let saved = numa_allocate_cpumask()
        defer { if let saved { numa_bitmask_free(saved) } }
        let hadAffinity = saved.map { numa_sched_getaffinity(0, $0) >= 0 } ?? false
        if !cpus.isEmpty, let mask = numa_parse_cpustring_all(cpus.description) {
            _ = numa_sched_setaffinity(0, mask)
            numa_bitmask_free(mask)
        }
        switch policy {
        case .local: numa_set_localalloc()
        case .preferred: if let node = nodes.first(where: { _ in true }) { numa_set_preferred(Int32(node)) }
        case .bind, .interleave:
            if let mask = numa_parse_nodestring_all(nodes.description) {
                if policy == .bind { numa_set_membind(mask) } else { numa_set_interleave_mask(mask) }
                numa_bitmask_free(mask)
            }
        }
        let result = body()
        numa_set_localalloc()
        if hadAffinity, let saved { _ = numa_sched_setaffinity(0, saved) }
        return result
    }
}
