#!/bin/bash
# A workload that tries to outlive `topo down`: it ignores SIGTERM, moves a child into a cgroup of
# its own below the workload's, and double-forks a daemon into a new session. Its cgroup mount is
# read-only: it was granted CAP_SYS_ADMIN, and uses it to remount that rw (a profile that grants
# SYS_ADMIN grants this), so that down meets a sub-cgroup it did not make.
trap '' TERM
mount -o remount,rw /sys/fs/cgroup
cg=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)
mkdir "$cg/own"
(echo $BASHPID >"$cg/own/cgroup.procs"; exec -a stubborn-child sleep 1000) &
(setsid bash -c "trap '' TERM; exec -a stubborn-daemon sleep 1000" &)
exec -a stubborn-main sleep 1000
