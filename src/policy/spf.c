/*
 * spf.c - the spf check: RFC 7208 at MAIL, an action per result, and a
 * Received-SPF field on top of the stored message.
 *
 * At MAIL the check evaluates the HELO identity first (when `helo = true`
 * and the HELO name is a domain): a HELO that fails decides, as RFC 7208
 * 2.3 allows. Otherwise the MAIL FROM identity decides (for the null sender
 * that is postmaster@HELO, the same question, asked once). Each result has
 * an action: dunno, reject (550 5.7.23), tempfail (451 4.7.24 for
 * temperror, 451 4.7.23 otherwise), or score. The evaluation runs on the
 * daemon's c-ares resolver (spf_dns.c); nothing blocks.
 */
#include "policy/checks.h"

#include <confuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "policy/spf_dns.h"
#include "policy/spf_eval.h"

enum spf_action { SPF_ACT_DUNNO, SPF_ACT_REJECT, SPF_ACT_TEMPFAIL, SPF_ACT_SCORE };

static const char *const spf_action_names[] = {"dunno", "reject", "tempfail", "score"};

struct spf_conf {
    enum spf_action action[SPF_RESULT_COUNT];
    int helo;  /* check the HELO identity first */
    int score; /* points a "score" action adds */
    const char *hostname;
    struct spf_resolver res;
};

/* One MAIL stage of one session. */
struct spf_run {
    struct spf_conf *sc;
    struct policy_job *job;
    struct policy_client *cl;
    struct spf_check *check;
    enum spf_identity identity; /* the one being evaluated */
};

/* spf_action_parse - a result's action by name, or -1 */
static int spf_action_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(spf_action_names) / sizeof(spf_action_names[0]); i++)
        if (strcmp(s, spf_action_names[i]) == 0)
            return (int)i;
    return -1;
}

/* spf_valid_action - every result option names an action */
static int spf_valid_action(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (spf_action_parse(v) < 0)
        cfg_error(sec,
                  "spf: %s must be \"dunno\", \"reject\", \"tempfail\" or \"score\", not \"%s\"",
                  opt->name, v);
    return 0; /* reported; keep parsing to list every error */
}

/* spf_verdict - the action of the result, with its reply */
static void spf_verdict(const struct spf_run *r, const struct spf_outcome *o,
                        struct policy_verdict *v)
{
    enum spf_action a = r->sc->action[o->result];
    const char *res = spf_result_name(o->result);
    const char *what = o->identity == SPF_ID_HELO ? "helo" : "mailfrom";
    char reason[192], exp[200];
    size_t i;

    /* the explanation comes from the sender's DNS and goes into our reply:
     * printable ASCII only */
    for (i = 0; o->explanation[i] && i + 1 < sizeof(exp); i++)
        exp[i] = o->explanation[i] >= 0x20 && o->explanation[i] < 0x7f ? o->explanation[i] : '?';
    exp[i] = '\0';

    snprintf(reason, sizeof(reason), "result=%s identity=%s domain=%s mechanism=%s%s%s", res, what,
             o->domain, o->mechanism[0] ? o->mechanism : "-", o->problem[0] ? " problem=" : "",
             o->problem);
    if (a == SPF_ACT_REJECT)
        policy_verdict_set(v, POLICY_REJECT, 550, o->result == SPF_PERMERROR ? "5.7.24" : "5.7.23",
                           reason, "SPF %s for %s: %s", res, o->domain,
                           exp[0] ? exp : "sender not authorised");
    else if (a == SPF_ACT_TEMPFAIL)
        policy_verdict_set(v, POLICY_TEMPFAIL, 451,
                           o->result == SPF_TEMPERROR ? "4.7.24" : "4.7.23", reason,
                           "SPF %s for %s: try again later", res, o->domain);
    else if (a == SPF_ACT_SCORE) {
        policy_verdict_set(v, POLICY_SCORE, 0, "", "", "%s", "");
        v->score = r->sc->score;
        snprintf(v->reason, sizeof(v->reason), "%s score=%d", reason, r->sc->score);
    } else {
        policy_verdict_dunno(v);
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
    }
}

/* spf_auth - the result for later checks (sender, greylist, dmarc) and Authentication-Results */
static void spf_auth(struct policy_client *cl, const struct spf_outcome *o)
{
    struct policy_auth *a = cl->auth;

    snprintf(a->spf, sizeof(a->spf), "%s", spf_result_name(o->result));
    a->spf_helo = o->identity == SPF_ID_HELO;
    snprintf(a->spf_domain, sizeof(a->spf_domain), "%s", o->domain);
    for (char *p = a->spf_domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    snprintf(a->spf_identity, sizeof(a->spf_identity), "%s",
             a->spf_helo ? o->domain : (o->sender ? o->sender : ""));
}

/* spf_finish - a result that decides: the header, the verdict, the end of the run */
static void spf_finish(struct spf_run *r)
{
    struct policy_job *job = r->job;
    struct policy_verdict v;
    char hdr[1024];

    spf_auth(r->cl, spf_outcome(r->check));
    spf_verdict(r, spf_outcome(r->check), &v);
    if (spf_received_spf(r->check, hdr, sizeof(hdr)) == 0 &&
        policy_client_add_header(r->cl, "Received-SPF", hdr) < 0)
        log_warn("event=spf what=\"Received-SPF not added\" reason=too-long");
    policy_job_set_data(job, NULL);
    spf_free(r->check);
    free(r);
    policy_job_done(job, &v); /* last: the pipeline may go on from here */
}

static void spf_done(struct spf_check *c, void *arg);

/* spf_start_identity - evaluate one identity; 0 when it finished at once */
static int spf_start_identity(struct spf_run *r, enum spf_identity id)
{
    const char *sender = r->cl->sender && r->cl->sender[0] ? r->cl->sender : NULL;
    struct spf_request req = {
        .client = (const struct sockaddr *)&r->cl->addr,
        .helo = r->cl->helo,
        .mailfrom = id == SPF_ID_HELO ? NULL : sender,
        .identity = id,
        .receiver = r->sc->hostname,
    };

    struct spf_check *c = spf_new(&r->sc->res, &req);

    if (!c)
        return -1; /* neither IPv4 nor IPv6: nothing to check (an earlier result stays) */
    spf_free(r->check);
    r->identity = id;
    r->check = c;
    return spf_start(c, spf_done, r) == 1 ? 0 : 1;
}

/* spf_next - after the HELO identity: it decides when it failed, else MAIL FROM does */
static void spf_next(struct spf_run *r)
{
    const struct spf_outcome *o = spf_outcome(r->check);
    int rc;

    if (r->identity == SPF_ID_MAILFROM || o->result == SPF_FAIL || !r->cl->sender[0]) {
        spf_finish(r);
        return;
    }
    rc = spf_start_identity(r, SPF_ID_MAILFROM);
    if (rc <= 0)
        spf_finish(r); /* at once, or the HELO result stands */
}

/* spf_done - an identity's result arrived from DNS */
static void spf_done(struct spf_check *c, void *arg)
{
    spf_next(arg);
}

/* spf_helo_checkable - HELO names a domain (a literal has no SPF record) */
static int spf_helo_checkable(const char *helo)
{
    return helo && helo[0] && helo[0] != '[' && addr_host_ok(helo);
}

/* spf_run_check - MAIL: start with HELO or MAIL FROM */
static void spf_run_check(void *state, struct policy_job *job, enum policy_stage stage,
                          struct policy_client *cl)
{
    struct spf_run *r = xcalloc(1, sizeof(*r));
    int helo_first = ((struct spf_conf *)state)->helo && spf_helo_checkable(cl->helo);
    struct policy_verdict v;
    int rc;

    r->sc = state;
    r->job = job;
    r->cl = cl;
    /* the job holds r from here on, so that a cancel finds whatever is pending */
    policy_job_set_data(job, r);
    if (!helo_first && !cl->sender[0] && !spf_helo_checkable(cl->helo))
        rc = -1; /* a null sender with no usable HELO: no identity to check */
    else
        rc = spf_start_identity(r, helo_first || !cl->sender[0] ? SPF_ID_HELO : SPF_ID_MAILFROM);
    if (rc < 0) {
        policy_job_set_data(job, NULL);
        free(r);
        policy_verdict_dunno(&v);
        policy_job_done(job, &v);
    } else if (rc == 0) {
        spf_next(r); /* finished without DNS: decide, or go on to MAIL FROM */
    }
}

/* spf_cancel - the session is gone: stop the lookups */
static void spf_cancel(void *state, struct policy_job *job)
{
    struct spf_run *r = policy_job_data(job);

    if (!r)
        return;
    policy_job_set_data(job, NULL);
    spf_free(r->check);
    free(r);
}

/* spf_init - the spf section: an action per result */
static int spf_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "spf");
    struct spf_conf *sc;

    if (!env->dns && !env->checking) {
        snprintf(err, errlen, "%s:0: spf needs a dns section", env->cfg->path);
        return -1;
    }
    sc = xcalloc(1, sizeof(*sc));
    for (int i = 0; i < SPF_RESULT_COUNT; i++)
        sc->action[i] =
            (enum spf_action)spf_action_parse(cfg_getstr(sec, spf_result_name((enum spf_result)i)));
    sc->helo = cfg_getbool(sec, "helo") == cfg_true;
    sc->score = (int)cfg_getint(sec, "score");
    sc->hostname = env->cfg->hostname;
    if (env->dns)
        spf_dns_resolver(&sc->res, env->dns);
    *state = sc;
    return 0;
}

/* spf_free_state - the configuration */
static void spf_free_state(void *state)
{
    free(state);
}

static cfg_opt_t spf_opts[] = {
    CFG_STR("pass", "dunno", CFGF_NONE),      CFG_STR("fail", "reject", CFGF_NONE),
    CFG_STR("softfail", "dunno", CFGF_NONE),  CFG_STR("neutral", "dunno", CFGF_NONE),
    CFG_STR("none", "dunno", CFGF_NONE),      CFG_STR("temperror", "tempfail", CFGF_NONE),
    CFG_STR("permerror", "dunno", CFGF_NONE), CFG_BOOL("helo", cfg_true, CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),           CFG_END(),
};

static const struct config_bound spf_bounds[] = {
    {"score", -1000, 1000},
    {NULL, 0, 0},
};

static const struct config_validator spf_validators[] = {
    {"spf|pass", spf_valid_action},      {"spf|fail", spf_valid_action},
    {"spf|softfail", spf_valid_action},  {"spf|neutral", spf_valid_action},
    {"spf|none", spf_valid_action},      {"spf|temperror", spf_valid_action},
    {"spf|permerror", spf_valid_action}, {NULL, NULL},
};

static const struct config_section spf_section = {
    .name = "spf",
    .opts = spf_opts,
    .bounds = spf_bounds,
    .validators = spf_validators,
};

const struct policy_check_ops policy_check_spf = {
    .name = "spf",
    .stages = POLICY_STAGE(POLICY_MAIL),
    .init = spf_init,
    .run = spf_run_check,
    .cancel = spf_cancel,
    .free = spf_free_state,
    .section = &spf_section,
};
