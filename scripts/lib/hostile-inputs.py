#!/usr/bin/env python3
"""Writes the hostile-but-valid-sized profiles scripts/bench times (each within topo's 256 KiB limit)
into the directory given as the first argument."""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def write(name, lines):
    text = "\n".join(lines) + "\n"
    assert len(text.encode()) <= 256 * 1024, (name, len(text))
    with open(os.path.join(out, name + ".yaml"), "w") as f:
        f.write(text)


head = lambda name: ["version: 1", f"name: {name}", "workloads:"]
# One cpulist of 30,000 full ranges: 30,000 x 8,192 ids if expanded one by one.
write("cpulist", head("cpulist") + ['  a: { cpus: "' + ",".join(["0-8191"] * 30000) + '", isolation: shared }'])
# 5,800 workloads on the same CPUs: shared (may overlap) and exclusive (each pair a conflict).
write("shared", head("shared") + [f'  w{i}: {{ cpus: "0-3", isolation: shared }}' for i in range(5800)])
write("exclusive", head("exclusive") + [f'  w{i}: {{ cpus: "0-3" }}' for i in range(5800)])
# Full meshes: 1,225 and 4,950 links whose subnets topo chooses; 3,160 links with subnets written out.
for n in (50, 100):
    write(f"mesh{n}", head(f"mesh{n}") + [f'  w{i}: {{ cpus: "0-1", isolation: shared }}' for i in range(n)]
          + ["links:"] + [f"  - {{ between: [w{i}, w{j}] }}" for i in range(n) for j in range(i + 1, n)])
pairs = [(i, j) for i in range(80) for j in range(i + 1, 80)]
write("subnets", head("subnets") + [f'  w{i}: {{ cpus: "0-1", isolation: shared }}' for i in range(80)] + ["links:"]
      + [f"  - {{ between: [w{i}, w{j}], subnet: 10.{80 + k // 16384}.{k // 64 % 256}.{k % 64 * 4}/30 }}" for k, (i, j) in enumerate(pairs)])
# Aliases: used as mapping keys (hashed whole when composed), and hidden after a quote in a plain scalar.
bomb = ["x-0: &a0 {k: v}"] + [f"x-{i}: &a{i} {{*a{i - 1}: 1, ? *a{i - 1} : 2}}" for i in range(1, 12)]
write("alias-keys", ["version: 1", "name: bomb"] + bomb + ['workloads: { a: { cpus: "0" } }'])
quote = ['x-q: a "', "x-a: &a [1, 2, 3, 4, 5, 6, 7, 8]"] + [
    f"x-b{i}: &b{i} [" + ", ".join([("*a" if i == 1 else f"*b{i - 1}")] * 8) + "]" for i in range(1, 12)]
write("alias-quote", ["version: 1", "name: quote"] + quote + ['workloads: { a: { cpus: "0" } }'])
