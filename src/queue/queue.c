/* queue.c - the scheduler: a time heap of deferred messages, a concurrency cap, the
 * operator's actions; the destinations' ready lists are queue_dest.c's */
#include "queue/queue.h"
#include "queue/queue_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/xmalloc.h"
#include "queue/bouncelimit.h"
#include "queue/delivery.h"
#include "queue/hold.h"
#include "queue/idset.h"
#include "queue/queueconf.h"
#include "queue/spool.h"
#include "relay/dest.h"
#include "relay/mxhost.h"
#include "relay/client.h"
#include "relay/conncache.h"

#define QUEUE_CONN_IDLE_MAX 64 /* idle delivery connections kept at most */
#define QUEUE_CONN_IDLE_SECS 5 /* and for how long (below servers' own idle timeouts) */
#define QUEUE_SCAN_SLICE 4096  /* queue files listed per loop turn at the start */

/* queue_unhold - an attempt ended: let go of the configuration it used */
static void queue_unhold(struct queue *q, struct qentry *e)
{
    if (q->hold && e->token)
        q->hold(e->token, -1);
    e->token = NULL;
}

/* heap_swap - exchange two heap slots, keeping indexes right */
static void heap_swap(struct queue *q, size_t a, size_t b)
{
    struct qentry *t = q->heap[a];

    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->heap_idx = a;
    q->heap[b]->heap_idx = b;
}

/* heap_up - restore order towards the root */
static void heap_up(struct queue *q, size_t i)
{
    while (i > 0 && q->heap[(i - 1) / 2]->due > q->heap[i]->due) {
        heap_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* heap_down - restore order towards the leaves */
static void heap_down(struct queue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->nheap && q->heap[l]->due < q->heap[m]->due)
            m = l;
        if (r < q->nheap && q->heap[r]->due < q->heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(q, i, m);
        i = m;
    }
}

/* queue_heap_push - a deferred message waits for its time */
int queue_heap_push(struct queue *q, struct qentry *e)
{
    if (q->nheap == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
        struct qentry **h = xrealloc(q->heap, cap * sizeof(*h));
        q->heap = h;
        q->heap_cap = cap;
    }
    e->st = Q_WAIT;
    if (e->qd)
        e->qd->nwait++;
    e->heap_idx = q->nheap;
    q->heap[q->nheap++] = e;
    heap_up(q, e->heap_idx);
    return 0;
}

/* heap_remove - take e out of the heap */
static void heap_remove(struct queue *q, struct qentry *e)
{
    size_t i = e->heap_idx;

    if (e->qd)
        e->qd->nwait--;
    heap_swap(q, i, q->nheap - 1);
    q->nheap--;
    if (i < q->nheap) {
        heap_up(q, i);
        heap_down(q, i);
    }
}

/* queue_arm - wake up when the earliest deferred message is due */
void queue_arm(struct queue *q)
{
    struct timeval tv = {0, 0};
    time_t now = clock_now();

    if (q->nheap == 0) {
        evtimer_del(q->timer);
        return;
    }
    if (q->heap[0]->due > now)
        tv.tv_sec = q->heap[0]->due - now;
    evtimer_add(q->timer, &tv);
}

/* queue_timer_cb - move due messages to the ready list */
static void queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct queue *q = arg;
    time_t now = clock_now();

    while (q->nheap > 0 && q->heap[0]->due <= now) {
        struct qentry *e = q->heap[0];
        heap_remove(q, e);
        qd_make_ready(q, e);
    }
    queue_arm(q);
    qd_dispatch(q);
}

/* queue_kick_cb - dispatch outside of whoever added work */
static void queue_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    qd_dispatch(arg);
}

/* queue_kick - schedule a dispatch on the next loop turn */
void queue_kick(struct queue *q)
{
    event_active(q->kick, EV_TIMEOUT, 0);
}

/* queue_entry_new - a message known to the scheduler */
static struct qentry *queue_entry_new(struct queue *q, const char *id)
{
    struct qentry *e = xcalloc(1, sizeof(*e));

    if (e) {
        memcpy(e->id, id, SPOOL_ID_LEN);
        e->q = q;
    }
    return e;
}

/* queue_remove_work - in the pool: mxgatectl queue delete */
static void queue_remove_work(void *arg)
{
    struct qentry *e = arg;

    spool_remove(e->q->ctx.spool, e->id);
    hold_clear(e->q->ctx.spool, e->id);
}

/* queue_remove_done - forget the entry */
static void queue_remove_done(void *arg)
{
    struct qentry *e = arg;

    log_info("event=removed id=%s reason=admin", e->id);
    free(e);
}

/* queue_not_started - an attempt ended before it began: e is filed under its
 * destination (admit said not now), or gone (the load failed) */
static void queue_not_started(struct queue *q, struct qentry *e, int err)
{
    if (e->probe && e->qd)
        e->qd->probing = 0; /* the next probe is due at once */
    e->probe = 0;
    if (err != EAGAIN) {
        if (e->hold_req)
            hold_clear(q->ctx.spool, e->id);
        log_warn("event=dropped id=%s reason=%s", e->id,
                 err == EBADMSG ? "corrupt-moved-to-corrupt" : "missing");
        free(e);
        return;
    }
    e->flush_req = 0; /* due now anyway */
    if (e->delete_req) {
        pool_submit(q->ctx.pool, queue_remove_work, queue_remove_done, e);
    } else if (e->hold_req) {
        e->st = Q_HELD;
        TAILQ_INSERT_TAIL(&q->held, e, link);
    } else {
        qd_make_ready(q, e); /* parked when its destination is unreachable */
    }
}

/* queue_attempt_done - an attempt ended: forget, delete, or wait for the next one */
static void queue_attempt_done(void *arg, const struct delivery_outcome *o)
{
    struct qentry *e = arg;
    struct queue *q = e->q;

    TAILQ_REMOVE(&q->active, e, link);
    q->nactive--;
    qd_count(e, NULL);
    qd_unreserve(e);
    e->admitted = 0;
    e->d = NULL;
    queue_unhold(q, e);
    if (o->not_started) {
        queue_not_started(q, e, o->not_started);
        queue_kick(q);
        return;
    }
    if (o->dsn_id[0])
        queue_add(q, o->dsn_id);
    if (qd_outcome(q, e, o)) {
        /* parked behind its unreachable destination: no retry time of its own */
    } else if (o->finished) {
        if (e->hold_req) /* held during its last attempt, which finished it */
            hold_clear(q->ctx.spool, e->id);
        free(e);
    } else if (e->delete_req) {
        pool_submit(q->ctx.pool, queue_remove_work, queue_remove_done, e);
    } else if (e->hold_req) {
        e->st = Q_HELD;
        TAILQ_INSERT_TAIL(&q->held, e, link);
    } else if (e->flush_req) {
        e->flush_req = 0;
        qd_make_ready(q, e);
    } else {
        e->due = clock_now() + o->next_retry;
        if (queue_heap_push(q, e) < 0)
            qd_make_ready(q, e); /* no memory for the heap: retry rather than forget */
        queue_arm(q);
    }
    queue_kick(q);
}

/* queue_start_entry - see queue_internal.h: e's attempt begins with its load in the
 * pool; it holds a delivery slot (and its destination's, when known) meanwhile, so
 * that at most max_deliveries loads are in flight and an entry is loaded once at a
 * time (an active entry is on no ready list). admitted: dispatch checked e->qd. 1 */
int queue_start_entry(struct queue *q, struct qentry *e, int admitted)
{
    int verify = e->unchecked;

    e->unchecked = 0; /* checked by this load, or gone */
    e->st = Q_ACTIVE;
    TAILQ_INSERT_TAIL(&q->active, e, link);
    q->nactive++;
    qd_count(e, e->qd);
    e->admitted = admitted && e->qd;
    if (q->hold && q->token)
        q->hold(e->token = q->token, +1);
    e->d = delivery_start(&q->ctx, e->id, verify, queue_attempt_done, e);
    delivery_set_times(e->d, e->arrived, e->queued);
    return 1;
}

/* queue_reconfigure - see queue.h */
void queue_reconfigure(struct queue *q, const struct config *cfg, const struct routes *routes,
                       queue_hold_fn hold, void *token)
{
    struct queueconf now;

    queueconf_read(cfg, &now);
    /* the pool, the commit and the bounce limiter were made with these at start */
    now.queue.fsync_threads = q->ctx.conf.queue.fsync_threads;
    now.queue.sync_filesystem = q->ctx.conf.queue.sync_filesystem;
    now.queue.recycle = q->ctx.conf.queue.recycle;
    now.queue.bounce_limit = q->ctx.conf.queue.bounce_limit;
    now.queue.bounce_window = q->ctx.conf.queue.bounce_window;
    now.queue.bounce_domain_limit = q->ctx.conf.queue.bounce_domain_limit;
    q->ctx.conf = now;
    q->ctx.cfg = cfg;
    q->ctx.routes = routes;
    q->hold = hold;
    q->token = token;
    dests_reconfigure(q->ctx.dests, cfg);     /* new limits; each destination's state stays */
    mxhosts_reconfigure(q->ctx.mxhosts, cfg); /* the same per MX host */
    queue_kick(q);                            /* max_deliveries may have grown */
}

/* queue_set_nexthops - see queue.h */
void queue_set_nexthops(struct queue *q, struct nexthops *nh)
{
    q->ctx.nexthops = nh;
}

/* queue_set_dns - see queue.h */
void queue_set_dns(struct queue *q, struct dns *dns)
{
    q->ctx.dns = dns;
}

/* queue_new - an idle scheduler */
struct queue *queue_new(struct event_base *base, const struct config *cfg,
                        const struct routes *routes, struct spool *sp, struct pool *pool,
                        SSL_CTX *client_tls, struct store *st)
{
    struct queue *q = xcalloc(1, sizeof(*q));

    q->ctx = (struct delivery_ctx){.base = base,
                                   .cfg = cfg,
                                   .routes = routes,
                                   .spool = sp,
                                   .pool = pool,
                                   .client_tls = client_tls,
                                   .admit = qd_admit,
                                   .host_taken = qd_host_taken};
    queueconf_read(cfg, &q->ctx.conf);
    q->ctx.bounces =
        bouncelimit_new(st, q->ctx.conf.queue.bounce_limit, q->ctx.conf.queue.bounce_domain_limit,
                        q->ctx.conf.queue.bounce_window);
    /* one connection per message to the same internal server would cost a
     * connect, greeting, EHLO and QUIT each: keep them (Postfix's reuse) */
    q->ctx.conn_cache = conncache_new(base, QUEUE_CONN_IDLE_MAX, QUEUE_CONN_IDLE_SECS);
    q->ctx.dests = dests_load(cfg); /* a reload reads them again (queue_reconfigure) */
    q->ctx.mxhosts = mxhosts_load(cfg);
    TAILQ_INIT(&q->ready);
    TAILQ_INIT(&q->ring);
    TAILQ_INIT(&q->dests);
    TAILQ_INIT(&q->active);
    TAILQ_INIT(&q->held);
    q->timer = evtimer_new(base, queue_timer_cb, q);
    q->kick = event_new(base, -1, 0, queue_kick_cb, q);
    if (!q->ctx.bounces || !q->ctx.conn_cache || !q->timer || !q->kick) {
        queue_free(q);
        return NULL;
    }
    return q;
}

/* queue_enqueue - a new entry for id, ready at once; NULL when out of memory */
static struct qentry *queue_enqueue(struct queue *q, const char *id)
{
    struct qentry *e = queue_entry_new(q, id);

    if (!e) {
        /* It stays in the spool; the next restart or flush finds it. */
        log_err("event=error id=%s what=\"out of memory scheduling\"", id);
        return NULL;
    }
    qd_make_ready(q, e);
    queue_kick(q);
    return e;
}

/* queue_start_one - spool_list callback: a crash may have torn what was there */
static void queue_start_one(const char *id, void *arg)
{
    struct queue *q = arg;
    struct qentry *e;

    if (idset_has(q->scan_added, id))
        return; /* accepted while the listing ran: scheduled already */
    e = queue_enqueue(q, id);

    if (e)
        e->unchecked = 1;
    if (e && hold_is(q->ctx.spool, id)) { /* held before the restart: stays held */
        qd_unready(q, e);
        e->st = Q_HELD;
        TAILQ_INSERT_TAIL(&q->held, e, link);
    }
}

/* queue_scan_cb - one slice of the start's listing; the next on a later loop turn, so
 * that clients are served meanwhile whatever the queue's size */
static void queue_scan_cb(evutil_socket_t fd, short what, void *arg)
{
    struct queue *q = arg;
    struct timeval now = {0, 0};
    int n = spool_scan_next(q->scan, QUEUE_SCAN_SLICE, queue_start_one, q);

    if (n > 0) {
        q->scanned += (unsigned)n;
        evtimer_add(q->scan_ev, &now);
        return;
    }
    if (n < 0)
        log_err("event=error what=\"listing the queue\" error=%s", log_q(strerror(errno)));
    spool_scan_close(q->scan, n == 0);
    q->scan = NULL;
    idset_free(q->scan_added);
    q->scan_added = NULL;
    log_info("event=queue_loaded messages=%u seconds=%.2f", q->scanned,
             clock_now_precise() - q->scan_started);
}

/* queue_start - everything in the spool is due now: listed in slices from the loop */
int queue_start(struct queue *q)
{
    struct timeval now = {0, 0};

    if (!(q->scan = spool_scan_open(q->ctx.spool))) {
        log_err("event=error what=\"listing the queue\" error=%s", log_q(strerror(errno)));
        return -1;
    }
    q->scan_started = clock_now_precise();
    if (!(q->scan_ev = evtimer_new(q->ctx.base, queue_scan_cb, q)) ||
        evtimer_add(q->scan_ev, &now) < 0) {
        queue_scan_cb(-1, 0, q); /* no timer: all at once */
        while (q->scan)
            queue_scan_cb(-1, 0, q);
    }
    return 0;
}

/* queue_add_new - a message that did not come from the start's listing: while
 * that runs, it must not schedule the message a second time */
static struct qentry *queue_add_new(struct queue *q, const char *id)
{
    if (q->scan) {
        if (!q->scan_added)
            q->scan_added = idset_new();
        idset_add(q->scan_added, id);
    }
    return queue_enqueue(q, id);
}

/* queue_add - deliver id as soon as there is room */
void queue_add(struct queue *q, const char *id)
{
    queue_add_new(q, id);
}

/* queue_add_arrived - see queue.h */
void queue_add_arrived(struct queue *q, const char *id, double arrived)
{
    struct qentry *e = queue_add_new(q, id);

    if (e) {
        e->arrived = arrived;
        e->queued = clock_now_precise();
    }
}

/* queue_flush - all waiting messages are due now */
unsigned queue_flush(struct queue *q)
{
    unsigned n = qd_flush(q);
    struct qentry *e;

    while (q->nheap > 0) {
        e = q->heap[0];
        heap_remove(q, e);
        qd_make_ready(q, e);
        n++;
    }
    TAILQ_FOREACH(e, &q->active, link)
    {
        e->flush_req = 1;
        n++;
    }
    queue_arm(q);
    queue_kick(q);
    return n;
}

/* queue_find - linear: deletes are rare administrative acts */
static struct qentry *queue_find(struct queue *q, const char *id)
{
    struct qentry *e;

    for (size_t i = 0; i < q->nheap; i++)
        if (strcmp(q->heap[i]->id, id) == 0)
            return q->heap[i];
    TAILQ_FOREACH(e, &q->ready, link)
    if (strcmp(e->id, id) == 0)
        return e;
    TAILQ_FOREACH(e, &q->active, link)
    if (strcmp(e->id, id) == 0)
        return e;
    TAILQ_FOREACH(e, &q->held, link)
    if (strcmp(e->id, id) == 0)
        return e;
    return qd_find(q, id);
}

/* queue_delete - remove now, or right after the running attempt */
int queue_delete(struct queue *q, const char *id)
{
    struct qentry *e = queue_find(q, id);

    if (!e)
        return -1;
    if (e->st == Q_ACTIVE) {
        e->delete_req = 1;
        return 0;
    }
    if (e->st == Q_WAIT)
        heap_remove(q, e);
    else if (e->st == Q_HELD)
        TAILQ_REMOVE(&q->held, e, link);
    else if (e->st == Q_PARKED)
        qd_unpark(q, e);
    else
        qd_unready(q, e);
    queue_arm(q);
    pool_submit(q->ctx.pool, queue_remove_work, queue_remove_done, e);
    return 0;
}

/* queue_hold - see queue.h */
int queue_hold(struct queue *q, const char *id)
{
    struct qentry *e = queue_find(q, id);

    if (!e)
        return errno = ENOENT, -1;
    if (e->st == Q_HELD)
        return 0;
    if (hold_set(q->ctx.spool, id) < 0)
        return -1;
    if (e->st == Q_ACTIVE) {
        e->hold_req = 1;
        return 0;
    }
    if (e->st == Q_WAIT) {
        heap_remove(q, e);
        queue_arm(q);
    } else if (e->st == Q_PARKED) {
        qd_unpark(q, e);
    } else {
        qd_unready(q, e);
    }
    e->st = Q_HELD;
    TAILQ_INSERT_TAIL(&q->held, e, link);
    return 0;
}

/* queue_release - see queue.h */
int queue_release(struct queue *q, const char *id)
{
    struct qentry *e = queue_find(q, id);

    if (!e)
        return errno = ENOENT, -1;
    if (hold_clear(q->ctx.spool, id) < 0)
        return -1;
    if (e->st == Q_ACTIVE)
        e->hold_req = 0;
    if (e->st != Q_HELD)
        return 0;
    TAILQ_REMOVE(&q->held, e, link);
    qd_make_ready(q, e);
    queue_kick(q);
    return 0;
}

/* queue_id_time - see queue_internal.h: an id's first 8 hex digits are its arrival second */
time_t queue_id_time(const char *id)
{
    char hex[9];

    memcpy(hex, id, 8);
    hex[8] = '\0';
    return (time_t)strtoull(hex, NULL, 16);
}

/* queue_info_one - count e */
static void queue_info_one(struct queue_info *in, const struct qentry *e)
{
    long long t = (long long)queue_id_time(e->id);

    in->messages++;
    if (in->oldest == 0 || t < in->oldest)
        in->oldest = t;
}

/* queue_info - see queue.h */
void queue_info(const struct queue *q, struct queue_info *in)
{
    const struct qentry *e;

    *in = (struct queue_info){.active = q->nactive};
    for (size_t i = 0; i < q->nheap; i++)
        queue_info_one(in, q->heap[i]);
    TAILQ_FOREACH(e, &q->ready, link)
    queue_info_one(in, e);
    TAILQ_FOREACH(e, &q->active, link)
    queue_info_one(in, e);
    TAILQ_FOREACH(e, &q->held, link)
    {
        queue_info_one(in, e);
        in->held++;
    }
    in->deferred = (unsigned)q->nheap;
    qd_info(q, in, queue_info_one);
}

/* queue_free - cancel attempts; everything stays in the spool for the next start */
void queue_free(struct queue *q)
{
    struct qentry *e;

    if (!q)
        return;
    while ((e = TAILQ_FIRST(&q->active))) {
        TAILQ_REMOVE(&q->active, e, link);
        delivery_cancel(e->d);
        queue_unhold(q, e);
        free(e);
    }
    while ((e = TAILQ_FIRST(&q->ready))) {
        TAILQ_REMOVE(&q->ready, e, link);
        free(e);
    }
    while ((e = TAILQ_FIRST(&q->held))) {
        TAILQ_REMOVE(&q->held, e, link);
        free(e);
    }
    for (size_t i = 0; i < q->nheap; i++)
        free(q->heap[i]);
    free(q->heap);
    if (q->timer)
        event_free(q->timer);
    if (q->kick)
        event_free(q->kick);
    if (q->scan_ev)
        event_free(q->scan_ev);
    spool_scan_close(q->scan, 0);
    idset_free(q->scan_added);
    bouncelimit_free(q->ctx.bounces);
    conncache_free(q->ctx.conn_cache); /* after the attempts that used it */
    qd_free_all(q);
    dests_free(q->ctx.dests);
    mxhosts_free(q->ctx.mxhosts);
    free(q);
}
