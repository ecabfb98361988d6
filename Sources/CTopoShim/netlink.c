#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "topo_shim.h"

struct socket_in_netns { const char *path; int fd; int err; };

/* On a thread of its own: enter the namespace and open a route socket there (a socket belongs to the
 * namespace it was made in). The thread's namespace change ends with the thread. */
static void *open_route_socket(void *arg) {
    struct socket_in_netns *s = arg;
    int ns = open(s->path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) { s->err = errno; return NULL; }
    if (setns(ns, CLONE_NEWNET) != 0) { s->err = errno; close(ns); return NULL; }
    close(ns);
    s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s->fd < 0) s->err = errno;
    return NULL;
}

int topo_netns_loopback_alias(const char *netns_path, char *alias, size_t size) {
    struct socket_in_netns s = { netns_path, -1, 0 };
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, open_route_socket, &s);
    if (rc != 0) { errno = rc; return -1; }
    pthread_join(thread, NULL);
    if (s.fd < 0) { errno = s.err; return -1; }
    // RTM_GETLINK for ifindex 1: the loopback device, the first one every namespace gets.
    struct { struct nlmsghdr h; struct ifinfomsg i; } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = RTM_GETLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.h.nlmsg_seq = 1;
    req.i.ifi_family = AF_UNSPEC;
    req.i.ifi_index = 1;
    if (send(s.fd, &req, sizeof req, 0) < 0) { int e = errno; close(s.fd); errno = e; return -1; }
    char buf[16384];
    ssize_t n;
    do { n = recv(s.fd, buf, sizeof buf, 0); } while (n < 0 && errno == EINTR);
    int e = errno;
    close(s.fd);
    if (n < 0) { errno = e; return -1; }
    alias[0] = 0;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr *err = NLMSG_DATA(h);
            errno = -err->error;
            return -1;
        }
        if (h->nlmsg_type != RTM_NEWLINK) continue;
        struct ifinfomsg *i = NLMSG_DATA(h);
        int len = IFLA_PAYLOAD(h);
        for (struct rtattr *a = IFLA_RTA(i); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type != IFLA_IFALIAS) continue;
            size_t l = RTA_PAYLOAD(a);
            if (l >= size) l = size - 1;
            memcpy(alias, RTA_DATA(a), l);
            alias[l] = 0;
            return 1;
        }
        return 0;  // no alias
    }
    errno = EPROTO;
    return -1;
}
