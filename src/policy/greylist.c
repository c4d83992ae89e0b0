/*
 * greylist.c - greylisting by triplet (client network, sender, recipient).
 *
 * The first attempt of a triplet is refused with 451 4.7.1 and remembered
 * for `retry_window` seconds; a retry at least `delay` seconds later passes,
 * and the triplet then passes at once for `pass_ttl` seconds after its last
 * use (each use refreshes it, so a regular correspondent is never delayed
 * again). Each pass counts for the client's network, at most once per
 * GL_AWL_INTERVAL (as postgrey: a burst of one host earns no trust); after
 * `awl_count` counted passes (postgrey's --auto-whitelist-clients, default
 * 5; 0: never) the network is on the auto-whitelist: its mail, any sender
 * and recipient, is not delayed while it keeps sending (the record is
 * refreshed when used, at most once per GL_AWL_INTERVAL, and expires
 * `pass_ttl` after that). Networks are the client address masked to
 * `ipv4_prefix` / `ipv6_prefix` (32 / 128 is a single address); a shorter
 * prefix lets large senders retry from another address of the same pool.
 *
 * Records in the store (readable by mxgatectl):
 *   gl:t:<network>/<prefix>:<sender>:<rcpt>  "first <time>" (TTL retry_window)
 *                                             or "pass <time>" (TTL pass_ttl)
 *   gl:c:<network>/<prefix>                   "<passes> <time>" (TTL pass_ttl)
 * with sender and recipient in the canonical form of mail/address.h,
 * local parts lower-cased too ("" for the null sender): "Bob"@x, BOB@x and
 * bob@x are one triplet, as in postgrey, which lower-cases both addresses.
 *
 * With `only_suspicious` only clients that s25r flagged are greylisted (the
 * combined S25R+greylist mode): well-configured servers pass at once. The
 * store failing never refuses mail: the check then has no opinion.
 *
 * Sender authentication (greylist_auth.h): when SPF passed for the MAIL FROM
 * domain (the spf check runs at MAIL, before), `spf_pass = "pool"` (default)
 * keys the triplet by that domain instead of the client's network,
 *   gl:t:spf:<domain>:<sender>:<rcpt>
 * so that a large sender's pool retrying from another of its addresses passes
 * at its second attempt; "skip" lets such a transaction pass at once; "ignore"
 * keys by network as ever. With `dkim_pass = "defer"` a recipient that would
 * get 451 at RCPT is accepted and the transaction's greylisting is decided at
 * the end of DATA: it passes when the dkim check (listed before greylist)
 * found a pass aligned (DMARC's relaxed alignment, the Public Suffix List of
 * the system or libpsl's) with the MAIL FROM or header From: domain, else the
 * whole message gets 451 4.7.1 there. The first-seen record is written at RCPT
 * either way, so the retry is timed as before.
 */
#include "policy/checks.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "policy/dmarc.h"
#include "policy/dmarc_lookup.h"
#include "policy/greylist_auth.h"
#include "policy/storefail.h"
#include "store/store.h"

#define GL_ADDR_MAX 200     /* octets of sender and of recipient kept in a key */
#define GL_NET_MAX 64       /* "network/prefix" */
#define GL_VAL_MAX 32       /* "first 1700000000" */
#define GL_TTL_MAX 31622400 /* a year and a day: bounds for the times in the config */

#define GL_AWL_INTERVAL 3600 /* a network's passes count once an hour (postgrey) */
#define GL_AWL_COUNT_MAX 1000

enum gl_spf_mode { GL_SPF_POOL, GL_SPF_SKIP, GL_SPF_IGNORE };
static const char *const gl_spf_modes[] = {"pool", "skip", "ignore"};

struct greylist {
    struct store *store;
    unsigned delay;
    unsigned retry_window;
    unsigned pass_ttl;
    unsigned awl_count; /* counted passes that trust a network; 0: never */
    unsigned interval;  /* GL_AWL_INTERVAL, or less for a short pass_ttl */
    int v4prefix;
    int v6prefix;
    int only_suspicious;
    enum gl_spf_mode spf_pass;
    int dkim_defer;             /* dkim_pass = "defer" */
    struct glauth_defer *defer; /* the sessions whose greylisting waits for END */
    psl_ctx_t *psl;             /* dkim_pass = "defer": organisational domains */
};

/* One greylist decision: a chain of store reads, one pending at a time. */
struct gl_job {
    struct greylist *g;
    struct policy_job *job;
    struct policy_client *cl;
    int cancelled; /* the session went away: the pending callback frees us */
    char why[100]; /* " " + the s25r rule that made the client suspicious, or "" */
    char ckey[8 + GL_NET_MAX];
    char tkey[8 + GL_NET_MAX + 2 * (GL_ADDR_MAX + 1)];
    long long awl_n; /* the network's counted passes (0: no record) ... */
    time_t awl_last; /* ... and when it was last counted or refreshed */
};

/* gl_now - the check's notion of now */
static time_t gl_now(void)
{
    return clock_now();
}

/* gl_network - "192.0.2.0/24": the client's address masked to the configured prefix */
static int gl_network(const struct greylist *g, const struct sockaddr *sa, char *out, size_t len)
{
    return sockaddr_network(sa, g->v4prefix, g->v6prefix, out, len);
}

/* gl_canon - append s in canonical form, at most GL_ADDR_MAX octets of it (a longer
 * address shares its triplet with those of the same beginning: harmless) */
static size_t gl_canon(char *dst, const char *s)
{
    char c[ADDR_CANON_MAX];
    size_t n;

    if (!s || addr_canon_lax(s, ADDR_CANON_FOLD, c, sizeof(c)) < 0)
        c[0] = '\0';
    n = strnlen(c, GL_ADDR_MAX);
    memcpy(dst, c, n);
    dst[n] = '\0';
    return n;
}

/* gl_keys - the auto-whitelist key and the triplet key of a client and envelope;
 * the triplet's first part is the SPF-authorised sender domain when spf is set */
static int gl_keys(struct gl_job *j, const struct policy_client *cl, const char *spf)
{
    char net[GL_NET_MAX];
    size_t n;

    if (gl_network(j->g, (const struct sockaddr *)&cl->addr, net, sizeof(net)) < 0)
        return -1;
    snprintf(j->ckey, sizeof(j->ckey), "gl:c:%s", net);
    if (spf)
        n = (size_t)snprintf(j->tkey, sizeof(j->tkey), "gl:t:spf:%.*s:", GL_NET_MAX, spf);
    else
        n = (size_t)snprintf(j->tkey, sizeof(j->tkey), "gl:t:%s:", net);
    n += gl_canon(j->tkey + n, cl->sender);
    j->tkey[n++] = ':';
    gl_canon(j->tkey + n, cl->rcpt);
    return 0;
}

/* gl_parse - a triplet record: "first <t>" or "pass <t>"; -1 when it is neither */
static int gl_parse(const void *val, size_t vlen, int *passed, time_t *t)
{
    char buf[GL_VAL_MAX], *end;
    const char *num;
    long long v;

    if (vlen >= sizeof(buf))
        return -1;
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    *passed = strncmp(buf, "pass ", 5) == 0;
    if (!*passed && strncmp(buf, "first ", 6) != 0)
        return -1;
    num = buf + (*passed ? 5 : 6);
    errno = 0;
    v = strtoll(num, &end, 10);
    if (errno || end == num || *end != '\0' || v < 0)
        return -1;
    *t = (time_t)v;
    return 0;
}

/* gl_parse_awl - "<passes> <time>"; the one-number form of earlier versions is one pass */
static int gl_parse_awl(const void *val, size_t vlen, long long *n, time_t *t)
{
    char buf[GL_VAL_MAX], *end, *end2;
    long long a, b;

    if (vlen >= sizeof(buf))
        return -1;
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    errno = 0;
    a = strtoll(buf, &end, 10);
    if (errno || end == buf || a < 0)
        return -1;
    if (*end == '\0') {
        *n = 1;
        *t = (time_t)a;
        return 0;
    }
    b = strtoll(end, &end2, 10);
    if (errno || *end != ' ' || end2 == end + 1 || *end2 != '\0' || b < 0)
        return -1;
    *n = a;
    *t = (time_t)b;
    return 0;
}

/* gl_finish - give the verdict and forget the job */
static void gl_finish(struct gl_job *j, const struct policy_verdict *v)
{
    struct policy_job *job = j->job;

    policy_job_set_data(job, NULL);
    free(j);
    policy_job_done(job, v);
}

/* gl_dunno - pass with a reason for the log */
static void gl_dunno(struct gl_job *j, const char *reason)
{
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    snprintf(v.reason, sizeof(v.reason), "%s%s", reason, j->why);
    gl_finish(j, &v);
}

/* gl_tempfail - 451: come back later (or, with dkim_pass = "defer", at the end of DATA) */
static void gl_tempfail(struct gl_job *j, const char *reason)
{
    struct policy_verdict v;

    if (j->g->dkim_defer) {
        glauth_defer_mark(j->g->defer, j->cl, j->tkey);
        policy_verdict_dunno(&v);
        snprintf(v.reason, sizeof(v.reason), "deferred to end: %s%s", reason, j->why);
        gl_finish(j, &v);
        return;
    }
    policy_verdict_set(&v, POLICY_TEMPFAIL, 451, "4.7.1", "",
                       "Greylisted, please try again in %u seconds", j->g->delay);
    snprintf(v.reason, sizeof(v.reason), "%s%s", reason, j->why);
    gl_finish(j, &v);
}

/* gl_store_failed - fail open: the store's trouble must not refuse mail */
static void gl_store_failed(struct gl_job *j, const char *op, const char *key, const char *why)
{
    char q[64], k[2 * sizeof(j->tkey)];

    log_warn("event=greylist_store_error op=%s key=%s status=%s", op, log_quote(k, sizeof(k), key),
             log_quote(q, sizeof(q), why));
    gl_dunno(j, "store-error");
}

/* gl_store_down - the store is unreachable: store { on_error } decides (logged by the store) */
static void gl_store_down(struct gl_job *j)
{
    struct policy_verdict v;

    gl_finish(j, storefail_verdict(j->g->store, &v));
}

/* gl_on_write - completion of a refresh nobody waits for: only a failure is news */
static void gl_on_write(void *arg, int status)
{
    char q[64];

    if (status != STORE_OK && status != STORE_EDOWN) /* an outage is logged once, by the store */
        log_warn("event=greylist_store_error op=set status=%s",
                 log_quote(q, sizeof(q), store_strerror(status)));
}

/* gl_on_first_set - the first-seen record is stored: now refuse */
static void gl_on_first_set(void *arg, int status)
{
    struct gl_job *j = arg;

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status == STORE_EDOWN) {
        gl_store_down(j);
        return;
    }
    if (status != STORE_OK) {
        gl_store_failed(j, "set", j->tkey, store_strerror(status));
        return;
    }
    gl_tempfail(j, "new triplet");
}

/* gl_new_triplet - remember the first attempt for retry_window seconds */
static void gl_new_triplet(struct gl_job *j, time_t now)
{
    char val[GL_VAL_MAX];
    int n = snprintf(val, sizeof(val), "first %lld", (long long)now);

    if (store_set(j->g->store, j->tkey, strlen(j->tkey), val, (size_t)n, j->g->retry_window,
                  gl_on_first_set, j) < 0)
        gl_store_failed(j, "set", j->tkey, strerror(errno));
}

/* gl_write - a write the verdict does not wait for: a failure is only logged */
static void gl_write(const struct greylist *g, const char *key, const char *val)
{
    char q[64];

    if (store_set(g->store, key, strlen(key), val, strlen(val), g->pass_ttl, gl_on_write, NULL) < 0)
        log_warn("event=greylist_store_error op=set status=%s",
                 log_quote(q, sizeof(q), strerror(errno)));
}

/* gl_due - the network's record was last written at least an interval ago (or in the future) */
static int gl_due(const struct gl_job *j, time_t now)
{
    return j->awl_n == 0 || now < j->awl_last || now - j->awl_last >= (time_t)j->g->interval;
}

/* gl_count_pass - one more pass for the network, at most one per interval */
static void gl_count_pass(struct gl_job *j, time_t now)
{
    char val[GL_VAL_MAX], k[2 * sizeof(j->ckey)];

    if (j->g->awl_count == 0 || !gl_due(j, now))
        return;
    snprintf(val, sizeof(val), "%lld %lld", j->awl_n + 1, (long long)now);
    gl_write(j->g, j->ckey, val);
    if (j->awl_n + 1 == (long long)j->g->awl_count)
        log_info("event=greylist_awl key=%s passes=%lld", log_quote(k, sizeof(k), j->ckey),
                 j->awl_n + 1);
}

/* gl_pass - the retry came late enough, or the triplet passed before: (re)new the
 * triplet's pass for pass_ttl and count the pass for the network */
static void gl_pass(struct gl_job *j, time_t now, const char *reason)
{
    char val[GL_VAL_MAX], q[128], k[2 * sizeof(j->tkey)];

    snprintf(val, sizeof(val), "pass %lld", (long long)now);
    gl_write(j->g, j->tkey, val);
    gl_count_pass(j, now);
    log_info("event=greylist_pass key=%s reason=%s", log_quote(k, sizeof(k), j->tkey),
             log_quote(q, sizeof(q), reason));
    gl_dunno(j, reason);
}

/* gl_awl_hit - a trusted network: no delay; its record is refreshed once an interval */
static void gl_awl_hit(struct gl_job *j, time_t now)
{
    char val[GL_VAL_MAX];

    if (gl_due(j, now)) {
        snprintf(val, sizeof(val), "%lld %lld", j->awl_n, (long long)now);
        gl_write(j->g, j->ckey, val);
    }
    gl_dunno(j, "awl");
}

/* gl_on_triplet - decide from the triplet's record */
static void gl_on_triplet(void *arg, int status, const void *val, size_t vlen)
{
    struct gl_job *j = arg;
    time_t now = gl_now(), first = 0;
    int passed = 0;
    char why[48];

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status == STORE_EDOWN) {
        gl_store_down(j);
        return;
    }
    if (status != STORE_OK && status != STORE_NOTFOUND) {
        gl_store_failed(j, "get", j->tkey, store_strerror(status));
        return;
    }
    if (status == STORE_NOTFOUND || gl_parse(val, vlen, &passed, &first) < 0 ||
        (!passed && (now < first || now - first >= (time_t)j->g->retry_window))) {
        gl_new_triplet(j, now); /* unknown, unreadable, or its retry window is over */
    } else if (passed) {
        gl_pass(j, now, "known triplet");
    } else if (now - first < (time_t)j->g->delay) {
        snprintf(why, sizeof(why), "too early, %llds left",
                 (long long)(j->g->delay - (now - first)));
        gl_tempfail(j, why);
    } else {
        snprintf(why, sizeof(why), "passed after %llds", (long long)(now - first));
        gl_pass(j, now, why);
    }
}

/* gl_on_awl - a network with awl_count passes: no delay; else look at the triplet */
static void gl_on_awl(void *arg, int status, const void *val, size_t vlen)
{
    struct gl_job *j = arg;

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status == STORE_OK && gl_parse_awl(val, vlen, &j->awl_n, &j->awl_last) < 0)
        j->awl_n = 0; /* unreadable: as if there were none (the next pass rewrites it) */
    if (status == STORE_OK && j->g->awl_count > 0 && j->awl_n >= (long long)j->g->awl_count) {
        gl_awl_hit(j, gl_now());
    } else if (status == STORE_EDOWN) {
        gl_store_down(j);
    } else if (status != STORE_OK && status != STORE_NOTFOUND) {
        gl_store_failed(j, "get", j->ckey, store_strerror(status));
    } else if (store_get(j->g->store, j->tkey, strlen(j->tkey), gl_on_triplet, j) < 0) {
        gl_store_failed(j, "get", j->tkey, strerror(errno));
    }
}

/* gl_end - END: a transaction deferred at RCPT passes with an aligned DKIM pass */
static void gl_end(struct greylist *g, struct policy_job *job, struct policy_client *cl)
{
    char key[8 + GL_NET_MAX + 2 * (GL_ADDR_MAX + 1)], k[2 * sizeof(key)], q[300];
    const char *d;
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    if (!g->dkim_defer || !glauth_defer_take(g->defer, cl, key, sizeof(key))) {
        policy_job_done(job, &v);
        return;
    }
    if ((d = glauth_dkim_aligned(cl, g->psl)) != NULL) {
        snprintf(v.reason, sizeof(v.reason), "dkim-aligned d=%s", d);
        log_info("event=greylist_pass key=%s reason=%s", log_quote(k, sizeof(k), key),
                 log_quote(q, sizeof(q), v.reason));
    } else {
        policy_verdict_set(&v, POLICY_TEMPFAIL, 451, "4.7.1", "deferred, no aligned dkim",
                           "Greylisted, please try again in %u seconds", g->delay);
    }
    policy_job_done(job, &v);
}

/* gl_spf_skip - spf_pass = "skip": an SPF-authorised sender passes at once */
static void gl_spf_skip(struct gl_job *j, const char *domain)
{
    char k[2 * sizeof(j->tkey)], q[300], reason[GL_NET_MAX + 300];

    snprintf(reason, sizeof(reason), "spf-pass domain=%s", domain);
    log_info("event=greylist_pass key=%s reason=%s", log_quote(k, sizeof(k), j->tkey),
             log_quote(q, sizeof(q), reason));
    gl_dunno(j, reason);
}

/* greylist_run - MAIL: a new transaction; RCPT: auto-whitelist first, then the
 * triplet; END: a deferred transaction */
static void greylist_run(void *state, struct policy_job *job, enum policy_stage stage,
                         struct policy_client *cl)
{
    struct greylist *g = state;
    struct gl_job *j;
    struct policy_verdict v;
    char spf[256];
    int by_spf;

    policy_verdict_dunno(&v);
    if (stage == POLICY_END) {
        gl_end(g, job, cl);
        return;
    }
    if (stage == POLICY_MAIL)
        glauth_defer_forget(g->defer, cl);
    if (stage == POLICY_MAIL || (g->only_suspicious && !cl->suspicious)) {
        if (stage != POLICY_MAIL)
            snprintf(v.reason, sizeof(v.reason), "not suspicious");
        policy_job_done(job, &v);
        return;
    }
    by_spf = g->spf_pass != GL_SPF_IGNORE && glauth_spf_domain(cl, spf, sizeof(spf));
    j = xcalloc(1, sizeof(*j));
    j->g = g;
    j->job = job;
    j->cl = cl;
    if (gl_keys(j, cl, by_spf ? spf : NULL) < 0) {
        free(j);
        policy_job_done(job, &v); /* not an IP client: no opinion */
        return;
    }
    if (cl->suspicious && cl->suspicious_why[0])
        snprintf(j->why, sizeof(j->why), " %s", cl->suspicious_why);
    policy_job_set_data(job, j);
    if (by_spf && g->spf_pass == GL_SPF_SKIP)
        gl_spf_skip(j, spf);
    else if (store_get(g->store, j->ckey, strlen(j->ckey), gl_on_awl, j) < 0)
        gl_store_failed(j, "get", j->ckey, strerror(errno));
}

/* greylist_cancel - the session is gone: the pending store callback frees the job */
static void greylist_cancel(void *state, struct policy_job *job)
{
    struct gl_job *j = policy_job_data(job);

    if (j)
        j->cancelled = 1;
    policy_job_set_data(job, NULL);
}

/* greylist_free - the configuration */
static void greylist_free(void *state)
{
    struct greylist *g = state;

    glauth_defer_free(g->defer);
    dmarc_psl_free(g->psl);
    free(g);
}

/* greylist_disconnect - the session is gone: forget its deferral */
static void greylist_disconnect(void *state, struct policy_client *cl)
{
    struct greylist *g = state;

    glauth_defer_forget(g->defer, cl);
}

/* gl_mode - an option's value among names, or -1 */
static int gl_mode(const char *const *names, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return (int)i;
    return -1;
}

/* gl_valid_spf - spf_pass names a mode */
static int gl_valid_spf(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (gl_mode(gl_spf_modes, 3, v) < 0)
        cfg_error(sec, "greylist: spf_pass must be \"pool\", \"skip\" or \"ignore\", not \"%s\"",
                  v);
    return 0; /* reported; keep parsing to list every error */
}

/* gl_valid_dkim - dkim_pass names a mode */
static int gl_valid_dkim(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strcmp(v, "defer") != 0 && strcmp(v, "ignore") != 0)
        cfg_error(sec, "greylist: dkim_pass must be \"defer\" or \"ignore\", not \"%s\"", v);
    return 0;
}

/* gl_check - what a single bound cannot see */
static void gl_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *sec = cfg_getsec(root, "greylist");
    long delay = cfg_getint(sec, "delay"), window = cfg_getint(sec, "retry_window");

    if (window <= delay)
        config_error(d, sec->line, "greylist: retry_window (%ld) must be longer than delay (%ld)",
                     window, delay);
}

static cfg_opt_t gl_opts[] = {
    CFG_INT("delay", 300, CFGF_NONE),
    CFG_INT("retry_window", 172800, CFGF_NONE), /* how long a first attempt is remembered */
    CFG_INT("pass_ttl", 3024000, CFGF_NONE),    /* how long an unused pass is remembered */
    CFG_INT("awl_count", 5, CFGF_NONE),         /* passes before a network is trusted (postgrey) */
    CFG_INT("ipv4_prefix", 24, CFGF_NONE),
    CFG_INT("ipv6_prefix", 64, CFGF_NONE),
    CFG_BOOL("only_suspicious", cfg_false, CFGF_NONE),
    CFG_STR("spf_pass", "pool", CFGF_NONE),    /* pool | skip | ignore */
    CFG_STR("dkim_pass", "ignore", CFGF_NONE), /* defer | ignore */
    CFG_END(),
};

static const struct config_bound gl_bounds[] = {
    {"delay", 0, GL_TTL_MAX},
    {"retry_window", 1, GL_TTL_MAX},
    {"pass_ttl", 1, GL_TTL_MAX},
    {"awl_count", 0, GL_AWL_COUNT_MAX},
    {"ipv4_prefix", 8, 32},
    {"ipv6_prefix", 16, 128},
    {NULL, 0, 0},
};

static const struct config_validator gl_validators[] = {
    {"greylist|spf_pass", gl_valid_spf},
    {"greylist|dkim_pass", gl_valid_dkim},
    {NULL, NULL},
};

static const struct config_section gl_section = {
    .name = "greylist",
    .opts = gl_opts,
    .bounds = gl_bounds,
    .validators = gl_validators,
    .check = gl_check,
};

/* gl_options - the section, checked by config_load */
static void gl_options(cfg_t *sec, struct greylist *g)
{
    long pass = cfg_getint(sec, "pass_ttl");

    g->delay = (unsigned)cfg_getint(sec, "delay");
    g->retry_window = (unsigned)cfg_getint(sec, "retry_window");
    g->pass_ttl = (unsigned)pass;
    g->awl_count = (unsigned)cfg_getint(sec, "awl_count");
    /* a record rewritten every half pass_ttl at the latest cannot expire while used */
    g->interval =
        pass / 2 < GL_AWL_INTERVAL ? (unsigned)(pass > 1 ? pass / 2 : 1) : GL_AWL_INTERVAL;
    g->v4prefix = (int)cfg_getint(sec, "ipv4_prefix");
    g->v6prefix = (int)cfg_getint(sec, "ipv6_prefix");
    g->only_suspicious = cfg_getbool(sec, "only_suspicious") == cfg_true;
    g->spf_pass = (enum gl_spf_mode)gl_mode(gl_spf_modes, 3, cfg_getstr(sec, "spf_pass"));
    g->dkim_defer = strcmp(cfg_getstr(sec, "dkim_pass"), "defer") == 0;
}

/* greylist_init - the greylist section; a state store is required */
static int greylist_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "greylist");
    struct greylist *g;

    if (!env->store && !env->checking) {
        snprintf(err, errlen, "%s:0: greylist needs a state store", env->cfg->path);
        return -1;
    }
    if (!sec) {
        snprintf(err, errlen, "%s:0: greylist: no greylist section", env->cfg->path);
        return -1;
    }
    g = xcalloc(1, sizeof(*g));
    g->store = env->store;
    gl_options(sec, g);
    g->defer = glauth_defer_new();
    /* the system's Public Suffix List (dmarc's default), else libpsl's own */
    if (g->dkim_defer && !(g->psl = dmarc_psl_load(DMARC_PSL_DEFAULT)))
        g->psl = dmarc_psl_load("");
    *state = g;
    return 0;
}

const struct policy_check_ops policy_check_greylist = {
    .name = "greylist",
    .stages = POLICY_STAGE(POLICY_MAIL) | POLICY_STAGE(POLICY_RCPT) | POLICY_STAGE(POLICY_END),
    .init = greylist_init,
    .run = greylist_run,
    .cancel = greylist_cancel,
    .reload = NULL,
    .free = greylist_free,
    .disconnect = greylist_disconnect,
    .section = &gl_section,
    .user_allowable = 1, /* a per-user allow (userlists) skips the greylist */
};
