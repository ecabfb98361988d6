#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "topo_shim.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* The child between clone and exec: only system calls, on values the parent prepared. It runs on a
 * copy of a multi-threaded process with one thread, after a raw clone3 that ran none of glibc's fork
 * handlers, so it calls no allocator, no stdio and no glibc wrapper that acts on every thread (setuid,
 * setgroups: their raw system calls act on the caller alone, which here is the whole process). A
 * failure is a fixed-size record on the status pipe, named by step, errno and an index; the parent
 * turns it into words. */

static void report(const struct topo_launch *l, int step, int err, int index) {
    struct topo_launch_error e = { step, err, index };
    ssize_t n;
    do { n = write(l->status_fd, &e, sizeof e); } while (n < 0 && errno == EINTR);
}

__attribute__((noreturn)) static void fail(const struct topo_launch *l, int step, int index) {
    int err = errno;
    report(l, step, err, index);
    _exit(step == TOPO_LAUNCH_EXEC && err == ENOENT ? 127 : 126);
}

static int capset_sets(unsigned long long effective, unsigned long long permitted, unsigned long long inheritable) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    d[0].effective = (unsigned)effective; d[1].effective = (unsigned)(effective >> 32);
    d[0].permitted = (unsigned)permitted; d[1].permitted = (unsigned)(permitted >> 32);
    d[0].inheritable = (unsigned)inheritable; d[1].inheritable = (unsigned)(inheritable >> 32);
    return (int)syscall(SYS_capset, &h, d);
}

static unsigned long long permitted_now(void) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) != 0) return 0;
    return (unsigned long long)d[0].permitted | (unsigned long long)d[1].permitted << 32;
}

__attribute__((noreturn)) static void child(const struct topo_launch *l, int joined) {
    if (topo_reset_signals() != 0) fail(l, TOPO_LAUNCH_SIGNALS, 0);
    if (!joined) {
        int fd = open(l->cgroup_procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) fail(l, TOPO_LAUNCH_CGROUP, 0);
        close(fd);
    }
    if (l->new_session && setsid() < 0) fail(l, TOPO_LAUNCH_SETSID, 0);
    if (l->netns_fd >= 0 && setns(l->netns_fd, CLONE_NEWNET) != 0) fail(l, TOPO_LAUNCH_NETNS, 0);
    if (l->stdin_fd >= 0 && dup2(l->stdin_fd, 0) < 0) fail(l, TOPO_LAUNCH_STDIN, 0);
    if (l->log_fd >= 0 && (dup2(l->log_fd, 1) < 0 || dup2(l->log_fd, 2) < 0)) fail(l, TOPO_LAUNCH_LOG, 0);
    for (int i = 0; i < 3; i++)
        if (l->stdio[i] >= 0 && dup2(l->stdio[i], i) < 0) fail(l, TOPO_LAUNCH_STDIO, i);
    if (l->set_ctty && ioctl(0, TIOCSCTTY, 0) != 0) fail(l, TOPO_LAUNCH_CTTY, 0);

    /* Confinement: a cgroup namespace rooted at the workload's cgroup, a private mount namespace (a
     * slave of the host's), the hosts file, every other cgroup mount read-only, the workload's own
     * cgroup read-only over the hierarchy's mount point, topo's files read-only. */
    if (unshare(CLONE_NEWCGROUP) != 0) fail(l, TOPO_LAUNCH_CGROUP_NS, 0);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) fail(l, TOPO_LAUNCH_MOUNT_NS, 0);
    if (l->hosts_file && topo_bind_read_only(l->hosts_file, "/etc/hosts") != 0) fail(l, TOPO_LAUNCH_HOSTS, 0);
    for (int i = 0; i < l->other_cgroup_mount_count; i++)
        if (topo_remount_read_only(l->other_cgroup_mounts[i]) != 0) fail(l, TOPO_LAUNCH_REMOUNT, i);
    if (l->cgroup_mount && topo_bind_read_only(l->cgroup_dir, l->cgroup_mount) != 0) fail(l, TOPO_LAUNCH_OWN_CGROUP, 0);
    for (int i = 0; i < l->read_only_count; i++)
        if (topo_bind_read_only(l->read_only[i], l->read_only[i]) != 0) fail(l, TOPO_LAUNCH_READ_ONLY, i);
    /* A root workload: the host's kernel interfaces out of its reach (what uid 0 owns there without
     * any capability: sysctls, sysrq, sysfs tunables), and the host's /run (root-only sockets). */
    for (int i = 0; i < l->protect_read_only_count; i++)
        if (topo_attach_read_only_tree(l->protect_read_only[i], l->protect_read_only[i]) != 0) fail(l, TOPO_LAUNCH_PROTECT, i);
    for (int i = 0; i < l->mask_file_count; i++)
        if (mount("/dev/null", l->mask_files[i], NULL, MS_BIND, NULL) != 0) fail(l, TOPO_LAUNCH_MASK_FILE, i);
    for (int i = 0; i < l->mask_dir_count; i++)
        if (mount("tmpfs", l->mask_dirs[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555") != 0) fail(l, TOPO_LAUNCH_MASK_DIR, i);
    if (l->run_tmpfs && mount("tmpfs", l->run_tmpfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=65536k") != 0) fail(l, TOPO_LAUNCH_RUN_TMPFS, 0);

    if (l->cpu_mask_bytes && sched_setaffinity(0, l->cpu_mask_bytes, (const cpu_set_t *)l->cpu_mask) != 0) fail(l, TOPO_LAUNCH_AFFINITY, 0);
    if (l->policy_mode >= 0) {
        if (syscall(SYS_set_mempolicy, l->policy_mode, l->policy_nodes, l->policy_max_node) != 0) fail(l, TOPO_LAUNCH_POLICY, 0);
    }
    if (l->policy_mode >= 0 && l->policy_check) {
        int mode = -1;
        if (syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0) != 0) fail(l, TOPO_LAUNCH_POLICY_READ, 0);
        if ((mode & 0xff) != l->policy_mode) { errno = 0; report(l, TOPO_LAUNCH_POLICY_KEPT, 0, mode & 0xff); _exit(126); }
    }
    if (chdir(l->workdir) != 0) fail(l, TOPO_LAUNCH_CHDIR, 0);

    /* Exactly the capabilities kept, in all five sets (see Launcher.swift for why each). */
    for (int cap = 0; cap <= l->cap_last; cap++)
        if (!(l->keep_caps >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) fail(l, TOPO_LAUNCH_BOUNDING, cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) fail(l, TOPO_LAUNCH_AMBIENT_CLEAR, 0);
    if (l->switch_user) {
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail(l, TOPO_LAUNCH_KEEPCAPS, 0);
        if (syscall(SYS_setgroups, l->group_count, l->groups) != 0) fail(l, TOPO_LAUNCH_SETGROUPS, 0);
        if (syscall(SYS_setresgid, l->gid, l->gid, l->gid) != 0) fail(l, TOPO_LAUNCH_SETGID, 0);
        if (syscall(SYS_setresuid, l->uid, l->uid, l->uid) != 0) fail(l, TOPO_LAUNCH_SETUID, 0);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) fail(l, TOPO_LAUNCH_KEEPCAPS, 0);
        /* Read back: every id is the plan's (an id of -1 would have meant "unchanged" to the kernel). */
        unsigned r = ~0U, e = ~0U, sv = ~0U;
        if (syscall(SYS_getresuid, &r, &e, &sv) != 0 || r != l->uid || e != l->uid || sv != l->uid) { errno = 0; report(l, TOPO_LAUNCH_IDS, 0, 0); _exit(126); }
        if (syscall(SYS_getresgid, &r, &e, &sv) != 0 || r != l->gid || e != l->gid || sv != l->gid) { errno = 0; report(l, TOPO_LAUNCH_IDS, 0, 1); _exit(126); }
        unsigned held[1024];
        long n = syscall(SYS_getgroups, 1024, held);
        int same = n == (long)l->group_count;
        for (long i = 0; same && i < n; i++) {
            int found = 0;
            for (unsigned long j = 0; j < l->group_count; j++) found |= held[i] == l->groups[j];
            same = found;
        }
        if (!same) { errno = 0; report(l, TOPO_LAUNCH_IDS, 0, 2); _exit(126); }
    }
    int root = !l->switch_user || l->uid == 0;
    if (!root) {
        if (capset_sets(1ULL << CAP_SETPCAP, permitted_now(), l->keep_caps) != 0) fail(l, TOPO_LAUNCH_CAPSET, 0);
        if (prctl(PR_SET_SECUREBITS, l->securebits, 0, 0, 0) != 0) fail(l, TOPO_LAUNCH_SECUREBITS, 0);
    }
    if (capset_sets(l->keep_caps, l->keep_caps, l->keep_caps) != 0) fail(l, TOPO_LAUNCH_CAPSET, 0);
    if (!root)
        for (int cap = 0; cap <= l->cap_last; cap++)
            if ((l->keep_caps >> cap & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) fail(l, TOPO_LAUNCH_AMBIENT_RAISE, cap);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(l, TOPO_LAUNCH_NO_NEW_PRIVS, 0);

    /* Nothing but stdin, stdout and stderr reaches the command (the status pipe closes on exec). */
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 65536; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    /* The command's path, searched along the workload's PATH by the parent: each candidate in turn,
     * as execvpe does (a candidate that exists but cannot run is the error to report). */
    int err = ENOENT, seen_access = 0;
    for (int i = 0; i < l->path_count; i++) {
        execve(l->paths[i], l->argv, l->envp);
        if (errno == EACCES) seen_access = 1;
        else if (errno != ENOENT && errno != ENOTDIR) { err = errno; break; }
    }
    errno = seen_access && err == ENOENT ? EACCES : err;
    fail(l, TOPO_LAUNCH_EXEC, 0);
}

pid_t topo_launch_start(const struct topo_launch *l) {
    /* clone3 with CLONE_INTO_CGROUP (Linux 5.7): the child starts in the workload's cgroup. */
    if (l->cgroup_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = (unsigned long long)l->cgroup_fd;
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) child(l, 1);
        if (pid > 0) return (pid_t)pid;
        if (errno != ENOSYS && errno != E2BIG && errno != EINVAL) return -1;
    }
    /* Older kernels: fork, and the child writes itself into cgroup.procs. */
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) child(l, 0);
    return (pid_t)pid;
}
