/*
 * conncache.h - idle SMTP/LMTP connections kept open for the next delivery
 * to the same next hop (Postfix's connection reuse). A connection whose
 * transaction ended normally is parked with what its EHLO announced and its
 * TLS state; a later request with the same key (address, LMTP or not, TLS
 * wanted or not, HELO name) takes it back and starts at MAIL FROM.
 */
#ifndef MX_RELAY_CONNCACHE_H
#define MX_RELAY_CONNCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct bufferevent;
struct conncache;

/* What a parked connection's next transaction must know. */
struct conncache_session {
    unsigned ext;      /* the client's X_* flags of the last EHLO/LHLO */
    uint64_t size_max; /* SIZE parameter, 0 for none */
    int tls_refused;
    int tls;
    char tls_desc[96];
    char peer_greeting[128];
    unsigned uses; /* transactions made on the connection so far */
};

/* What a connection is for: a request may only take one with the same key. */
struct conncache_want {
    const struct sockaddr_storage *addr;
    socklen_t addrlen;
    int lmtp;
    int tls; /* STARTTLS was wanted */
    const char *helo;
};

/*
 * conncache_new - an empty cache of idle connections on base (the base of
 * the clients that use it). At most max_idle are parked in total (beyond
 * that the oldest is closed) and half as many per key (at least one; a
 * burst of deliveries to one next hop must find its connections again, yet
 * cannot take the whole cache); each is closed with QUIT after
 * idle_timeout seconds unused, and dropped at once when the peer closes it
 * or sends anything. max_idle or idle_timeout 0: nothing is ever parked.
 * NULL (errno ENOMEM) on failure. The cache must outlive every client
 * whose request names it.
 */
struct conncache *conncache_new(struct event_base *base, unsigned max_idle, unsigned idle_timeout);

/* conncache_free - close every parked connection (QUIT written if the
 * socket takes it at once, never waiting) and free the cache; NULL ok */
void conncache_free(struct conncache *cache);

/* conncache_enabled - the cache would park a connection at all */
int conncache_enabled(const struct conncache *cache);

/* conncache_park - keep bev (idle, healthy, timeouts cleared by the
 * caller) for w; 0 when parked (the cache owns bev), -1 when not */
int conncache_park(struct conncache *cache, const struct conncache_want *w, struct bufferevent *bev,
                   const struct conncache_session *sess);

/* conncache_take - the most recently parked connection for w (the one
 * least likely to have been closed by the peer), with what was learned on
 * it; NULL when none. The caller owns the returned bufferevent. */
struct bufferevent *conncache_take(struct conncache *cache, const struct conncache_want *w,
                                   struct conncache_session *sess);

/* conncache_has - a connection for w is parked (conncache_take would return one) */
int conncache_has(const struct conncache *cache, const struct conncache_want *w);

/* conncache_quit_now - QUIT without waiting for the 221 (as Postfix by
 * default): written only if the socket takes it at once */
void conncache_quit_now(struct bufferevent *bev);

#endif
