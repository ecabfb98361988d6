#!/bin/sh
# A workload that tries to change the host outside its cgroup, as root or not: a sysctl, sysrq, a sysfs
# tunable, and a root-only socket under the host's /run. Each attempt's outcome goes to its log.
try() { if sh -c "$1" 2>/dev/null; then echo "ESCAPED: $1"; else echo "refused: $1"; fi; }
echo "uid $(id -u)"
try "printf '|/tmp/intruder-core %%p' > /proc/sys/kernel/core_pattern"
try "echo h > /proc/sysrq-trigger"
try "echo never > /sys/kernel/mm/transparent_hugepage/enabled"
try "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('$1')\""
echo done
exec sleep "$2"
