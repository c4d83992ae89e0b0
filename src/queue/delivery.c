/* delivery.c - one attempt: route, hand over, record, bounce, dequeue */
#include "queue/delivery.h"
#include "queue/delivery_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/cidr.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pool.h"
#include "core/xmalloc.h"
#include "queue/bouncelimit.h"
#include "queue/dsn.h"
#include "queue/maildir.h"
#include "relay/route.h"
#include "relay/routes.h"
#include "mail/address.h"
#include "relay/client.h"
#include "relay/dest.h"
#include "relay/mx.h"
#include "relay/mxhost.h"
#include "relay/nexthop.h"
#include "relay/resolve.h"
#include "mail/eightbit.h"

static void delivery_finish(struct delivery *d);

/* delivery_free - release the attempt */
static void delivery_free(struct delivery *d)
{
    for (size_t i = 0; i < d->nlegs; i++) {
        if (d->legs[i].client)
            smtp_client_cancel(d->legs[i].client);
        relay_resolve_cancel(d->legs[i].resolving);
        mx_cancel(d->legs[i].mxq);
        dl_dest_end(&d->legs[i], DEST_OTHER);
        dl_host_release(&d->legs[i]);
        if (d->legs[i].gate)
            event_free(d->legs[i].gate);
        free(d->legs[i].mx);
        free(d->legs[i].rcpt);
        free(d->legs[i].addrs);
    }
    free(d->legs);
    free(d->r);
    if (d->body_fd >= 0)
        close(d->body_fd);
    spool_envelope_free(&d->env);
    free(d);
}

/* dl_submit - a pool job that holds a reference on d */
static void dl_submit(struct delivery *d, pool_work_fn work, pool_done_fn done, void *arg)
{
    d->pool_jobs++;
    pool_submit(d->ctx.pool, work, done, arg);
}

/* dl_job_release - a pool job finished; 1 if d was cancelled meanwhile (and is now freed if last)
 */
static int dl_job_release(struct delivery *d)
{
    d->pool_jobs--;
    if (!d->cancelled)
        return 0;
    if (d->pool_jobs == 0)
        delivery_free(d);
    return 1;
}

/* dl_set - the outcome of one recipient from a reply code (0: no reply) */
static void dl_set(struct dl_rcpt *r, int code, const char *text, const char *relay)
{
    r->code = code;
    r->res = code >= 200 && code < 300 ? DL_OK : code >= 500 && code < 600 ? DL_BOUNCE : DL_DEFER;
    snprintf(r->text, sizeof(r->text), "%s", text);
    snprintf(r->relay, sizeof(r->relay), "%s", relay);
    r->t_done = clock_now_precise();
}

/* dl_leg_done - one route finished */
static void dl_leg_done(struct delivery *d)
{
    if (--d->pending == 0)
        delivery_finish(d);
}

/* dl_relay - the next hop for logs: the route, or the MX host and address tried */
void dl_relay(const struct dl_leg *leg, char *dst, size_t dstlen)
{
    char ip[64];

    if (leg->mx && leg->mx_at < leg->mx->naddr) {
        const struct mx_addr *m = &leg->mx->addr[leg->mx_at];
        snprintf(dst, dstlen, "%s[%s]:%d", m->host,
                 sockaddr_ip((const struct sockaddr *)&m->addr, ip, sizeof(ip)),
                 leg->route->target.port);
    } else if (leg->route && leg->route->target.kind == ROUTE_MX)
        snprintf(dst, dstlen, "mx:%s", leg->domain);
    else if (leg->route)
        route_target_format(&leg->route->target, dst, dstlen);
    else
        snprintf(dst, dstlen, "none");
}

/* dl_leg_fail - every recipient of the leg gets the same outcome */
void dl_leg_fail(struct dl_leg *leg, int code, const char *text)
{
    char relay[320];

    dl_dest_end(leg, dest_classify(code, text));
    dl_host_end(leg, dest_classify(code, text));
    dl_relay(leg, relay, sizeof(relay));
    for (size_t i = 0; i < leg->n; i++)
        dl_set(leg->rcpt[i], code, text, relay);
    dl_leg_done(leg->d);
}

/* dl_reachability - what the leg's last connection says of its next hop: a greeting
 * (fresh or on a cached connection) is an answer; no reply at all, for every recipient,
 * and nothing possibly delivered, is a server that did not answer */
static void dl_reachability(struct dl_leg *leg, const struct smtp_client_result *res)
{
    leg->reached = res->peer_greeting[0] != '\0';
    leg->unreachable = !leg->reached && res->nrcpt > 0;
    for (size_t i = 0; i < res->nrcpt; i++)
        if (res->rcpt[i].code != 0 || res->rcpt[i].maybe_delivered)
            leg->unreachable = 0;
}

/* dl_client_done - the SMTP/LMTP client's per-recipient answers; its
 * EHLO refreshes what the next hop is known to take */
static void dl_client_done(void *arg, const struct smtp_client_result *res)
{
    struct dl_leg *leg = arg;
    char relay[320], text[512];

    leg->client = NULL;
    dl_host_end(leg, res->nrcpt ? dest_classify(res->rcpt[0].code, res->rcpt[0].text) : DEST_OTHER);
    if (dl_mx_next(leg, res))
        return;
    dl_reachability(leg, res);
    nexthops_learn(leg->d->ctx.nexthops, &leg->route->target, res);
    dl_relay(leg, relay, sizeof(relay));
    dl_dest_end(leg, res->nrcpt ? dest_classify(res->rcpt[0].code, res->rcpt[0].text) : DEST_OTHER);
    for (size_t i = 0; i < leg->n && i < res->nrcpt; i++) {
        leg->rcpt[i]->t_ready = res->ready_at;
        if (!res->rcpt[i].maybe_delivered) {
            dl_set(leg->rcpt[i], res->rcpt[i].code, res->rcpt[i].text, relay);
            continue;
        }
        snprintf(text, sizeof(text), "4.4.2 %s: message may have been delivered",
                 res->rcpt[i].text);
        dl_set(leg->rcpt[i], 0, text, relay);
        leg->rcpt[i]->maybe = 1;
    }
    dl_leg_done(leg->d);
}

/* dl_needs_utf8 - the leg needs SMTPUTF8: MAIL had it and the sender, a
 * recipient or the header is not ASCII (an ASCII message goes without, so
 * that a next hop without SMTPUTF8 still takes it) */
static int dl_needs_utf8(const struct dl_leg *leg)
{
    const struct delivery *d = leg->d;

    if (!d->env.smtputf8)
        return 0;
    if (eightbit_str(d->env.sender))
        return 1;
    for (size_t i = 0; i < leg->n; i++)
        if (eightbit_str(leg->addrs[i]))
            return 1;
    /* a read error counts as "needs it": refusal beats corruption */
    return eightbit_header_fd(d->body_fd, d->body_off, d->body_len) != 0;
}

/* dl_max_uses - messages over one connection: the stricter of the domain's and the
 * MX host's per_connection; 0 when neither limits it */
static unsigned dl_max_uses(const struct dl_leg *leg)
{
    unsigned a = leg->dest ? leg->dest->conf.per_connection : 0;
    unsigned b = leg->host_on ? leg->host->per_connection : 0;

    return a && b ? (a < b ? a : b) : a ? a : b;
}

/* dl_client_start - hand the leg's recipients to a new client connection */
void dl_client_start(struct dl_leg *leg)
{
    struct delivery *d = leg->d;
    const struct config *cfg = d->ctx.cfg;
    struct smtp_client_req req = {
        .lmtp = leg->route->target.kind == ROUTE_LMTP,
        .addrlen = leg->ra.addrlen,
        .helo = cfg->hostname,
        .sender = d->env.sender,
        .rcpts = leg->addrs,
        .nrcpt = leg->n,
        .body_fd = d->body_fd,
        .body_off = d->body_off,
        .body_len = d->body_len,
        .prepend = d->env.prepend,
        .prepend_len = d->env.prepend_len,
        .body_8bit = d->env.body_8bit,
        .smtputf8 = dl_needs_utf8(leg),
        .tls = d->ctx.conf.delivery.starttls || leg->mx ? d->ctx.client_tls : NULL,
        .connect_timeout = (int)d->ctx.conf.delivery.connect_timeout,
        .command_timeout = (int)d->ctx.conf.delivery.command_timeout,
        .data_timeout = (int)d->ctx.conf.delivery.data_timeout,
        .cache = d->ctx.conn_cache,
        .max_uses = dl_max_uses(leg),
        .done = dl_client_done,
        .arg = leg,
    };

    memcpy(&req.addr, &leg->ra.addr, sizeof(req.addr));
    leg->attempted = 1;
    if (leg->mx && leg->dest)
        dl_tls_policy(leg, &req);
    leg->client = smtp_client_start(d->ctx.base, &req);
    if (!leg->client)
        dl_leg_fail(leg, 0, "cannot start a delivery connection");
}

/* dl_resolved - on the loop: connect, or defer with the resolver's reason */
static void dl_resolved(void *arg, const struct relay_addr *ra)
{
    struct dl_leg *leg = arg;

    leg->resolving = NULL;
    if (ra != &leg->ra)
        leg->ra = *ra;
    if (ra->err) {
        dl_leg_fail(leg, 0, ra->text);
        return;
    }
    dl_client_start(leg);
}

/* dl_start_remote - SMTP or LMTP: literal address or UNIX socket at once,
 * a host name through relay/resolve (the thread pool) */
static void dl_start_remote(struct dl_leg *leg)
{
    const struct route_target *t = &leg->route->target;

    if (relay_target_addr(t, &leg->ra)) {
        dl_resolved(leg, &leg->ra);
        return;
    }
    leg->resolving = relay_resolve(leg->d->ctx.pool, t, dl_resolved, leg);
}

/* A maildir delivery of one recipient, run in the pool. */
struct dl_maildir {
    struct dl_leg *leg;
    struct dl_rcpt *r;
    const char *rcpt;
    int rc;
    int permanent;
    char err[256];
};

/* dl_maildir_work - in the pool: write the file into the canonical mailbox */
static void dl_maildir_work(void *arg)
{
    struct dl_maildir *m = arg;
    struct delivery *d = m->leg->d;
    char mailbox[NAME_MAX + 1];

    if (maildir_mailbox(m->rcpt, mailbox, sizeof(mailbox)) != MAILDIR_OK) {
        m->rc = -1;
        m->permanent = 1;
        snprintf(m->err, sizeof(m->err), "maildir: bad local part");
        return;
    }
    struct spool_body body = {d->body_fd, d->body_off, d->body_len, d->env.prepend,
                              d->env.prepend_len};

    m->rc = maildir_deliver(m->leg->route->target.path, mailbox, m->leg->route->create,
                            d->env.sender, m->rcpt, &body, m->err, sizeof(m->err), &m->permanent);
}

/* dl_maildir_done - on the loop: record the outcome */
static void dl_maildir_done(void *arg)
{
    struct dl_maildir *m = arg;
    struct dl_leg *leg = m->leg;
    char relay[320], text[512];

    if (dl_job_release(leg->d)) {
        free(m);
        return;
    }
    route_target_format(&leg->route->target, relay, sizeof(relay));
    m->r->t_ready = leg->d->t_started; /* no connection to make */
    if (m->rc == 0)
        dl_set(m->r, 250, "2.0.0 delivered to maildir", relay);
    else {
        snprintf(text, sizeof(text), "%s %s", m->permanent ? "5.2.0" : "4.2.0", m->err);
        dl_set(m->r, m->permanent ? 550 : 451, text, relay);
    }
    free(m);
    dl_leg_done(leg->d);
}

/* dl_start_maildir - one pool job per recipient; the leg ends with the last one */
static void dl_start_maildir(struct dl_leg *leg)
{
    struct delivery *d = leg->d;

    d->pending += (unsigned)leg->n - 1; /* each job ends one share of the leg */
    for (size_t i = 0; i < leg->n; i++) {
        struct dl_maildir *m = xcalloc(1, sizeof(*m));
        m->leg = leg;
        m->r = leg->rcpt[i];
        m->rcpt = leg->addrs[i];
        dl_submit(d, dl_maildir_work, dl_maildir_done, m);
    }
}

/* dl_domain - the domain part of a stored recipient */
static const char *dl_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

/* dl_group - recipients sharing a route become one leg (for route "mx": a route and a domain) */
static int dl_group(struct delivery *d)
{
    d->legs = xcalloc(d->nr ? d->nr : 1, sizeof(*d->legs));
    for (size_t i = 0; i < d->nr; i++) {
        const char *addr = d->env.rcpt[d->r[i].idx].addr;
        const struct routes_entry *rt = routes_find(d->ctx.routes, dl_domain(addr));
        struct dl_leg *leg = NULL;
        int by_domain = rt && rt->target.kind == ROUTE_MX;
        for (size_t j = 0; j < d->nlegs && !leg; j++)
            if (d->legs[j].route == rt &&
                (!by_domain || strcasecmp(d->legs[j].domain, dl_domain(addr)) == 0))
                leg = &d->legs[j];
        if (!leg) {
            leg = &d->legs[d->nlegs++];
            leg->d = d;
            leg->route = rt;
            leg->domain = dl_domain(addr);
            leg->rcpt = xcalloc(d->nr, sizeof(*leg->rcpt));
            leg->addrs = xcalloc(d->nr, sizeof(*leg->addrs));
        }
        leg->rcpt[leg->n] = &d->r[i];
        leg->addrs[leg->n++] = addr;
    }
    return 0;
}

/* dl_start_legs - every route at once; the +1 guard keeps finish from running mid-loop */
static void dl_start_legs(struct delivery *d)
{
    d->pending = (unsigned)d->nlegs + 1;
    for (size_t i = 0; i < d->nlegs; i++) {
        struct dl_leg *leg = &d->legs[i];
        if (!leg->route)
            dl_leg_fail(leg, 0, "4.3.5 no route for the recipient's domain");
        else if (leg->route->target.kind == ROUTE_MAILDIR)
            dl_start_maildir(leg);
        else if (leg->route->target.kind == ROUTE_MX)
            dl_start_mx(leg);
        else
            dl_start_remote(leg);
    }
    dl_leg_done(d);
}

/* dl_pending - collect the recipients still to deliver */
static int dl_pending(struct delivery *d)
{
    d->r = xcalloc(d->env.nrcpt ? d->env.nrcpt : 1, sizeof(*d->r));
    for (size_t i = 0; i < d->env.nrcpt; i++)
        if (d->env.rcpt[i].state == SPOOL_RCPT_PENDING)
            d->r[d->nr++].idx = i;
    return 0;
}

/* dl_expire - past the lifetime: every pending recipient fails with its last reason */
static void dl_expire(struct delivery *d)
{
    char text[512];

    for (size_t i = 0; i < d->nr; i++) {
        const char *last = d->env.rcpt[d->r[i].idx].last_text;
        snprintf(text, sizeof(text), "5.4.7 delivery time expired%s%s", last ? ": " : "",
                 last ? last : "");
        dl_set(&d->r[i], 0, text, "none");
        d->r[i].res = DL_BOUNCE;
    }
}

/* dl_not_started - see delivery_internal.h */
void dl_not_started(struct delivery *d, int err)
{
    d->out.not_started = err;
    d->done(d->arg, &d->out);
    delivery_free(d);
}

/* dl_begin - on the loop, the message loaded: ask the scheduler, start every route */
static void dl_begin(struct delivery *d)
{
    const struct delivery_ctx *ctx = &d->ctx;

    dl_pending(d);
    dl_group(d);
    d->starting = 1;
    d->t_started = clock_now_precise();
    d->primary = d->out.dest = dl_primary_dest(d);
    if (clock_now() - d->env.arrival < (time_t)ctx->conf.queue.lifetime && ctx->admit &&
        !ctx->admit(d->arg, d->primary)) {
        dl_not_started(d, EAGAIN); /* filed by the scheduler: no connection, no log line */
        return;
    }
    if (clock_now() - d->env.arrival >= (time_t)ctx->conf.queue.lifetime) {
        dl_expire(d);
        d->pending = 1;
        dl_leg_done(d);
    } else {
        dl_start_legs(d);
    }
    d->starting = 0;
}

/* dl_load_work - in the pool: read and check queue/ID and log/ID (a cold read
 * blocks this thread only) */
static void dl_load_work(void *arg)
{
    struct delivery *d = arg;

    d->load_rc = spool_load_quiet(d->ctx.spool, d->id, &d->env, &d->body_off, &d->body_len,
                                  &d->body_fd, d->verify, &d->load_why, &d->load_moved);
    d->load_err = errno;
}

/* dl_load_done - on the loop: the operator hears of a corrupt file even at shutdown */
static void dl_load_done(void *arg)
{
    struct delivery *d = arg;

    if (d->load_rc < 0 && d->load_err == EBADMSG)
        spool_corrupt_tell(d->ctx.spool, d->id, d->load_why, d->load_moved);
    if (dl_job_release(d))
        return;
    if (d->load_rc < 0)
        dl_not_started(d, d->load_err ? d->load_err : ENOENT);
    else
        dl_begin(d);
}

/* delivery_start - see delivery.h: the load goes to the pool, dl_begin follows */
struct delivery *delivery_start(const struct delivery_ctx *ctx, const char *id, int verify,
                                delivery_done_fn done, void *arg)
{
    struct delivery *d = xcalloc(1, sizeof(*d));

    d->ctx = *ctx;
    d->done = done;
    d->arg = arg;
    d->body_fd = -1;
    d->verify = verify;
    snprintf(d->id, sizeof(d->id), "%s", id);
    dl_submit(d, dl_load_work, dl_load_done, d);
    return d;
}

/* delivery_set_times - see delivery.h */
void delivery_set_times(struct delivery *d, double arrived, double queued)
{
    d->t_arrived = arrived;
    d->t_queued = queued;
}

/* delivery_cancel - shutdown: stop clients; pool jobs finish and then free d */
void delivery_cancel(struct delivery *d)
{
    d->cancelled = 1;
    for (size_t i = 0; i < d->nlegs; i++) {
        if (d->legs[i].client) {
            smtp_client_cancel(d->legs[i].client);
            d->legs[i].client = NULL;
        }
        relay_resolve_cancel(d->legs[i].resolving);
        d->legs[i].resolving = NULL;
        mx_cancel(d->legs[i].mxq);
        d->legs[i].mxq = NULL;
        if (d->legs[i].gate)
            evtimer_del(d->legs[i].gate);
        dl_dest_end(&d->legs[i], DEST_OTHER);
        dl_host_release(&d->legs[i]);
    }
    if (d->pool_jobs == 0)
        delivery_free(d);
}

/* dl_write_dsn - in the pool: queue a DSN to the sender listing the bounced recipients */
static int dl_write_dsn(struct delivery *d)
{
    const struct config *cfg = d->ctx.cfg;
    struct dsn_failure *f = xcalloc(d->nr, sizeof(*f));
    struct spool_rcpt to = {.addr = d->env.sender};
    struct spool_envelope env = {
        .arrival = clock_now(),
        .client_ip = "",
        .client_name = "",
        .helo = cfg->hostname,
        .sender = "",
        .is_bounce = 1,
        .nrcpt = 1,
        .rcpt = &to,
        .smtputf8 = d->env.smtputf8, /* the report may quote the original UTF-8 header */
    };
    struct spool_writer *w = NULL;
    size_t nf = 0, len = 0;
    char *msg = NULL;
    int rc = -1;

    if (!f)
        return -1;
    for (size_t i = 0; i < d->nr; i++)
        if (d->r[i].res == DL_BOUNCE)
            f[nf++] = (struct dsn_failure){
                .rcpt = d->env.rcpt[d->r[i].idx].addr, .code = d->r[i].code, .text = d->r[i].text};
    msg = dsn_build(cfg->hostname, &d->env, d->body_fd, d->body_off, d->body_len, f, nf,
                    env.arrival, &len);
    spool_new_id(env.id);
    if (msg && (w = spool_writer_begin(d->ctx.spool, &env)) != NULL &&
        spool_writer_write(w, msg, len) == 0 && spool_writer_commit(w) == 0) {
        memcpy(d->out.dsn_id, env.id, sizeof(env.id));
        rc = 0;
    }
    if (w)
        spool_writer_free(w);
    free(msg);
    free(f);
    return rc;
}

/* dl_record - in the pool: make each recipient's outcome durable in log/ID */
static void dl_record(struct delivery *d)
{
    for (size_t i = 0; i < d->nr; i++) {
        struct dl_rcpt *r = &d->r[i];
        unsigned idx = (unsigned)r->idx;
        if (r->res == DL_OK)
            spool_log(d->ctx.spool, d->id, idx, SPOOL_RCPT_DELIVERED, r->text);
        else if (r->res == DL_BOUNCE && (!d->make_dsn || d->dsn_ok))
            spool_log(d->ctx.spool, d->id, idx, SPOOL_RCPT_BOUNCED, r->text);
        else
            spool_log_deferred(d->ctx.spool, d->id, idx, r->text);
    }
}

/* dl_finish_work - in the pool: DSN first, then dequeue or record progress */
static void dl_finish_work(void *arg)
{
    struct delivery *d = arg;
    int all_final = 1;

    if (d->make_dsn)
        d->dsn_ok = dl_write_dsn(d) == 0;
    for (size_t i = 0; i < d->nr; i++)
        if (d->r[i].res == DL_DEFER || (d->r[i].res == DL_BOUNCE && d->make_dsn && !d->dsn_ok))
            all_final = 0;
    /* A finished message needs no log records: removing it is the record. */
    if (all_final && spool_remove(d->ctx.spool, d->id) == 0) {
        d->out.finished = 1;
        return;
    }
    dl_record(d);
}

/*
 * dl_delays - Postfix's delay=total and delays=a/b/c/d: before the queue
 * (arrival to durable in the queue: the client's transmission and our
 * commit), in the queue (waiting, retries included), connection set-up
 * (resolving, connecting, greeting, EHLO, STARTTLS; 0 on a cached
 * connection) and transmission (MAIL FROM to the outcome). A part that did
 * not happen counts 0; the parts add up to the total.
 */
static const char *dl_delays(const struct delivery *d, const struct dl_rcpt *r, char *dst,
                             size_t len)
{
    double arrived = d->t_arrived > 0 ? d->t_arrived : (double)d->env.arrival;
    double queued = d->t_queued > arrived ? d->t_queued : arrived;
    double started = d->t_started > queued ? d->t_started : queued;
    double done = r->t_done > started ? r->t_done : started;
    double ready = r->t_ready < started ? done : r->t_ready > done ? done : r->t_ready;

    snprintf(dst, len, "delay=%.2f delays=%.2f/%.2f/%.2f/%.2f", done - arrived, queued - arrived,
             started - queued, ready - started, done - ready);
    return dst;
}

/* dl_log_rcpt - one log line per recipient outcome */
static void dl_log_rcpt(const struct delivery *d, const struct dl_rcpt *r)
{
    char reply[sizeof(r->text) + 16], delays[128];
    const char *addr = log_qaddr(d->env.rcpt[r->idx].addr);

    metrics_inc(r->res == DL_OK      ? METRICS_DELIVERED
                : r->res == DL_DEFER ? METRICS_DEFERRED
                                     : METRICS_BOUNCED);
    if (r->res == DL_OK)
        metrics_observe(METRICS_DELIVERY_SECONDS, difftime(clock_now(), d->env.arrival));

    dl_delays(d, r, delays, sizeof(delays));
    if (r->maybe)
        log_warn("event=maybe_delivered id=%s rcpt=%s relay=%s reason=%s next_retry=%u "
                 "note=\"not re-sent before next_retry\"",
                 d->id, addr, log_q(r->relay), log_q(r->text), d->out.next_retry);
    if (r->res == DL_OK) {
        snprintf(reply, sizeof(reply), "%d %s", r->code, r->text);
        log_info("event=delivered id=%s rcpt=%s relay=%s reply=%s %s", d->id, addr, log_q(r->relay),
                 log_q(reply), delays);
    } else if (r->res == DL_DEFER)
        log_info("event=deferred id=%s rcpt=%s relay=%s reason=%s next_retry=%u %s", d->id, addr,
                 log_q(r->relay), log_q(r->text), d->out.next_retry, delays);
    else
        log_info("event=bounced id=%s rcpt=%s relay=%s reason=%s %s dsn=%s", d->id, addr,
                 log_q(r->relay), log_q(r->text), delays,
                 d->out.dsn_id[0] ? d->out.dsn_id : d->dsn_note);
}

/* dl_finish_done - on the loop: log, tell the queue, free */
static void dl_finish_done(void *arg)
{
    struct delivery *d = arg;

    if (dl_job_release(d))
        return;
    if (d->make_dsn && !d->dsn_ok)
        d->dsn_note = "failed";
    if (d->nlegs && d->primary) {
        d->out.reached = d->legs[0].reached;
        d->out.unreachable = d->legs[0].unreachable;
    }
    for (size_t i = 0; i < d->nr; i++)
        dl_log_rcpt(d, &d->r[i]);
    if (d->out.finished)
        log_info("event=removed id=%s reason=done", d->id);
    d->done(d->arg, &d->out);
    delivery_free(d);
}

/* dl_backoff - retry_min doubling per attempt, capped at retry_max */
static unsigned dl_backoff(const struct queueconf_queue *qc, unsigned attempts)
{
    unsigned long long t = qc->retry_min;

    for (unsigned i = 1; i < attempts && t < qc->retry_max; i++)
        t *= 2;
    return t > qc->retry_max ? qc->retry_max : (unsigned)t;
}

/* dl_decide - lifetime turns deferrals into bounces; 1 when a DSN is due (the bounce
 * limiter has the last word) */
static int dl_decide(struct delivery *d, time_t now)
{
    unsigned maxatt = 0;
    int bounced = 0;
    char text[512];

    for (size_t i = 0; i < d->nr; i++) {
        struct dl_rcpt *r = &d->r[i];
        if (d->env.rcpt[r->idx].attempts > maxatt)
            maxatt = d->env.rcpt[r->idx].attempts;
        if (r->res == DL_DEFER && now - d->env.arrival >= (time_t)d->ctx.conf.queue.lifetime) {
            snprintf(text, sizeof(text), "5.4.7 delivery time expired: %s", r->text);
            snprintf(r->text, sizeof(r->text), "%s", text);
            r->res = DL_BOUNCE;
        }
        bounced |= r->res == DL_BOUNCE;
    }
    d->out.attempts = maxatt + 1;
    d->out.next_retry = dl_backoff(&d->ctx.conf.queue, d->out.attempts);
    for (size_t i = 0; i < d->nr; i++)
        if (d->r[i].maybe && d->r[i].res == DL_DEFER) /* the next hop may hold it: wait long */
            d->out.next_retry = d->ctx.conf.queue.retry_max;
    d->dsn_note = "none";
    return bounced && d->env.sender[0] && !d->env.is_bounce;
}

/* dl_all_delivered_or_final - nothing deferred: the message can leave the queue */
static int dl_all_final(const struct delivery *d)
{
    for (size_t i = 0; i < d->nr; i++)
        if (d->r[i].res == DL_DEFER)
            return 0;
    return 1;
}

/*
 * dl_finish_decided - every leg answered, the DSN decided. A message that is
 * done and needs no DSN leaves the queue at once, on the loop: the unlink
 * needs no sync, and the sooner it happens after the next hop's 250, the
 * smaller the window in which a crash would deliver it twice. Everything
 * else is written in the pool.
 */
static void dl_finish_decided(struct delivery *d)
{
    if (!d->starting && !d->make_dsn && dl_all_final(d)) {
        d->pool_jobs++; /* dl_finish_done releases it */
        dl_finish_work(d);
        dl_finish_done(d);
        return;
    }
    dl_submit(d, dl_finish_work, dl_finish_done, d);
}

/* dl_on_bouncelimit - the limiter's answer; it held a reference like a pool job */
static void dl_on_bouncelimit(void *arg, enum bouncelimit_verdict v)
{
    struct delivery *d = arg;

    if (dl_job_release(d))
        return;
    d->make_dsn = v == BOUNCELIMIT_ALLOW;
    if (v != BOUNCELIMIT_ALLOW)
        d->dsn_note = v == BOUNCELIMIT_DOMAIN ? "suppressed-domain" : "suppressed";
    dl_finish_decided(d);
}

/* delivery_finish - decide, ask the bounce limiter when a DSN is due, then finish */
static void delivery_finish(struct delivery *d)
{
    int rc;

    if (!dl_decide(d, clock_now())) {
        dl_finish_decided(d);
        return;
    }
    d->pool_jobs++; /* the limiter's answer releases it, also after delivery_cancel */
    rc = bouncelimit_check(d->ctx.bounces, d->env.sender, dl_on_bouncelimit, d);
    if (rc == 0)
        return;
    d->pool_jobs--;
    d->make_dsn = 1; /* no store, or it cannot take the question: the DSN goes */
    dl_finish_decided(d);
}
