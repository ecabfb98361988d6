#!/bin/bash
# A workload that tries to outlive `topo down`: it ignores SIGTERM, moves a child into a cgroup of
# its own below the workload's, and double-forks a daemon into a new session.
trap '' TERM
cg=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)
mkdir "$cg/own"
(echo $BASHPID >"$cg/own/cgroup.procs"; exec -a stubborn-child sleep 1000) &
(setsid bash -c "trap '' TERM; exec -a stubborn-daemon sleep 1000" &)
exec -a stubborn-main sleep 1000
