/*
 * server_proxy.c - listeners behind a load balancer: the PROXY protocol
 * header is read before anything else (before the connection limits, the
 * FCrDNS lookup and the greeting), so that every check, the limits and the
 * Received field see the client the balancer names, not the balancer.
 *
 * Only octets known to be the header's are taken off the socket (a v1 line
 * up to its LF, a v2 header up to its stated length): what the client sends
 * after it stays for the session, which still sees an early talker as one.
 */
#include "smtp/server.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/stats.h"
#include "smtp/proxyproto.h"
#include "smtp/serverconf.h"

struct server_proxy {
    LIST_ENTRY(server_proxy) entry;
    struct server *srv;
    struct server_gen *gen; /* keeps the listener's settings valid across a reload */
    const struct serverconf_listen *l;
    evutil_socket_t fd;
    struct event *rd;
    struct event *deadline;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    char ip[64];
    size_t have;
    uint8_t buf[PROXYPROTO_V2_MAX];
};

/* server_proxy_free - forget p; close its socket unless a session took it */
static void server_proxy_free(struct server_proxy *p, int close_fd)
{
    LIST_REMOVE(p, entry);
    p->srv->nproxies--;
    if (p->rd)
        event_free(p->rd);
    if (p->deadline)
        event_free(p->deadline);
    if (close_fd)
        close(p->fd);
    server_gen_unref(p->gen);
    free(p);
}

/* server_proxy_fail - the header did not come, or not as it should: log, count, close */
static void server_proxy_fail(struct server_proxy *p, const char *why)
{
    log_warn("event=proxy_error client=%s listener=%s error=%s", p->ip, log_q(p->l->name),
             log_q(why));
    stats_count(p->srv->stats, "proxy.errors");
    server_proxy_free(p, 1);
}

/* server_proxy_listener - the listener of the current generation called like p's, or NULL
 * (a reload removed it while the header was on its way) */
static const struct serverconf_listen *server_proxy_listener(const struct server_proxy *p)
{
    for (size_t i = 0; i < p->srv->conf->nlisten; i++)
        if (strcmp(p->srv->conf->listen[i].name, p->l->name) == 0)
            return &p->srv->conf->listen[i];
    return NULL;
}

/* server_proxy_done - the header is read: the session takes the connection as r's client */
static void server_proxy_done(struct server_proxy *p, const struct proxyproto_result *r)
{
    struct server *srv = p->srv;
    const struct serverconf_listen *l = server_proxy_listener(p);
    struct sockaddr_storage sa;
    socklen_t salen;
    char ip[64];
    evutil_socket_t fd = p->fd;

    if (!l) {
        server_proxy_fail(p, "listener removed by a reload");
        return;
    }
    if (r->local) { /* the balancer's own connection (a health check) */
        memcpy(&sa, &p->peer, sizeof(sa));
        salen = p->peerlen;
    } else {
        memcpy(&sa, &r->src, sizeof(sa));
        salen = r->srclen;
    }
    sockaddr_ip((struct sockaddr *)&sa, ip, sizeof(ip));
    log_info("event=proxy client=%s via=%s listener=%s version=%d%s", ip, p->ip, log_q(l->name),
             r->version, r->local ? " local=yes" : "");
    server_proxy_free(p, 0);
    server_adopt(srv, l, fd, (struct sockaddr *)&sa, salen);
}

/* server_proxy_take - read n octets of the header off the socket into the buffer */
static int server_proxy_take(struct server_proxy *p, size_t n)
{
    while (n > 0) {
        ssize_t got = recv(p->fd, p->buf + p->have, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1; /* they were peeked: the kernel has them */
        p->have += (size_t)got;
        n -= (size_t)got;
    }
    return 0;
}

/* server_proxy_read - octets arrived: peek, parse, and take only the header's */
static void server_proxy_read(evutil_socket_t fd, short what, void *arg)
{
    struct server_proxy *p = arg;
    struct proxyproto_result r;
    enum proxyproto_status st;
    ssize_t n = recv(fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        server_proxy_fail(p, n == 0 ? "connection closed before the PROXY header"
                                    : "read error before the PROXY header");
        return;
    }
    st = proxyproto_parse(p->buf, p->have + (size_t)n, p->l->proxy, &r);
    if (st == PROXYPROTO_BAD) {
        server_proxy_fail(p, r.error);
        return;
    }
    /* MORE: r.len octets are surely the header's; taking them keeps the socket from
     * staying readable with the same octets (no busy loop) */
    if (r.len < p->have || server_proxy_take(p, r.len - p->have) < 0) {
        server_proxy_fail(p, "read error in the PROXY header");
        return;
    }
    if (st == PROXYPROTO_DONE)
        server_proxy_done(p, &r);
}

/* server_proxy_timeout - the header took longer than proxy_timeout */
static void server_proxy_timeout(evutil_socket_t fd, short what, void *arg)
{
    server_proxy_fail(arg, "no complete PROXY header in time");
}

/* server_proxy_allowed - is sa one of the balancers of l */
static int server_proxy_allowed(const struct serverconf_listen *l, const struct sockaddr *sa)
{
    for (size_t i = 0; i < l->nproxy_from; i++)
        if (cidr_match(&l->proxy_from[i], sa))
            return 1;
    return 0;
}

/* server_proxy_refuse - not a balancer, or too many: closed without a word (the
 * peer does not speak SMTP to us first; a 421 would reach a balancer as the client's) */
static void server_proxy_refuse(struct server *srv, const struct serverconf_listen *l,
                                evutil_socket_t fd, const char *ip, const char *why)
{
    log_warn("event=proxy_refused client=%s listener=%s reason=%s", ip, log_q(l->name), log_q(why));
    stats_count(srv->stats, "proxy.refused");
    close(fd);
}

/* server_proxy_accept - see server.h */
void server_proxy_accept(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                         const struct sockaddr *sa, socklen_t salen)
{
    struct timeval tv = {.tv_sec = l->proxy_timeout, .tv_usec = 0};
    struct server_proxy *p;
    char ip[64];

    sockaddr_ip(sa, ip, sizeof(ip));
    if (!server_proxy_allowed(l, sa)) {
        server_proxy_refuse(srv, l, fd, ip, "not in proxy_from");
        return;
    }
    if (srv->nproxies >= srv->conf->limits.max_connections) {
        server_proxy_refuse(srv, l, fd, ip, "too many connections waiting for a PROXY header");
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->srv = srv;
    p->gen = server_gen_ref(srv->gen);
    p->l = l;
    p->fd = fd;
    memcpy(&p->peer, sa, salen < sizeof(p->peer) ? salen : sizeof(p->peer));
    p->peerlen = salen;
    snprintf(p->ip, sizeof(p->ip), "%s", ip);
    LIST_INSERT_HEAD(&srv->proxies, p, entry);
    srv->nproxies++;
    p->rd = event_new(srv->base, fd, EV_READ | EV_PERSIST, server_proxy_read, p);
    p->deadline = evtimer_new(srv->base, server_proxy_timeout, p);
    if (!p->rd || !p->deadline || event_add(p->rd, NULL) < 0 || evtimer_add(p->deadline, &tv) < 0)
        server_proxy_fail(p, "out of memory");
}

/* server_proxy_close_all - shutdown: nothing was said to these yet */
void server_proxy_close_all(struct server *srv)
{
    while (!LIST_EMPTY(&srv->proxies))
        server_proxy_free(LIST_FIRST(&srv->proxies), 1);
}
