/*
 * harvest.c - the "harvest" check: a client that tries many unknown
 * recipients is harvesting addresses (a directory harvest attack). It is
 * slowed down, then refused and blocked.
 *
 * Configuration:
 *   harvest { threshold = 10  window = 600  tarpit = 1  block = 600 }
 *
 * The recipients check counts every unknown recipient it refuses in the
 * store counter "hv:n:<client ip>", which lives `window` seconds from the
 * first one (a fixed window). Recipients are judged in canonical form
 * (mail/address.h), so "alice"@ or ALICE@ of a listed alice@ never counts.
 * This check reads it before the recipients check runs (list "harvest"
 * before "recipients" in `checks`):
 *
 *   count < threshold               DUNNO
 *   threshold <= count < 2*threshold  tarpit: the RCPT reply waits `tarpit`
 *                                   seconds, then SCORE 0 (counted as
 *                                   harvest.score; nothing else changes, the
 *                                   later checks decide), reason "tarpit count N/T"
 *   count >= 2*threshold            the block "hv:b:<client ip>" (for IPv6
 *                                   "hv:b:<network>/<limits.ipv6_prefix>") is set for
 *                                   `block` seconds and the client gets
 *                                   421 4.7.0 Too many unknown recipients from
 *                                   your address, try later (the session
 *                                   closes), reason "count N/T blocked"
 *
 * At CONNECT a blocked client gets the same 421 at once, reason "blocked".
 * The block is in the store, so it outlives a restart of the daemon. A
 * failing store never refuses mail: the check then has no opinion.
 * Statistics: harvest.score (tarpitted replies), harvest.tempfail (blocks).
 */
#include "policy/checks.h"
#include "policy/storefail.h"

#include <confuse.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define HV_TARPIT_MAX 60      /* seconds: beyond, clients time out rather than slow down */
#define HV_TIME_MAX 31536000L /* a window or block of at most a year */
#define HV_THRESHOLD_MAX 1000000L
#define HV_KEY_MAX 96

#define HV_TEXT "Too many unknown recipients from your address, try later"

struct harvest {
    struct event_base *base;
    struct store *store;
    unsigned threshold, window, tarpit, block;
    int v6prefix; /* limits.ipv6_prefix: an IPv6 block covers the client's whole network */
};

/* One pending decision: a store read (or the block's write), then maybe a tarpit. */
struct hv_job {
    struct harvest *h;
    struct policy_job *job;
    int store_pending;   /* a store callback will come ... */
    int cancelled;       /* ... and must only free the job */
    struct event *timer; /* the tarpit */
    struct policy_verdict v;
    char ip[64];
    char blockee[64]; /* the block's key: the IPv4 address, or the IPv6 network */
};

/* hv_job_free - the timer and the memory */
static void hv_job_free(struct hv_job *j)
{
    if (j->timer)
        event_free(j->timer);
    free(j);
}

/* hv_finish - give the verdict and forget the job */
static void hv_finish(struct hv_job *j)
{
    struct policy_job *job = j->job;
    struct policy_verdict v = j->v;

    policy_job_set_data(job, NULL);
    hv_job_free(j);
    policy_job_done(job, &v);
}

/* hv_key - "hv:<kind>:<ip>" into key; its length, or -1 */
static int hv_key(char *key, const char *kind, const char *ip)
{
    int n = snprintf(key, HV_KEY_MAX, "hv:%s:%s", kind, ip);

    return n > 0 && n < HV_KEY_MAX ? n : -1;
}

/* hv_store_warn - a store operation failed: no opinion rather than a refusal */
static void hv_store_warn(const struct hv_job *j, const char *op, const char *why)
{
    char q[128];

    log_warn("event=store_error check=harvest op=%s client=%s error=%s", op, j->ip,
             log_quote(q, sizeof(q), why));
}

/* hv_on_block_get - CONNECT: is the client blocked */
static void hv_on_block_get(void *arg, int status, const void *val, size_t vlen)
{
    struct hv_job *j = arg;

    if (j->cancelled) {
        hv_job_free(j);
        return;
    }
    j->store_pending = 0;
    if (status == STORE_OK)
        policy_verdict_set(&j->v, POLICY_TEMPFAIL, 421, "4.7.0", "blocked", HV_TEXT);
    else if (status == STORE_EDOWN) /* logged once by the store */
        storefail_verdict(j->h->store, &j->v);
    else if (status != STORE_NOTFOUND)
        hv_store_warn(j, "get", store_strerror(status));
    hv_finish(j);
}

/* hv_on_tarpit - the wait is over: the reply may go */
static void hv_on_tarpit(evutil_socket_t fd, short what, void *arg)
{
    hv_finish(arg);
}

/* hv_tarpit - slow this reply down by the tarpit, then no opinion (SCORE 0) */
static void hv_tarpit(struct hv_job *j, int64_t count)
{
    struct timeval tv = {(time_t)j->h->tarpit, 0};
    char reason[64];

    snprintf(reason, sizeof(reason), "tarpit count %lld/%u", (long long)count, j->h->threshold);
    policy_verdict_set(&j->v, POLICY_SCORE, 0, "", reason, "%s", "");
    if (j->h->tarpit > 0) {
        j->timer = evtimer_new(j->h->base, hv_on_tarpit, j);
        if (j->timer && evtimer_add(j->timer, &tv) == 0)
            return;
        log_warn("event=harvest_tarpit_error client=%s", j->ip); /* answer without the wait */
    }
    hv_finish(j);
}

/* hv_on_block_set - the block is stored: refuse and close */
static void hv_on_block_set(void *arg, int status)
{
    struct hv_job *j = arg;

    if (j->cancelled) {
        hv_job_free(j);
        return;
    }
    j->store_pending = 0;
    if (status != STORE_OK && status != STORE_EDOWN)
        hv_store_warn(j, "set", store_strerror(status)); /* refuse this session all the same */
    hv_finish(j);
}

/* hv_block - count >= 2 * threshold: block the client for `block` seconds, 421 */
static void hv_block(struct hv_job *j, int64_t count)
{
    char key[HV_KEY_MAX], reason[64];
    int n = hv_key(key, "b", j->blockee);

    snprintf(reason, sizeof(reason), "count %lld/%u blocked", (long long)count, j->h->threshold);
    policy_verdict_set(&j->v, POLICY_TEMPFAIL, 421, "4.7.0", reason, HV_TEXT);
    log_info("event=harvest_block client=%s count=%lld threshold=%u block=%u", j->ip,
             (long long)count, j->h->threshold, j->h->block);
    j->store_pending = 1;
    if (n < 0 ||
        store_set(j->h->store, key, (size_t)n, "1", 1, j->h->block, hv_on_block_set, j) < 0) {
        j->store_pending = 0;
        hv_store_warn(j, "set", n < 0 ? "key too long" : strerror(errno));
        hv_finish(j);
    }
}

/* hv_on_count - RCPT: the client's unknown recipients in the window */
static void hv_on_count(void *arg, int status, const void *val, size_t vlen)
{
    struct hv_job *j = arg;
    int64_t count = 0;

    if (j->cancelled) {
        hv_job_free(j);
        return;
    }
    j->store_pending = 0;
    if (status == STORE_OK && store_counter_decode(val, vlen, &count) < 0)
        status = STORE_ETYPE;
    if (status == STORE_EDOWN) { /* logged once by the store */
        storefail_verdict(j->h->store, &j->v);
        hv_finish(j);
        return;
    }
    if (status != STORE_OK && status != STORE_NOTFOUND)
        hv_store_warn(j, "get", store_strerror(status));
    if (count >= 2 * (int64_t)j->h->threshold)
        hv_block(j, count);
    else if (count >= (int64_t)j->h->threshold)
        hv_tarpit(j, count);
    else
        hv_finish(j);
}

/* harvest_run - CONNECT reads the block, RCPT the counter */
static void harvest_run(void *state, struct policy_job *job, enum policy_stage stage,
                        struct policy_client *cl)
{
    struct harvest *h = state;
    struct hv_job *j = xcalloc(1, sizeof(*j));
    char key[HV_KEY_MAX];
    char net[64];
    const struct sockaddr *sa = (const struct sockaddr *)&cl->addr;
    int v6 = sa->sa_family == AF_INET6 &&
             !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    int n;

    if (!v6 || sockaddr_network(sa, 32, h->v6prefix, net, sizeof(net)) < 0)
        snprintf(net, sizeof(net), "%s", cl->ip);
    n = hv_key(key, stage == POLICY_CONNECT ? "b" : "n", stage == POLICY_CONNECT ? net : cl->ip);
    if (n < 0 || !cl->ip[0]) {
        struct policy_verdict v;
        policy_verdict_dunno(&v);
        free(j);
        policy_job_done(job, &v);
        return;
    }
    j->h = h;
    j->job = job;
    policy_verdict_dunno(&j->v);
    snprintf(j->ip, sizeof(j->ip), "%s", cl->ip);
    snprintf(j->blockee, sizeof(j->blockee), "%s", net);
    policy_job_set_data(job, j);
    j->store_pending = 1;
    if (store_get(h->store, key, (size_t)n, stage == POLICY_CONNECT ? hv_on_block_get : hv_on_count,
                  j) < 0) {
        j->store_pending = 0;
        hv_store_warn(j, "get", strerror(errno));
        hv_finish(j);
    }
}

/* harvest_cancel - the session is gone: stop the tarpit, or orphan the store callback */
static void harvest_cancel(void *state, struct policy_job *job)
{
    struct hv_job *j = policy_job_data(job);

    policy_job_set_data(job, NULL);
    if (!j)
        return;
    if (j->store_pending)
        j->cancelled = 1; /* the callback frees it */
    else
        hv_job_free(j);
}

static cfg_opt_t hv_opts[] = {
    CFG_INT("threshold", 10, CFGF_NONE), /* unknown recipients per client per window */
    CFG_INT("window", 600, CFGF_NONE),
    CFG_INT("tarpit", 1, CFGF_NONE), /* seconds added to every reply past the threshold */
    CFG_INT("block", 600, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound hv_bounds[] = {
    {"threshold", 1, HV_THRESHOLD_MAX},
    {"window", 1, HV_TIME_MAX},
    {"tarpit", 0, HV_TARPIT_MAX},
    {"block", 1, HV_TIME_MAX},
    {NULL, 0, 0},
};

static const struct config_section hv_section = {
    .name = "harvest",
    .opts = hv_opts,
    .bounds = hv_bounds,
};

/* harvest_init - the section; the counters and the block live in the store */
static int harvest_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "harvest");
    struct harvest *h = xcalloc(1, sizeof(*h));

    if (!env->store && !env->checking) {
        snprintf(err, errlen, "harvest: needs the state store");
    } else if (!sec) {
        snprintf(err, errlen, "harvest: no configuration section");
    } else { /* the bounds were checked by config_load */
        h->threshold = (unsigned)cfg_getint(sec, "threshold");
        h->window = (unsigned)cfg_getint(sec, "window");
        h->tarpit = (unsigned)cfg_getint(sec, "tarpit");
        h->block = (unsigned)cfg_getint(sec, "block");
        h->base = env->base;
        h->store = env->store;
        /* the server's grouping of IPv6 clients (limits section, declared by smtp/) */
        h->v6prefix = (int)cfg_getint(cfg_getsec(env->cfg->raw, "limits"), "ipv6_prefix");
        *state = h;
        return 0;
    }
    free(h);
    return -1;
}

/* harvest_free - the configuration */
static void harvest_free(void *state)
{
    free(state);
}

const struct policy_check_ops policy_check_harvest = {
    .name = "harvest",
    .stages = POLICY_STAGE(POLICY_CONNECT) | POLICY_STAGE(POLICY_RCPT),
    .init = harvest_init,
    .run = harvest_run,
    .cancel = harvest_cancel,
    .free = harvest_free,
    .section = &hv_section,
};
