/*
 * ratelimit.c - limits per client network: concurrent connections,
 * connections, messages and recipients per interval.
 *
 * A client's network is its address masked to ipv4_prefix / ipv6_prefix
 * (32 / 128 by default: each address on its own). Counts per interval use
 * fixed windows: the counter "rl:<kind>:<network>/<prefix>:<window>" with
 * window = now / interval, created by store_incr with a TTL of one
 * interval, so that the N+1th event of a window is refused and the count
 * starts again at the next window. Concurrent connections are counted in
 * memory: +1 when the session reaches CONNECT, -1 when it ends
 * (policy_disconnect).
 *
 * Over a limit: CONNECT 421 4.7.0 (the session closes), MAIL and RCPT
 * 451 4.7.1; with `tarpit` seconds the answer waits that long first, which
 * slows a flooding client down at no cost to us. A failing store never
 * refuses mail: the check then has no opinion.
 */
#include "policy/checks.h"
#include "policy/storefail.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define RL_BUCKETS 1024        /* hash buckets of the concurrency tables */
#define RL_MAX_SESSIONS 100000 /* sessions tracked at once; beyond, concurrency is not limited */
#define RL_NET_MAX 64          /* "network/prefix" */
#define RL_MAX_INTERVAL 86400
#define RL_MAX_TARPIT 60

/* A client network with live sessions. */
struct rl_net {
    struct rl_net *next;
    unsigned count;
    char net[RL_NET_MAX];
};

/* A session counted at CONNECT, found again at disconnect by its client struct. */
struct rl_sess {
    struct rl_sess *next;
    const struct policy_client *cl;
    struct rl_net *net;
};

struct ratelimit {
    struct event_base *base;
    struct store *store;
    unsigned interval, concurrent, connections, messages, recipients, tarpit;
    int v4prefix, v6prefix;
    struct rl_net *nets[RL_BUCKETS];
    struct rl_sess *sess[RL_BUCKETS];
    size_t nsess;
};

/* What is counted, and what the client is told when it is over. */
struct rl_kind {
    const char *name; /* in keys, reasons and logs */
    int code;
    const char *status;
    const char *text;
};

static const struct rl_kind rl_concurrent = {"concurrent", 421, "4.7.0",
                                             "Too many connections from your network, try later"};
static const struct rl_kind rl_connections = {"connections", 421, "4.7.0",
                                              "Too many connections from your network, try later"};
static const struct rl_kind rl_messages = {"messages", 451, "4.7.1",
                                           "Message rate limit exceeded, try again later"};
static const struct rl_kind rl_recipients = {"recipients", 451, "4.7.1",
                                             "Recipient rate limit exceeded"};

/* One pending decision: a store increment, then maybe a tarpit. */
struct rl_job {
    struct ratelimit *rl;
    struct policy_job *job;
    const struct rl_kind *kind;
    unsigned limit;
    int cancelled;       /* store phase: the session went away, the callback frees us */
    struct event *timer; /* tarpit phase */
    struct policy_verdict verdict;
    char net[RL_NET_MAX];
};

/* rl_now - the check's notion of now */
static time_t rl_now(void)
{
    return clock_now();
}

/* rl_network - "192.0.2.7/32": the client's address masked to the configured prefix */
static int rl_network(const struct ratelimit *rl, const struct sockaddr *sa, char *out, size_t len)
{
    return sockaddr_network(sa, rl->v4prefix, rl->v6prefix, out, len);
}

/* rl_hash_str - FNV-1a of a network */
static size_t rl_hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % RL_BUCKETS;
}

/* rl_hash_ptr - a session's bucket by its client struct's address */
static size_t rl_hash_ptr(const void *p)
{
    uintptr_t v = (uintptr_t)p;

    return (size_t)((v >> 4) ^ (v >> 14)) % RL_BUCKETS;
}

/* rl_sess_find - the link that points at cl's session, or at the NULL end */
static struct rl_sess **rl_sess_find(struct ratelimit *rl, const struct policy_client *cl)
{
    struct rl_sess **pp = &rl->sess[rl_hash_ptr(cl)];

    while (*pp && (*pp)->cl != cl)
        pp = &(*pp)->next;
    return pp;
}

/* rl_release - a counted session ends: one fewer for its network */
static void rl_release(struct ratelimit *rl, struct rl_sess **link)
{
    struct rl_sess *s = *link;
    struct rl_net **pp = &rl->nets[rl_hash_str(s->net->net)];

    *link = s->next;
    rl->nsess--;
    if (--s->net->count == 0) {
        while (*pp != s->net)
            pp = &(*pp)->next;
        *pp = s->net->next;
        free(s->net);
    }
    free(s);
}

/* rl_net_get - the entry of net, created with count 0 */
static struct rl_net *rl_net_get(struct ratelimit *rl, const char *net)
{
    size_t b = rl_hash_str(net);
    struct rl_net *n;

    for (n = rl->nets[b]; n; n = n->next)
        if (strcmp(n->net, net) == 0)
            return n;
    n = xcalloc(1, sizeof(*n));
    snprintf(n->net, sizeof(n->net), "%s", net);
    n->next = rl->nets[b];
    rl->nets[b] = n;
    return n;
}

/* rl_connect - count cl's session in its network; the network's count, 0 when untracked */
static unsigned rl_connect(struct ratelimit *rl, const struct policy_client *cl, const char *net)
{
    struct rl_sess **link = rl_sess_find(rl, cl), *s;
    struct rl_net *n;

    if (*link)
        rl_release(rl, link); /* a session that never said goodbye left this address to us */
    if (rl->nsess >= RL_MAX_SESSIONS)
        return 0;
    s = xcalloc(1, sizeof(*s));
    n = rl_net_get(rl, net);
    n->count++;
    s->cl = cl;
    s->net = n;
    s->next = rl->sess[rl_hash_ptr(cl)];
    rl->sess[rl_hash_ptr(cl)] = s;
    rl->nsess++;
    return n->count;
}

/* rl_job_free - the job's timer and memory */
static void rl_job_free(struct rl_job *j)
{
    if (j->timer)
        event_free(j->timer);
    free(j);
}

/* rl_finish - give the verdict and forget the job */
static void rl_finish(struct rl_job *j)
{
    struct policy_job *job = j->job;
    struct policy_verdict v = j->verdict;

    policy_job_set_data(job, NULL);
    rl_job_free(j);
    policy_job_done(job, &v);
}

/* rl_on_tarpit - the wait is over: now the refusal */
static void rl_on_tarpit(evutil_socket_t fd, short what, void *arg)
{
    rl_finish(arg);
}

/* rl_over - the client is over a limit: refuse, after the tarpit if one is set */
static void rl_over(struct rl_job *j, long long count)
{
    const struct rl_kind *k = j->kind;
    struct timeval tv = {(time_t)j->rl->tarpit, 0};
    char reason[sizeof(j->verdict.reason)];

    if (k == &rl_concurrent)
        snprintf(reason, sizeof(reason), "%s %lld/%u net=%s", k->name, count, j->limit, j->net);
    else
        snprintf(reason, sizeof(reason), "%s %lld/%u per %us net=%s", k->name, count, j->limit,
                 j->rl->interval, j->net);
    policy_verdict_set(&j->verdict, POLICY_TEMPFAIL, k->code, k->status, reason, "%s", k->text);
    if (j->rl->tarpit > 0) {
        j->timer = evtimer_new(j->rl->base, rl_on_tarpit, j);
        if (j->timer && evtimer_add(j->timer, &tv) == 0)
            return;
        log_warn("event=ratelimit_tarpit_error net=%s", j->net); /* refuse without the wait */
    }
    rl_finish(j);
}

/* rl_on_incr - the window's count, this event included */
static void rl_on_incr(void *arg, int status, int64_t value)
{
    struct rl_job *j = arg;

    if (j->cancelled) {
        rl_job_free(j);
        return;
    }
    if (status == STORE_EDOWN) { /* logged once by the store; on_error decides */
        storefail_verdict(j->rl->store, &j->verdict);
        rl_finish(j);
        return;
    }
    if (status != STORE_OK) {
        char q[64];
        log_warn("event=ratelimit_store_error kind=%s net=%s status=%s", j->kind->name, j->net,
                 log_quote(q, sizeof(q), store_strerror(status)));
        rl_finish(j); /* the verdict is still DUNNO: fail open */
        return;
    }
    if (value > (int64_t)j->limit)
        rl_over(j, (long long)value);
    else
        rl_finish(j);
}

/* rl_count - one more event of kind in this window; the store's answer decides */
static void rl_count(struct rl_job *j)
{
    const struct ratelimit *rl = j->rl;
    char key[128];
    int n = snprintf(key, sizeof(key), "rl:%s:%s:%lld", j->kind->name, j->net,
                     (long long)(rl_now() / (time_t)rl->interval));

    if (store_incr(rl->store, key, (size_t)n, 1, rl->interval, rl_on_incr, j) < 0) {
        char q[64];
        log_warn("event=ratelimit_store_error kind=%s net=%s status=%s", j->kind->name, j->net,
                 log_quote(q, sizeof(q), strerror(errno)));
        rl_finish(j);
    }
}

/* rl_job_new - a job for kind with limit, verdict DUNNO until decided */
static struct rl_job *rl_job_new(struct ratelimit *rl, struct policy_job *job, const char *net,
                                 const struct rl_kind *kind, unsigned limit)
{
    struct rl_job *j = xcalloc(1, sizeof(*j));

    j->rl = rl;
    j->job = job;
    j->kind = kind;
    j->limit = limit;
    policy_verdict_dunno(&j->verdict);
    snprintf(j->net, sizeof(j->net), "%s", net);
    policy_job_set_data(job, j);
    return j;
}

/* rl_stage_kind - the windowed limit a stage counts, with its limit (0: none) */
static const struct rl_kind *rl_stage_kind(const struct ratelimit *rl, enum policy_stage stage,
                                           unsigned *limit)
{
    switch (stage) {
    case POLICY_CONNECT:
        *limit = rl->connections;
        return &rl_connections;
    case POLICY_MAIL:
        *limit = rl->messages;
        return &rl_messages;
    case POLICY_RCPT:
        *limit = rl->recipients;
        return &rl_recipients;
    default:
        *limit = 0;
        return NULL;
    }
}

/* rl_start - judge one limit: over already (count > 0), or ask the store for the window */
static void rl_start(struct ratelimit *rl, struct policy_job *job, const char *net,
                     const struct rl_kind *kind, unsigned limit, unsigned count)
{
    struct rl_job *j = rl_job_new(rl, job, net, kind, limit);

    if (count > 0) {
        rl_over(j, count);
    } else {
        rl_count(j);
    }
}

/* ratelimit_run - concurrency at CONNECT, then the stage's windowed count */
static void ratelimit_run(void *state, struct policy_job *job, enum policy_stage stage,
                          struct policy_client *cl)
{
    struct ratelimit *rl = state;
    char net[RL_NET_MAX];
    unsigned limit, open;
    const struct rl_kind *kind = rl_stage_kind(rl, stage, &limit);
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    if (rl_network(rl, (const struct sockaddr *)&cl->addr, net, sizeof(net)) < 0) {
        policy_job_done(job, &v); /* not an IP client: nothing to count */
        return;
    }
    if (stage == POLICY_CONNECT && rl->concurrent > 0) {
        open = rl_connect(rl, cl, net);
        if (open > rl->concurrent) {
            rl_start(rl, job, net, &rl_concurrent, rl->concurrent, open);
            return;
        }
    }
    if (limit > 0)
        rl_start(rl, job, net, kind, limit, 0);
    else
        policy_job_done(job, &v);
}

/* ratelimit_cancel - the session is gone: stop the tarpit, or orphan the store callback */
static void ratelimit_cancel(void *state, struct policy_job *job)
{
    struct rl_job *j = policy_job_data(job);

    policy_job_set_data(job, NULL);
    if (!j)
        return;
    if (j->timer)
        rl_job_free(j);
    else
        j->cancelled = 1;
}

/* ratelimit_disconnect - the session ends: its connection no longer counts */
static void ratelimit_disconnect(void *state, struct policy_client *cl)
{
    struct ratelimit *rl = state;
    struct rl_sess **link = rl_sess_find(rl, cl);

    if (*link)
        rl_release(rl, link);
}

/* ratelimit_free - the concurrency tables and the configuration */
static void ratelimit_free(void *state)
{
    struct ratelimit *rl = state;

    if (!rl)
        return;
    for (size_t b = 0; b < RL_BUCKETS; b++)
        while (rl->sess[b])
            rl_release(rl, &rl->sess[b]);
    free(rl);
}

static cfg_opt_t rl_opts[] = {
    CFG_INT("interval", 60, CFGF_NONE),
    CFG_INT("concurrent", 0, CFGF_NONE), /* 0: off; per client address or network */
    CFG_INT("connections", 0, CFGF_NONE),
    CFG_INT("messages", 0, CFGF_NONE),
    CFG_INT("recipients", 0, CFGF_NONE),
    CFG_INT("ipv4_prefix", 32, CFGF_NONE),
    CFG_INT("ipv6_prefix", 128, CFGF_NONE),
    CFG_INT("tarpit", 0, CFGF_NONE), /* seconds to wait before a limit reply */
    CFG_END(),
};

static const struct config_bound rl_bounds[] = {
    {"interval", 1, RL_MAX_INTERVAL}, {"concurrent", 0, 1000000},   {"connections", 0, 100000000},
    {"messages", 0, 100000000},       {"recipients", 0, 100000000}, {"ipv4_prefix", 8, 32},
    {"ipv6_prefix", 16, 128},         {"tarpit", 0, RL_MAX_TARPIT}, {NULL, 0, 0},
};

static const struct config_section rl_section = {
    .name = "ratelimit",
    .opts = rl_opts,
    .bounds = rl_bounds,
};

/* rl_options - the section, checked by config_load */
static void rl_options(cfg_t *sec, struct ratelimit *rl)
{
    rl->interval = (unsigned)cfg_getint(sec, "interval");
    rl->concurrent = (unsigned)cfg_getint(sec, "concurrent");
    rl->connections = (unsigned)cfg_getint(sec, "connections");
    rl->messages = (unsigned)cfg_getint(sec, "messages");
    rl->recipients = (unsigned)cfg_getint(sec, "recipients");
    rl->v4prefix = (int)cfg_getint(sec, "ipv4_prefix");
    rl->v6prefix = (int)cfg_getint(sec, "ipv6_prefix");
    rl->tarpit = (unsigned)cfg_getint(sec, "tarpit");
}

/* ratelimit_init - the ratelimit section; a store when a windowed limit is set */
static int ratelimit_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "ratelimit");
    struct ratelimit *rl;

    if (!sec) {
        snprintf(err, errlen, "%s:0: ratelimit: no ratelimit section", env->cfg->path);
        return -1;
    }
    rl = xcalloc(1, sizeof(*rl));
    rl->base = env->base;
    rl->store = env->store;
    rl_options(sec, rl);
    if (!rl->store && !env->checking && (rl->connections || rl->messages || rl->recipients)) {
        snprintf(err, errlen,
                 "%s:%d: ratelimit: connections, messages and recipients need a state store",
                 env->cfg->path, sec->line);
        free(rl);
        return -1;
    }
    *state = rl;
    return 0;
}

const struct policy_check_ops policy_check_ratelimit = {
    .name = "ratelimit",
    .stages = POLICY_STAGE(POLICY_CONNECT) | POLICY_STAGE(POLICY_MAIL) | POLICY_STAGE(POLICY_RCPT),
    .init = ratelimit_init,
    .run = ratelimit_run,
    .cancel = ratelimit_cancel,
    .reload = NULL,
    .free = ratelimit_free,
    .disconnect = ratelimit_disconnect,
    .section = &rl_section,
};
