/* server.h - listeners, connection limits, and what every SMTP session shares */
#ifndef MX_SMTP_SERVER_H
#define MX_SMTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/util.h>

struct event_base;
struct evconnlistener;
struct config;
struct serverconf;
struct serverconf_listen;
struct routes;
struct pool;
struct commitq;
struct spool;
struct queue;
struct session;
struct dns;
struct policy;
struct stats;
struct nexthops;
typedef struct ssl_ctx_st SSL_CTX;

#define SERVER_IP_BUCKETS 4096

struct server_ip_count {
    uint8_t addr[16];
    unsigned count;
    struct server_ip_count *next;
};

struct server_listener {
    struct server *srv;
    const struct serverconf_listen *conf;
    struct evconnlistener *evl;
    struct event *resume; /* re-enables accepting after running out of descriptors */
    int paused;
};

struct server {
    struct event_base *base;
    const struct config *cfg;
    const struct serverconf *conf; /* listeners, limits, timeouts */
    const struct routes *routes;   /* is there a route for a recipient's domain */
    struct pool *pool;             /* fsync and file I/O off the loop */
    struct commitq *commits;       /* received messages made durable in batches */
    struct spool *spool;
    struct queue *queue; /* where committed messages go */
    SSL_CTX *tls;        /* NULL when no tls section */
    struct dns *dns;     /* NULL: no FCrDNS, no DNS checks */
    struct policy *policy;
    struct stats *stats;
    struct nexthops *nexthops; /* what each route's next hop takes (NULL: unknown) */
    struct server_listener *listeners;
    size_t nlisteners;
    unsigned nconn;
    uint64_t next_sid;
    LIST_HEAD(, session) sessions;
    LIST_HEAD(, session) flushq; /* plaintext sessions with replies to write */
    struct event *flush_ev;      /* active while flushq is not empty; the server's own */
    struct server_ip_count *per_ip[SERVER_IP_BUCKETS];
};

/* server_listen - bind every listen section (as root, before dropping privileges) */
int server_listen(struct server *srv, char *err, size_t errlen);

/* server_enable - start accepting (after privileges are dropped and the queue is up) */
void server_enable(struct server *srv);

/* server_close - stop listening and end every session */
void server_close(struct server *srv);

/*
 * server_adopt - take a connected socket as if a listener l had accepted it:
 * the connection limits apply (refused with 421 and closed when over them),
 * then a session starts. fd must be non-blocking (listeners accept so).
 * server_accept uses it; so does the session fuzzer.
 */
void server_adopt(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                  const struct sockaddr *sa, socklen_t salen);

/*
 * server_client_key - the key max_connections_per_ip counts under: an IPv4
 * address whole (v4-mapped IPv6 counts as IPv4), an IPv6 address cut to
 * v6prefix bits (limits.ipv6_prefix, /64 by default)
 */
void server_client_key(const struct sockaddr *sa, unsigned v6prefix, uint8_t key[16]);

#endif
