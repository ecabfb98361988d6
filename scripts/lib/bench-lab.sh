#!/usr/bin/env bash
# The half of scripts/bench that runs inside the lab VM, as root: every measurement of one round is
# one line `M KIND N METRIC SECONDS` on stdout (scripts/lib/bench-report.py takes medians and prints).
#
#   bash scripts/lib/bench-lab.sh ROUNDS "PROCESS SIZES" "LINKED SIZES" [containers]
#
# With `containers`, it also prints a Markdown table of one workload as a process and as a crun, runc
# and podman container (mean of ROUNDS).
#
# Rounds are interleaved: each round measures every size, topo, the hand-written script and the floors
# once, so a slow moment of the machine touches all of them alike.
set -euo pipefail
rounds=$1 process_sizes=$2 linked_sizes=$3 containers=${4:-}
topo=$(pwd)/.build/release/topo
work=/tmp/bench
mkdir -p $work
TIMEFORMAT=%R
elapsed() { { time "$@" >/dev/null 2>&1; } 2>&1; }  # wall seconds of a command (its output dropped)
emit() { echo "M $1 $2 $3 $4"; }
fail() { echo "bench: $*" >&2; exit 1; }

# --- profiles -------------------------------------------------------------------------------------
# N process workloads: each its cgroup with limits, CPUs 0-1 and memory bound to node 0, running sleep.
for n in $process_sizes; do
    { echo "version: 1"; echo "name: proc$n"; echo "workloads:"
      for i in $(seq 1 "$n"); do
          echo "  w$i: { cpus: \"0-1\", isolation: shared, memory: { max: 64M, policy: bind }, pids: 16, cpu: { weight: 100 }, run: { command: [\"/bin/sleep\", \"infinity\"] } }"
      done; } > $work/proc$n.yaml
    # The same cgroups without a command: apply's cost less the launches.
    sed -e "s/name: proc$n/name: idle$n/" -e 's/, run: { command: \["\/bin\/sleep", "infinity"\] }//' $work/proc$n.yaml > $work/idle$n.yaml
done
# N linked pairs of idle workloads, each pair joined by a veth shaped by netem.
for n in $linked_sizes; do
    { echo "version: 1"; echo "name: links$n"; echo "workloads:"
      for i in $(seq 1 "$n"); do
          echo "  a$i: { cpus: \"0-1\", isolation: shared }"
          echo "  b$i: { cpus: \"0-1\", isolation: shared }"
      done
      echo "links:"
      for i in $(seq 1 "$n"); do echo "  - { between: [a$i, b$i], netem: { delay: 1ms, rate: 100mbit } }"; done; } > $work/links$n.yaml
    # The same workloads without their links: what the links cost is the difference.
    sed -e '/^links:/,$d' -e "s/name: links$n/name: unlinked$n/" $work/links$n.yaml > $work/unlinked$n.yaml
done

# --- the hand-written scripts ---------------------------------------------------------------------
# What people write by hand for N process workloads: mkdir and one echo per cgroup file, then
# `sh -c 'echo $$ > cgroup.procs; exec numactl ... CMD' &` per workload; and its teardown.
script_process_apply() {
    local n=$1 root=/sys/fs/cgroup/handmade
    echo "+cpuset +cpu +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
    mkdir $root
    echo "+cpuset +cpu +memory +pids" > $root/cgroup.subtree_control
    for i in $(seq 1 "$n"); do
        mkdir $root/w$i
        echo 0-1 > $root/w$i/cpuset.cpus
        echo 0 > $root/w$i/cpuset.mems
        echo 64M > $root/w$i/memory.max
        echo 16 > $root/w$i/pids.max
        echo 100 > $root/w$i/cpu.weight
        sh -c "echo \$\$ > $root/w$i/cgroup.procs; exec numactl --membind=0 --physcpubind=0-1 /bin/sleep infinity" </dev/null >/dev/null 2>&1 &
    done
    # Done when every workload runs its command in its cgroup; checked with shell builtins only, so the
    # check starts no process of its own (cgroupfs files have size 0: read them, never test -s).
    local pid comm
    for i in $(seq 1 "$n"); do
        until read -r pid < $root/w$i/cgroup.procs && read -r comm < /proc/"$pid"/comm 2>/dev/null && [ "$comm" = sleep ]; do :; done
    done
}
script_process_down() {
    local n=$1 root=/sys/fs/cgroup/handmade
    for i in $(seq 1 "$n"); do echo 1 > $root/w$i/cgroup.kill; done
    local pid
    for i in $(seq 1 "$n"); do while read -r pid < $root/w$i/cgroup.procs; do :; done; rmdir $root/w$i; done
    rmdir $root
    echo "-cpuset -cpu -memory -pids" > /sys/fs/cgroup/cgroup.subtree_control
}
# N linked pairs, one ip/tc process per object, and `ip netns del` per namespace.
script_linked_apply() {
    local n=$1
    for i in $(seq 1 "$n"); do
        ip netns add pa$i; ip netns add pb$i
        ip link add to-b netns pa$i type veth peer name to-a netns pb$i
        ip -n pa$i link set lo up; ip -n pb$i link set lo up
        ip -n pa$i addr add 10.78.$((i / 64)).$((i % 64 * 4 + 1))/30 dev to-b; ip -n pa$i link set to-b up
        ip -n pb$i addr add 10.78.$((i / 64)).$((i % 64 * 4 + 2))/30 dev to-a; ip -n pb$i link set to-a up
        tc -n pa$i qdisc add dev to-b root netem delay 1ms rate 100mbit
        tc -n pb$i qdisc add dev to-a root netem delay 1ms rate 100mbit
    done
}
script_linked_down() { local n=$1; for i in $(seq 1 "$n"); do ip netns del pa$i; ip netns del pb$i; done; }
# The kernel's floor for the same namespaces and veths: one `ip -batch`.
floor_linked() {
    local n=$1
    { for i in $(seq 1 "$n"); do echo "netns add fa$i"; echo "netns add fb$i"; done
      for i in $(seq 1 "$n"); do echo "link add to-b netns fa$i type veth peer name to-a netns fb$i"; done; } > $work/floor$n.batch
    ip -batch $work/floor$n.batch
}
floor_linked_clean() { local n=$1; { for i in $(seq 1 "$n"); do echo "netns del fa$i"; echo "netns del fb$i"; done; } | ip -force -batch -; }
# N processes started one after another, each waited for: /bin/true.
floor_true() { local n=$1; for _ in $(seq 1 "$n"); do /bin/true; done; }

# crun, where installed: `crun run` of /bin/true from a bundle of the host's root, 20 times.
crun_bundle() {
    mkdir -p $work/crun/rootfs
    mountpoint -q $work/crun/rootfs || mount --rbind -o ro / $work/crun/rootfs
    (cd $work/crun && crun spec --rootless >/dev/null 2>&1 || true)
    python3 - "$work/crun/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"] = {"path": "rootfs", "readonly": True}
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] in ("pid", "ipc", "uts", "mount")]
c["linux"].pop("uidMappings", None); c["linux"].pop("gidMappings", None)
c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev")]
json.dump(c, open(p, "w"))
PY
}
crun_runs() { local n=$1; for i in $(seq 1 "$n"); do crun run --bundle $work/crun bench$i >/dev/null 2>&1 || return 1; done; }

has_crun=0
if command -v crun >/dev/null; then crun_bundle && has_crun=1; fi

# `topo status` (one process), and one static verify round as `verify --watch` runs it: the median of
# rounds 2 to 6 of its JSON heartbeats (the first round also decodes the plan, once per watch).
observe_rounds() {
    local kind=$1 n=$2 profile=$3 round
    emit "$kind" "$n" topo_status_s "$(elapsed $topo status)"
    round=$($topo verify "$profile" --watch 0.1 --count 6 --json 2>/dev/null | python3 -c '
import json, statistics, sys
rounds = [json.loads(l)["seconds"] for l in sys.stdin if "\"round\"" in l and "\"seconds\"" in l]
print(f"{statistics.median(rounds[1:]):.4f}" if len(rounds) > 1 else "")')
    [ -n "$round" ] || fail "verify --watch of $profile printed no round heartbeats"
    emit "$kind" "$n" topo_verify_round_s "$round"
}

# --- rounds ---------------------------------------------------------------------------------------
for round in $(seq 1 "$rounds"); do
    for n in $process_sizes; do
        t=$(elapsed $topo apply $work/proc$n.yaml) || fail "apply of $n process workloads failed"
        [ "$(cat /sys/fs/cgroup/topo/proc$n/w$n/cgroup.procs | wc -l)" = 1 ] || fail "apply of $n workloads did not start them all"
        emit process "$n" topo_apply_s "$t"
        observe_rounds process "$n" proc$n
        emit process "$n" topo_down_s "$(elapsed $topo down proc$n)"
        [ ! -e /sys/fs/cgroup/topo ] || fail "down left /sys/fs/cgroup/topo"
        # The same cgroups with nothing launched: what the launches cost is the difference.
        emit process "$n" topo_apply_idle_s "$(elapsed $topo apply $work/idle$n.yaml)"
        $topo down idle$n >/dev/null
        emit process "$n" script_apply_s "$(elapsed script_process_apply "$n")"
        emit process "$n" script_down_s "$(elapsed script_process_down "$n")"
        [ ! -e /sys/fs/cgroup/handmade ] || fail "the hand-written script left /sys/fs/cgroup/handmade"
        emit process "$n" floor_apply_s "$(elapsed floor_true "$n")"
        if [ $has_crun = 1 ]; then emit process "$n" crun_run_s "$(elapsed crun_runs 20)"; fi
    done
    for n in $linked_sizes; do
        t=$(elapsed $topo apply $work/links$n.yaml) || fail "apply of $n linked pairs failed"
        [ "$(ip netns list | wc -l)" = $((2 * n)) ] || fail "apply of $n linked pairs made $(ip netns list | wc -l) namespaces"
        emit linked "$n" topo_apply_s "$t"
        observe_rounds linked "$n" links$n
        emit linked "$n" topo_down_s "$(elapsed $topo down links$n)"
        [ -z "$(ip netns list)" ] || fail "down left namespaces"
        emit linked "$n" topo_apply_idle_s "$(elapsed $topo apply $work/unlinked$n.yaml)"
        $topo down unlinked$n >/dev/null
        emit linked "$n" script_apply_s "$(elapsed script_linked_apply "$n")"
        emit linked "$n" script_down_s "$(elapsed script_linked_down "$n")"
        [ -z "$(ip netns list)" ] || fail "the per-object script left namespaces"
        emit linked "$n" floor_apply_s "$(elapsed floor_linked "$n")"
        floor_linked_clean "$n"
    done
done

# topo's peak resident memory during the largest apply of each kind (GNU time's %M, KiB).
largest=$(echo $process_sizes | tr ' ' '\n' | sort -n | tail -1)
/usr/bin/time -o $work/rss -f %M $topo apply $work/proc$largest.yaml >/dev/null 2>&1 && $topo down proc$largest >/dev/null
emit process "$largest" peak_rss_kib "$(tail -1 $work/rss)"
largest=$(echo $linked_sizes | tr ' ' '\n' | sort -n | tail -1)
/usr/bin/time -o $work/rss -f %M $topo apply $work/links$largest.yaml >/dev/null 2>&1 && $topo down links$largest >/dev/null
emit linked "$largest" peak_rss_kib "$(tail -1 $work/rss)"
if [ $has_crun = 1 ]; then umount -R $work/crun/rootfs 2>/dev/null || true; fi

[ "$containers" = containers ] || exit 0

# One workload as a process and as a container from the host root (image /), crun and runc; and as a
# podman container from a busybox image in the storage of podman (kept on the tmpfs of the lab).
echo
echo "| one workload | apply wall (s) | down wall (s) |"
echo "| --- | ---: | ---: |"
runtimes="process crun runc"
if [ -x /usr/bin/podman ]; then
    mkdir -p $work/podman/tmp $work/podman/rootfs/bin
    printf "[storage]\ndriver = \"vfs\"\ngraphroot = \"$work/podman/graph\"\nrunroot = \"$work/podman/run\"\n" > $work/podman/storage.conf
    export CONTAINERS_STORAGE_CONF=$work/podman/storage.conf TMPDIR=$work/podman/tmp
    cp /bin/busybox $work/podman/rootfs/bin/ && ln -s busybox $work/podman/rootfs/bin/sleep
    tar -C $work/podman/rootfs -cf $work/podman/rootfs.tar .
    podman --cgroup-manager cgroupfs --events-backend file import $work/podman/rootfs.tar localhost/topo-bench:1 >/dev/null 2>&1
    runtimes="$runtimes podman"
fi
for runtime in $runtimes; do
    p=$work/rt-$runtime.yaml
    image=""; [ "$runtime" = podman ] && image=", image: localhost/topo-bench:1"
    { echo "version: 1"; echo "name: rt-$runtime"; echo "workloads:"
      echo "  w: { cpus: \"0-1\", isolation: shared, memory: { max: 64M }, run: { command: [\"/bin/sleep\", \"999999\"], runtime: $runtime$image } }"; } > $p
    sums="0 0"
    for r in $(seq 1 $rounds); do
        TIMEFORMAT="%R"
        a=$( { time $topo apply $p >/dev/null; } 2>&1 )
        [ -n "$(cat /sys/fs/cgroup/topo/rt-$runtime/w/cgroup.procs /sys/fs/cgroup/topo/rt-$runtime/w/*/cgroup.procs 2>/dev/null)" ] || { echo "apply of the $runtime workload started nothing" >&2; exit 1; }
        d=$( { time $topo down rt-$runtime >/dev/null; } 2>&1 )
        [ ! -e /sys/fs/cgroup/topo ] || { echo "down left /sys/fs/cgroup/topo" >&2; exit 1; }
        sums=$(echo "$sums $a $d" | awk "{ printf \"%f %f\", \$1+\$3, \$2+\$4 }")
    done
    echo "$sums" | awk -v rt=$runtime -v r=$rounds "{ printf \"| %s | %.2f | %.2f |\n\", rt, \$1/r, \$2/r }"
done

