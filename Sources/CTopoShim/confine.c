#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include "topo_shim.h"

int topo_reset_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) return -1;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
#if defined(__x86_64__)
        // The raw system call: glibc's sigaction refuses the signals it keeps for itself (32, 33) with
        // EINVAL, and an ignored disposition of those survives exec like any other.
        struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } dfl = { SIG_DFL, 0, NULL, 0 };
        if (syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask) != 0 && errno != EINVAL) return -1;
#else
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        if (sigaction(sig, &dfl, NULL) != 0 && errno != EINVAL) return -1;
#endif
    }
    return 0;
}

int topo_bind_read_only(const char *source, const char *target) {
    if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) != 0) return -1;
    // A bind remount changes this mount's flags only, never the filesystem's (cgroup2 has one
    // superblock for the whole host).
    return mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

int topo_remount_read_only(const char *path) {
    return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}


/* A read-only copy of the whole mount tree at `source` attached at `target`: open_tree clones it
 * detached, mount_setattr makes every mount in it read-only, nosuid and private (nothing done under
 * `target` reaches the source's mounts, and the host's later mounts stay out), move_mount attaches it.
 * Unlike a recursive bind followed by a remount, no submount stays writable. */
int topo_attach_read_only_tree(const char *source, const char *target) {
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) return -1;
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
    attr.propagation = MS_PRIVATE;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0 ||
        syscall(SYS_move_mount, fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

int topo_open_pty(int *master, int *slave, char *name, size_t size) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, size) != 0) { int e = errno; close(m); errno = e; return -1; }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) { int e = errno; close(m); errno = e; return -1; }
    int flags = fcntl(m, F_GETFL);
    if (flags < 0 || fcntl(m, F_SETFL, flags | O_NONBLOCK) != 0) { int e = errno; close(m); close(s); errno = e; return -1; }
    *master = m;
    *slave = s;
    return 0;
}

int topo_terminal_raw(int fd, void *saved, size_t size) {
    if (size < sizeof(struct termios)) { errno = EINVAL; return -1; }
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    memcpy(saved, &t, sizeof t);
    cfmakeraw(&t);
    return tcsetattr(fd, TCSANOW, &t);
}

int topo_terminal_restore(int fd, const void *saved, size_t size) {
    if (size < sizeof(struct termios)) { errno = EINVAL; return -1; }
    return tcsetattr(fd, TCSANOW, (const struct termios *)saved);
}

int topo_copy_window_size(int from, int to) {
    struct winsize w;
    if (ioctl(from, TIOCGWINSZ, &w) != 0) return -1;
    return ioctl(to, TIOCSWINSZ, &w);
}

int topo_is_terminal(int fd) {
    int e = errno;
    int r = isatty(fd);
    errno = e;
    return r;
}
