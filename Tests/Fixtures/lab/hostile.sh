#!/bin/sh
# A root workload that tries to escape what its profile gave it; each attempt's outcome goes to its log.
try() { if sh -c "$1" 2>/dev/null; then echo "ESCAPED: $1"; else echo "refused: $1"; fi; }
try "echo max > /sys/fs/cgroup/memory.max"
try "echo 0-63 > /sys/fs/cgroup/cpuset.cpus"
try "echo 0 > /sys/fs/cgroup/cgroup.procs && test \"\$(cut -d: -f3 /proc/self/cgroup)\" != /"
try "mkdir -p /tmp/hostile-cg && mount -t cgroup2 none /tmp/hostile-cg"
try "mount -o remount,rw /sys/fs/cgroup"
try "echo x >> /run/topo/hostile/plan.json"
try "rm /run/topo/hostile/journal.jsonl"
echo done
exec sleep 1006
