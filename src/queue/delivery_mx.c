/* delivery_mx.c - the legs of route "mx": wait for the destination's flow control
 * (relay/dest.h), look its MX up (relay/mx.h), try its servers in order */
#include "queue/delivery_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/xmalloc.h"
#include "relay/client.h"
#include "relay/dest.h"
#include "relay/mx.h"
#include "relay/route.h"
#include "relay/routes.h"

/* dl_dest_end - the leg no longer counts against its destination; o is the feedback */
void dl_dest_end(struct dl_leg *leg, enum dest_outcome o)
{
    if (leg->dest_on)
        dest_finished(leg->dest, clock_now_precise(), o);
    leg->dest_on = 0;
}

/* dl_tls_policy - the destination's TLS policy on a request to its current MX: a
 * required TLS session is never taken from the cache (it may be a clear one) */
void dl_tls_policy(const struct dl_leg *leg, struct smtp_client_req *req)
{
    const struct dest *dst = leg->dest;

    if (dst->conf.tls == DEST_TLS_MAY)
        return;
    req->tls_required = 1;
    req->cache = NULL;
    if (dst->conf.tls == DEST_TLS_VERIFY) {
        req->tls = dst->verify; /* NULL (no CAs): no STARTTLS, so the delivery defers */
        req->tls_verify_name = leg->mx->addr[leg->mx_at].host;
    }
}

/* dl_mx_try - the leg's next MX address that is not ourselves and whose host takes one
 * more connection (delivery_mxhost.c); 1 when started or waiting for a host, 0 when
 * none is left */
static int dl_mx_try(struct dl_leg *leg)
{
    const struct mx_addr *m;

    switch (dl_host_pick(leg)) {
    case DL_HOST_NONE:
        return 0;
    case DL_HOST_WAIT:
        return 1;
    case DL_HOST_GO:
        break;
    }
    m = &leg->mx->addr[leg->mx_at];
    memset(&leg->ra, 0, sizeof(leg->ra));
    memcpy(&leg->ra.addr, &m->addr, sizeof(m->addr));
    leg->ra.addrlen = m->addrlen;
    dl_client_start(leg);
    return 1;
}

/* dl_mx_next - no host took responsibility (no connection, a 4xx greeting, 421):
 * the next MX address gets the leg; 1 when one was started */
int dl_mx_next(struct dl_leg *leg, const struct smtp_client_result *res)
{
    if (!leg->mx)
        return 0;
    for (size_t i = 0; i < leg->n && i < res->nrcpt; i++) {
        int c = res->rcpt[i].code;
        if (res->rcpt[i].maybe_delivered ||
            !(c == 0 || c == 421 || (res->ready_at == 0 && c / 100 == 4)))
            return 0;
    }
    size_t last = leg->mx_at++;
    if (dl_mx_try(leg))
        return 1;
    leg->mx_at = last; /* the log names the last server tried */
    return 0;
}

/* dl_mx_done - the domain's servers: the first one gets the leg; none is a bounce or a deferral */
static void dl_mx_done(void *arg, const struct mx_result *res)
{
    struct dl_leg *leg = arg;
    char text[400];

    leg->mxq = NULL;
    if (res->status != MX_OK) {
        dl_leg_fail(leg,
                    res->status == MX_NULLMX     ? 556
                    : res->status == MX_NODOMAIN ? 550
                                                 : 0,
                    res->text);
        return;
    }
    leg->mx = xmalloc(sizeof(*leg->mx));
    *leg->mx = *res;
    leg->mx_at = 0;
    if (dl_mx_try(leg))
        return;
    snprintf(text, sizeof(text), "5.4.6 mail for %s loops back to myself", leg->domain);
    free(leg->mx);
    leg->mx = NULL;
    dl_leg_fail(leg, 554, text);
}

/* dl_gate_cb - ask the destination again, or hand the message back (give_back) */
static void dl_gate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dl_leg *leg = arg;

    (void)fd;
    (void)what;
    if (leg->give_back)
        dl_not_started(leg->d, EAGAIN); /* filed again by the scheduler, no log line */
    else
        dl_start_mx(leg);
}

/* dl_gate - see delivery_internal.h: dl_start_mx again in wait seconds (0: soon, when
 * a running delivery may have ended; < 0: on the next loop turn); -1 without a timer */
int dl_gate(struct dl_leg *leg, double wait)
{
    struct timeval tv;

    if (!leg->gate && !(leg->gate = evtimer_new(leg->d->ctx.base, dl_gate_cb, leg)))
        return -1;
    if (wait < 0) {
        event_active(leg->gate, EV_TIMEOUT, 1);
        return 0;
    }
    wait = wait > 0 ? wait + 0.01 : 0.05; /* a slot frees when a delivery ends */
    tv.tv_sec = (time_t)wait;
    tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
    evtimer_add(leg->gate, &tv);
    return 0;
}

/* dl_dest_wait - 1 while the leg's destination takes no more (concurrency, rate,
 * back-off): the leg waits on a timer; the queue's other destinations go on */
static int dl_dest_wait(struct dl_leg *leg)
{
    struct delivery *d = leg->d;
    double wait, now = clock_now_precise();

    if (!d->ctx.dests)
        return 0;
    if (!leg->dest)
        leg->dest = dests_get(d->ctx.dests, leg->domain);
    /* back after a wait for an MX host: the domain's rate counted this delivery already */
    if (flow_may_start(&leg->dest->flow, now, !leg->dest_charged, &wait)) {
        flow_started(&leg->dest->flow, now, !leg->dest_charged);
        leg->dest_on = leg->dest_charged = 1;
        return 0;
    }
    return dl_gate(leg, wait) == 0; /* no timer: no waiting rather than no delivery */
}

/* dl_start_mx - route "mx": when the destination takes it, its MX records on c-ares
 * (or, after a wait for an MX host, the servers already known) */
void dl_start_mx(struct dl_leg *leg)
{
    if (dl_dest_wait(leg))
        return;
    if (leg->mx) {
        if (!dl_mx_try(leg))
            dl_leg_fail(leg, 0, "4.4.0 no MX host left to try");
        return;
    }
    leg->mxq = mx_lookup(leg->d->ctx.dns, leg->domain, leg->route->target.port, dl_mx_done, leg);
    if (!leg->mxq)
        dl_leg_fail(leg, 0, "4.4.3 no DNS resolver for MX lookups");
}

/* dl_primary_dest - the destination the scheduler files the message under: its first
 * leg's (route "mx": the recipient domain; a relay route: its next hop); NULL for a
 * maildir, no route, or without a destination table */
struct dest *dl_primary_dest(struct delivery *d)
{
    struct dl_leg *leg = d->nlegs ? &d->legs[0] : NULL;
    char name[320];

    if (!leg || !leg->route || !d->ctx.dests || leg->route->target.kind == ROUTE_MAILDIR)
        return NULL;
    if (leg->route->target.kind == ROUTE_MX)
        return leg->dest = dests_get(d->ctx.dests, leg->domain);
    route_target_format(&leg->route->target, name, sizeof(name));
    return dests_get_nexthop(d->ctx.dests, name);
}
