/* session_policy.c - the session's side of the policy pipeline: FCrDNS, stages, refusals */
#include "smtp/session_internal.h"

#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "policy/stats.h"
#include "mail/address.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"

/* session_refuse_log - one reject line naming the check, its reason and the envelope */
static void session_refuse_log(struct session *s, const char *stage, const struct policy_verdict *v)
{
    char helo[LOG_QUOTE_MAX + 8], from[LOG_QUOTE_MAX + 8], rcpt[LOG_QUOTE_MAX + 8];

    helo[0] = from[0] = rcpt[0] = '\0';
    if (s->helo)
        snprintf(helo, sizeof(helo), " helo=%s", log_q(s->helo));
    if (s->tx)
        snprintf(from, sizeof(from), " from=%s", log_qaddr(s->tx->sender));
    if (s->pending_rcpt)
        snprintf(rcpt, sizeof(rcpt), " rcpt=%s", log_qaddr(s->pending_rcpt));
    log_info("event=reject sid=%s client=%s stage=%s code=%d status=%s check=%s reason=%s "
             "text=%s%s%s%s",
             s->sid, s->ip, stage, v->code, v->status, v->check ? v->check : "-", log_q(v->reason),
             log_q(v->text), helo, from, rcpt);
}

/* session_mechanism - the name a refusal is counted under; S25R-flagged greylisting is its own */
static const char *session_mechanism(const struct session *s, const struct policy_verdict *v)
{
    if (v->check && strcmp(v->check, "greylist") == 0 && s->cl.suspicious)
        return "s25r+greylist";
    return v->check ? v->check : "policy";
}

/* session_refuse - the verdict becomes the reply */
void session_refuse(struct session *s, const char *stage, const struct policy_verdict *v)
{
    session_refuse_log(s, stage, v);
    s->refused_by = session_mechanism(s, v);
    if (v->code == 421) {
        session_close(s, "policy", "421 %s %s", v->status, v->text);
        return;
    }
    session_reply(s, "%d %s %s", v->code, v->status, v->text);
    if (++s->nerrors >= s->gen->conf->limits.max_errors)
        session_close(s, "errors", "421 4.7.0 %s Error: too many errors", s->gen->cfg->hostname);
}

/* session_hold - connect and HELO refusals wait for RCPT (delayed reject); 421 is immediate */
void session_hold(struct session *s, const char *stage, const struct policy_verdict *v)
{
    if (v->action != POLICY_TEMPFAIL && v->action != POLICY_REJECT)
        return;
    if (v->code == 421) {
        session_refuse(s, stage, v);
        return;
    }
    if (!s->held) {
        s->held = xmalloc(sizeof(*s->held));
        *s->held = *v;
    }
}

/* stage_done - the pipeline answered: resume the command that waits */
static void stage_done(void *arg, const struct policy_verdict *v)
{
    struct session *s = arg;
    void (*next)(struct session *, const struct policy_verdict *) = s->policy_next;

    s->prun = NULL;
    s->policy_next = NULL;
    session_set_state(s, SESS_COMMAND);
    next(s, v);
    if (s->state == SESS_COMMAND)
        session_process(s);
}

/* session_run_stage - pause input, run the stage, continue in next */
void session_run_stage(struct session *s, enum policy_stage stage,
                       void (*next)(struct session *s, const struct policy_verdict *v))
{
    struct policy_verdict dunno;

    if (!policy_has_stage(s->chain, stage)) {
        policy_verdict_dunno(&dunno);
        next(s, &dunno);
        return;
    }
    s->policy_next = next;
    session_set_state(s, SESS_POLICY);
    s->prun = policy_start(s->chain, stage, &s->cl, stage_done, s);
    if (!s->prun) {
        session_set_state(s, SESS_COMMAND);
        s->policy_next = NULL;
        policy_verdict_dunno(&dunno);
        next(s, &dunno); /* out of memory: no opinion rather than no service */
    }
}

/* connect_done - connect-stage verdict: held, or 421 now; then the greeting may go */
static void connect_done(void *arg, const struct policy_verdict *v)
{
    struct session *s = arg;

    s->prun = NULL;
    session_hold(s, "connect", v);
    if (s->state != SESS_CLOSING)
        session_greet_ready(s, SESSION_WAIT_CHECKS);
}

/* connect_stage - the connect checks, once the client's name is known */
static void connect_stage(struct session *s)
{
    if (!policy_has_stage(s->chain, POLICY_CONNECT) ||
        !(s->prun = policy_start(s->chain, POLICY_CONNECT, &s->cl, connect_done, s)))
        session_greet_ready(s, SESSION_WAIT_CHECKS);
}

/* rdns_state - what FCrDNS found, in the pipeline's terms */
static enum policy_rdns rdns_state(enum dns_status st)
{
    switch (st) {
    case DNS_OK:
        return RDNS_CONFIRMED;
    case DNS_NXDOMAIN:
        return RDNS_NONE;
    case DNS_NODATA:
        return RDNS_UNCONFIRMED;
    default:
        return RDNS_TEMPFAIL;
    }
}

/* rdns_done - remember the name; logs and the Received header use it */
static void rdns_done(enum dns_status st, const char *name, const char *ptr, void *arg)
{
    struct session *s = arg;

    s->rdns_q = NULL;
    s->cl.rdns = rdns_state(st);
    if (name)
        s->cl.rdns_name = s->rdns_name = xstrdup(name);
    if (ptr)
        s->cl.ptr_name = s->ptr_name = xstrdup(ptr);
    log_info("event=rdns sid=%s client=%s status=%s name=%s ptr=%s", s->sid, s->ip,
             dns_status_str(st), s->rdns_name ? log_q(s->rdns_name) : "unknown",
             s->ptr_name ? log_q(s->ptr_name) : "-");
    connect_stage(s);
}

/* session_connect_checks - start FCrDNS (if a resolver exists) and the connect checks */
void session_connect_checks(struct session *s)
{
    s->chain = policy_chain_for(s->gen->policy, s->listen->name);
    memcpy(&s->cl.addr, &s->peer, sizeof(s->cl.addr));
    snprintf(s->cl.ip, sizeof(s->cl.ip), "%s", s->ip);
    s->cl.listener = s->listen->name;
    s->cl.rdns = RDNS_UNCHECKED;
    stats_count(s->srv->stats, "connections");
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    if (s->gen->dns &&
        (s->rdns_q = dns_fcrdns(s->gen->dns, (struct sockaddr *)&s->peer, rdns_done, s)))
        return;
    connect_stage(s);
}

/* session_policy_end - nothing may call back into a freed session; count how it ended */
void session_policy_end(struct session *s)
{
    char counter[96];

    if (s->rdns_q)
        dns_cancel(s->rdns_q);
    if (s->prun)
        policy_cancel(s->prun);
    session_mx_cancel(s);
    s->rdns_q = NULL;
    s->prun = NULL;
    if (s->chain) /* checks that count open sessions (ratelimit concurrent) let go */
        policy_disconnect(s->chain, &s->cl);
    if (s->started.tv_sec || s->started.tv_nsec) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        metrics_observe(METRICS_SESSION_SECONDS, (double)(now.tv_sec - s->started.tv_sec) +
                                                     (now.tv_nsec - s->started.tv_nsec) / 1e9);
    }
    if (s->nmessages == 0 && s->refused_by) {
        stats_count(s->srv->stats, "stopped");
        snprintf(counter, sizeof(counter), "stopped.%s", s->refused_by);
        stats_count(s->srv->stats, counter);
    }
    free(s->rdns_name);
    free(s->ptr_name);
    free(s->pending_rcpt);
    free(s->cl.rcpt_rewrite);
    free(s->cl.sender_rewrite);
    free(s->cl.add_headers);
}
