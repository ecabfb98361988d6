#!/usr/bin/env python3
"""Planning at scale: `topo plan` of the most workloads a host can hold, against a made-up host of
8,192 CPUs (the kernel's largest NR_CPUS, and topo's bound).

Writes, under DIR, a sysfs tree of 4 nodes x 1,024 cores x 2 threads and two profiles: 8,192 exclusive
workloads of one CPU each (`cpus: {count: 1}` under `smt: any`: every CPU of the host), 10,000 shared
workloads of one CPU each that the planner spreads (`{count: 1}, isolation: shared`), and 10,000 shared
workloads on one node's CPUs (`cpus: "0-1023"`). Runs the release `topo plan --json` on each ROUNDS
times and prints one line, `plan_10k_ms EXCLUSIVE SPREAD SHARED` (medians, ms), for scripts/bench.

    scripts/lib/plan-scale.py DIR [ROUNDS]
"""
import os, statistics, subprocess, sys, time

NODES, CORES, WORKLOADS = 4, 1024, 10_000


def cpulist(ids):
    ids, out, i = sorted(ids), [], 0
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


def host(root):
    """Siblings numbered N and N + NODES*CORES; node n holds cores n*CORES .. (n+1)*CORES - 1."""
    total = NODES * CORES
    write(root, "devices/system/cpu/online", f"0-{2 * total - 1}")
    for n in range(NODES):
        for c in range(CORES):
            core = n * CORES + c
            for t in (core, core + total):
                d = f"devices/system/cpu/cpu{t}/topology"
                write(root, f"{d}/core_id", str(c))
                write(root, f"{d}/physical_package_id", str(n))
                write(root, f"{d}/thread_siblings_list", f"{core},{core + total}")
    write(root, "devices/system/node/online", f"0-{NODES - 1}")
    for n in range(NODES):
        d = f"devices/system/node/node{n}"
        cores = range(n * CORES, (n + 1) * CORES)
        write(root, f"{d}/cpulist", cpulist(list(cores) + [c + total for c in cores]))
        kb = 256 * 1024 * 1024
        write(root, f"{d}/meminfo", f"Node {n} MemTotal:       {kb} kB\nNode {n} MemFree:        {kb // 2} kB")
        write(root, f"{d}/distance", " ".join("10" if m == n else "21" for m in range(NODES)))


def profiles(dir):
    with open(os.path.join(dir, "exclusive.yaml"), "w") as f:
        f.write("version: 1\nname: x\nhost: {smt: any}\nworkloads:\n")
        for i in range(2 * NODES * CORES):
            f.write(f"  w{i}: {{cpus: {{count: 1}}}}\n")
    with open(os.path.join(dir, "spread.yaml"), "w") as f:
        f.write(f"version: 1\nname: c\nworkloads:\n")
        for i in range(WORKLOADS):
            f.write(f"  w{i}: {{cpus: {{count: 1}}, isolation: shared}}\n")
    with open(os.path.join(dir, "shared.yaml"), "w") as f:
        f.write(f"version: 1\nname: s\nworkloads:\n")
        for i in range(WORKLOADS):
            f.write(f"  w{i}: {{cpus: \"0-{CORES - 1}\", isolation: shared}}\n")


def median_ms(profile, sysfs, rounds):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = subprocess.run([".build/release/topo", "plan", profile, "--sysfs", sysfs, "--json"], capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit(f"plan-scale: plan of {profile} failed: {r.stderr.decode()[:2000]}")
    return statistics.median(times)


def main():
    dir, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    sysfs = os.path.join(dir, "sys")
    host(sysfs)
    profiles(dir)
    print("plan_10k_ms " + " ".join(f"{median_ms(os.path.join(dir, name + '.yaml'), sysfs, rounds):.0f}"
                                      for name in ["exclusive", "spread", "shared"]))


main()
