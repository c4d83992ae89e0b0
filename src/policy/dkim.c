/*
 * dkim.c - the dkim check: every DKIM signature of a message (RFC 6376,
 * RFC 8463, RFC 8301) verified at the end of DATA, the results in
 * cl->auth->dkim for dmarc and Authentication-Results.
 *
 * While DATA is read (policy_msg_ops): the header section gives up to
 * max_signatures DKIM-Signature fields, each parsed at once, and one body
 * hasher per (canonicalisation, l=) they need; the body streams through
 * those hashers as it arrives, so the message is never read again. At END
 * the key of each signature is looked up (selector._domainkey.domain, TXT,
 * on the c-ares resolver, all at once) and each signature is checked as its
 * key arrives. A message none of whose signatures passed gets the `fail`
 * action (dunno by default: DMARC decides), or `temperror`'s when a lookup
 * failed. Signatures under a testing key (t=y) are reported, never acted on,
 * and so are those that could not be checked (neutral: header too long).
 */
#include "policy/checks.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "mail/dkim.h"
#include "mail/header.h"

enum dkim_action { DKIM_ACT_DUNNO, DKIM_ACT_SCORE, DKIM_ACT_TEMPFAIL, DKIM_ACT_REJECT };

static const char *const dkim_action_names[] = {"dunno", "score", "tempfail", "reject"};

struct dkim_conf {
    enum dkim_action fail;      /* every signature failed */
    enum dkim_action temperror; /* none passed, some key could not be looked up */
    int score;
    unsigned max_sigs;
    struct dns *dns;
};

/* One signature of the message. */
struct dkim_one {
    char *field; /* the DKIM-Signature field as received */
    size_t flen;
    struct dkim_sig sig;
    enum dkim_result r; /* DKIM_PASS while not decided yet */
    int parsed;         /* sig holds the field's tags (they may still be refused) */
    int testing;        /* the key says t=y */
    int body;           /* its body hasher in the message's list, -1 none */
    char why[96];
};

/* One message (policy_msg_ops): its signatures and the body hashers they need. */
struct dkim_msg {
    struct dkim_conf *dc;
    struct dkim_one *sigs[POLICY_DKIM_MAX];
    size_t nsigs;
    size_t skipped; /* DKIM-Signature fields past max_signatures */
    struct dkim_body *bodies[POLICY_DKIM_MAX];
    size_t nbodies;
};

/* One END stage: the key lookups in flight. */
struct dkim_run;
struct dkim_lookup {
    struct dkim_run *run;
    size_t idx;
    struct dns_query *q;
};
struct dkim_run {
    struct dkim_conf *dc;
    struct policy_job *job;
    struct policy_client *cl;
    struct dkim_msg *m;
    struct dkim_lookup lk[POLICY_DKIM_MAX];
    size_t pending;
};

/* ---- the message as it arrives ---- */

static void *dkim_msg_begin(void *state, const struct policy_client *cl)
{
    struct dkim_msg *m = xcalloc(1, sizeof(*m));

    m->dc = state;
    return m;
}

/* dkim_msg_hasher - the body hasher for canon and l=, shared by the signatures that
 * need the same one */
static int dkim_msg_hasher(struct dkim_msg *m, enum dkim_canon c, long long l)
{
    for (size_t i = 0; i < m->nbodies; i++)
        if (dkim_body_canon(m->bodies[i]) == c && dkim_body_limit(m->bodies[i]) == l)
            return (int)i;
    m->bodies[m->nbodies] = dkim_body_new(c, l); /* at most one per signature */
    return (int)m->nbodies++;
}

/* dkim_msg_sig - one DKIM-Signature field: parsed now, its body hash started */
static void dkim_msg_sig(struct dkim_msg *m, const struct hdr_field *f, int truncated)
{
    struct dkim_one *o = xcalloc(1, sizeof(*o));

    m->sigs[m->nsigs++] = o;
    o->field = xmalloc(f->raw_len + 1); /* octets as they are: a NUL must not cut it short */
    memcpy(o->field, f->raw, f->raw_len);
    o->field[f->raw_len] = '\0';
    o->flen = f->raw_len;
    o->body = -1;
    o->r = dkim_sig_parse(o->field, o->flen, &o->sig, o->why, sizeof(o->why));
    o->parsed = o->r == DKIM_PASS;
    if (o->r == DKIM_PASS)
        o->r = dkim_sig_acceptable(&o->sig, clock_now(), o->why, sizeof(o->why));
    if (o->r == DKIM_PASS && truncated) {
        o->r = DKIM_NEUTRAL; /* the fields it signs may be in the part not kept */
        snprintf(o->why, sizeof(o->why), "header section too long to check");
    }
    if (o->r == DKIM_PASS)
        o->body = dkim_msg_hasher(m, o->sig.bcanon, o->sig.l);
}

static void dkim_msg_header(void *mdata, const char *hdr, size_t len, int truncated)
{
    struct dkim_msg *m = mdata;
    struct hdr_field f;
    size_t off = 0;

    while (hdr_next(hdr, len, &off, &f)) {
        if (!hdr_is(&f, "DKIM-Signature"))
            continue;
        if (m->nsigs < m->dc->max_sigs)
            dkim_msg_sig(m, &f, truncated);
        else
            m->skipped++;
    }
}

static void dkim_msg_body(void *mdata, const char *data, size_t len)
{
    struct dkim_msg *m = mdata;

    for (size_t i = 0; i < m->nbodies; i++)
        dkim_body_update(m->bodies[i], data, len);
}

static void dkim_msg_free(void *mdata)
{
    struct dkim_msg *m = mdata;

    for (size_t i = 0; i < m->nsigs; i++) {
        free(m->sigs[i]->field);
        free(m->sigs[i]);
    }
    for (size_t i = 0; i < m->nbodies; i++)
        dkim_body_free(m->bodies[i]);
    free(m);
}

/* ---- END: keys, verification, results ---- */

/* dkim_check_key - a signature against the TXT records at its key's name */
static void dkim_check_key(struct dkim_run *run, struct dkim_one *o, const struct dns_result *res)
{
    struct dkim_key key;
    unsigned char bh[DKIM_HASH_LEN];
    char why[96] = "";

    o->r = DKIM_PERMERROR;
    snprintf(o->why, sizeof(o->why), "no key for signature");
    /* several records: the first that is a key (RFC 6376 3.6.2.2 leaves it open) */
    for (size_t i = 0; i < res->count; i++) {
        enum dkim_result r = dkim_key_parse(res->str[i], res->len[i], &key, why, sizeof(why));
        if (r != DKIM_PASS) {
            if (i == 0)
                snprintf(o->why, sizeof(o->why), "%s", why);
            continue;
        }
        o->testing = key.testing;
        if (dkim_body_final(run->m->bodies[o->body], bh) < 0) {
            o->r = DKIM_FAIL;
            snprintf(o->why, sizeof(o->why), "body shorter than l=");
        } else {
            o->r = dkim_verify(&o->sig, o->field, o->flen, run->cl->header, run->cl->header_len, bh,
                               &key, o->why, sizeof(o->why));
        }
        if (o->r == DKIM_PASS)
            o->why[0] = '\0';
        dkim_key_free(&key);
        return;
    }
}

static void dkim_finish(struct dkim_run *run);

/* dkim_key_done - a key lookup answered */
static void dkim_key_done(const struct dns_result *res, void *arg)
{
    struct dkim_lookup *lk = arg;
    struct dkim_run *run = lk->run;
    struct dkim_one *o = run->m->sigs[lk->idx];

    lk->q = NULL;
    if (res->status == DNS_OK) {
        dkim_check_key(run, o, res);
    } else if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA) {
        o->r = DKIM_PERMERROR;
        snprintf(o->why, sizeof(o->why), "no key for signature");
    } else {
        o->r = DKIM_TEMPERROR;
        snprintf(o->why, sizeof(o->why), "key lookup: %s", dns_status_str(res->status));
    }
    if (--run->pending == 0)
        dkim_finish(run);
}

/* dkim_auth - one signature into cl->auth->dkim (RFC 8601 result, header.d/s/b) */
static void dkim_auth(struct policy_client *cl, const struct dkim_one *o)
{
    struct policy_auth_dkim *a = &cl->auth->dkim[cl->auth->ndkim++];

    memset(a, 0, sizeof(*a));
    snprintf(a->result, sizeof(a->result), "%s", dkim_result_name(o->r));
    snprintf(a->reason, sizeof(a->reason), "%s", o->why);
    if (!o->parsed)
        return; /* nothing of the field is trustworthy enough to show */
    snprintf(a->domain, sizeof(a->domain), "%s", o->sig.d);
    snprintf(a->selector, sizeof(a->selector), "%s", o->sig.s);
    snprintf(a->algo, sizeof(a->algo), "%s", dkim_algo_name(o->sig.algo));
    snprintf(a->b, sizeof(a->b), "%s", o->sig.b_prefix);
}

/* dkim_log - one line per signature */
static void dkim_log(const struct policy_client *cl, const struct dkim_one *o)
{
    log_info("event=dkim client=%s result=%s domain=%s selector=%s algo=%s b=%s testing=%s "
             "reason=%s",
             cl->ip, dkim_result_name(o->r), log_q(o->parsed ? o->sig.d : ""),
             log_q(o->parsed ? o->sig.s : ""), o->parsed ? dkim_algo_name(o->sig.algo) : "-",
             log_q(o->parsed ? o->sig.b_prefix : ""), o->testing ? "yes" : "no",
             log_q(o->r == DKIM_PASS ? "" : o->why));
}

/* dkim_act - the verdict of an action; what/status/text say why */
static void dkim_act(const struct dkim_conf *dc, enum dkim_action a, const char *reason,
                     const char *tstatus, const char *what, struct policy_verdict *v)
{
    if (a == DKIM_ACT_REJECT)
        policy_verdict_set(v, POLICY_REJECT, 550, "5.7.20", reason, "DKIM: %s", what);
    else if (a == DKIM_ACT_TEMPFAIL)
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, tstatus, reason, "DKIM: %s, try again later",
                           what);
    else if (a == DKIM_ACT_SCORE) {
        policy_verdict_set(v, POLICY_SCORE, 0, "", reason, "%s", "");
        v->score = dc->score;
    } else {
        policy_verdict_dunno(v);
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
    }
}

/* dkim_verdict - pass if any passed; else temperror's action if a lookup failed, else
 * fail's if one failed. Signatures of testing keys do not count, nor neutral ones:
 * they could not be checked (a header section too long to keep), which is no failure */
static void dkim_verdict(const struct dkim_run *run, struct policy_verdict *v)
{
    const struct dkim_msg *m = run->m;
    const struct dkim_one *first = NULL;
    size_t pass = 0, temp = 0;
    char reason[192];

    for (size_t i = 0; i < m->nsigs; i++) {
        const struct dkim_one *o = m->sigs[i];
        if (o->r == DKIM_PASS)
            pass++;
        if (o->r == DKIM_PASS || o->r == DKIM_NEUTRAL || o->testing)
            continue;
        if (!first)
            first = o;
        temp += o->r == DKIM_TEMPERROR;
    }
    if (pass > 0 || !first) {
        policy_verdict_dunno(v);
        snprintf(v->reason, sizeof(v->reason), "signatures=%zu pass=%zu", m->nsigs, pass);
        return;
    }
    snprintf(reason, sizeof(reason), "result=%s domain=%s signatures=%zu reason=%s",
             dkim_result_name(first->r), first->parsed ? first->sig.d : "-", m->nsigs, first->why);
    if (temp > 0)
        dkim_act(run->dc, run->dc->temperror, reason, "4.4.3", "key lookup failed", v);
    else
        dkim_act(run->dc, run->dc->fail, reason, "4.7.20", "no valid signature", v);
}

/* dkim_finish - every signature decided: results, log lines, the verdict */
static void dkim_finish(struct dkim_run *run)
{
    struct policy_job *job = run->job;
    struct policy_verdict v;

    run->cl->auth->ndkim = 0;
    for (size_t i = 0; i < run->m->nsigs; i++) {
        dkim_auth(run->cl, run->m->sigs[i]);
        dkim_log(run->cl, run->m->sigs[i]);
    }
    if (run->m->skipped > 0)
        log_info("event=dkim client=%s skipped=%zu reason=%s", run->cl->ip, run->m->skipped,
                 log_q("more signatures than max_signatures"));
    dkim_verdict(run, &v);
    policy_job_set_data(job, NULL);
    free(run);
    policy_job_done(job, &v); /* last: the pipeline may go on from here */
}

/* dkim_start_lookups - a key lookup for each signature still undecided */
static void dkim_start_lookups(struct dkim_run *run)
{
    char name[DKIM_DOMAIN_MAX + 2];

    run->pending = 1; /* held until every lookup is started: none can finish the run early */
    for (size_t i = 0; i < run->m->nsigs; i++) {
        struct dkim_one *o = run->m->sigs[i];
        if (o->r != DKIM_PASS)
            continue;
        if (!run->dc->dns || dkim_key_name(&o->sig, name, sizeof(name)) < 0) {
            o->r = run->dc->dns ? DKIM_PERMERROR : DKIM_TEMPERROR;
            snprintf(o->why, sizeof(o->why), run->dc->dns ? "key name too long" : "no resolver");
            continue;
        }
        run->lk[i].run = run;
        run->lk[i].idx = i;
        run->lk[i].q = dns_lookup(run->dc->dns, DNS_T_TXT, name, dkim_key_done, &run->lk[i]);
        if (run->lk[i].q)
            run->pending++;
        else {
            o->r = DKIM_TEMPERROR;
            snprintf(o->why, sizeof(o->why), "key lookup not started");
        }
    }
    if (--run->pending == 0)
        dkim_finish(run);
}

/* dkim_run_check - END: verify what the message carried */
static void dkim_run_check(void *state, struct policy_job *job, enum policy_stage stage,
                           struct policy_client *cl)
{
    struct dkim_msg *m = policy_job_msg(job);
    struct dkim_run *run;
    struct policy_verdict v;

    if (m && !cl->header)
        for (size_t i = 0; i < m->nsigs; i++)
            if (m->sigs[i]->r == DKIM_PASS) {
                m->sigs[i]->r = DKIM_NEUTRAL; /* cannot happen: the session gives the header */
                snprintf(m->sigs[i]->why, sizeof(m->sigs[i]->why), "no header section");
            }
    if (!m || m->nsigs == 0) {
        cl->auth->ndkim = 0;
        policy_verdict_dunno(&v);
        snprintf(v.reason, sizeof(v.reason), "signatures=0");
        policy_job_done(job, &v);
        return;
    }
    run = xcalloc(1, sizeof(*run));
    run->dc = state;
    run->job = job;
    run->cl = cl;
    run->m = m;
    policy_job_set_data(job, run);
    dkim_start_lookups(run);
}

/* dkim_cancel - the session is gone: stop the lookups */
static void dkim_cancel(void *state, struct policy_job *job)
{
    struct dkim_run *run = policy_job_data(job);

    if (!run)
        return;
    policy_job_set_data(job, NULL);
    for (size_t i = 0; i < POLICY_DKIM_MAX; i++)
        dns_cancel(run->lk[i].q);
    free(run);
}

/* dkim_action_parse - an action by name, or -1 */
static int dkim_action_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(dkim_action_names) / sizeof(dkim_action_names[0]); i++)
        if (strcmp(s, dkim_action_names[i]) == 0)
            return (int)i;
    return -1;
}

static int dkim_valid_action(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (dkim_action_parse(v) < 0)
        cfg_error(sec,
                  "dkim: %s must be \"dunno\", \"score\", \"tempfail\" or \"reject\", not \"%s\"",
                  opt->name, v);
    return 0; /* reported; keep parsing to list every error */
}

static int dkim_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "dkim");
    struct dkim_conf *dc;

    if (!env->dns && !env->checking) {
        snprintf(err, errlen, "%s:0: dkim needs a dns section", env->cfg->path);
        return -1;
    }
    dc = xcalloc(1, sizeof(*dc));
    dc->fail = (enum dkim_action)dkim_action_parse(cfg_getstr(sec, "fail"));
    dc->temperror = (enum dkim_action)dkim_action_parse(cfg_getstr(sec, "temperror"));
    dc->score = (int)cfg_getint(sec, "score");
    dc->max_sigs = config_uint(sec, "max_signatures");
    dc->dns = env->dns;
    *state = dc;
    return 0;
}

static void dkim_free_state(void *state)
{
    free(state);
}

static cfg_opt_t dkim_opts[] = {
    CFG_STR("fail", "dunno", CFGF_NONE),
    CFG_STR("temperror", "dunno", CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),
    CFG_INT("max_signatures", POLICY_DKIM_MAX, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound dkim_bounds[] = {
    {"score", -1000, 1000},
    {"max_signatures", 1, POLICY_DKIM_MAX},
    {NULL, 0, 0},
};

static const struct config_validator dkim_validators[] = {
    {"dkim|fail", dkim_valid_action},
    {"dkim|temperror", dkim_valid_action},
    {NULL, NULL},
};

static const struct config_section dkim_section = {
    .name = "dkim",
    .opts = dkim_opts,
    .bounds = dkim_bounds,
    .validators = dkim_validators,
};

static const struct policy_msg_ops dkim_msg_ops = {
    .begin = dkim_msg_begin,
    .header = dkim_msg_header,
    .body = dkim_msg_body,
    .free = dkim_msg_free,
};

const struct policy_check_ops policy_check_dkim = {
    .name = "dkim",
    .stages = POLICY_STAGE(POLICY_END),
    .init = dkim_init,
    .run = dkim_run_check,
    .cancel = dkim_cancel,
    .free = dkim_free_state,
    .section = &dkim_section,
    .msg = &dkim_msg_ops,
};
