#ifndef TOPO_SHIM_H
#define TOPO_SHIM_H
// Wrappers for the few C calls Swift cannot import: variadic prctl, GNU execvpe and pipe2, <sys/xattr.h>.
int topo_capbset_drop(int cap);
int topo_set_keepcaps(int on);
int topo_ambient_raise(int cap);
int topo_execvpe(const char *file, char *const argv[], char *const envp[]);
#include <stddef.h>
#include <sys/types.h>
int topo_setxattr(const char *path, const char *name, const void *value, size_t size);
ssize_t topo_getxattr(const char *path, const char *name, void *value, size_t size);
/// Moves the calling thread into the network namespace bound at `path` (setns CLONE_NEWNET). 0 or -1 with errno.
int topo_enter_netns(const char *path);
/// Gives the process a private mount namespace (slave to the host's) and bind-mounts `hosts` over /etc/hosts.
int topo_private_hosts(const char *hosts);
/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start (GNU, so Swift cannot import it).
int topo_pipe_cloexec(int fds[2]);
#endif
