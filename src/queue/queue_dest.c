/*
 * queue_dest.c - the scheduler per destination. Due mail waits on its
 * destination's ready list; dispatch serves the destinations in turn (one
 * message each per round) and skips one that is at its concurrency limit,
 * in its rate window or backing off, so that it holds no delivery slot and
 * never delays mail to others. A destination whose servers do not answer is
 * marked unreachable once (one log line): its mail is parked, with no timer
 * and no connection of its own, and one delivery at a time probes it, at
 * retry_min doubling up to retry_max, until it answers; then its mail is
 * released (Postfix's dead destination).
 */
#include "queue/queue_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "relay/dest.h"
#include "relay/mxhost.h"

#define QUEUE_LOAD_MAX 64    /* messages loaded per loop turn to learn their destination */
#define QUEUE_HOST_POLL 0.05 /* seconds: a look again at a domain waiting for an MX host */

/* qd_of - the scheduler's side of dest (made on first use); NULL for none */
static struct qdest *qd_of(struct queue *q, struct dest *dest)
{
    struct qdest *qd;

    if (!dest)
        return NULL;
    if (dest->sched)
        return dest->sched;
    qd = xcalloc(1, sizeof(*qd));
    qd->dest = dest;
    TAILQ_INIT(&qd->ready);
    TAILQ_INIT(&qd->parked);
    TAILQ_INSERT_TAIL(&q->dests, qd, all);
    dest->sched = qd;
    return qd;
}

static int qd_dead(const struct qdest *qd)
{
    return qd->dest->unreachable_since != 0;
}

static void ring_add(struct queue *q, struct qdest *qd)
{
    if (qd->in_ring)
        return;
    TAILQ_INSERT_TAIL(&q->ring, qd, ring);
    qd->in_ring = 1;
    q->nring++;
}

static void ring_del(struct queue *q, struct qdest *qd)
{
    if (!qd->in_ring)
        return;
    TAILQ_REMOVE(&q->ring, qd, ring);
    qd->in_ring = 0;
    q->nring--;
}

/* qd_park - e waits for its unreachable destination to answer */
static void qd_park(struct qentry *e)
{
    e->st = Q_PARKED;
    TAILQ_INSERT_TAIL(&e->qd->parked, e, link);
    e->qd->nparked++;
}

/* qd_unpark - see queue_internal.h */
void qd_unpark(struct queue *q, struct qentry *e)
{
    TAILQ_REMOVE(&e->qd->parked, e, link);
    e->qd->nparked--;
}

/* qd_global - e goes on the queue's own ready list (loaded before it is filed) */
static void qd_global(struct queue *q, struct qentry *e)
{
    e->st = Q_READY;
    e->global = 1;
    TAILQ_INSERT_TAIL(&q->ready, e, link);
}

/* qd_make_ready - see queue_internal.h: due now, behind its destination */
void qd_make_ready(struct queue *q, struct qentry *e)
{
    struct qdest *qd = e->qd;

    if (!qd) {
        qd_global(q, e);
        return;
    }
    if (qd_dead(qd)) {
        qd_park(e);
        return;
    }
    e->st = Q_READY;
    TAILQ_INSERT_TAIL(&qd->ready, e, link);
    qd->nready++;
    ring_add(q, qd);
}

/* qd_unready - see queue_internal.h: e leaves whichever ready list holds it */
void qd_unready(struct queue *q, struct qentry *e)
{
    if (e->global) {
        TAILQ_REMOVE(&q->ready, e, link);
        e->global = 0;
        return;
    }
    TAILQ_REMOVE(&e->qd->ready, e, link);
    if (--e->qd->nready == 0)
        ring_del(q, e->qd);
}

/* qd_park_ready - the destination became unreachable: its ready mail is parked */
static void qd_park_ready(struct queue *q, struct qdest *qd)
{
    struct qentry *e;

    while ((e = TAILQ_FIRST(&qd->ready))) {
        TAILQ_REMOVE(&qd->ready, e, link);
        qd->nready--;
        qd_park(e);
    }
    ring_del(q, qd);
}

/* qd_host_free - one of the busy MX hosts qd's last delivery found (dest->host_block)
 * that takes one more now, counting the deliveries started for it that have not
 * connected yet (so that a host's free place starts one domain's mail, not every
 * waiting domain's); NULL and *wait when none does */
static struct mxhost *qd_host_free(const struct qdest *qd, double now, double *wait)
{
    double w, soonest = 0;

    for (unsigned i = 0; i < qd->dest->nhost_block; i++) {
        struct mxhost *h = qd->dest->host_block[i];
        if (flow_may_start(&h->flow, now, 1, &w) && h->flow.active + h->reserved < h->flow.window)
            return h;
        w = w > 0 ? w : QUEUE_HOST_POLL;
        if (soonest == 0 || w < soonest)
            soonest = w;
    }
    *wait = soonest;
    return NULL;
}

/* qd_may_start - 1 when qd takes one more delivery now (*resv: the busy MX host it
 * takes it for, or NULL); else *wait (seconds, 0: when one of its deliveries ends).
 * Until a server of it answered once, one at a time. While one of its deliveries
 * waits for an MX host (delivery_mxhost.c), or its last one found its hosts busy, no
 * other starts: it would only wait too, or go back. */
static int qd_may_start(const struct qdest *qd, double now, double *wait, struct mxhost **resv)
{
    *wait = 0;
    *resv = NULL;
    if (!qd->dest->reached && qd->nactive > 0)
        return 0;
    if (qd->dest->host_waiting) {
        *wait = QUEUE_HOST_POLL;
        return 0;
    }
    if (qd->dest->nexthop)
        return 1;
    if (qd->dest->nhost_block && !(*resv = qd_host_free(qd, now, wait)))
        return 0;
    return dest_may_start(qd->dest, now, wait);
}

/* qd_reserve - e starts for the busy host h (qd_may_start): h counts it until its
 * delivery takes a host or ends */
static void qd_reserve(struct qentry *e, struct mxhost *h)
{
    qd_unreserve(e);
    if ((e->resv = h))
        h->reserved++;
}

/* qd_unreserve - see queue_internal.h */
void qd_unreserve(struct qentry *e)
{
    if (e->resv)
        e->resv->reserved--;
    e->resv = NULL;
}

/* qd_host_taken - see queue_internal.h (delivery_host_fn) */
void qd_host_taken(void *arg)
{
    qd_unreserve(arg);
}

/* qd_gate_cb - a back-off, rate window or probe time ended */
static void qd_gate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct queue *q = arg;

    q->gate_at = 0;
    qd_dispatch(q);
}

/* qd_arm_gate - dispatch again in secs (the earliest such time wins) */
static void qd_arm_gate(struct queue *q, double secs)
{
    double at = clock_now_precise() + secs;
    struct timeval tv;

    if (secs <= 0 || (q->gate_at > 0 && q->gate_at <= at))
        return;
    if (!q->gate && !(q->gate = evtimer_new(q->ctx.base, qd_gate_cb, q)))
        return;
    secs += 0.01;
    tv.tv_sec = (time_t)secs;
    tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
    q->gate_at = at;
    evtimer_add(q->gate, &tv);
}

/* qd_count - see queue_internal.h: e, active, counts in qd's deliveries (NULL: none) */
void qd_count(struct qentry *e, struct qdest *qd)
{
    if (e->counted)
        e->counted->nactive--;
    e->counted = qd;
    if (qd)
        qd->nactive++;
}

/* qd_expire_parked - parked mail past its lifetime goes to be bounced (its attempt
 * ends before any connection) */
static void qd_expire_parked(struct queue *q, struct qdest *qd, time_t now)
{
    struct qentry *e, *next;

    for (e = TAILQ_FIRST(&qd->parked); e; e = next) {
        next = TAILQ_NEXT(e, link);
        if (now - queue_id_time(e->id) < (time_t)q->ctx.conf.queue.lifetime)
            continue;
        qd_unpark(q, e);
        qd_global(q, e);
    }
}

/* qd_probes - one delivery to each unreachable destination whose probe is due */
static void qd_probes(struct queue *q, double now, double *soonest)
{
    struct qdest *qd;
    struct qentry *e;

    TAILQ_FOREACH(qd, &q->dests, all)
    {
        if (!qd_dead(qd) || qd->probing || qd->nparked + qd->nready == 0 ||
            q->nactive >= q->ctx.conf.queue.max_deliveries)
            continue;
        if (qd->dest->probe_due > now) {
            double w = qd->dest->probe_due - now;
            *soonest = *soonest == 0 || w < *soonest ? w : *soonest;
            continue;
        }
        qd_park_ready(q, qd);
        qd_expire_parked(q, qd, (time_t)now);
        if (!(e = TAILQ_FIRST(&qd->parked)))
            continue;
        qd_unpark(q, e);
        e->probe = 1;
        qd->probing = queue_start_entry(q, e, 1);
        /* no attempt (the message is gone): the next probe is due at once */
    }
}

/* qd_round - one message for each ready destination that takes one; 1 if any started */
static int qd_round(struct queue *q, double now, double *soonest)
{
    int started = 0;
    double wait;
    struct mxhost *resv;

    for (size_t n = q->nring; n > 0 && q->nactive < q->ctx.conf.queue.max_deliveries; n--) {
        struct qdest *qd = TAILQ_FIRST(&q->ring);
        struct qentry *e;
        TAILQ_REMOVE(&q->ring, qd, ring); /* its turn is over: to the end of the round */
        TAILQ_INSERT_TAIL(&q->ring, qd, ring);
        if (qd_dead(qd)) {
            qd_park_ready(q, qd);
            continue;
        }
        if (!qd_may_start(qd, now, &wait, &resv)) {
            if (wait > 0 && (*soonest == 0 || wait < *soonest))
                *soonest = wait;
            continue;
        }
        e = TAILQ_FIRST(&qd->ready);
        qd_unready(q, e);
        qd_reserve(e, resv);
        started |= queue_start_entry(q, e, 1);
    }
    return started;
}

/* qd_dispatch - see queue_internal.h: probes, rounds over the destinations, and a few
 * messages of unknown destination loaded per loop turn (after a start) */
void qd_dispatch(struct queue *q)
{
    double now = clock_now_precise(), soonest = 0;
    unsigned loaded = 0, max = q->ctx.conf.queue.max_deliveries;
    int progress = 1;
    struct qentry *e;

    qd_probes(q, now, &soonest);
    while (progress && q->nactive < max) {
        progress = qd_round(q, now, &soonest);
        if (q->nactive < max && loaded < QUEUE_LOAD_MAX && (e = TAILQ_FIRST(&q->ready))) {
            qd_unready(q, e);
            queue_start_entry(q, e, 0);
            loaded++;
            progress = 1;
        }
    }
    if (loaded == QUEUE_LOAD_MAX && TAILQ_FIRST(&q->ready) && q->nactive < max)
        queue_kick(q); /* the rest on the next turns: the loop stays responsive */
    qd_arm_gate(q, soonest);
}

/* qd_admit - see queue_internal.h (delivery_admit_fn): e's destination is known */
int qd_admit(void *arg, struct dest *dest)
{
    struct qentry *e = arg;
    struct queue *q = e->q;
    struct qdest *qd = qd_of(q, dest);
    struct mxhost *resv;
    double wait;

    if (qd && qd == e->counted && e->admitted)
        return 1;
    qd_count(e, NULL);                      /* counted again only where it goes on */
    if (e->probe && e->qd && e->qd != qd) { /* a reload moved it: no probe of e->qd */
        e->qd->probing = 0;
        e->probe = 0;
    }
    e->qd = qd;
    if (!qd)
        return 1;
    if (qd_dead(qd))
        return 0; /* parked when its attempt ends (queue_attempt_done) */
    if (qd_may_start(qd, clock_now_precise(), &wait, &resv)) {
        qd_count(e, qd);
        qd_reserve(e, resv);
        return 1;
    }
    qd_arm_gate(q, wait); /* its turn comes in its destination's */
    return 0;
}

/* qd_release - the destination answered: its parked mail is due now */
static unsigned qd_release(struct queue *q, struct qdest *qd)
{
    unsigned n = 0;
    struct qentry *e;

    while ((e = TAILQ_FIRST(&qd->parked))) {
        qd_unpark(q, e);
        qd_make_ready(q, e);
        n++;
    }
    return n;
}

/* qd_outcome - see queue_internal.h: what the attempt learned of e's destination; 1
 * when e was parked (no retry time of its own) */
int qd_outcome(struct queue *q, struct qentry *e, const struct delivery_outcome *o)
{
    struct qdest *qd = qd_of(q, o->dest);
    double now = clock_now_precise();
    int probe = e->probe;

    e->probe = 0;
    if (!qd)
        return 0;
    e->qd = qd;
    if (probe)
        qd->probing = 0;
    if (o->unreachable) {
        if ((probe || !qd_dead(qd)) && dest_unreachable(qd->dest, now, q->ctx.conf.queue.retry_min,
                                                        q->ctx.conf.queue.retry_max))
            log_warn("event=destination dest=%s state=unreachable waiting=%u next_probe=%u",
                     log_q(qd->dest->name), qd->nready + qd->nparked + qd->nwait + 1,
                     qd->dest->probe_wait);
        qd_park_ready(q, qd);
        if (o->finished || e->delete_req || e->hold_req)
            return 0;
        qd_park(e);
        return 1;
    }
    if (o->reached && qd_dead(qd)) {
        double down = now - qd->dest->unreachable_since;
        dest_reachable(qd->dest);
        log_info("event=destination dest=%s state=reachable released=%u down=%.0f",
                 log_q(qd->dest->name), qd_release(q, qd), down);
    } else if (o->reached) {
        qd->dest->reached = 1;
    }
    return 0;
}

/* qd_flush - see queue_internal.h: an unreachable destination is probed at once (its
 * parked mail follows when it answers); the count of parked messages */
unsigned qd_flush(struct queue *q)
{
    struct qdest *qd;
    unsigned n = 0;

    TAILQ_FOREACH(qd, &q->dests, all)
    if (qd_dead(qd)) {
        qd->dest->probe_due = 0;
        n += qd->nparked;
    }
    return n;
}

/* qd_find - e by id on a destination's lists, or NULL */
struct qentry *qd_find(const struct queue *q, const char *id)
{
    const struct qdest *qd;
    struct qentry *e;

    TAILQ_FOREACH(qd, &q->dests, all)
    {
        TAILQ_FOREACH(e, &qd->ready, link)
        if (strcmp(e->id, id) == 0)
            return e;
        TAILQ_FOREACH(e, &qd->parked, link)
        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

/* qd_info - see queue_internal.h: the destinations' waiting mail into in */
void qd_info(const struct queue *q, struct queue_info *in,
             void (*one)(struct queue_info *, const struct qentry *))
{
    const struct qdest *qd;
    const struct qentry *e;

    TAILQ_FOREACH(qd, &q->dests, all)
    {
        TAILQ_FOREACH(e, &qd->ready, link)
        one(in, e);
        TAILQ_FOREACH(e, &qd->parked, link)
        one(in, e);
        in->deferred += qd->nparked;
    }
}

/* qd_mxhosts - the MX hosts with limits, after the destinations (queue_dests) */
static void qd_mxhosts(const struct queue *q, queue_dest_fn fn, void *arg)
{
    double now = clock_now_precise();

    for (size_t i = 0; i < mxhosts_count(q->ctx.mxhosts); i++) {
        const struct mxhost *h = mxhosts_at(q->ctx.mxhosts, i);
        struct queue_dest_info in = {
            .name = h->name,
            .mxhost = 1,
            .active = h->flow.active,
            .window = h->flow.window,
            .concurrency = h->flow.concurrency,
            .rate_n = h->flow.rate_n,
            .rate_secs = h->flow.rate_secs,
            .per_connection = h->per_connection,
            .backoff_until = h->flow.backoff_until > now ? h->flow.backoff_until : 0,
        };
        if (h->section[0]) /* a host no section names any more has no limits to show */
            fn(&in, arg);
    }
}

/* queue_dests - see queue.h */
void queue_dests(const struct queue *q, queue_dest_fn fn, void *arg)
{
    const struct qdest *qd;

    TAILQ_FOREACH(qd, &q->dests, all)
    {
        const struct dest *d = qd->dest;
        struct queue_dest_info in = {
            .name = d->name,
            .nexthop = d->nexthop,
            .active = d->nexthop ? qd->nactive : d->flow.active,
            .window = d->nexthop ? 0 : d->flow.window,
            .concurrency = d->nexthop ? 0 : d->conf.concurrency,
            .rate_n = d->conf.rate_n,
            .rate_secs = d->conf.rate_secs,
            .per_connection = d->conf.per_connection,
            .backoff_until =
                d->flow.backoff_until > clock_now_precise() ? d->flow.backoff_until : 0,
            .unreachable_since = d->unreachable_since,
            .probe_due = d->unreachable_since ? d->probe_due : 0,
            .messages = qd->nready + qd->nparked + qd->nwait + qd->nactive,
            .ready = qd->nready,
            .deferred = qd->nwait,
            .parked = qd->nparked,
            .delivering = qd->nactive,
        };
        fn(&in, arg);
    }
    qd_mxhosts(q, fn, arg);
}

/* qd_free_all - see queue_internal.h: every destination's lists (the messages stay in
 * the spool) */
void qd_free_all(struct queue *q)
{
    struct qdest *qd;
    struct qentry *e;

    while ((qd = TAILQ_FIRST(&q->dests))) {
        TAILQ_REMOVE(&q->dests, qd, all);
        while ((e = TAILQ_FIRST(&qd->ready))) {
            TAILQ_REMOVE(&qd->ready, e, link);
            free(e);
        }
        while ((e = TAILQ_FIRST(&qd->parked))) {
            TAILQ_REMOVE(&qd->parked, e, link);
            free(e);
        }
        qd->dest->sched = NULL;
        free(qd);
    }
    if (q->gate)
        event_free(q->gate);
    q->gate = NULL;
}
