#!/usr/bin/env python3
"""Turns scripts/lib/bench-lab.sh's measurements into medians, Markdown tables, the targets of
docs/benchmarks.md, and (with --json FILE) the benchmark's JSON record.

    bench-report.py MEASUREMENTS PLAN_256_MS [--json FILE]

MEASUREMENTS holds lines `M KIND N METRIC VALUE` (other lines are ignored)."""
import json
import statistics
import sys
from collections import defaultdict

FIELDS = ["topo_apply_s", "script_apply_s", "floor_apply_s", "topo_down_s", "script_down_s", "topo_status_s", "topo_verify_round_s"]


def main():
    args = sys.argv[1:]
    out = None
    if "--json" in args:
        i = args.index("--json")
        out = args[i + 1]
        del args[i:i + 2]
    measurements, plan_ms = args[0], float(args[1])
    # plan_10k_ms EXCLUSIVE SPREAD SHARED (scripts/lib/plan-scale.py), when given.
    plan_10k = dict(zip(["exclusive_8192", "spread_10000", "shared_10000"], map(float, args[2].split()[1:]))) if len(args) > 2 else None
    values = defaultdict(list)
    with open(measurements) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5 and parts[0] == "M":
                values[(parts[1], int(parts[2]), parts[3])].append(float(parts[4]))
    if not values:
        sys.exit("bench: no measurements came back from the lab")

    def median(kind, n, metric):
        v = values.get((kind, n, metric))
        return statistics.median(v) if v else None

    results = []
    for kind in ("process", "linked"):
        for n in sorted({k[1] for k in values if k[0] == kind and k[2] == "topo_apply_s"}):
            row = {"kind": kind, "n": n}
            for field in FIELDS:
                row[field] = median(kind, n, field)
            # The same workloads applied without their commands (process) or links (linked).
            row["topo_apply_without_s"] = median(kind, n, "topo_apply_idle_s")
            results.append(row)
    process = [r for r in results if r["kind"] == "process"]
    linked = [r for r in results if r["kind"] == "linked"]
    biggest = max(process, key=lambda r: r["n"]) if process else None
    launch = {"topo": None, "true": None, "crun": None}
    if biggest:
        n = biggest["n"]
        idle = median("process", n, "topo_apply_idle_s")
        if idle is not None:
            launch["topo"] = round(max(biggest["topo_apply_s"] - idle, 0) / n * 1000, 2)
        launch["true"] = round(biggest["floor_apply_s"] / n * 1000, 2)
        crun = median("process", n, "crun_run_s")
        launch["crun"] = round(crun / 20 * 1000, 2) if crun is not None else None
    rss = [median(k, n, "peak_rss_kib") for (k, n, m) in values if m == "peak_rss_kib"]
    record = {
        "format": 1,
        "rounds": max(len(v) for k, v in values.items() if k[2] == "topo_apply_s"),
        "results": results,
        "launch_ms": launch,
        "plan_256_ms": round(plan_ms, 1),
        "plan_10k_ms": plan_10k,
        "peak_rss_mib": round(max(rss) / 1024, 1) if rss else None,
    }

    def fmt(v, digits=2):
        return "–" if v is None else f"{v:.{digits}f}"

    def ratio(a, b):
        return None if a is None or not b else a / b

    for kind, rows, floor_name, without in (("process workloads", process, "N × /bin/true", "without commands"), ("linked pairs", linked, "one ip -batch", "without links")):
        if not rows:
            continue
        print(f"\n| {kind} | topo apply (s) | {without} (s) | script apply (s) | topo / script | {floor_name} (s) | topo down (s) | script down (s) | topo / script | status (s) | verify round (s) |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['n']} | {fmt(r['topo_apply_s'])} | {fmt(r['topo_apply_without_s'])} | {fmt(r['script_apply_s'])} | {fmt(ratio(r['topo_apply_s'], r['script_apply_s']))} | {fmt(r['floor_apply_s'])} "
                  f"| {fmt(r['topo_down_s'])} | {fmt(r['script_down_s'])} | {fmt(ratio(r['topo_down_s'], r['script_down_s']))} | {fmt(r['topo_status_s'])} | {fmt(r['topo_verify_round_s'], 3)} |")
    print(f"\nlaunch (ms each): topo {fmt(launch['topo'], 1)}, /bin/true {fmt(launch['true'], 1)}, crun run {fmt(launch['crun'], 1)}; "
          f"plan of 256 workloads and 128 links: {record['plan_256_ms']} ms; peak RSS: {fmt(record['peak_rss_mib'], 1)} MiB")
    if plan_10k:
        print(f"plan --json on a host of 8,192 CPUs: 8,192 exclusive workloads {plan_10k['exclusive_8192']:.0f} ms, "
              f"10,000 spread shared {plan_10k['spread_10000']:.0f} ms, 10,000 sharing 1,024 CPUs {plan_10k['shared_10000']:.0f} ms")

    # The targets of issue 13, each with what was measured; a miss is reported, not hidden.
    targets = []

    def target(name, value, limit):
        if value is not None:
            targets.append((name, value, limit, value <= limit))

    big_link = max(linked, key=lambda r: r["n"]) if linked else None
    if big_link:
        target(f"apply of {big_link['n']} linked pairs / script", ratio(big_link["topo_apply_s"], big_link["script_apply_s"]), 0.15)
        target(f"apply of {big_link['n']} linked pairs / ip -batch floor", ratio(big_link["topo_apply_s"], big_link["floor_apply_s"]), 2)
        if big_link["topo_apply_without_s"] is not None:
            # Not a target of its own: the links' share of that apply (the floor makes no cgroups).
            links = big_link["topo_apply_s"] - big_link["topo_apply_without_s"]
            print(f"\nthe links' share of applying {big_link['n']} linked pairs: {links:.2f} s, {links / big_link['floor_apply_s']:.2f} × one ip -batch")
        target(f"down of {big_link['n']} linked pairs / script", ratio(big_link["topo_down_s"], big_link["script_down_s"]), 0.2)
        target(f"verify round, {2 * big_link['n']} linked workloads (s)", big_link["topo_verify_round_s"], 0.2)
    if biggest:
        target(f"apply of {biggest['n']} process workloads / script", ratio(biggest["topo_apply_s"], biggest["script_apply_s"]), 0.5)
        target(f"down of {biggest['n']} process workloads / script", ratio(biggest["topo_down_s"], biggest["script_down_s"]), 0.2)
    target("a launch / /bin/true", ratio(launch["topo"], launch["true"]), 2)
    target("a launch / crun run", ratio(launch["topo"], launch["crun"]), 0.5)
    if len(process) >= 2:
        small = min((r for r in process if r["n"] >= 4), key=lambda r: r["n"], default=None)
        if small and small is not biggest and small["topo_apply_s"] and biggest["topo_apply_s"]:
            # Each added workload's cost, small size against large: flat means a ratio near 1.
            per_small = small["topo_apply_s"] / small["n"]
            per_big = (biggest["topo_apply_s"] - small["topo_apply_s"]) / (biggest["n"] - small["n"])
            target(f"cost per added workload, {small['n']}→{biggest['n']} / per workload at {small['n']}", per_big / per_small, 1.5)
    target("plan of 256 workloads (ms)", record["plan_256_ms"], 50)
    if plan_10k:
        # Issue 26's figure: 10,000 workloads of any kind in 0.5 s. Reported against it, met or not.
        for name, value in plan_10k.items():
            target(f"plan of {name.replace('_', ' ')} workloads (ms)", value, 500)
    target("peak RSS (MiB)", record["peak_rss_mib"], 40)
    print("\n| target | measured | limit | |\n| --- | ---: | ---: | --- |")
    for name, value, limit, ok in targets:
        print(f"| {name} | {value:.3f} | {limit} | {'met' if ok else 'MISSED'} |")
    record["targets"] = [{"name": n, "measured": round(v, 4), "limit": l, "met": ok} for n, v, l, ok in targets]
    if out:
        with open(out, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
