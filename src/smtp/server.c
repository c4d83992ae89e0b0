/* server.c - listeners and connection limits; sessions live in session.c */
#include "smtp/server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "auth/auth.h"
#include "policy/quota.h"
#include "policy/stats.h"
#include "policysrv/policysrv.h"
#include "smtp/serverconf.h"
#include "smtp/session.h"

/*
 * server_client_key - 16 octets naming the client's group for the
 * per-address limit: an IPv4 address (v4-mapped into v6 space, so that a
 * dual-stack listener counts it the same), or an IPv6 address cut to
 * v6prefix bits. One IPv6 host commonly holds a whole /64: counted one by
 * one, its addresses would each get their own max_connections_per_ip.
 */
void server_client_key(const struct sockaddr *sa, unsigned v6prefix, uint8_t key[16])
{
    const uint8_t *a6;

    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return;
    }
    if (sa->sa_family != AF_INET6)
        return;
    a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    memcpy(key, a6, 16);
    if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a6))
        return; /* an IPv4 client: its own address, as above */
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = v6prefix > 8 * i ? v6prefix - 8 * i : 0;
        key[i] &= keep >= 8 ? 0xff : (uint8_t)(0xff00u >> keep);
    }
}

/* server_ip_key - the group key of sa: with the prefix of the start, since a
 * session's counter is given back under the key it was taken with */
static void server_ip_key(const struct server *srv, const struct sockaddr *sa, uint8_t key[16])
{
    server_client_key(sa, srv->v6prefix, key);
}

/* server_ip_bucket - FNV-1a over the key */
static unsigned server_ip_bucket(const uint8_t key[16])
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % SERVER_IP_BUCKETS;
}

/* server_ip_find - the counter of key, created when make is set */
static struct server_ip_count *server_ip_find(struct server *srv, const uint8_t key[16], int make)
{
    unsigned b = server_ip_bucket(key);
    struct server_ip_count *c;

    for (c = srv->per_ip[b]; c; c = c->next)
        if (memcmp(c->addr, key, 16) == 0)
            return c;
    if (!make)
        return NULL;
    c = xcalloc(1, sizeof(*c));
    memcpy(c->addr, key, 16);
    c->next = srv->per_ip[b];
    srv->per_ip[b] = c;
    return c;
}

/* server_ip_release - a session from sa ended: drop its connection, freeing the counter at zero */
static void server_ip_release(void *arg, const struct sockaddr *sa)
{
    struct server *srv = arg;
    uint8_t key[16];
    unsigned b;
    struct server_ip_count **pp, *c;

    server_ip_key(srv, sa, key);
    b = server_ip_bucket(key);
    for (pp = &srv->per_ip[b]; (c = *pp) != NULL; pp = &c->next) {
        if (memcmp(c->addr, key, 16) != 0)
            continue;
        if (--c->count == 0) {
            *pp = c->next;
            free(c);
        }
        break;
    }
    srv->nconn--;
}

/* server_refuse - a 421 written straight to the socket; the client gets a reason, we keep no state
 */
static void server_refuse(struct server *srv, evutil_socket_t fd, const char *ip, const char *why)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "421 4.7.0 %s Error: %s\r\n", srv->cfg->hostname, why);

    if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        (void)0; /* the client is gone or not reading: nothing more to tell it */
    log_info("event=reject client=%s stage=connect code=421 status=4.7.0 reason=%s", ip,
             log_q(why));
    stats_count(srv->stats, "connections");
    stats_count(srv->stats, "stopped");
    stats_count(srv->stats, "stopped.limits");
    close(fd);
}

/* server_flush_cb - end of the loop turn: sessions write the replies they made during it */
static void server_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    session_flush_queued(arg);
}

/* server_adopt - apply the connection limits, then hand the socket to a session */
void server_adopt(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                  const struct sockaddr *sa, socklen_t salen)
{
    struct server_ip_count *c;
    uint8_t key[16];
    char ip[64];

    sockaddr_ip(sa, ip, sizeof(ip));
    if (!srv->flush_ev && !(srv->flush_ev = event_new(srv->base, -1, 0, server_flush_cb, srv))) {
        server_refuse(srv, fd, ip, "out of memory");
        return;
    }
    if (srv->nconn >= srv->conf->limits.max_connections) {
        server_refuse(srv, fd, ip, "too many connections");
        return;
    }
    server_ip_key(srv, sa, key);
    c = server_ip_find(srv, key, 1);
    if (c->count >= srv->conf->limits.max_connections_per_ip) {
        server_refuse(srv, fd, ip, "too many connections from your address");
        return;
    }
    c->count++;
    srv->nconn++;
    if (l->policy)
        server_policy_start(srv, l, fd, sa, salen, server_ip_release, srv);
    else
        session_start(srv, l, fd, sa, salen, server_ip_release, srv);
}

/* server_accept - a listener accepted fd */
static void server_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct server_listener *sl = arg;

    if (sl->conf->proxy)
        server_proxy_accept(sl->srv, sl->conf, fd, sa, (socklen_t)salen);
    else
        server_adopt(sl->srv, sl->conf, fd, sa, (socklen_t)salen);
}

/* server_resume - try accepting again after a pause */
static void server_resume(evutil_socket_t fd, short what, void *arg)
{
    struct server_listener *sl = arg;

    sl->paused = 0;
    evconnlistener_enable(sl->evl);
}

/*
 * server_accept_error - out of descriptors (or memory) the pending connection
 * stays pending and accept fails at once, forever: stop accepting for a
 * moment instead of spinning, and say so once per pause.
 */
static void server_accept_error(struct evconnlistener *evl, void *arg)
{
    struct server_listener *sl = arg;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 250000};
    int e = EVUTIL_SOCKET_ERROR();

    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        log_warn("event=accept_error error=%s", log_q(evutil_socket_error_to_string(e)));
        return;
    }
    evconnlistener_disable(evl);
    if (!sl->paused)
        log_warn("event=accept_error error=%s action=\"pause accepting for 250 ms\"",
                 log_q(evutil_socket_error_to_string(e)));
    sl->paused = 1;
    if (sl->resume)
        evtimer_add(sl->resume, &tv);
}

/* server_set_gen - g is current: new sessions take it */
static void server_set_gen(struct server *srv, struct server_gen *g)
{
    srv->gen = g;
    srv->cfg = g->cfg;
    srv->conf = g->conf;
    srv->routes = g->routes;
    srv->tls = g->tls;
    srv->dns = g->dns;
    srv->policy = g->policy;
}

/* server_bind - a listening socket for l (disabled), or NULL with err */
static struct evconnlistener *server_bind(struct server *srv, const struct serverconf_listen *l,
                                          char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct evconnlistener *evl;
    int port;

    sockaddr_parse(l->address, 25, &ss, &len);
    evl = evconnlistener_new_bind(srv->base, NULL, NULL,
                                  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                      LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
                                  511, (struct sockaddr *)&ss, (int)len);
    if (evl)
        return evl;
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
    if (errno == EACCES && port < 1024 && geteuid() != 0)
        snprintf(err, errlen,
                 "listen %s: bind %s: %s (a port below 1024 needs root, and mxgated dropped "
                 "its privileges at start: restart mxgated to bind it)",
                 l->name, l->address, strerror(errno));
    else
        snprintf(err, errlen, "listen %s: bind %s: %s", l->name, l->address, strerror(errno));
    return NULL;
}

/* server_same_address - a and b name one socket address ("127.0.0.1:25", "127.0.0.1:025") */
static int server_same_address(const char *a, const char *b)
{
    struct sockaddr_storage sa, sb;
    socklen_t la, lb;

    if (sockaddr_parse(a, 25, &sa, &la) < 0 || sockaddr_parse(b, 25, &sb, &lb) < 0)
        return strcmp(a, b) == 0;
    return la == lb && memcmp(&sa, &sb, la) == 0;
}

/* server_find_listener - the listener of the running set bound to address, or NULL */
static struct server_listener *server_find_listener(struct server *srv, const char *address)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        if (srv->listeners[i].evl && server_same_address(srv->listeners[i].conf->address, address))
            return &srv->listeners[i];
    return NULL;
}

/* server_setup_listener - sl (in its final place) takes evl: callbacks, resume timer */
static void server_setup_listener(struct server *srv, struct server_listener *sl,
                                  const struct serverconf_listen *l, struct evconnlistener *evl)
{
    sl->srv = srv;
    sl->conf = l;
    sl->evl = evl;
    evconnlistener_set_cb(evl, server_accept, sl);
    evconnlistener_set_error_cb(evl, server_accept_error);
    sl->resume = evtimer_new(srv->base, server_resume, sl);
}

/* server_bind_new - sockets for g's listeners: the running one of the same address, else
 * a new one. 0, or -1 with err after closing what this call bound */
static int server_bind_new(struct server *srv, const struct serverconf *sc,
                           struct evconnlistener **evl, char *err, size_t errlen)
{
    for (size_t i = 0; i < sc->nlisten; i++) {
        struct server_listener *old = server_find_listener(srv, sc->listen[i].address);
        evl[i] = old ? old->evl : server_bind(srv, &sc->listen[i], err, errlen);
        if (evl[i])
            continue;
        for (size_t j = 0; j < i; j++)
            if (!server_find_listener(srv, sc->listen[j].address))
                evconnlistener_free(evl[j]);
        return -1;
    }
    return 0;
}

/* server_drop_listeners - the running set goes; sockets still in keep stay open */
static void server_drop_listeners(struct server *srv, struct evconnlistener *const *keep,
                                  size_t nkeep)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct server_listener *sl = &srv->listeners[i];
        int kept = 0;
        for (size_t j = 0; j < nkeep; j++)
            kept |= keep[j] == sl->evl;
        if (sl->resume)
            event_free(sl->resume);
        if (kept)
            continue;
        log_info("event=listen_closed listener=%s address=%s", log_q(sl->conf->name),
                 log_q(sl->conf->address));
        evconnlistener_free(sl->evl);
    }
    free(srv->listeners);
}

/* server_account_created - the quota check's account ages: created= in the users file of
 * the generation in force (quota.h) */
static int server_account_created(void *arg, const char *login, time_t *created)
{
    const struct server *srv = arg;

    if (!srv->gen || !srv->gen->auth)
        return -1;
    return quota_users_created((void *)auth_users(srv->gen->auth), login, created);
}

/* server_install - see server.h */
int server_install(struct server *srv, struct server_gen *g, char *err, size_t errlen)
{
    const struct serverconf *sc = g->conf;
    struct evconnlistener **evl = xcalloc(sc->nlisten ? sc->nlisten : 1, sizeof(*evl));
    struct server_listener *sls = xcalloc(sc->nlisten ? sc->nlisten : 1, sizeof(*sls));
    struct server_gen *old = srv->gen;

    if (server_bind_new(srv, sc, evl, err, errlen) < 0) {
        free(evl);
        free(sls);
        return -1;
    }
    for (size_t i = 0; i < sc->nlisten; i++) {
        if (!server_find_listener(srv, sc->listen[i].address))
            log_info("event=listen listener=%s address=%s", log_q(sc->listen[i].name),
                     log_q(sc->listen[i].address));
        server_setup_listener(srv, &sls[i], &sc->listen[i], evl[i]);
    }
    server_drop_listeners(srv, evl, sc->nlisten);
    g->id = old ? old->id + 1 : 1; /* refused reloads take no number */
    srv->listeners = sls;
    srv->nlisteners = sc->nlisten;
    server_set_gen(srv, g);
    quota_created_source(server_account_created, srv);
    if (srv->enabled)
        server_enable(srv);
    free(evl);
    if (old)
        server_gen_unref(old);
    return 0;
}

/* server_listen - the first generation: bind each configured address */
int server_listen(struct server *srv, struct server_gen *g, char *err, size_t errlen)
{
    srv->v6prefix = g->conf->limits.ipv6_prefix;
    return server_install(srv, g, err, errlen);
}

/* server_enable - accept from now on */
void server_enable(struct server *srv)
{
    srv->enabled = 1;
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i].evl);
}

/* server_close_listeners - every listening socket closed; sessions go on */
void server_close_listeners(struct server *srv)
{
    server_drop_listeners(srv, NULL, 0);
    srv->listeners = NULL;
    srv->nlisteners = 0;
    srv->enabled = 0;
}

/* server_close - listeners first, so nothing new arrives while sessions end */
void server_close(struct server *srv)
{
    server_close_listeners(srv);
    server_proxy_close_all(srv);
    policysrv_free(srv->policysrv);
    srv->policysrv = NULL;
    session_free_all(srv);
    quota_created_source(NULL, NULL);
    if (srv->drain_ev)
        event_free(srv->drain_ev);
    srv->drain_ev = NULL;
    if (srv->flush_ev)
        event_free(srv->flush_ev);
    srv->flush_ev = NULL;
    for (unsigned b = 0; b < SERVER_IP_BUCKETS; b++) {
        while (srv->per_ip[b]) {
            struct server_ip_count *c = srv->per_ip[b];
            srv->per_ip[b] = c->next;
            free(c);
        }
    }
}

/*
 * server_session_id - sids name sessions in logs gathered from many hosts and
 * restarts: a 12-character prefix made at the first session (6 characters of
 * the start time in seconds, 6 of randomness, base 32) and a counter. Two
 * starts share a prefix only in the same second with the same 30 random bits.
 */
void server_session_id(struct server *srv, char *dst, size_t dstlen)
{
    static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";

    if (!srv->sid_prefix[0]) {
        uint64_t t = (uint64_t)time(NULL), r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (uint64_t)getpid() * 2654435761u ^ (uint64_t)clock();
        for (int i = 5; i >= 0; i--, t >>= 5)
            srv->sid_prefix[i] = b32[t & 31];
        for (int i = 11; i >= 6; i--, r >>= 5)
            srv->sid_prefix[i] = b32[r & 31];
        srv->sid_prefix[12] = '\0';
    }
    snprintf(dst, dstlen, "%s%llx", srv->sid_prefix, (unsigned long long)++srv->next_sid);
}
