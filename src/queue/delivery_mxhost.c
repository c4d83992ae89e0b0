/*
 * delivery_mxhost.c - flow control per MX host (relay/mxhost.h) on route "mx":
 * which of the domain's servers a leg connects to. Among the hosts of the
 * leg's current MX preference, the first (in the random order RFC 5321 gives
 * equal preferences) whose host takes one more connection gets it: a host at
 * its concurrency or in its rate window yields to an equal-preference peer,
 * never to a lower preference (a backup MX is for when the preferred ones
 * fail, not for our own pacing; Postfix too tries in order). A preference
 * whose hosts all back off (they said 421 lately) is passed over, as their 421
 * greeting would make us do. When no host takes the leg, it waits on a timer:
 * its domain's slot is free meanwhile, and nothing is counted as an attempt
 * or logged (the message's retry schedule does not move).
 *
 * A message whose only leg has not connected yet does not wait here: it goes
 * back to the scheduler (not started, no log line), and its domain remembers
 * the busy hosts (dest->host_block), so that the scheduler starts none of its
 * mail until one of them takes one more. A leg that waits holds one of the
 * queue's delivery slots meanwhile, and a busy host shared by many domains
 * would otherwise take them all from the mail of other destinations.
 */
#include "queue/delivery_internal.h"

#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "relay/conncache.h"
#include "relay/mx.h"
#include "relay/mxhost.h"

#define DL_HOST_POLL 0.02 /* seconds: a look again when the host's slot frees at an end */

/* dl_host_cached - a connection to address i is parked for this leg's request (the
 * key dl_client_start's request will have): a reuse is no new connection */
static int dl_host_cached(const struct dl_leg *leg, size_t i)
{
    const struct delivery *d = leg->d;
    struct conncache_want w = {
        .addr = &leg->mx->addr[i].addr,
        .addrlen = leg->mx->addr[i].addrlen,
        .lmtp = 0,
        .tls = d->ctx.client_tls != NULL,
        .helo = d->ctx.cfg->hostname,
    };

    if (leg->dest && leg->dest->conf.tls != DEST_TLS_MAY)
        return 0; /* a required TLS session never comes from the cache (dl_tls_policy) */
    return conncache_has(d->ctx.conn_cache, &w);
}

/* dl_host_reuse - an address of the same host as address i (up to end) with a
 * connection kept for reuse, or i: a server counts the idle connections it holds
 * too, so a host with several addresses gets no second one while one waits */
static size_t dl_host_reuse(const struct dl_leg *leg, size_t i, size_t end)
{
    const struct mx_result *mx = leg->mx;

    for (size_t j = i + 1; j < end; j++)
        if (strcmp(mx->addr[j].host, mx->addr[i].host) == 0 && dl_host_cached(leg, j))
            return j;
    return i;
}

/* dl_host_take - address i goes first at mx_at (equal preferences are in random
 * order anyway; the others stay for a retry), its host counts the connection and,
 * for its rate, the message */
static void dl_host_take(struct dl_leg *leg, size_t i, struct mxhost *h)
{
    struct mx_addr a = leg->mx->addr[i];

    memmove(&leg->mx->addr[leg->mx_at + 1], &leg->mx->addr[leg->mx_at],
            (i - leg->mx_at) * sizeof(a));
    leg->mx->addr[leg->mx_at] = a;
    leg->host = h;
    leg->host_on = h != NULL;
    if (h)
        flow_started(&h->flow, clock_now_precise(), 1);
    if (leg->dest)
        leg->dest->nhost_block = 0; /* its mail may start again */
    if (leg->d->ctx.host_taken)
        leg->d->ctx.host_taken(leg->d->arg);
    if (leg->host_wait && leg->dest)
        leg->dest->host_waiting--;
    leg->host_wait = 0;
}

/* dl_host_blocked - h cannot take the leg now: its domain remembers it (once) */
static void dl_host_blocked(struct dl_leg *leg, struct mxhost *h)
{
    struct dest *dest = leg->dest;

    if (!dest)
        return;
    for (unsigned i = 0; i < dest->nhost_block; i++)
        if (dest->host_block[i] == h)
            return;
    if (dest->nhost_block < DEST_HOST_BLOCK)
        dest->host_block[dest->nhost_block++] = h;
}

/* dl_host_group - look at the preference starting at mx_at: 1 when an address was
 * taken; else *end is past it, *busy says a host of it is at a limit (not only
 * backing off), *cand counts its addresses that are not ourselves, *soonest is the
 * earliest time one may take it */
static int dl_host_group(struct dl_leg *leg, double now, size_t *end, int *busy, size_t *cand,
                         double *soonest)
{
    const struct mx_result *mx = leg->mx;
    double w;

    for (*end = leg->mx_at; *end < mx->naddr && mx->addr[*end].pref == mx->addr[leg->mx_at].pref;)
        (*end)++;
    for (size_t i = leg->mx_at; i < *end; i++) {
        struct mxhost *h;
        size_t at;
        if (mx_is_self(leg->d->ctx.cfg, &mx->addr[i].addr))
            continue;
        (*cand)++;
        h = mxhosts_get(leg->d->ctx.mxhosts, mx->addr[i].host);
        at = h && !dl_host_cached(leg, i) ? dl_host_reuse(leg, i, *end) : i;
        if (!h || flow_may_start(&h->flow, now, 1, &w)) {
            dl_host_take(leg, at, h);
            return 1;
        }
        if (now >= h->flow.backoff_until)
            *busy = 1;
        dl_host_blocked(leg, h);
        w = w > 0 ? w : DL_HOST_POLL;
        if (*soonest == 0 || w < *soonest)
            *soonest = w;
    }
    return 0;
}

/* dl_host_give_back - the leg's message goes back to the scheduler (see the top):
 * from the loop, on the leg's gate; 1 when it will */
static int dl_host_give_back(struct dl_leg *leg)
{
    struct delivery *d = leg->d;

    if (d->nlegs != 1 || leg->attempted || d->pool_jobs || !leg->dest || !leg->dest->nhost_block)
        return 0;
    leg->give_back = 1;
    if (dl_gate(leg, -1) == 0)
        return 1;
    leg->give_back = 0;
    return 0;
}

/* dl_host_pick - see delivery_internal.h: DL_HOST_GO with mx_at the address to
 * connect to; DL_HOST_WAIT when the leg waits (gate armed, domain slot released);
 * DL_HOST_NONE when no address but ourselves is left */
enum dl_host_pick dl_host_pick(struct dl_leg *leg)
{
    size_t start = leg->mx_at, end, cand = 0;
    double now = clock_now_precise(), soonest = 0;
    int busy = 0;

    if (leg->dest)
        leg->dest->nhost_block = 0; /* what this look finds busy */
    while (leg->mx_at < leg->mx->naddr) {
        if (dl_host_group(leg, now, &end, &busy, &cand, &soonest))
            return DL_HOST_GO;
        if (busy || end == leg->mx->naddr)
            break;
        leg->mx_at = end; /* every host of it backs off: the next preference */
    }
    leg->mx_at = start; /* after the wait, from the preferred ones again */
    if (cand == 0)
        return DL_HOST_NONE;
    dl_dest_end(leg, DEST_OTHER); /* the domain's slot is for others meanwhile */
    if (dl_host_give_back(leg))
        return DL_HOST_WAIT;
    if (!leg->host_wait && leg->dest)
        leg->dest->host_waiting++;
    leg->host_wait = 1;
    if (dl_gate(leg, soonest) < 0) {
        dl_host_release(leg);
        dl_leg_fail(leg, 0, "4.3.0 no timer to wait for the MX host");
    }
    return DL_HOST_WAIT;
}

/* dl_host_end - see delivery_internal.h: the connection no longer counts; o is the
 * host's feedback */
void dl_host_end(struct dl_leg *leg, enum dest_outcome o)
{
    if (leg->host_on)
        flow_finished(&leg->host->flow, clock_now_precise(), (enum flow_outcome)o);
    leg->host_on = 0;
}

/* dl_host_release - see delivery_internal.h: the attempt ends (cancelled, freed) */
void dl_host_release(struct dl_leg *leg)
{
    dl_host_end(leg, DEST_OTHER);
    if (leg->host_wait && leg->dest)
        leg->dest->host_waiting--;
    leg->host_wait = 0;
}
