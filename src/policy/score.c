/*
 * score.c - the score check: the points that checks gave (SCORE verdicts,
 * summed by the pipeline into cl->score, named in cl->score_tests) against
 * thresholds. List it last: it judges what the checks before it found.
 *
 *   score { tag = 5  tempfail = 10  reject = 15  quarantine = 0 }
 *
 * At RCPT (connect, HELO and MAIL points) and at the end of DATA (all of
 * them): a total at or above `reject` gets 550 5.7.1, at or above `tempfail`
 * 451 4.7.1 (0: never). An accepted message gets, at the end of DATA,
 *
 *   X-Spam-Score: 7
 *   X-Spam-Status: Yes, score=7 required=5 tests=s25r=5,spf=2
 *
 * on top ("Yes" from `tag` on), for the mail servers behind the gateway to
 * sort on. The refusal's reason (the reject log line) names every check's
 * points, as the header does. A message at or above `quarantine` (0: never)
 * but below the refusals is accepted and kept in quarantine.
 *
 * A per-user allow (userlists: every recipient accepts the sender) lifts the
 * refusals (the pipeline, user_allowable), and at END the quarantine and the
 * tag too: logged as event=allowed_by_user overrode=score.
 */
#include "policy/checks.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define SCORE_MAX 100000

struct score_conf {
    int tag, tempfail, reject, quarantine; /* tempfail, reject, quarantine: 0 is never */
};

/* score_tests - the tests list as the header and the reason show it */
static const char *score_tests(const struct policy_client *cl)
{
    return cl->score_tests && cl->score_tests[0] ? cl->score_tests : "none";
}

/* score_refusal - the verdict of a total over a threshold, or 0 */
static int score_refusal(const struct score_conf *sc, const struct policy_client *cl,
                         struct policy_verdict *v)
{
    char reason[sizeof(v->reason)];
    int limit = sc->reject && cl->score >= sc->reject       ? sc->reject
                : sc->tempfail && cl->score >= sc->tempfail ? sc->tempfail
                                                            : 0;

    if (!limit)
        return 0;
    snprintf(reason, sizeof(reason), "score=%d required=%d tests=%s", cl->score, limit,
             score_tests(cl));
    if (limit == sc->reject)
        policy_verdict_set(v, POLICY_REJECT, 550, "5.7.1", reason,
                           "Message rejected as spam (score %d, limit %d)", cl->score, limit);
    else
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.7.1", reason,
                           "Message deferred as possible spam (score %d, limit %d); try again "
                           "later",
                           cl->score, limit);
    return 1;
}

/* score_tag - the X-Spam-* fields of an accepted message */
static void score_tag(const struct score_conf *sc, struct policy_client *cl,
                      struct policy_verdict *v)
{
    char n[16], status[POLICY_SCORE_TESTS_MAX + 64];

    snprintf(n, sizeof(n), "%d", cl->score);
    snprintf(status, sizeof(status), "%s, score=%d required=%d tests=%s",
             cl->score >= sc->tag ? "Yes" : "No", cl->score, sc->tag, score_tests(cl));
    if (policy_client_add_header(cl, "X-Spam-Score", n) < 0 ||
        policy_client_add_header(cl, "X-Spam-Status", status) < 0)
        log_warn("event=score what=\"X-Spam-Status not added\" reason=too-long");
    snprintf(v->reason, sizeof(v->reason), "score=%d required=%d tests=%s", cl->score, sc->tag,
             score_tests(cl));
}

/* score_keep - END: over the quarantine threshold; 1 when it decided */
static int score_keep(const struct score_conf *sc, struct policy_client *cl,
                      struct policy_verdict *v)
{
    char why[96];

    if (!sc->quarantine || cl->score < sc->quarantine)
        return 0;
    snprintf(why, sizeof(why), "score=%d required=%d", cl->score, sc->quarantine);
    if (cl->user_allow) {
        log_info("event=allowed_by_user client=%s stage=end from=%s overrode=score "
                 "decision=quarantine reason=%s",
                 cl->ip, log_qaddr(cl->sender ? cl->sender : ""), log_q(why));
        return 1;
    }
    policy_client_quarantine(cl, "score", why);
    snprintf(v->reason, sizeof(v->reason), "quarantine %s tests=%s", why, score_tests(cl));
    return 0;
}

/* score_run - RCPT and END: refuse over a threshold; quarantine and tag at END */
static void score_run(void *state, struct policy_job *job, enum policy_stage stage,
                      struct policy_client *cl)
{
    struct score_conf *sc = state;
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    if (!score_refusal(sc, cl, &v) && stage == POLICY_END && !score_keep(sc, cl, &v) &&
        !cl->user_allow) /* every recipient allows the sender: no tag either */
        score_tag(sc, cl, &v);
    policy_job_done(job, &v);
}

/* score_init - the thresholds */
static int score_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "score");
    struct score_conf *sc = xcalloc(1, sizeof(*sc));

    sc->tag = (int)cfg_getint(sec, "tag");
    sc->tempfail = (int)cfg_getint(sec, "tempfail");
    sc->reject = (int)cfg_getint(sec, "reject");
    sc->quarantine = (int)cfg_getint(sec, "quarantine");
    *state = sc;
    return 0;
}

/* score_free - the configuration */
static void score_free(void *state)
{
    free(state);
}

/* score_check - a tempfail threshold at or over the reject one never applies */
static void score_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *sec = cfg_getsec(root, "score");
    long tf = cfg_getint(sec, "tempfail"), rj = cfg_getint(sec, "reject");

    long qt = cfg_getint(sec, "quarantine");

    if (tf && rj && tf >= rj)
        config_error(d, sec->line, "score: tempfail (%ld) must be below reject (%ld)", tf, rj);
    if (qt && ((tf && qt >= tf) || (rj && qt >= rj)))
        config_error(d, sec->line, "score: quarantine (%ld) must be below tempfail and reject", qt);
}

static cfg_opt_t score_opts[] = {
    CFG_INT("tag", 5, CFGF_NONE),
    CFG_INT("tempfail", 10, CFGF_NONE),
    CFG_INT("reject", 15, CFGF_NONE),
    CFG_INT("quarantine", 0, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound score_bounds[] = {
    {"tag", 1, SCORE_MAX},
    {"tempfail", 0, SCORE_MAX},
    {"reject", 0, SCORE_MAX},
    {"quarantine", 0, SCORE_MAX},
    {NULL, 0, 0},
};

static const struct config_section score_section = {
    .name = "score",
    .opts = score_opts,
    .bounds = score_bounds,
    .check = score_check,
};

const struct policy_check_ops policy_check_score = {
    .name = "score",
    .stages = POLICY_STAGE(POLICY_RCPT) | POLICY_STAGE(POLICY_END),
    .init = score_init,
    .run = score_run,
    .free = score_free,
    .section = &score_section,
    .user_allowable = 1,
};
