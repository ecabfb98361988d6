#define _GNU_SOURCE
#include <unistd.h>
#include <sys/xattr.h>
#include <sys/vfs.h>
#include <sched.h>
#include <fcntl.h>
#include <spawn.h>
#include "topo_shim.h"

int topo_spawn_close_from(posix_spawn_file_actions_t *actions, int from) { return posix_spawn_file_actions_addclosefrom_np(actions, from); }
int topo_setxattr(const char *path, const char *name, const void *value, size_t size) { return setxattr(path, name, value, size, 0); }
ssize_t topo_getxattr(const char *path, const char *name, void *value, size_t size) { return getxattr(path, name, value, size); }

int topo_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int topo_sched_getcpu(void) { return sched_getcpu(); }

/* The filesystem type of `path` (statfs f_type, e.g. CGROUP2_SUPER_MAGIC), or 0 when it cannot be read. */
unsigned long topo_filesystem_type(const char *path) {
    struct statfs fs;
    return statfs(path, &fs) == 0 ? (unsigned long)fs.f_type : 0;
}

/* sched_setaffinity(2) of another task with a mask of `bytes` bytes (a multiple of sizeof(long)). */
int topo_set_affinity(int pid, const void *mask, size_t bytes) { return sched_setaffinity(pid, bytes, (const cpu_set_t *)mask); }

#include <sys/syscall.h>
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
int topo_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int topo_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }
