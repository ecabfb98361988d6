#!/usr/bin/env python3
"""Writes the sysfs fixture trees under Tests/Fixtures/hosts/ — only the files topo's host discovery reads.

The lab-* trees are not written here: they were exported from the lab VM's shapes with
`topo host --export DIR` (the same files, as that kernel wrote them).

Run it after changing a shape; the trees it writes are committed.
"""
import os, shutil

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hosts")


def cpulist(ids):
    ids = sorted(ids)
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def host(name, nodes, cores, online=None, offline=(), mem_gib=None, distances=None):
    """nodes: {node: [cpu ids]}; cores: list of (package, core_id, [thread ids])."""
    root = os.path.join(HERE, name)
    shutil.rmtree(root, ignore_errors=True)
    every = sorted({c for _, _, t in cores for c in t})
    online = sorted(set(every) - set(offline)) if online is None else online
    write(root, "devices/system/cpu/online", cpulist(online))
    for pkg, core, threads in cores:
        for t in threads:
            d = f"devices/system/cpu/cpu{t}"
            if t in offline:
                write(root, f"{d}/online", "0")  # offline: the directory stays, topology/ goes
                continue
            write(root, f"{d}/topology/core_id", str(core))
            write(root, f"{d}/topology/physical_package_id", str(pkg))
            write(root, f"{d}/topology/thread_siblings_list", cpulist([x for x in threads if x not in offline]))
    ids = sorted(nodes)
    write(root, "devices/system/node/online", cpulist(ids))
    for n in ids:
        d = f"devices/system/node/node{n}"
        write(root, f"{d}/cpulist", cpulist([c for c in nodes[n] if c not in offline]))
        kb = (mem_gib or {}).get(n, 16) * 1024 * 1024
        write(root, f"{d}/meminfo", f"Node {n} MemTotal:       {kb} kB\nNode {n} MemFree:        {kb // 2} kB")
        row = distances[n] if distances else [10 if m == n else 21 for m in ids]
        write(root, f"{d}/distance", " ".join(map(str, row)))


# 1 node x 2 CPUs, no SMT: a small VM or CI runner.
host("1n-2c", {0: [0, 1]}, [(0, 0, [0]), (0, 1, [1])], mem_gib={0: 4})

# 2 sockets x 8 cores x 2 threads, siblings numbered N and N+16 (typical Intel server).
cores = [(s, c, [s * 8 + c, s * 8 + c + 16]) for s in range(2) for c in range(8)]
host("2s-8c-ht", {0: list(range(0, 8)) + list(range(16, 24)), 1: list(range(8, 16)) + list(range(24, 32))}, cores, mem_gib={0: 64, 1: 64})

# One socket, 8 cores x 2 threads with adjacent sibling numbering (0,1), split into 2 nodes (SNC / NPS2).
cores = [(0, c, [2 * c, 2 * c + 1]) for c in range(8)]
host("1s-2n-adjacent", {0: list(range(0, 8)), 1: list(range(8, 16))}, cores, mem_gib={0: 32, 1: 32}, distances=[[10, 11], [11, 10]])

# 4 nodes with unequal CPU counts and a memory-only node (CXL or HBM style), no SMT.
cores = [(0, c, [c]) for c in range(4)] + [(1, c, [4 + c]) for c in range(2)] + [(2, c, [6 + c]) for c in range(6)]
host("4n-unequal-memonly", {0: [0, 1, 2, 3], 1: [4, 5], 2: list(range(6, 12)), 3: []}, cores,
     mem_gib={0: 16, 1: 8, 2: 24, 3: 64},
     distances=[[10, 21, 21, 30], [21, 10, 21, 30], [21, 21, 10, 30], [30, 30, 30, 10]])

# 1 node, 4 cores x 2 threads (siblings N and N+4), CPUs 3 and 7 (one whole core) and 6 offline.
cores = [(0, c, [c, c + 4]) for c in range(4)]
host("offline-cpus", {0: list(range(8))}, cores, offline=(3, 6, 7), mem_gib={0: 8})
