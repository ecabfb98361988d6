#ifndef TOPO_SHIM_H
#define TOPO_SHIM_H
// Wrappers for the few C calls Swift cannot import: variadic prctl, GNU execvpe and pipe2, <sys/xattr.h>.
int topo_capbset_drop(int cap);
int topo_set_keepcaps(int on);
int topo_ambient_raise(int cap);
int topo_execvpe(const char *file, char *const argv[], char *const envp[]);
#include <stddef.h>
#include <sys/types.h>
#include <spawn.h>
int topo_setxattr(const char *path, const char *name, const void *value, size_t size);
ssize_t topo_getxattr(const char *path, const char *name, void *value, size_t size);
/// Moves the calling thread into the network namespace bound at `path` (setns CLONE_NEWNET). 0 or -1 with errno.
int topo_enter_netns(const char *path);
/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start (GNU, so Swift cannot import it).
int topo_pipe_cloexec(int fds[2]);
/// posix_spawn closes every descriptor from `from` up in the child (glibc 2.34's addclosefrom_np).
int topo_spawn_close_from(posix_spawn_file_actions_t *actions, int from);
/// The CPU the calling thread runs on (GNU sched_getcpu).
int topo_sched_getcpu(void);
/// Unblocks every signal and sets every disposition back to its default (an ignored SIGHUP survives exec otherwise).
int topo_reset_signals(void);
/// A new cgroup namespace rooted at the caller's cgroup (unshare CLONE_NEWCGROUP).
int topo_unshare_cgroup(void);
/// A private mount namespace, slave to the host's, so nothing mounted here propagates back.
int topo_private_mounts(void);
int topo_bind(const char *source, const char *target);
/// Binds `source` over `target` read-only (nosuid, nodev), recursively; the same path for both makes it read-only in place.
int topo_bind_read_only(const char *source, const char *target);
/// Makes the mount at `path` read-only in this mount namespace only.
int topo_remount_read_only(const char *path);
/// A read-only, nosuid, private copy of the whole mount tree at `source`, attached at `target`
/// (open_tree + mount_setattr + move_mount; Linux 5.12). 0 or -1 with errno.
int topo_attach_read_only_tree(const char *source, const char *target);
int topo_set_no_new_privs(void);
int topo_set_securebits(unsigned long bits);
int topo_ambient_clear_all(void);
/// The alias (IFLA_IFALIAS) of the loopback device in the network namespace bound at `netns_path`, read
/// over rtnetlink from a socket opened in that namespace by a short-lived thread: 1 and `alias` set,
/// 0 when it has none, -1 with errno.
int topo_netns_loopback_alias(const char *netns_path, char *alias, size_t size);

/// What one network namespace holds, read over rtnetlink by `topo_netns_read`: the caller gives the
/// arrays and their capacities; the counts say how many were filled.
struct topo_nl_link { int index; unsigned mtu; int up; char name[16]; char alias[256]; };
struct topo_nl_address { int index; unsigned char prefix; unsigned char address[4]; };
/// A root netem qdisc: times in ns, probabilities scaled to 2^32 - 1 as the kernel keeps them, the rate in bytes per second.
struct topo_nl_netem {
    int index; unsigned limit; unsigned long long latency_ns, jitter_ns, rate_bytes;
    unsigned loss, duplicate, reorder, corrupt;
};
struct topo_netns_state {
    struct topo_nl_link *links; int link_capacity, link_count;
    struct topo_nl_address *addresses; int address_capacity, address_count;
    struct topo_nl_netem *netems; int netem_capacity, netem_count;
};
/// Dumps the links (name, MTU, up, alias), IPv4 addresses and, when `qdiscs`, root netem qdiscs of the
/// namespace bound at `netns_path`, from a route socket opened there by a short-lived thread. 0, or -1
/// with errno (E2BIG when an array is too small).
int topo_netns_read(const char *netns_path, int qdiscs, struct topo_netns_state *state);
#endif
