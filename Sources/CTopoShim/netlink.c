#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
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

int topo_route_socket_in_netns(const char *netns_path) {
    struct socket_in_netns s = { netns_path, -1, 0 };
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, open_route_socket, &s);
    if (rc != 0) { errno = rc; return -1; }
    pthread_join(thread, NULL);
    if (s.fd < 0) errno = s.err;
    return s.fd;
}

int topo_netns_loopback_alias(const char *netns_path, char *alias, size_t size) {
    struct socket_in_netns s = { netns_path, topo_route_socket_in_netns(netns_path), 0 };
    if (s.fd < 0) return -1;
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

/* One dump request (NLM_F_DUMP) on `fd`; `handle` is called with each reply message until NLMSG_DONE.
 * 0, or -1 with errno (a NLMSG_ERROR reply sets it to the kernel's error). */
static int dump(int fd, int type, unsigned char family, int (*handle)(struct nlmsghdr *, void *), void *ctx) {
    struct { struct nlmsghdr h; union { struct ifinfomsg i; struct ifaddrmsg a; struct tcmsg t; } body; } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = type;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = (unsigned)type;
    req.body.i.ifi_family = family;  /* the family is the first byte of all three bodies */
    if (send(fd, &req, sizeof req, 0) < 0) return -1;
    /* 8 KiB, as libmnl's MNL_SOCKET_BUFFER_SIZE: the kernel sizes each dump skb by the largest
     * buffer a socket has read with (netlink_dump), and a larger one costs pages cleared per reply. */
    static __thread char buf[8192];
    for (;;) {
        ssize_t n;
        do { n = recv(fd, buf, sizeof buf, 0); } while (n < 0 && errno == EINTR);
        if (n < 0) return -1;
        if (n == 0) { errno = EPROTO; return -1; }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != req.h.nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_DONE) return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *err = NLMSG_DATA(h);
                if (err->error == 0) continue;
                errno = -err->error;
                return -1;
            }
            if (handle(h, ctx) != 0) return -1;
        }
    }
}

static int full(int count, int capacity) {
    if (count < capacity) return 0;
    errno = E2BIG;
    return 1;
}

static int on_link(struct nlmsghdr *h, void *ctx) {
    struct topo_netns_state *s = ctx;
    if (h->nlmsg_type != RTM_NEWLINK) return 0;
    if (full(s->link_count, s->link_capacity)) return -1;
    struct ifinfomsg *i = NLMSG_DATA(h);
    struct topo_nl_link *l = &s->links[s->link_count++];
    memset(l, 0, sizeof *l);
    l->index = i->ifi_index;
    l->up = (i->ifi_flags & IFF_UP) != 0;
    int len = IFLA_PAYLOAD(h);
    for (struct rtattr *a = IFLA_RTA(i); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        size_t n = RTA_PAYLOAD(a);
        switch (a->rta_type) {
        case IFLA_IFNAME:
            if (n >= sizeof l->name) n = sizeof l->name - 1;
            memcpy(l->name, RTA_DATA(a), n);
            l->name[n] = 0;
            break;
        case IFLA_IFALIAS:
            if (n >= sizeof l->alias) n = sizeof l->alias - 1;
            memcpy(l->alias, RTA_DATA(a), n);
            l->alias[n] = 0;
            break;
        case IFLA_MTU:
            if (n >= 4) memcpy(&l->mtu, RTA_DATA(a), 4);
            break;
        }
    }
    return 0;
}

static int on_address(struct nlmsghdr *h, void *ctx) {
    struct topo_netns_state *s = ctx;
    if (h->nlmsg_type != RTM_NEWADDR) return 0;
    struct ifaddrmsg *m = NLMSG_DATA(h);
    if (m->ifa_family != AF_INET) return 0;
    if (full(s->address_count, s->address_capacity)) return -1;
    struct topo_nl_address *out = &s->addresses[s->address_count];
    memset(out, 0, sizeof *out);
    out->index = (int)m->ifa_index;
    out->prefix = m->ifa_prefixlen;
    int len = IFA_PAYLOAD(h), found = 0;
    for (struct rtattr *a = IFA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        /* IFA_LOCAL is the interface's own address; IFA_ADDRESS is the same except on point-to-point links. */
        if ((a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && !found)) && RTA_PAYLOAD(a) == 4) {
            memcpy(out->address, RTA_DATA(a), 4);
            found = 1;
        }
    }
    if (found) s->address_count++;
    return 0;
}

/* netem's TCA_OPTIONS: a struct tc_netem_qopt, then attributes after it (netem_dump, tc's parse_rtattr_nested_compat). */
static int on_qdisc(struct nlmsghdr *h, void *ctx) {
    struct topo_netns_state *s = ctx;
    if (h->nlmsg_type != RTM_NEWQDISC) return 0;
    struct tcmsg *t = NLMSG_DATA(h);
    if (t->tcm_parent != TC_H_ROOT) return 0;
    int len = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof *t);
    struct rtattr *options = NULL;
    int netem = 0;
    for (struct rtattr *a = (struct rtattr *)((char *)t + NLMSG_ALIGN(sizeof *t)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == TCA_KIND) netem = RTA_PAYLOAD(a) >= 6 && memcmp(RTA_DATA(a), "netem", 6) == 0;
        if (a->rta_type == TCA_OPTIONS) options = a;
    }
    if (!netem || !options || RTA_PAYLOAD(options) < sizeof(struct tc_netem_qopt)) return 0;
    if (full(s->netem_count, s->netem_capacity)) return -1;
    struct topo_nl_netem *n = &s->netems[s->netem_count++];
    memset(n, 0, sizeof *n);
    n->index = t->tcm_ifindex;
    struct tc_netem_qopt q;
    memcpy(&q, RTA_DATA(options), sizeof q);
    n->limit = q.limit;
    n->loss = q.loss;
    n->duplicate = q.duplicate;
    /* The fixed struct holds times in psched ticks of 64 ns; LATENCY64 and JITTER64, when present, in ns. */
    n->latency_ns = (unsigned long long)q.latency << 6;
    n->jitter_ns = (unsigned long long)q.jitter << 6;
    int rest = (int)RTA_PAYLOAD(options) - RTA_ALIGN(sizeof q);
    for (struct rtattr *a = (struct rtattr *)((char *)RTA_DATA(options) + RTA_ALIGN(sizeof q)); rest > 0 && RTA_OK(a, rest); a = RTA_NEXT(a, rest)) {
        size_t p = RTA_PAYLOAD(a);
        switch (a->rta_type) {
        case TCA_NETEM_LATENCY64: if (p == 8) { long long v; memcpy(&v, RTA_DATA(a), 8); n->latency_ns = v < 0 ? 0 : (unsigned long long)v; } break;
        case TCA_NETEM_JITTER64: if (p == 8) { long long v; memcpy(&v, RTA_DATA(a), 8); n->jitter_ns = v < 0 ? 0 : (unsigned long long)v; } break;
        case TCA_NETEM_REORDER: if (p >= sizeof(struct tc_netem_reorder)) n->reorder = ((struct tc_netem_reorder *)RTA_DATA(a))->probability; break;
        case TCA_NETEM_CORRUPT: if (p >= sizeof(struct tc_netem_corrupt)) n->corrupt = ((struct tc_netem_corrupt *)RTA_DATA(a))->probability; break;
        case TCA_NETEM_RATE: if (p >= sizeof(struct tc_netem_rate) && n->rate_bytes == 0) n->rate_bytes = ((struct tc_netem_rate *)RTA_DATA(a))->rate; break;
        case TCA_NETEM_RATE64: if (p == 8) memcpy(&n->rate_bytes, RTA_DATA(a), 8); break;
        }
    }
    return 0;
}

int topo_netns_read_socket(int fd, int qdiscs, struct topo_netns_state *state) {
    state->link_count = state->address_count = state->netem_count = 0;
    int r = dump(fd, RTM_GETLINK, AF_UNSPEC, on_link, state);
    if (r == 0) r = dump(fd, RTM_GETADDR, AF_INET, on_address, state);
    if (r == 0 && qdiscs) r = dump(fd, RTM_GETQDISC, AF_UNSPEC, on_qdisc, state);
    return r;
}

int topo_netns_read(const char *netns_path, int qdiscs, struct topo_netns_state *state) {
    int fd = topo_route_socket_in_netns(netns_path);
    if (fd < 0) return -1;
    int r = topo_netns_read_socket(fd, qdiscs, state);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}
