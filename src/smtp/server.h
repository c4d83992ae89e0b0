/* server.h - listeners, connection limits, and what every SMTP session shares */
#ifndef MX_SMTP_SERVER_H
#define MX_SMTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/util.h>

struct event_base;
struct evconnlistener;
struct config;
struct serverconf;
struct signconf;
struct serverconf_listen;
struct routes;
struct pool;
struct commitq;
struct spool;
struct queue;
struct session;
struct dns;
struct policy;
struct auth;
struct stats;
struct store;
struct nexthops;
struct policysrv;
typedef struct ssl_ctx_st SSL_CTX;

#define SERVER_IP_BUCKETS 4096

struct server_ip_count {
    uint8_t addr[16];
    unsigned count;
    struct server_ip_count *next;
};

/*
 * A configuration generation: everything a session reads from the
 * configuration, made together and freed together. SIGHUP makes a new one
 * (src/reload.c); new sessions take the current generation, a session keeps
 * the one it started with until it ends, and a generation is freed when the
 * last session (or delivery attempt) holding it lets go.
 */
struct server_gen {
    unsigned refs;
    unsigned long id; /* 1 at start, +1 per reload put in place (0 until then) */
    struct config *cfg;
    struct serverconf *conf; /* listeners, limits, timeouts */
    struct routes *routes;   /* is there a route for a recipient's domain */
    SSL_CTX *tls;            /* NULL when no tls section */
    struct dns *dns;         /* NULL: no FCrDNS, no DNS checks */
    struct policy *policy;
    struct signconf *sign; /* dkim_sign: NULL or empty when nothing is signed */
    struct auth *auth;     /* users and senders of SMTP AUTH; NULL: no auth section */
};

/* server_gen_new - a generation owning what it is given (any may be NULL but cfg), refs 1 */
struct server_gen *server_gen_new(struct config *cfg, struct serverconf *conf,
                                  struct routes *routes, SSL_CTX *tls, struct dns *dns,
                                  struct policy *policy);
struct server_gen *server_gen_ref(struct server_gen *g);
/* server_gen_unref - drop one reference; the last frees the generation and what it owns */
void server_gen_unref(struct server_gen *g);
/* server_gen_load_auth - the auth section's files into g->auth; 0, or -1 with err */
int server_gen_load_auth(struct server_gen *g, char *err, size_t errlen);
/* server_gen_hold - the queue's holds on the generation its attempts use (queue_hold_fn) */
void server_gen_hold(void *gen, int delta);

struct server_proxy; /* a connection whose PROXY header is being read (server_proxy.c) */

struct server_listener {
    struct server *srv;
    const struct serverconf_listen *conf;
    struct evconnlistener *evl;
    struct event *resume; /* re-enables accepting after running out of descriptors */
    int paused;
};

struct server {
    struct event_base *base;
    /* The current generation (new sessions take it) and, for the code that
     * wires the daemon, its parts: server_install keeps them in step. */
    struct server_gen *gen;
    const struct config *cfg;
    const struct serverconf *conf;
    const struct routes *routes;
    struct pool *pool;       /* fsync and file I/O off the loop */
    struct commitq *commits; /* received messages made durable in batches */
    struct spool *spool;
    struct queue *queue; /* where committed messages go */
    SSL_CTX *tls;
    struct dns *dns;
    struct policy *policy;
    struct stats *stats;
    struct store *store;       /* the state store (SMTP AUTH failure counters), or NULL */
    struct nexthops *nexthops; /* what each route's next hop takes (NULL: unknown) */
    struct server_listener *listeners;
    size_t nlisteners;
    unsigned nconn;
    uint64_t next_sid;
    char sid_prefix[16];    /* start time and randomness: session ids unique across restarts */
    unsigned v6prefix;      /* limits.ipv6_prefix as at start: the per-address counters' key */
    int enabled;            /* accepting (server_enable) */
    struct event *drain_ev; /* SIGTERM: waiting for sessions to finish (server_drain) */
    time_t drain_end;
    void (*drain_done)(void *arg);
    void *drain_arg;
    LIST_HEAD(, session) sessions;
    LIST_HEAD(, session) flushq;       /* plaintext sessions with replies to write */
    LIST_HEAD(, server_proxy) proxies; /* waiting for their PROXY header */
    unsigned nproxies;
    struct event *flush_ev; /* active while flushq is not empty; the server's own */
    struct server_ip_count *per_ip[SERVER_IP_BUCKETS];
    struct policysrv *policysrv; /* connections of role = "policy" listeners (made at the first) */
};

/* server_listen - bind every listen section (as root, before dropping privileges);
 * the generation becomes srv->gen (srv takes over its reference) */
int server_listen(struct server *srv, struct server_gen *g, char *err, size_t errlen);

/*
 * server_install - make g the current generation (reload): listeners whose
 * address is unchanged keep their socket and take g's settings, new and
 * changed addresses are bound, removed ones closed. All or nothing: when a
 * bind fails (in use; a port below 1024 after privileges were dropped) the
 * old listeners and generation stay and -1 is returned with err. On success
 * srv takes over the reference to g and drops its own to the old generation.
 */
int server_install(struct server *srv, struct server_gen *g, char *err, size_t errlen);

/*
 * server_drain - SIGTERM: stop accepting, answer "421 4.3.2" to every session
 * waiting for a command, let those reading a message or committing it finish
 * (each then gets its 250 and the 421), and call done(arg) when none is left,
 * or after timeout seconds (what is still open then is closed: its message
 * was not acknowledged).
 */
void server_drain(struct server *srv, unsigned timeout, void (*done)(void *arg), void *arg);

/* server_session_id - a new session id: the start's prefix and a counter */
void server_session_id(struct server *srv, char *dst, size_t dstlen);

/* server_enable - start accepting (after privileges are dropped and the queue is up) */
void server_enable(struct server *srv);

/* server_close_listeners - stop accepting: every listening socket is closed */
void server_close_listeners(struct server *srv);

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
 * server_proxy_accept - a listener with proxy_protocol accepted fd from sa:
 * refused and closed unless sa is one of proxy_from; else the PROXY header
 * is read (bounded, within proxy_timeout) and server_adopt takes the
 * connection as coming from the client it names. A malformed or missing
 * header closes the connection with a log line (server_proxy.c).
 */
void server_proxy_accept(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                         const struct sockaddr *sa, socklen_t salen);
/*
 * server_policy_start - a connection to a role = "policy" listener that passed the
 * limits: Postfix's policy delegation protocol (policysrv/) with the listener's
 * checks; release(release_arg, sa) gives the limits' slot back at the end
 * (server_policy.c)
 */
void server_policy_start(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                         const struct sockaddr *sa, socklen_t salen,
                         void (*release)(void *arg, const struct sockaddr *sa), void *release_arg);

/* server_proxy_close_all - drop every connection still waiting for its header */
void server_proxy_close_all(struct server *srv);

/*
 * server_client_key - the key max_connections_per_ip counts under: an IPv4
 * address whole (v4-mapped IPv6 counts as IPv4), an IPv6 address cut to
 * v6prefix bits (limits.ipv6_prefix, /64 by default)
 */
void server_client_key(const struct sockaddr *sa, unsigned v6prefix, uint8_t key[16]);

#endif
