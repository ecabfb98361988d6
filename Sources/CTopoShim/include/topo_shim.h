#ifndef TOPO_SHIM_H
#define TOPO_SHIM_H
// Wrappers for the few C calls Swift cannot import: variadic prctl, GNU execvpe, <sys/xattr.h>.
int topo_capbset_drop(int cap);
int topo_set_keepcaps(int on);
int topo_ambient_raise(int cap);
int topo_execvpe(const char *file, char *const argv[], char *const envp[]);
#include <stddef.h>
#include <sys/types.h>
int topo_setxattr(const char *path, const char *name, const void *value, size_t size);
ssize_t topo_getxattr(const char *path, const char *name, void *value, size_t size);
#endif
