/*
 * dnsbl.c - DNS blocklists and allow lists (DNSWL) by client address.
 *
 * At CONNECT every configured zone is asked at once for the A record of the
 * client's reversed address under the zone. Each zone has its own time
 * budget (a timer of its own), so the check costs the slowest zone, never
 * the sum. A zone lists the client when it answers an address of
 * 127.0.0.0/8 that its `codes` accept (any, when codes is empty); the
 * weights of the listing zones add up and the total decides: at or above
 * `threshold` the configured action (reject, tempfail or score), below zero
 * (an allow zone with a negative weight, not outweighed) the client is
 * trusted for the rest of the stage. After a hit on a blocking zone its TXT
 * record is asked for the reject text, within the same budget.
 *
 * Answers in 127.255.255.0/24 (operators' "query refused / open resolver"
 * codes) and answers outside 127.0.0.0/8 mean the list is unusable from
 * here, not that the client is listed: they are logged, counted as
 * "dnsbl.unusable" and ignored.
 */
#include "policy/checks.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "policy/stats.h"

#define DNSBL_MAX_ZONES 32
#define DNSBL_MAX_CODES 32
#define DNSBL_MAX_WEIGHT 1000 /* |weight| and threshold: sums cannot overflow */
#define DNSBL_MAX_TIMEOUT 60
#define DNSBL_TXT_MAX 200 /* octets of a TXT reason kept for the reply */

enum dnsbl_action { DNSBL_REJECT, DNSBL_TEMPFAIL, DNSBL_SCORE };

struct dnsbl_zone {
    char *name;
    int weight; /* negative: an allow list */
    unsigned timeout;
    struct in_addr codes[DNSBL_MAX_CODES];
    size_t ncodes; /* 0: any listing answer counts */
};

struct dnsbl {
    struct event_base *base;
    struct dns *dns;
    struct stats *stats;
    int threshold;
    enum dnsbl_action action;
    int tempfail_on_timeout; /* dns { on_timeout = "tempfail" } */
    struct dnsbl_zone *zones;
    size_t nzones;
};

enum dnsbl_zq_state { ZQ_ASK_A, ZQ_ASK_TXT, ZQ_DONE };

struct dnsbl_run;

/* One zone's part of one run. */
struct dnsbl_zq {
    struct dnsbl_run *run;
    const struct dnsbl_zone *zone;
    struct dns_query *q; /* the pending A or TXT query */
    struct event *timer; /* the zone's time budget */
    enum dnsbl_zq_state state;
    int listed;
    int failed; /* no answer: timed out or the servers failed */
    char answer[INET_ADDRSTRLEN];
    char txt[DNSBL_TXT_MAX + 1];
    char name[DNS_NAME_SIZE];
};

/* One client's lookups: every zone at once. */
struct dnsbl_run {
    struct dnsbl *d;
    struct policy_job *job;
    char ip[64];
    size_t left; /* zones not done yet */
    size_t nzq;
    struct dnsbl_zq zq[];
};

enum dnsbl_answer { ANSWER_LISTED, ANSWER_OTHER, ANSWER_UNUSABLE };

static void zq_finish(struct dnsbl_zq *zq);

/* dnsbl_usable - in 127.0.0.0/8 but not 127.255.255.0/24 (the operators' error codes) */
static int dnsbl_usable(struct in_addr a)
{
    uint32_t h = ntohl(a.s_addr);

    return (h >> 24) == 127 && (h >> 8) != 0x7fffffu;
}

/* dnsbl_classify - what one A record of a zone's answer means */
static enum dnsbl_answer dnsbl_classify(const struct dnsbl_zone *z, struct in_addr a)
{
    if (!dnsbl_usable(a))
        return ANSWER_UNUSABLE;
    if (z->ncodes == 0)
        return ANSWER_LISTED;
    for (size_t i = 0; i < z->ncodes; i++)
        if (z->codes[i].s_addr == a.s_addr)
            return ANSWER_LISTED;
    return ANSWER_OTHER;
}

/* dnsbl_sanitize - a TXT reason fit for a reply line: printable ASCII, bounded */
static void dnsbl_sanitize(char *dst, size_t dstlen, const char *src, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == ' ' && o == 0)
            continue; /* no leading blanks after "; " */
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* zq_wants_txt - a hit on a blocking zone: its TXT reason goes into the reply */
static int zq_wants_txt(const struct dnsbl_zq *zq)
{
    return zq->listed && zq->zone->weight > 0 && zq->run->d->action != DNSBL_SCORE;
}

/* zq_note_unusable - the list refuses us or answers nonsense: warn and count */
static void zq_note_unusable(const struct dnsbl_zq *zq, const char *answer)
{
    log_warn("event=dnsbl_unusable zone=%s answer=%s client=%s", log_q(zq->zone->name), answer,
             zq->run->ip);
    stats_count(zq->run->d->stats, "dnsbl.unusable");
}

/* zq_take_answer - look at every A record; the first accepted one lists the client */
static void zq_take_answer(struct dnsbl_zq *zq, const struct dns_result *res)
{
    char a[INET_ADDRSTRLEN], bad[INET_ADDRSTRLEN] = "";

    for (size_t i = 0; i < res->count; i++) {
        if (res->addr[i].family != AF_INET)
            continue;
        if (!inet_ntop(AF_INET, &res->addr[i].u.v4, a, sizeof(a)))
            continue;
        switch (dnsbl_classify(zq->zone, res->addr[i].u.v4)) {
        case ANSWER_UNUSABLE:
            if (!bad[0])
                memcpy(bad, a, sizeof(bad));
            break;
        case ANSWER_LISTED:
            if (!zq->listed)
                memcpy(zq->answer, a, sizeof(zq->answer));
            zq->listed = 1;
            break;
        case ANSWER_OTHER:
            break;
        }
    }
    if (bad[0])
        zq_note_unusable(zq, bad);
}

/* zq_on_txt - the reason text of a hit; the zone is done either way */
static void zq_on_txt(const struct dns_result *res, void *arg)
{
    struct dnsbl_zq *zq = arg;

    zq->q = NULL;
    if (res->status == DNS_OK && res->count > 0)
        dnsbl_sanitize(zq->txt, sizeof(zq->txt), res->str[0], res->len[0]);
    zq_finish(zq);
}

/* zq_on_a - the zone's answer: listed, not listed, or no answer */
static void zq_on_a(const struct dns_result *res, void *arg)
{
    struct dnsbl_zq *zq = arg;

    zq->q = NULL;
    if (res->status == DNS_OK) {
        zq_take_answer(zq, res);
    } else if (res->status != DNS_NXDOMAIN && res->status != DNS_NODATA) {
        zq->failed = 1;
        log_warn("event=dnsbl_error zone=%s client=%s status=%s", log_q(zq->zone->name),
                 zq->run->ip, dns_status_str(res->status));
    }
    if (zq_wants_txt(zq)) {
        zq->state = ZQ_ASK_TXT;
        zq->q = dns_lookup(zq->run->d->dns, DNS_T_TXT, zq->name, zq_on_txt, zq);
        return;
    }
    zq_finish(zq);
}

/* zq_on_timer - the zone's budget is spent: stop asking, decide without it */
static void zq_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct dnsbl_zq *zq = arg;

    dns_cancel(zq->q);
    zq->q = NULL;
    if (zq->state == ZQ_ASK_A) {
        zq->failed = 1;
        log_warn("event=dnsbl_timeout zone=%s client=%s timeout=%u", log_q(zq->zone->name),
                 zq->run->ip, zq->zone->timeout);
    }
    zq_finish(zq);
}

/* zq_start - ask one zone; 0 when the zone is already done (not applicable, no memory) */
static int zq_start(struct dnsbl_run *r, struct dnsbl_zq *zq, const struct sockaddr *sa)
{
    struct timeval tv = {(time_t)zq->zone->timeout, 0};

    zq->run = r;
    zq->state = ZQ_DONE;
    if (dns_dnsbl_name(sa, zq->zone->name, zq->name, sizeof(zq->name)) < 0)
        return 0; /* another address family, or the name is too long for this zone */
    zq->timer = evtimer_new(r->d->base, zq_on_timer, zq);
    if (zq->timer)
        zq->q = dns_lookup(r->d->dns, DNS_T_A, zq->name, zq_on_a, zq);
    if (!zq->timer || !zq->q || evtimer_add(zq->timer, &tv) < 0) {
        dns_cancel(zq->q);
        zq->q = NULL;
        zq->failed = 1;
        log_warn("event=dnsbl_error zone=%s client=%s status=no-memory", log_q(zq->zone->name),
                 r->ip);
        return 0;
    }
    zq->state = ZQ_ASK_A;
    return 1;
}

/* run_free - timers and the run; no query is pending any more */
static void run_free(struct dnsbl_run *r)
{
    for (size_t i = 0; i < r->nzq; i++)
        if (r->zq[i].timer)
            event_free(r->zq[i].timer);
    free(r);
}

/* dnsbl_verdict_block - the configured action against a listed client */
static void dnsbl_verdict_block(const struct dnsbl_run *r, const struct dnsbl_zq *top, int total,
                                struct policy_verdict *v)
{
    char reason[sizeof(v->reason)];
    int tempfail = r->d->action == DNSBL_TEMPFAIL;

    snprintf(reason, sizeof(reason), "zone=%s answer=%s weight=%d total=%d", top->zone->name,
             top->answer, top->zone->weight, total);
    if (r->d->action == DNSBL_SCORE) {
        policy_verdict_set(v, POLICY_SCORE, 0, "", "", "%s", "");
        v->score = total;
        snprintf(v->reason, sizeof(v->reason), "%s score=%d", reason, total);
        return;
    }
    policy_verdict_set(v, tempfail ? POLICY_TEMPFAIL : POLICY_REJECT, tempfail ? 450 : 554,
                       tempfail ? "4.7.1" : "5.7.1", reason,
                       "Service unavailable; client [%s] blocked using %s%s%s", r->ip,
                       top->zone->name, top->txt[0] ? "; " : "", top->txt);
}

/* dnsbl_verdict - weigh the zones' answers */
static void dnsbl_verdict(const struct dnsbl_run *r, struct policy_verdict *v)
{
    const struct dnsbl_zq *top = NULL, *allow = NULL;
    size_t failed = 0;
    int total = 0;

    for (size_t i = 0; i < r->nzq; i++) {
        const struct dnsbl_zq *zq = &r->zq[i];
        failed += zq->failed != 0;
        if (!zq->listed)
            continue;
        total += zq->zone->weight;
        if (zq->zone->weight > 0 && (!top || zq->zone->weight > top->zone->weight))
            top = zq;
        if (zq->zone->weight < 0 && (!allow || zq->zone->weight < allow->zone->weight))
            allow = zq;
    }
    if (top && total >= r->d->threshold) {
        dnsbl_verdict_block(r, top, total, v);
    } else if (allow && total < 0) {
        policy_verdict_set(v, POLICY_OK, 0, "", "", "%s", "");
        snprintf(v->reason, sizeof(v->reason), "dnswl %s", allow->zone->name);
    } else if (failed > 0 && failed == r->nzq && r->d->tempfail_on_timeout) {
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.4.3", "dns-timeout", "%s",
                           "DNS blocklist lookup failed; try again later");
    } else {
        policy_verdict_dunno(v);
        if (failed > 0)
            snprintf(v->reason, sizeof(v->reason), "dns-timeout");
    }
}

/* run_decide - every zone is done: free the run, then give the verdict */
static void run_decide(struct dnsbl_run *r)
{
    struct policy_job *job = r->job;
    struct policy_verdict v;

    dnsbl_verdict(r, &v);
    policy_job_set_data(job, NULL);
    run_free(r);
    policy_job_done(job, &v); /* last: the pipeline may go on from here */
}

/* zq_finish - one zone is done; the last one decides */
static void zq_finish(struct dnsbl_zq *zq)
{
    struct dnsbl_run *r = zq->run;

    zq->state = ZQ_DONE;
    if (zq->timer)
        evtimer_del(zq->timer);
    if (--r->left == 0)
        run_decide(r);
}

/* dnsbl_run - ask every zone in parallel */
static void dnsbl_run(void *state, struct policy_job *job, enum policy_stage stage,
                      struct policy_client *cl)
{
    struct dnsbl *d = state;
    struct dnsbl_run *r = xcalloc(1, sizeof(*r) + d->nzones * sizeof(r->zq[0]));
    size_t started = 0;

    r->d = d;
    r->job = job;
    r->nzq = d->nzones;
    snprintf(r->ip, sizeof(r->ip), "%s", cl->ip);
    for (size_t i = 0; i < d->nzones; i++) {
        r->zq[i].zone = &d->zones[i];
        started += (size_t)zq_start(r, &r->zq[i], (const struct sockaddr *)&cl->addr);
    }
    /* Callbacks never run from inside dns_lookup: counting after the loop is safe. */
    r->left = started;
    if (started == 0) {
        run_decide(r); /* nothing pending: decide now */
        return;
    }
    policy_job_set_data(job, r);
}

/* dnsbl_cancel - the session is gone: stop every pending query and timer */
static void dnsbl_cancel(void *state, struct policy_job *job)
{
    struct dnsbl_run *r = policy_job_data(job);

    if (!r)
        return;
    for (size_t i = 0; i < r->nzq; i++)
        dns_cancel(r->zq[i].q);
    policy_job_set_data(job, NULL);
    run_free(r);
}

/* dnsbl_free - zones and state */
static void dnsbl_free(void *state)
{
    struct dnsbl *d = state;

    if (!d)
        return;
    for (size_t i = 0; i < d->nzones; i++)
        free(d->zones[i].name);
    free(d->zones);
    free(d);
}

/* dnsbl_codes - the answers a zone accepts; -1 with err naming the line */
static int dnsbl_codes(const struct config *cfg, cfg_t *zs, struct dnsbl_zone *z, char *err,
                       size_t errlen)
{
    size_t n = cfg_size(zs, "codes");

    if (n > DNSBL_MAX_CODES) {
        snprintf(err, errlen, "%s:%d: dnsbl zone %s: at most %d codes", cfg->path, zs->line,
                 z->name, DNSBL_MAX_CODES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *c = cfg_getnstr(zs, "codes", (unsigned)i);
        if (inet_pton(AF_INET, c, &z->codes[i]) != 1 || !dnsbl_usable(z->codes[i])) {
            snprintf(err, errlen,
                     "%s:%d: dnsbl zone %s: code \"%s\" is not an address of 127.0.0.0/8 "
                     "(127.255.255.x excluded)",
                     cfg->path, zs->line, z->name, c);
            return -1;
        }
    }
    z->ncodes = n;
    return 0;
}

/* dnsbl_zone_init - one zone section */
static int dnsbl_zone_init(const struct config *cfg, cfg_t *zs, struct dnsbl_zone *z, char *err,
                           size_t errlen)
{
    struct sockaddr_in probe = {.sin_family = AF_INET};
    char name[DNS_NAME_SIZE];
    long w = cfg_getint(zs, "weight"), t = cfg_getint(zs, "timeout");

    z->name = xstrdup(cfg_title(zs));
    probe.sin_addr.s_addr = htonl(0x7f000002);
    if (dns_dnsbl_name((struct sockaddr *)&probe, z->name, name, sizeof(name)) < 0) {
        snprintf(err, errlen, "%s:%d: dnsbl zone \"%s\": not a usable zone name", cfg->path,
                 zs->line, z->name);
        return -1;
    }
    if (w == 0 || w < -DNSBL_MAX_WEIGHT || w > DNSBL_MAX_WEIGHT || t < 1 || t > DNSBL_MAX_TIMEOUT) {
        snprintf(err, errlen,
                 "%s:%d: dnsbl zone %s: weight must be non-zero within +-%d, timeout 1..%d",
                 cfg->path, zs->line, z->name, DNSBL_MAX_WEIGHT, DNSBL_MAX_TIMEOUT);
        return -1;
    }
    z->weight = (int)w;
    z->timeout = (unsigned)t;
    return dnsbl_codes(cfg, zs, z, err, errlen);
}

/* dnsbl_options - threshold, action and the dns section's on_timeout */
static int dnsbl_options(const struct config *cfg, cfg_t *sec, struct dnsbl *d, char *err,
                         size_t errlen)
{
    const char *action = cfg_getstr(sec, "action");
    const char *ot = cfg_getstr(cfg_getsec(cfg->raw, "dns"), "on_timeout");
    long th = cfg_getint(sec, "threshold");

    if (th < 1 || th > DNSBL_MAX_WEIGHT) {
        snprintf(err, errlen, "%s:%d: dnsbl: threshold must be 1..%d", cfg->path, sec->line,
                 DNSBL_MAX_WEIGHT);
        return -1;
    }
    d->threshold = (int)th;
    if (strcmp(action, "reject") == 0) {
        d->action = DNSBL_REJECT;
    } else if (strcmp(action, "tempfail") == 0) {
        d->action = DNSBL_TEMPFAIL;
    } else if (strcmp(action, "score") == 0) {
        d->action = DNSBL_SCORE;
    } else {
        snprintf(err, errlen, "%s:%d: dnsbl: action must be \"reject\", \"tempfail\" or \"score\"",
                 cfg->path, sec->line);
        return -1;
    }
    if (!ot || (strcmp(ot, "tempfail") != 0 && strcmp(ot, "pass") != 0)) {
        snprintf(err, errlen, "%s:0: dns: on_timeout must be \"tempfail\" or \"pass\"", cfg->path);
        return -1;
    }
    d->tempfail_on_timeout = strcmp(ot, "tempfail") == 0;
    return 0;
}

/* dnsbl_zones - every zone section, in the order written */
static int dnsbl_zones(const struct config *cfg, cfg_t *sec, struct dnsbl *d, char *err,
                       size_t errlen)
{
    size_t n = cfg_size(sec, "zone");

    if (n == 0 || n > DNSBL_MAX_ZONES) {
        snprintf(err, errlen, "%s:%d: dnsbl: between 1 and %d zone sections are needed", cfg->path,
                 sec->line, DNSBL_MAX_ZONES);
        return -1;
    }
    d->zones = xcalloc(n, sizeof(*d->zones));
    for (size_t i = 0; i < n; i++, d->nzones++)
        if (dnsbl_zone_init(cfg, cfg_getnsec(sec, "zone", (unsigned)i), &d->zones[i], err, errlen) <
            0) {
            d->nzones++; /* so that dnsbl_free releases its name */
            return -1;
        }
    return 0;
}

/* dnsbl_init - read the dnsbl section */
static int dnsbl_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "dnsbl");
    struct dnsbl *d;

    if (!env->dns && !env->checking) {
        snprintf(err, errlen, "%s:0: dnsbl needs a dns section", env->cfg->path);
        return -1;
    }
    d = xcalloc(1, sizeof(*d));
    d->base = env->base;
    d->dns = env->dns;
    d->stats = env->stats;
    if (!sec || dnsbl_options(env->cfg, sec, d, err, errlen) < 0 ||
        dnsbl_zones(env->cfg, sec, d, err, errlen) < 0) {
        if (!sec)
            snprintf(err, errlen, "%s:0: dnsbl: no dnsbl section", env->cfg->path);
        dnsbl_free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static cfg_opt_t dnsbl_zone_opts[] = {
    CFG_INT("weight", 1, CFGF_NONE),
    CFG_STR_LIST("codes", "{}", CFGF_NONE), /* empty: any 127.0.0.0/8 answer but 127.255.255.x */
    CFG_INT("timeout", 3, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t dnsbl_opts[] = {
    CFG_INT("threshold", 1, CFGF_NONE),
    CFG_STR("action", "reject", CFGF_NONE), /* reject | tempfail | score */
    CFG_SEC("zone", dnsbl_zone_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_END(),
};

static const struct config_section dnsbl_section = {
    .name = "dnsbl",
    .opts = dnsbl_opts,
};

const struct policy_check_ops policy_check_dnsbl = {
    .name = "dnsbl",
    .stages = POLICY_STAGE(POLICY_CONNECT),
    .init = dnsbl_init,
    .run = dnsbl_run,
    .cancel = dnsbl_cancel,
    .reload = NULL,
    .free = dnsbl_free,
    .section = &dnsbl_section,
};
