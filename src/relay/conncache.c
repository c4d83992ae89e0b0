/* conncache.c - parked SMTP/LMTP connections, keyed by next hop */
#include "relay/conncache.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define CACHE_BUCKETS 64 /* hash buckets of the cache's key index */
#define HELO_MAX 256     /* RFC 5321 4.5.3.1.3 bounds the HELO name */

/* What a request must match to reuse a parked connection. */
struct ckey {
    struct sockaddr_storage addr; /* bytes beyond addrlen are zero */
    socklen_t addrlen;
    int lmtp;
    int tls;
    char helo[HELO_MAX + 1];
};

/* A parked connection and what was learned on it. */
struct cconn {
    struct conncache *cache;
    TAILQ_ENTRY(cconn) age_link;    /* cache->age: oldest first */
    TAILQ_ENTRY(cconn) bucket_link; /* its bucket: newest first, for LIFO reuse */
    unsigned bucket;
    struct ckey key;
    struct bufferevent *bev;
    struct event *timer; /* the idle timeout */
    struct conncache_session sess;
};

TAILQ_HEAD(cconn_list, cconn);

struct conncache {
    struct event_base *base;
    unsigned max_idle;
    unsigned per_key; /* half the cache, so that one busy next hop never takes it all */
    unsigned nidle;
    struct timeval idle;
    struct cconn_list age;
    struct cconn_list buckets[CACHE_BUCKETS];
};

/* key_make - the key of w; -1 when w cannot be cached */
static int key_make(struct ckey *k, const struct conncache_want *w)
{
    memset(k, 0, sizeof *k);
    if (w->addrlen > sizeof k->addr || strlen(w->helo) >= sizeof k->helo)
        return -1;
    memcpy(&k->addr, w->addr, w->addrlen);
    k->addrlen = w->addrlen;
    k->lmtp = w->lmtp != 0;
    k->tls = w->tls != 0;
    memcpy(k->helo, w->helo, strlen(w->helo) + 1);
    return 0;
}

/* key_bucket - FNV-1a of the key, reduced to a bucket index */
static unsigned key_bucket(const struct ckey *k)
{
    const unsigned char *a = (const unsigned char *)&k->addr;
    uint32_t h = 2166136261u;

    for (socklen_t i = 0; i < k->addrlen; i++)
        h = (h ^ a[i]) * 16777619u;
    h = (h ^ (unsigned)(k->lmtp * 2 + k->tls)) * 16777619u;
    for (const char *p = k->helo; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % CACHE_BUCKETS;
}

/* key_eq - two keys name the same kind of connection */
static int key_eq(const struct ckey *a, const struct ckey *b)
{
    return a->addrlen == b->addrlen && a->lmtp == b->lmtp && a->tls == b->tls &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0 && strcmp(a->helo, b->helo) == 0;
}

/* conncache_quit_now - see conncache.h */
void conncache_quit_now(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl == NULL)
        (void)send(bufferevent_getfd(bev), "QUIT\r\n", 6, MSG_DONTWAIT | MSG_NOSIGNAL);
    else if (SSL_write(ssl, "QUIT\r\n", 6) <= 0)
        ERR_clear_error();
}

/* cconn_unlink - take a parked connection out of the cache's lists */
static void cconn_unlink(struct cconn *cc)
{
    struct conncache *cache = cc->cache;

    TAILQ_REMOVE(&cache->age, cc, age_link);
    TAILQ_REMOVE(&cache->buckets[cc->bucket], cc, bucket_link);
    cache->nidle--;
}

/* cconn_free - release an unlinked entry and its connection, if still there */
static void cconn_free(struct cconn *cc)
{
    if (cc->bev)
        bufferevent_free(cc->bev);
    if (cc->timer)
        event_free(cc->timer);
    free(cc);
}

/* cconn_close - drop a parked connection, with QUIT when it is still healthy */
static void cconn_close(struct cconn *cc, int say_quit)
{
    cconn_unlink(cc);
    if (say_quit)
        conncache_quit_now(cc->bev);
    cconn_free(cc);
}

/* on_park_timer - unused for idle_timeout seconds: QUIT and close */
static void on_park_timer(evutil_socket_t fd, short what, void *arg)
{
    cconn_close(arg, 1);
}

/* on_park_read - an idle peer spoke unasked (typically a 421 before it
 * closes): the connection is no longer fit for a transaction */
static void on_park_read(struct bufferevent *bev, void *arg)
{
    cconn_close(arg, 0);
}

/* on_park_event - the peer closed the idle connection, or it failed */
static void on_park_event(struct bufferevent *bev, short what, void *arg)
{
    cconn_close(arg, 0);
}

/* cache_insert - park cc: newest first in its bucket; beyond the per-key
 * or the total limit the oldest goes */
static void cache_insert(struct conncache *cache, struct cconn *cc)
{
    struct cconn_list *b = &cache->buckets[cc->bucket];
    struct cconn *x, *oldest = NULL;
    unsigned same = 0;

    TAILQ_FOREACH(x, b, bucket_link)
    {
        if (key_eq(&x->key, &cc->key)) {
            same++;
            oldest = x;
        }
    }
    if (same >= cache->per_key)
        cconn_close(oldest, 1);
    TAILQ_INSERT_HEAD(b, cc, bucket_link);
    TAILQ_INSERT_TAIL(&cache->age, cc, age_link);
    if (++cache->nidle > cache->max_idle)
        cconn_close(TAILQ_FIRST(&cache->age), 1);
}

/* conncache_take - see conncache.h */
struct bufferevent *conncache_take(struct conncache *cache, const struct conncache_want *w,
                                   struct conncache_session *sess)
{
    struct ckey key;
    struct cconn *cc;
    struct bufferevent *bev;

    if (cache == NULL || key_make(&key, w) != 0)
        return NULL;
    TAILQ_FOREACH(cc, &cache->buckets[key_bucket(&key)], bucket_link)
    {
        if (key_eq(&cc->key, &key)) {
            cconn_unlink(cc);
            bev = cc->bev;
            cc->bev = NULL;
            *sess = cc->sess;
            cconn_free(cc);
            return bev;
        }
    }
    return NULL;
}

/* conncache_has - see conncache.h */
int conncache_has(const struct conncache *cache, const struct conncache_want *w)
{
    struct ckey key;
    const struct cconn *cc;

    if (cache == NULL || key_make(&key, w) != 0)
        return 0;
    TAILQ_FOREACH(cc, &cache->buckets[key_bucket(&key)], bucket_link)
    if (key_eq(&cc->key, &key))
        return 1;
    return 0;
}

/* conncache_enabled - see conncache.h */
int conncache_enabled(const struct conncache *cache)
{
    return cache != NULL && cache->max_idle > 0 && cache->idle.tv_sec > 0;
}

/* conncache_park - see conncache.h */
int conncache_park(struct conncache *cache, const struct conncache_want *w, struct bufferevent *bev,
                   const struct conncache_session *sess)
{
    struct cconn *cc;

    if (!conncache_enabled(cache))
        return -1;
    cc = xcalloc(1, sizeof *cc);
    cc->cache = cache;
    cc->timer = evtimer_new(cache->base, on_park_timer, cc);
    if (key_make(&cc->key, w) != 0 || cc->timer == NULL ||
        evtimer_add(cc->timer, &cache->idle) != 0) {
        cconn_free(cc);
        return -1;
    }
    cc->bucket = key_bucket(&cc->key);
    cc->sess = *sess;
    cc->bev = bev;
    bufferevent_setcb(bev, on_park_read, NULL, on_park_event, cc);
    cache_insert(cache, cc);
    return 0;
}

/* conncache_new - see conncache.h */
struct conncache *conncache_new(struct event_base *base, unsigned max_idle, unsigned idle_timeout)
{
    struct conncache *cache = xcalloc(1, sizeof *cache);

    cache->base = base;
    cache->max_idle = max_idle;
    cache->per_key = max_idle > 1 ? (max_idle + 1) / 2 : 1;
    cache->idle.tv_sec = idle_timeout;
    TAILQ_INIT(&cache->age);
    for (size_t i = 0; i < CACHE_BUCKETS; i++)
        TAILQ_INIT(&cache->buckets[i]);
    return cache;
}

/* conncache_free - see conncache.h */
void conncache_free(struct conncache *cache)
{
    struct cconn *cc;

    if (cache == NULL)
        return;
    while ((cc = TAILQ_FIRST(&cache->age)) != NULL)
        cconn_close(cc, 1);
    free(cache);
}
