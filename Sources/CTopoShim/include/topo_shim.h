#ifndef TOPO_SHIM_H
#define TOPO_SHIM_H
// C that Swift cannot import (GNU pipe2, <sys/xattr.h>, posix_spawn's closefrom), must not run (the
// launcher's child between clone and exec), or does better in C (rtnetlink messages over libmnl).
#include <stddef.h>
#include <sys/types.h>
#include <spawn.h>
int topo_setxattr(const char *path, const char *name, const void *value, size_t size);
ssize_t topo_getxattr(const char *path, const char *name, void *value, size_t size);
/// The filesystem type of `path` (statfs f_type), 0 when it cannot be read.
unsigned long topo_filesystem_type(const char *path);
/// sched_setaffinity(2) of task `pid`; 0, or -1 with errno.
int topo_set_affinity(int pid, const void *mask, size_t bytes);
/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start (GNU, so Swift cannot import it).
int topo_pipe_cloexec(int fds[2]);
/// posix_spawn closes every descriptor from `from` up in the child (glibc 2.34's addclosefrom_np).
int topo_spawn_close_from(posix_spawn_file_actions_t *actions, int from);
/// pidfd_open(2) (Linux 5.3): a descriptor for exactly this process, never for one that reuses its pid. -1 with errno.
int topo_pidfd_open(int pid);
/// pidfd_send_signal(2): async-signal-safe, and ESRCH once the process is gone. 0 or -1 with errno.
int topo_pidfd_send_signal(int pidfd, int sig);
/// The CPU the calling thread runs on (GNU sched_getcpu).
int topo_sched_getcpu(void);
/// Unblocks every signal and sets every disposition back to its default (an ignored SIGHUP survives exec otherwise).
int topo_reset_signals(void);
/// Binds `source` over `target` read-only (nosuid, nodev), recursively; the same path for both makes it read-only in place.
int topo_bind_read_only(const char *source, const char *target);
/// Makes the mount at `path` read-only in this mount namespace only.
int topo_remount_read_only(const char *path);
/// A read-only, nosuid, private copy of the whole mount tree at `source`, attached at `target`
/// (open_tree + mount_setattr + move_mount; Linux 5.12). 0 or -1 with errno.
int topo_attach_read_only_tree(const char *source, const char *target);
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
/// The same dumps on a route socket already open in the namespace (kept across `verify --watch` rounds).
int topo_netns_read_socket(int fd, int qdiscs, struct topo_netns_state *state);

/// A NETLINK_ROUTE socket made inside the namespace bound at `netns_path`, by a short-lived thread (a
/// socket belongs to the namespace it was made in); -1 with errno.
int topo_route_socket_in_netns(const char *netns_path);
/// A route socket in one network namespace, for the messages below (libmnl beneath).
struct topo_rtnl;
/// Opens a route socket in the namespace bound at `netns_path` (from a short-lived thread), or in the
/// caller's own when it is NULL. NULL with errno on failure.
struct topo_rtnl *topo_rtnl_open(const char *netns_path);
void topo_rtnl_close(struct topo_rtnl *r);
/// Each of these sends one request and waits for its acknowledgement: 0, or -1 with errno the kernel's
/// error and `message` its extended ack text (empty when it gave none).
/// RTM_NEWLINK on an existing link: up (when `up`), and its alias (when `alias` is not NULL).
int topo_rtnl_link_set(struct topo_rtnl *r, const char *name, int up, const char *alias, char *message, size_t size);
/// A veth pair made straight into two namespaces: `name` in the one bound at `netns_path`, `peer` in the other.
int topo_rtnl_veth_add(struct topo_rtnl *r, const char *name, const char *netns_path, const char *peer,
                       const char *peer_netns_path, unsigned mtu, char *message, size_t size);
/// An IPv4 address (network byte order) on a link.
int topo_rtnl_address_add(struct topo_rtnl *r, const char *name, const unsigned char address[4], int prefix, char *message, size_t size);
/// A netem root qdisc on a link (`index` of the spec unused); `distribution` the delay table (tc's .dist file), or none.
int topo_rtnl_netem_add(struct topo_rtnl *r, const char *name, const struct topo_nl_netem *spec,
                        const short *distribution, size_t distribution_count, char *message, size_t size);
/// A network namespace bound at `path` inside `directory` (made a shared mount, as iproute2 does), its
/// loopback up and aliased `alias` before it appears there. 0, or -1 with errno, `step` naming what
/// failed and `message` the kernel's extended ack text.
int topo_netns_create(const char *directory, const char *path, const char *alias, char *message, size_t size, const char **step);

/// A workload started by topo itself, between fork and exec: everything the child does is prepared
/// here by the parent (paths, descriptors, masks, ids), so the child only makes system calls.
struct topo_launch {
    /// The command's candidate paths (its PATH searched by the parent), tried in order; argv and envp for exec.
    const char *const *paths; int path_count;
    char *const *argv; char *const *envp;
    /// The workload cgroup's directory (clone3 CLONE_INTO_CGROUP), and its cgroup.procs for kernels without it.
    int cgroup_fd; const char *cgroup_procs;
    /// The network namespace to enter, or -1.
    int netns_fd;
    int new_session;
    /// Descriptors for stdin, and for stdout and stderr; -1 keeps the caller's.
    int stdin_fd, log_fd;
    /// `topo exec`'s streams, dup'ed onto 0, 1 and 2 after those (each -1: unchanged), and whether
    /// the first becomes the controlling terminal of the new session (a pty topo relays).
    int stdio[3]; int set_ctty;
    /// Confinement: the hosts file bound over /etc/hosts (or NULL); cgroup mounts to make read-only;
    /// the workload's cgroup directory bound read-only over the hierarchy's mount point (NULL: none);
    /// paths bound read-only in place.
    const char *hosts_file;
    const char *const *other_cgroup_mounts; int other_cgroup_mount_count;
    const char *cgroup_dir, *cgroup_mount;
    const char *const *read_only; int read_only_count;
    /// A root workload's view of the host's kernel interfaces: each path replaced in place by a
    /// read-only copy of its whole mount tree (`topo_attach_read_only_tree`); files masked by /dev/null
    /// and directories by an empty read-only tmpfs; a fresh tmpfs over `run_tmpfs` (NULL: none).
    const char *const *protect_read_only; int protect_read_only_count;
    const char *const *mask_files; int mask_file_count;
    const char *const *mask_dirs; int mask_dir_count;
    const char *run_tmpfs;
    /// sched_setaffinity's mask (0 bytes: unchanged); set_mempolicy's mode (-1: unchanged), node mask and
    /// its bit count, and whether to read the mode back.
    const unsigned long *cpu_mask; unsigned long cpu_mask_bytes;
    int policy_mode; const unsigned long *policy_nodes; unsigned long policy_max_node; int policy_check;
    const char *workdir;
    /// The user to become (when switch_user) with its groups; the capabilities kept (a bit per
    /// capability), the last one this kernel has, and the securebits of a workload that is not root.
    int switch_user; unsigned uid, gid; const unsigned *groups; unsigned long group_count;
    unsigned long long keep_caps; int cap_last; unsigned long securebits;
    /// The write end of the status pipe (close-on-exec): a `topo_launch_error` when a step fails.
    int status_fd;
};
enum topo_launch_step {
    TOPO_LAUNCH_SIGNALS = 1, TOPO_LAUNCH_CGROUP, TOPO_LAUNCH_SETSID, TOPO_LAUNCH_NETNS, TOPO_LAUNCH_STDIN, TOPO_LAUNCH_LOG,
    TOPO_LAUNCH_CGROUP_NS, TOPO_LAUNCH_MOUNT_NS, TOPO_LAUNCH_HOSTS, TOPO_LAUNCH_REMOUNT, TOPO_LAUNCH_OWN_CGROUP, TOPO_LAUNCH_READ_ONLY,
    TOPO_LAUNCH_AFFINITY, TOPO_LAUNCH_POLICY, TOPO_LAUNCH_POLICY_READ, TOPO_LAUNCH_POLICY_KEPT, TOPO_LAUNCH_CHDIR,
    TOPO_LAUNCH_BOUNDING, TOPO_LAUNCH_AMBIENT_CLEAR, TOPO_LAUNCH_KEEPCAPS, TOPO_LAUNCH_SETGROUPS, TOPO_LAUNCH_SETGID, TOPO_LAUNCH_SETUID,
    TOPO_LAUNCH_CAPSET, TOPO_LAUNCH_SECUREBITS, TOPO_LAUNCH_AMBIENT_RAISE, TOPO_LAUNCH_NO_NEW_PRIVS, TOPO_LAUNCH_EXEC,
    TOPO_LAUNCH_PROTECT, TOPO_LAUNCH_MASK_FILE, TOPO_LAUNCH_MASK_DIR, TOPO_LAUNCH_RUN_TMPFS, TOPO_LAUNCH_IDS,
    TOPO_LAUNCH_STDIO, TOPO_LAUNCH_CTTY,
};
/// A new pseudo-terminal pair: the master (close-on-exec, non-blocking) and the slave (close-on-exec,
/// not this process's controlling terminal), and the slave's path in `name`. 0, or -1 with errno.
int topo_open_pty(int *master, int *slave, char *name, size_t size);
/// Puts a terminal in raw mode, keeping its settings in `saved` (a `struct termios`, `size` bytes). 0 or -1.
int topo_terminal_raw(int fd, void *saved, size_t size);
/// Restores what `topo_terminal_raw` saved. 0 or -1.
int topo_terminal_restore(int fd, const void *saved, size_t size);
/// Copies the window size of terminal `from` to `to` (TIOCGWINSZ, TIOCSWINSZ). 0 or -1.
int topo_copy_window_size(int from, int to);
/// Whether `fd` refers to a terminal (isatty without touching errno's meaning for callers).
int topo_is_terminal(int fd);
/// What the child reports when a step fails: the step, errno, and an index (which mount, which
/// capability, or the memory policy mode the kernel kept). It exits 127 when the command is not
/// found, 126 otherwise.
struct topo_launch_error { int step, err, index; };
/// Starts the child; its pid, or -1 with errno when no child was made.
pid_t topo_launch_start(const struct topo_launch *launch);
#endif
