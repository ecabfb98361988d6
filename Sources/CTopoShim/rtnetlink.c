#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "topo_shim.h"

/* Messages that make links, addresses and qdiscs, built with libmnl and sent one at a time with
 * NLM_F_ACK: each answer is the kernel's error code and, with NETLINK_EXT_ACK, its own words. */

struct topo_rtnl { struct mnl_socket *nl; unsigned seq; };

/* A route socket on `fd` (one of the caller's namespace when it is -1), with the kernel's message on
 * each error and only the request's header echoed back. */
static struct topo_rtnl *rtnl_open(int fd) {
    struct mnl_socket *nl = fd < 0 ? mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC) : mnl_socket_fdopen(fd);
    if (!nl) { int e = errno; if (fd >= 0) close(fd); errno = e; return NULL; }
    int on = 1;
    mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &on, sizeof on);
    mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &on, sizeof on);
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { int e = errno; mnl_socket_close(nl); errno = e; return NULL; }
    struct topo_rtnl *r = calloc(1, sizeof *r);
    if (!r) { mnl_socket_close(nl); errno = ENOMEM; return NULL; }
    r->nl = nl;
    r->seq = (unsigned)time(NULL);
    return r;
}

struct topo_rtnl *topo_rtnl_open(const char *netns_path) {
    if (!netns_path) return rtnl_open(-1);
    int fd = topo_route_socket_in_netns(netns_path);
    return fd < 0 ? NULL : rtnl_open(fd);
}

void topo_rtnl_close(struct topo_rtnl *r) {
    if (!r) return;
    mnl_socket_close(r->nl);
    free(r);
}

static int on_ack_attr(const struct nlattr *a, void *data) {
    if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
        *(const char **)data = mnl_attr_get_str(a);
    return MNL_CB_OK;
}

/* Sends one request and reads its acknowledgement: 0, or -1 with errno the kernel's error and
 * `message` its extended ack text (empty when it gave none). */
static int transact(struct topo_rtnl *r, struct nlmsghdr *h, char *message, size_t size) {
    if (size) message[0] = 0;
    h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_seq = ++r->seq;
    if (mnl_socket_sendto(r->nl, h, h->nlmsg_len) < 0) return -1;
    char buf[8192];
    for (;;) {
        ssize_t got = mnl_socket_recvfrom(r->nl, buf, sizeof buf);
        if (got < 0) { if (errno == EINTR) continue; return -1; }
        int n = (int)got;
        for (struct nlmsghdr *a = (struct nlmsghdr *)buf; mnl_nlmsg_ok(a, n); a = mnl_nlmsg_next(a, &n)) {
            if (a->nlmsg_seq != r->seq || a->nlmsg_type != NLMSG_ERROR) continue;
            struct nlmsgerr *err = mnl_nlmsg_get_payload(a);
            if (err->error == 0) return 0;
            if ((a->nlmsg_flags & NLM_F_ACK_TLVS) && size) {
                /* With NETLINK_CAP_ACK the error echoes only the request's header; the attributes follow. */
                size_t offset = sizeof *err;
                if (!(a->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof err->msg;
                const char *text = NULL;
                mnl_attr_parse(a, (unsigned)offset, on_ack_attr, &text);
                if (text) { strncpy(message, text, size - 1); message[size - 1] = 0; }
            }
            errno = -err->error;
            return -1;
        }
    }
}

/* The index of `name` in the socket's namespace: SIOCGIFINDEX reaches the device table of the
 * namespace any socket belongs to. */
static int ifindex(struct topo_rtnl *r, const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    strcpy(ifr.ifr_name, name);
    if (ioctl(mnl_socket_get_fd(r->nl), SIOCGIFINDEX, &ifr) < 0) return -1;
    return ifr.ifr_ifindex;
}

int topo_rtnl_link_set(struct topo_rtnl *r, const char *name, int up, const char *alias, char *message, size_t size) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWLINK;
    struct ifinfomsg *i = mnl_nlmsg_put_extra_header(h, sizeof *i);
    i->ifi_family = AF_UNSPEC;
    if (up) { i->ifi_flags = IFF_UP; i->ifi_change = IFF_UP; }
    mnl_attr_put_strz(h, IFLA_IFNAME, name);
    if (alias) mnl_attr_put_strz(h, IFLA_IFALIAS, alias);
    return transact(r, h, message, size);
}

int topo_rtnl_veth_add(struct topo_rtnl *r, const char *name, const char *netns_path, const char *peer,
                       const char *peer_netns_path, unsigned mtu, char *message, size_t size) {
    int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int peer_fd = open(peer_netns_path, O_RDONLY | O_CLOEXEC);
    if (peer_fd < 0) { int e = errno; close(fd); errno = e; return -1; }
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWLINK;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifinfomsg *i = mnl_nlmsg_put_extra_header(h, sizeof *i);
    i->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(h, IFLA_IFNAME, name);
    mnl_attr_put_u32(h, IFLA_NET_NS_FD, (unsigned)fd);
    mnl_attr_put_u32(h, IFLA_MTU, mtu);
    struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
    mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
    /* The peer: an ifinfomsg, then its own attributes (veth_newlink reads it so). */
    struct nlattr *p = mnl_attr_nest_start(h, VETH_INFO_PEER);
    struct ifinfomsg *pi = mnl_nlmsg_get_payload_tail(h);
    memset(pi, 0, sizeof *pi);
    pi->ifi_family = AF_UNSPEC;
    h->nlmsg_len += MNL_ALIGN(sizeof *pi);
    mnl_attr_put_strz(h, IFLA_IFNAME, peer);
    mnl_attr_put_u32(h, IFLA_NET_NS_FD, (unsigned)peer_fd);
    mnl_attr_put_u32(h, IFLA_MTU, mtu);
    mnl_attr_nest_end(h, p);
    mnl_attr_nest_end(h, data);
    mnl_attr_nest_end(h, info);
    int rc = transact(r, h, message, size);
    int e = errno;
    close(fd);
    close(peer_fd);
    errno = e;
    return rc;
}

int topo_rtnl_address_add(struct topo_rtnl *r, const char *name, const unsigned char address[4], int prefix, char *message, size_t size) {
    int index = ifindex(r, name);
    if (index < 0) return -1;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWADDR;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifaddrmsg *a = mnl_nlmsg_put_extra_header(h, sizeof *a);
    a->ifa_family = AF_INET;
    a->ifa_prefixlen = (unsigned char)prefix;
    a->ifa_scope = RT_SCOPE_UNIVERSE;
    a->ifa_index = (unsigned)index;
    /* As `ip addr add`: the local address, and the same as the peer's on a link that is not point-to-point. */
    mnl_attr_put(h, IFA_LOCAL, 4, address);
    mnl_attr_put(h, IFA_ADDRESS, 4, address);
    return transact(r, h, message, size);
}

int topo_rtnl_netem_add(struct topo_rtnl *r, const char *name, const struct topo_nl_netem *n,
                        const short *distribution, size_t distribution_count, char *message, size_t size) {
    int index = ifindex(r, name);
    if (index < 0) return -1;
    size_t room = MNL_SOCKET_BUFFER_SIZE + distribution_count * sizeof(short);
    char *buf = calloc(1, room);
    if (!buf) { errno = ENOMEM; return -1; }
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = RTM_NEWQDISC;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct tcmsg *t = mnl_nlmsg_put_extra_header(h, sizeof *t);
    t->tcm_family = AF_UNSPEC;
    t->tcm_ifindex = index;
    t->tcm_parent = TC_H_ROOT;
    mnl_attr_put_strz(h, TCA_KIND, "netem");
    /* TCA_OPTIONS is a struct tc_netem_qopt followed by attributes, not a plain nest (netem_change's
     * parse_attr): the struct's times are psched ticks of 64 ns, LATENCY64 and JITTER64 override them
     * in nanoseconds. */
    struct nlattr *options = mnl_attr_nest_start(h, TCA_OPTIONS);
    options->nla_type = TCA_OPTIONS;  /* no NLA_F_NESTED: the kernel parses it as netem's compat layout */
    struct tc_netem_qopt *q = mnl_nlmsg_get_payload_tail(h);
    memset(q, 0, sizeof *q);
    q->limit = n->limit;
    q->latency = n->latency_ns >> 6 > 0xffffffffULL ? 0xffffffffU : (unsigned)(n->latency_ns >> 6);
    q->jitter = n->jitter_ns >> 6 > 0xffffffffULL ? 0xffffffffU : (unsigned)(n->jitter_ns >> 6);
    q->loss = n->loss;
    q->duplicate = n->duplicate;
    q->gap = n->reorder ? 1 : 0;  /* as tc: reordering needs a gap; the probability comes below */
    h->nlmsg_len += MNL_ALIGN(sizeof *q);
    mnl_attr_put_u64(h, TCA_NETEM_LATENCY64, n->latency_ns);
    mnl_attr_put_u64(h, TCA_NETEM_JITTER64, n->jitter_ns);
    if (n->reorder) {
        struct tc_netem_reorder reorder = { n->reorder, 0 };
        mnl_attr_put(h, TCA_NETEM_REORDER, sizeof reorder, &reorder);
    }
    if (n->corrupt) {
        struct tc_netem_corrupt corrupt = { n->corrupt, 0 };
        mnl_attr_put(h, TCA_NETEM_CORRUPT, sizeof corrupt, &corrupt);
    }
    if (n->rate_bytes) {
        struct tc_netem_rate rate = { n->rate_bytes >= 0xffffffffULL ? 0xffffffffU : (unsigned)n->rate_bytes, 0, 0, 0 };
        mnl_attr_put(h, TCA_NETEM_RATE, sizeof rate, &rate);
        if (n->rate_bytes >= 0xffffffffULL) mnl_attr_put_u64(h, TCA_NETEM_RATE64, n->rate_bytes);
    }
    if (distribution_count) mnl_attr_put(h, TCA_NETEM_DELAY_DIST, distribution_count * sizeof(short), distribution);
    mnl_attr_nest_end(h, options);
    int rc = transact(r, h, message, size);
    int e = errno;
    free(buf);
    errno = e;
    return rc;
}

struct create_netns { const char *path, *alias; int err; char *message; size_t size; const char *step; };

/* On a thread of its own: a new network namespace, its loopback marked and up, then bound at the
 * path, so that it appears under /run/netns already marked. */
static void *create_netns(void *arg) {
    struct create_netns *c = arg;
    if (unshare(CLONE_NEWNET) != 0) { c->err = errno; c->step = "unshare(CLONE_NEWNET)"; return NULL; }
    struct topo_rtnl *r = rtnl_open(-1);
    if (!r) { c->err = errno; c->step = "open a route socket"; return NULL; }
    int rc = topo_rtnl_link_set(r, "lo", 1, c->alias, c->message, c->size);
    if (rc != 0) { c->err = errno; c->step = "set lo's alias and up (RTM_NEWLINK)"; topo_rtnl_close(r); return NULL; }
    topo_rtnl_close(r);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)gettid());
    if (mount(self, c->path, "none", MS_BIND, NULL) != 0) { c->err = errno; c->step = "bind-mount the namespace"; return NULL; }
    return NULL;
}

/* The directory's mount is shared, so that a namespace bound in it shows in every mount namespace
 * that sees the directory (iproute2's netns_add does the same). */
static int shared_directory(const char *directory) {
    if (mkdir(directory, 0755) != 0 && errno != EEXIST) return -1;
    if (mount("", directory, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
    if (errno != EINVAL) return -1;
    /* Not a mount point yet: bind it onto itself first. */
    if (mount(directory, directory, "none", MS_BIND | MS_REC, NULL) != 0) return -1;
    return mount("", directory, "none", MS_SHARED | MS_REC, NULL);
}

int topo_netns_create(const char *directory, const char *path, const char *alias, char *message, size_t size, const char **step) {
    if (size) message[0] = 0;
    *step = "make the namespace directory shared";
    if (shared_directory(directory) != 0) return -1;
    *step = "create the namespace's file";
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    close(fd);
    struct create_netns c = { path, alias, 0, message, size, NULL };
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, create_netns, &c);
    if (rc == 0) pthread_join(thread, NULL);
    else { c.err = rc; c.step = "start a thread"; }
    if (c.err) {
        unlink(path);
        *step = c.step;
        errno = c.err;
        return -1;
    }
    return 0;
}
