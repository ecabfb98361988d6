#define _GNU_SOURCE
#include <sys/prctl.h>
#include <unistd.h>
#include <sys/xattr.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <spawn.h>
#include "topo_shim.h"

int topo_capbset_drop(int cap) { return prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0); }
int topo_set_keepcaps(int on) { return prctl(PR_SET_KEEPCAPS, (unsigned long)on, 0, 0, 0); }
int topo_ambient_raise(int cap) { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)cap, 0, 0); }
int topo_spawn_close_from(posix_spawn_file_actions_t *actions, int from) { return posix_spawn_file_actions_addclosefrom_np(actions, from); }
int topo_execvpe(const char *file, char *const argv[], char *const envp[]) { return execvpe(file, argv, envp); }
int topo_setxattr(const char *path, const char *name, const void *value, size_t size) { return setxattr(path, name, value, size, 0); }
ssize_t topo_getxattr(const char *path, const char *name, void *value, size_t size) { return getxattr(path, name, value, size); }

int topo_enter_netns(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = setns(fd, CLONE_NEWNET);
    close(fd);
    return r;
}


int topo_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int topo_sched_getcpu(void) { return sched_getcpu(); }
