# Shared helpers for topo's scripts. Source it; it defines functions only.

# Installs the Debian packages that are not installed yet (apt-get update once, first).
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "cannot install ${missing[*]}: run as root, or install them yourself" >&2
        return 3
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Packages topo needs to build (libnuma, libcap, libmnl for rtnetlink) and to run its lab (qemu, busybox, cpio) and
# what the lab's tests call (numactl, iproute2, ping, iperf3, python3 for a memory-filling workload,
# crun, runc and umoci for container workloads).
TOPO_BUILD_PACKAGES=(libnuma-dev libcap-dev libmnl-dev pkg-config)
# What the host tests call: the schema test validates profiles with an established validator (Debian's
# python3-jsonschema, run by /usr/bin/python3), the install step renders the man pages (man-db).
TOPO_TEST_PACKAGES=(python3-jsonschema python3-yaml man-db bsdutils)
TOPO_LAB_PACKAGES=(qemu-system-x86 busybox-static cpio numactl iproute2 iputils-ping iperf3 python3 crun runc umoci podman strace systemd)

step() { printf '\n==> %s\n' "$*" >&2; }
