/*
 * dmarc.c - the dmarc check (RFC 7489) at the end of DATA: the author domain
 * of the header From:, its policy record from DNS, SPF and DKIM alignment,
 * and an action per policy.
 *
 * The spf check (MAIL) and the dkim check (END, earlier in the chain) leave
 * their results in cl->auth; this check reads them, looks up _dmarc.<author
 * domain> (then _dmarc.<organisational domain>, 6.6.3) on the c-ares
 * resolver, decides pass/fail/none/temperror/permerror and applies the
 * policy the record asks for, sampled by pct: reject (550 5.7.1), a header
 * for the internal servers (tag), points (score) or nothing. The outcome is
 * in cl->auth for Authentication-Results. A From: with several domains is
 * checked domain by domain and the strictest failing policy applies (6.6.1).
 * The DNS part of one domain is dmarc_lookup.c.
 */
#include "policy/checks.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/from.h"
#include "mail/header.h"
#include "policy/dmarc.h"
#include "policy/dmarc_lookup.h"
#include "policy/stats.h"

#define DMARC_HEADER "X-Mxgate-DMARC"

enum dmarc_action {
    DMARC_ACT_DUNNO,
    DMARC_ACT_TAG,
    DMARC_ACT_SCORE,
    DMARC_ACT_REJECT,
    DMARC_ACT_TEMPFAIL
};

static const char *const dmarc_action_names[] = {"dunno", "tag", "score", "reject", "tempfail"};

struct dmarc_conf {
    enum dmarc_action action[3]; /* by the policy applied: none, quarantine, reject */
    enum dmarc_action temperror; /* dunno or tempfail */
    int multiple_reject;         /* multiple_from = "reject" (else "each") */
    int bad_reject;              /* bad_from = "reject" (else "dunno") */
    int score;
    char *psl_file;
    psl_ctx_t *psl;
    struct dmarc_lookup_env lenv;
    struct stats *stats;
};

/* One END stage of one message. */
struct dmarc_run {
    struct dmarc_conf *dc;
    struct policy_job *job;
    struct policy_client *cl;
    struct dmarc_domain dom[FROM_MAX_ADDRS];
    int ndom;
    int cur;                   /* the domain being looked up */
    struct dmarc_lookup *look; /* its lookup, NULL between domains */
};

/* dmarc_action_parse - an action by name within the first n, or -1 */
static int dmarc_action_parse(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, dmarc_action_names[i]) == 0)
            return i;
    return -1;
}

/* dmarc_valid_policy_action - reject/quarantine/none: dunno, tag, score, reject */
static int dmarc_valid_policy_action(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (dmarc_action_parse(v, DMARC_ACT_TEMPFAIL) < 0)
        cfg_error(sec, "dmarc: %s must be \"dunno\", \"tag\", \"score\" or \"reject\", not \"%s\"",
                  opt->name, v);
    return 0; /* reported; keep parsing to list every error */
}

/* dmarc_valid_choice - an option with two values: the first is the default */
static int dmarc_valid_choice(cfg_t *sec, cfg_opt_t *opt)
{
    static const char *const pairs[][3] = {{"temperror", "dunno", "tempfail"},
                                           {"multiple_from", "each", "reject"},
                                           {"bad_from", "dunno", "reject"}};
    const char *v = cfg_opt_getnstr(opt, 0);

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (strcmp(opt->name, pairs[i][0]) == 0 && strcmp(v, pairs[i][1]) != 0 &&
            strcmp(v, pairs[i][2]) != 0)
            cfg_error(sec, "dmarc: %s must be \"%s\" or \"%s\", not \"%s\"", opt->name, pairs[i][1],
                      pairs[i][2], v);
    return 0;
}

/* dmarc_authors - the distinct domains of every From: field (6.6.1: each is
 * checked); their count, or -1 when one has no usable domain or they are too many */
static int dmarc_authors(const struct policy_client *cl, struct dmarc_domain *dom)
{
    char value[2048], d[FROM_MAX_ADDRS][FROM_DOMAIN_SIZE];
    struct hdr_field f;
    size_t off = 0;
    int n = 0;

    while (hdr_next(cl->header, cl->header_len, &off, &f)) {
        int k;
        if (!hdr_is(&f, "From"))
            continue;
        if (hdr_unfold(&f, value, sizeof(value)) < 0 ||
            (k = from_domains(value, d, FROM_MAX_ADDRS)) < 0)
            return -1;
        for (int i = 0; i < k; i++) {
            int j = 0;
            while (j < n && strcmp(dom[j].name, d[i]) != 0)
                j++;
            if (j < n)
                continue;
            if (n == FROM_MAX_ADDRS)
                return -1;
            snprintf(dom[n++].name, sizeof(dom[0].name), "%s", d[i]);
        }
    }
    return n;
}

/* dmarc_rank - how much a result weighs when several author domains are combined */
static int dmarc_rank(enum dmarc_result r)
{
    static const int rank[] = {[DMARC_NONE] = 0,
                               [DMARC_PERMERROR] = 1,
                               [DMARC_PASS] = 2,
                               [DMARC_TEMPERROR] = 3,
                               [DMARC_FAIL] = 4};
    return rank[r];
}

/* dmarc_decisive - the domain that decides: a failing one with the strictest
 * policy applied, else the heaviest result (6.6.1) */
static const struct dmarc_domain *dmarc_decisive(const struct dmarc_run *r)
{
    const struct dmarc_domain *best = &r->dom[0];

    for (int i = 1; i < r->ndom; i++) {
        const struct dmarc_domain *d = &r->dom[i];
        if (dmarc_rank(d->result) > dmarc_rank(best->result) ||
            (d->result == DMARC_FAIL && best->result == DMARC_FAIL && d->applied > best->applied))
            best = d;
    }
    return best;
}

/* dmarc_auth - the outcome for Authentication-Results and later checks */
static void dmarc_auth(struct policy_client *cl, const struct dmarc_domain *d, int ndom)
{
    snprintf(cl->auth->dmarc, sizeof(cl->auth->dmarc), "%s", dmarc_result_name(d->result));
    snprintf(cl->auth->dmarc_policy, sizeof(cl->auth->dmarc_policy), "%s",
             d->applied != DMARC_P_UNSET ? dmarc_policy_name(d->applied) : "");
    /* several author domains: header.from would name one of them only */
    snprintf(cl->auth->from_domain, sizeof(cl->auth->from_domain), "%s", ndom == 1 ? d->name : "");
}

/* dmarc_action_of - what the outcome of the deciding domain asks for */
static enum dmarc_action dmarc_action_of(const struct dmarc_conf *dc, const struct dmarc_domain *d)
{
    if (d->result == DMARC_FAIL && d->applied != DMARC_P_UNSET)
        return dc->action[d->applied];
    if (d->result == DMARC_TEMPERROR)
        return dc->temperror;
    return DMARC_ACT_DUNNO;
}

/* dmarc_verdict - the action's verdict, with a reply naming the domain */
static void dmarc_verdict(struct dmarc_run *r, const struct dmarc_domain *d, enum dmarc_action a,
                          const char *reason, struct policy_verdict *v)
{
    const char *pol = dmarc_policy_name(d->applied);

    if (a == DMARC_ACT_REJECT) {
        policy_verdict_set(v, POLICY_REJECT, 550, "5.7.1", reason,
                           "DMARC policy of %s is %s: the From: domain is not authenticated by "
                           "aligned SPF or DKIM",
                           d->name, pol);
    } else if (a == DMARC_ACT_TEMPFAIL) {
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.7.1", reason,
                           "DMARC policy of %s could not be looked up: try again later", d->name);
    } else if (a == DMARC_ACT_SCORE) {
        policy_verdict_set(v, POLICY_SCORE, 0, "", reason, "%s", "");
        v->score = r->dc->score;
    } else {
        policy_verdict_dunno(v);
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
        if (a == DMARC_ACT_TAG) {
            if (policy_client_add_header(r->cl, DMARC_HEADER, pol) < 0)
                log_warn("event=dmarc what=\"%s not added\" reason=too-long", DMARC_HEADER);
            stats_count(r->dc->stats, "dmarc.tag");
        }
    }
}

/* dmarc_pname - a policy for the log: "-" when there is none */
static const char *dmarc_pname(enum dmarc_policy p)
{
    return p == DMARC_P_UNSET ? "-" : dmarc_policy_name(p);
}

/* dmarc_finish - every domain is decided: results, verdict, log line, done */
static void dmarc_finish(struct dmarc_run *r)
{
    const struct dmarc_domain *d = dmarc_decisive(r);
    enum dmarc_action a = dmarc_action_of(r->dc, d);
    struct policy_job *job = r->job;
    struct policy_verdict v;
    char reason[192];

    dmarc_auth(r->cl, d, r->ndom);
    snprintf(reason, sizeof(reason), "result=%s domain=%s policy=%s applied=%s spf=%s dkim=%s%s%s",
             dmarc_result_name(d->result), d->name, dmarc_pname(d->published),
             dmarc_pname(d->applied), d->spf_aligned ? "aligned" : "unaligned",
             d->dkim_aligned ? "aligned" : "unaligned", d->problem[0] ? " problem=" : "",
             d->problem);
    dmarc_verdict(r, d, a, reason, &v);
    log_info("event=dmarc client=%s from=%s result=%s policy=%s applied=%s pct=%d action=%s "
             "spf=%s dkim=%s domains=%d%s%s",
             r->cl->ip, log_q(d->name), dmarc_result_name(d->result), dmarc_pname(d->published),
             dmarc_pname(d->applied), d->pct, dmarc_action_names[a],
             d->spf_aligned ? "aligned" : "unaligned", d->dkim_aligned ? "aligned" : "unaligned",
             r->ndom, d->problem[0] ? " problem=" : "", d->problem[0] ? log_q(d->problem) : "");
    policy_job_set_data(job, NULL);
    free(r);
    policy_job_done(job, &v); /* last: the pipeline may go on from here */
}

static void dmarc_domain_done(struct dmarc_domain *d, void *arg);

/* dmarc_next - look up the next author domain, or finish */
static void dmarc_next(struct dmarc_run *r)
{
    while (++r->cur < r->ndom) {
        r->look = dmarc_lookup_start(&r->dc->lenv, r->cl, &r->dom[r->cur], dmarc_domain_done, r);
        if (r->look)
            return; /* its answer comes from the loop */
    }
    dmarc_finish(r);
}

/* dmarc_domain_done - one author domain is decided */
static void dmarc_domain_done(struct dmarc_domain *d, void *arg)
{
    struct dmarc_run *r = arg;

    r->look = NULL;
    dmarc_next(r);
}

/* dmarc_refuse_from - a From: that bad_from or multiple_from refuses */
static void dmarc_refuse_from(struct policy_job *job, struct policy_client *cl, const char *why,
                              const char *text)
{
    struct policy_verdict v;
    char reason[96];

    snprintf(reason, sizeof(reason), "result=permerror from=%s", why);
    policy_verdict_set(&v, POLICY_REJECT, 550, "5.7.1", reason, "%s", text);
    log_info("event=dmarc client=%s from=- result=permerror action=reject problem=%s", cl->ip, why);
    snprintf(cl->auth->dmarc, sizeof(cl->auth->dmarc), "permerror");
    policy_job_done(job, &v);
}

/* dmarc_no_author - no author domain to check: a result without a policy */
static void dmarc_no_author(struct policy_job *job, struct policy_client *cl, const char *why,
                            const char *result)
{
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    snprintf(v.reason, sizeof(v.reason), "result=%s from=%s", result, why);
    snprintf(cl->auth->dmarc, sizeof(cl->auth->dmarc), "%s", result);
    log_info("event=dmarc client=%s from=- result=%s action=dunno problem=%s", cl->ip, result, why);
    policy_job_done(job, &v);
}

/* dmarc_start - the author domains of the message, or a decision without DNS */
static int dmarc_start(struct dmarc_conf *dc, struct policy_job *job, struct policy_client *cl,
                       struct dmarc_domain *dom)
{
    char one[FROM_DOMAIN_SIZE];
    enum from_status st =
        cl->header ? from_author_domain(cl->header, cl->header_len, one) : FROM_NONE;
    int n = 1;

    if (st == FROM_NONE && cl->header_truncated)
        st = FROM_BAD; /* the From: may be past what was kept */
    if (st == FROM_MANY && dc->multiple_reject) {
        dmarc_refuse_from(job, cl, "many", "Several author domains in From: are not accepted");
        return 0;
    }
    if (st == FROM_MANY && (n = dmarc_authors(cl, dom)) <= 0)
        st = FROM_BAD;
    if (st == FROM_NONE || st == FROM_BAD) {
        if (dc->bad_reject)
            dmarc_refuse_from(job, cl, from_status_name(st),
                              st == FROM_NONE ? "The message has no From: author domain"
                                              : "The From: header field cannot be read");
        else
            dmarc_no_author(job, cl, from_status_name(st), st == FROM_NONE ? "none" : "permerror");
        return 0;
    }
    if (st == FROM_ONE)
        snprintf(dom[0].name, sizeof(dom[0].name), "%s", one);
    return n;
}

/* dmarc_run_check - END: the author domains, then their lookups one by one */
static void dmarc_run_check(void *state, struct policy_job *job, enum policy_stage stage,
                            struct policy_client *cl)
{
    struct dmarc_run *r = xcalloc(1, sizeof(*r));

    r->dc = state;
    r->job = job;
    r->cl = cl;
    cl->auth->from_domain[0] = '\0';
    r->ndom = dmarc_start(r->dc, job, cl, r->dom);
    if (r->ndom == 0) {
        free(r);
        return; /* decided */
    }
    policy_job_set_data(job, r); /* so that a cancel finds the pending lookup */
    r->cur = -1;
    dmarc_next(r);
}

/* dmarc_cancel - the session is gone: stop the lookups */
static void dmarc_cancel(void *state, struct policy_job *job)
{
    struct dmarc_run *r = policy_job_data(job);

    if (!r)
        return;
    policy_job_set_data(job, NULL);
    dmarc_lookup_cancel(r->look);
    free(r);
}

/* dmarc_reload - SIGHUP: the Public Suffix List again (the old one stays if it fails) */
static void dmarc_reload(void *state)
{
    struct dmarc_conf *dc = state;
    psl_ctx_t *psl = dmarc_psl_load(dc->psl_file);

    if (!psl) {
        log_warn("event=reload check=dmarc status=failed file=%s keeping=old-list",
                 log_q(dc->psl_file));
        return;
    }
    dmarc_psl_free(dc->psl);
    dc->psl = psl;
    dc->lenv.psl = psl;
    log_info("event=reload check=dmarc status=ok file=%s", log_q(dc->psl_file));
}

/* dmarc_free_state - the configuration and the list */
static void dmarc_free_state(void *state)
{
    struct dmarc_conf *dc = state;

    if (!dc)
        return;
    dmarc_psl_free(dc->psl);
    free(dc->psl_file);
    free(dc);
}

/* dmarc_init - the dmarc section and the Public Suffix List */
static int dmarc_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "dmarc");
    static const char *const pol[] = {"none", "quarantine", "reject"};
    struct dmarc_conf *dc;

    if (!env->dns && !env->checking) {
        snprintf(err, errlen, "%s:0: dmarc needs a dns section", env->cfg->path);
        return -1;
    }
    dc = xcalloc(1, sizeof(*dc));
    for (int i = 0; i < 3; i++) {
        int a = dmarc_action_parse(cfg_getstr(sec, pol[i]), DMARC_ACT_TEMPFAIL);
        dc->action[i] = a < 0 ? DMARC_ACT_DUNNO : (enum dmarc_action)a; /* the validator said */
    }
    dc->temperror = strcmp(cfg_getstr(sec, "temperror"), "tempfail") == 0 ? DMARC_ACT_TEMPFAIL
                                                                          : DMARC_ACT_DUNNO;
    dc->multiple_reject = strcmp(cfg_getstr(sec, "multiple_from"), "reject") == 0;
    dc->bad_reject = strcmp(cfg_getstr(sec, "bad_from"), "reject") == 0;
    dc->score = (int)cfg_getint(sec, "score");
    dc->psl_file = xstrdup(cfg_getstr(sec, "psl"));
    dc->psl = dmarc_psl_load(dc->psl_file);
    if (!dc->psl) {
        snprintf(err, errlen, "%s:%d: dmarc: psl: cannot load the Public Suffix List \"%s\"",
                 env->cfg->path, sec->line, dc->psl_file);
        dmarc_free_state(dc);
        return -1;
    }
    dc->lenv.dns = env->dns;
    dc->lenv.psl = dc->psl;
    dc->stats = env->stats;
    *state = dc;
    return 0;
}

/* dmarc_position - where name stands in a listener's checks, -1 when it is not there */
static int dmarc_position(cfg_t *l, const char *name)
{
    for (unsigned i = 0; i < cfg_size(l, "checks"); i++)
        if (strcmp(cfg_getnstr(l, "checks", i), name) == 0)
            return (int)i;
    return -1;
}

/* dmarc_check - dmarc reads what spf and dkim found: a listener that runs dmarc
 * without them before it fails DMARC for mail that only they would pass */
static void dmarc_check(cfg_t *root, struct config_diag *d)
{
    static const char *const needs[] = {"spf", "dkim"};

    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *l = cfg_getnsec(root, "listen", i);
        int at = dmarc_position(l, "dmarc");
        for (size_t k = 0; at >= 0 && k < 2; k++)
            if (dmarc_position(l, needs[k]) < 0 || dmarc_position(l, needs[k]) > at)
                config_warn(d, l->line,
                            "listen %s: dmarc runs without %s before it: no message passes "
                            "DMARC by %s alignment",
                            cfg_title(l), needs[k], needs[k]);
    }
}

static cfg_opt_t dmarc_opts[] = {
    CFG_STR("reject", "reject", CFGF_NONE),
    CFG_STR("quarantine", "tag", CFGF_NONE),
    CFG_STR("none", "dunno", CFGF_NONE),
    CFG_STR("temperror", "dunno", CFGF_NONE),
    CFG_STR("multiple_from", "each", CFGF_NONE),
    CFG_STR("bad_from", "dunno", CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),
    CFG_STR("psl", DMARC_PSL_DEFAULT, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound dmarc_bounds[] = {
    {"score", -1000, 1000},
    {NULL, 0, 0},
};

static const struct config_validator dmarc_validators[] = {
    {"dmarc|reject", dmarc_valid_policy_action},
    {"dmarc|quarantine", dmarc_valid_policy_action},
    {"dmarc|none", dmarc_valid_policy_action},
    {"dmarc|temperror", dmarc_valid_choice},
    {"dmarc|multiple_from", dmarc_valid_choice},
    {"dmarc|bad_from", dmarc_valid_choice},
    {NULL, NULL},
};

static const struct config_section dmarc_section = {
    .name = "dmarc",
    .opts = dmarc_opts,
    .bounds = dmarc_bounds,
    .validators = dmarc_validators,
    .check = dmarc_check,
};

const struct policy_check_ops policy_check_dmarc = {
    .name = "dmarc",
    .stages = POLICY_STAGE(POLICY_END),
    .init = dmarc_init,
    .run = dmarc_run_check,
    .cancel = dmarc_cancel,
    .reload = dmarc_reload,
    .free = dmarc_free_state,
    .section = &dmarc_section,
};
