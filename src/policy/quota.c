/*
 * quota.c - per-login sending quotas (submission listeners):
 *
 *   quota { default = {"100/3600", "500/86400"}  recipients = {"300/3600", "2000/86400"}
 *           new_account = {"10/86400"}  new_days = 14  hook = FILE  hook_after = 3 }
 *
 * Only sessions with a login (SMTP AUTH, cl->login) are counted; without one
 * the check has no opinion (a submission listener refuses MAIL before AUTH).
 *
 * MAIL: a suspended login is refused `550 5.7.13` (the IANA registry's "User
 * Account Disabled": permanent, so the client stops and shows it; 535 5.7.8
 * belongs to the AUTH command itself, RFC 4954, and the credentials are
 * right). Then the message windows: the `default` ones, and for an account
 * younger than new_days the `new_account` ones too (one counter per window
 * length, the lower limit). RCPT: the recipient windows.
 *
 * Windows are fixed (counter "q:LOGIN\0m:SECS:N", N = now / SECS, created by
 * an atomic store_incr with a TTL of SECS, as ratelimit.c): one atomic
 * increment per window per event, exact under concurrent sessions and on a
 * shared store, with edges an operator (and a test) can state exactly. A
 * sliding log would need a read-modify-write of a timestamp list per event;
 * the cost of fixed windows — up to twice a limit across one window edge — is
 * bounded by listing a longer window beside the short one (the defaults do).
 *
 * What counts: a message is counted when its MAIL passes this check (as
 * Postfix's anvil counts message rate), a recipient when its RCPT passes this
 * check, so a recipient another check refuses first is not counted: list quota
 * last in the listener's checks. An event over a limit is refused `450 4.7.1`
 * naming the limit, and its increments are taken back, so the counts are what
 * was accepted and a client retrying while over does not push its window on.
 *
 * Each refusal adds to the login's refusals of the day; the hook_after-th runs
 * the hook (quota_hook.c) once that day. A failing store never refuses mail.
 */
#include "policy/checks.h"

#include <confuse.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/quota.h"
#include "policy/stats.h"
#include "policy/storefail.h"
#include "store/store.h"

#define QW_MAX (2 * QUOTA_WINDOWS_MAX)

struct quota {
    struct store *store;
    struct stats *stats;
    struct quota_limits lim;
    unsigned hook_after;
    struct quota_hook *hook;
};

/* One MAIL or RCPT decision: a chain of store operations. */
struct qjob {
    struct quota *q;
    struct policy_job *job;
    int cancelled; /* the session went away: the pending callback frees us */
    size_t cur;    /* the window being counted */
    char kind;     /* 'm' messages, 'r' recipients */
    struct quota_window w[QW_MAX];
    int64_t val[QW_MAX];
    long long win[QW_MAX]; /* the window numbers counted in (taken back from the same) */
    size_t nw;
    struct policy_verdict v;
    char login[QUOTA_LOGIN_MAX + 1];
};

/* qj_name - "messages" or "recipients" */
static const char *qj_name(const struct qjob *j)
{
    return j->kind == 'm' ? "messages" : "recipients";
}

/* qj_key - the job's login record with suffix */
static size_t qj_key(const struct qjob *j, char *key, const char *suffix)
{
    return quota_key(key, QUOTA_KEY_MAX, j->login, suffix);
}

/* qj_finish - give the verdict, or free a cancelled job */
static void qj_finish(struct qjob *j)
{
    struct policy_job *job = j->job;
    struct policy_verdict v = j->v;
    int cancelled = j->cancelled;

    free(j);
    if (cancelled)
        return;
    policy_job_set_data(job, NULL);
    policy_job_done(job, &v);
}

/* qj_store_error - log, and give no opinion (an outage: store { on_error }, logged once
 * by the store) */
static void qj_store_error(struct qjob *j, const char *what, int status)
{
    if (status == STORE_EDOWN) {
        storefail_verdict(j->q->store, &j->v);
        qj_finish(j);
        return;
    }
    log_warn("event=quota_store_error login=%s what=%s status=%s", log_q(j->login), what,
             log_q(status ? store_strerror(status) : strerror(errno)));
    policy_verdict_dunno(&j->v);
    qj_finish(j);
}

/* qj_on_hits - the day's refusals, this one included: the hook_after-th runs the hook */
static void qj_on_hits(void *arg, int status, int64_t value)
{
    struct qjob *j = arg;

    if (status == STORE_OK && j->q->hook && value == (int64_t)j->q->hook_after && !j->cancelled)
        quota_hook_run(j->q->hook, j->login, (long long)value);
    qj_finish(j);
}

/* qj_over - window i is over: take the increments back, count the refusal, refuse */
static void qj_over(struct qjob *j, size_t i)
{
    char key[QUOTA_KEY_MAX], suffix[48], period[32];
    size_t kl;

    for (size_t k = 0; k < j->nw; k++) {
        snprintf(suffix, sizeof(suffix), "%c:%u:%lld", j->kind, j->w[k].secs, j->win[k]);
        if ((kl = qj_key(j, key, suffix)))
            store_incr(j->q->store, key, kl, -1, j->w[k].secs, NULL, NULL);
    }
    quota_period(j->w[i].secs, period, sizeof(period));
    snprintf(suffix, sizeof(suffix), "%s %lld/%u per %us", qj_name(j), (long long)j->val[i],
             j->w[i].limit, j->w[i].secs);
    policy_verdict_set(&j->v, POLICY_TEMPFAIL, 450, "4.7.1", suffix,
                       "Sending quota exceeded: at most %u %s per %s, try again later",
                       j->w[i].limit, qj_name(j), period);
    log_warn("event=quota login=%s kind=%s limit=%u window=%u count=%lld action=tempfail",
             log_q(j->login), qj_name(j), j->w[i].limit, j->w[i].secs, (long long)j->val[i]);
    stats_count(j->q->stats, j->kind == 'm' ? "quota.messages" : "quota.recipients");
    snprintf(suffix, sizeof(suffix), "hit:%lld", (long long)(clock_now() / QUOTA_HIT_WINDOW));
    kl = qj_key(j, key, suffix);
    if (store_incr(j->q->store, key, kl, 1, QUOTA_HIT_WINDOW, qj_on_hits, j) < 0)
        qj_finish(j);
}

static void qj_count(struct qjob *j);

/* qj_on_incr - window cur's count; after the last, the first window over decides */
static void qj_on_incr(void *arg, int status, int64_t value)
{
    struct qjob *j = arg;

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status != STORE_OK) {
        qj_store_error(j, qj_name(j), status); /* fail open; the counts so far stay */
        return;
    }
    j->val[j->cur++] = value;
    if (j->cur < j->nw) {
        qj_count(j);
        return;
    }
    for (size_t i = 0; i < j->nw; i++)
        if (j->val[i] > (int64_t)j->w[i].limit) {
            qj_over(j, i);
            return;
        }
    qj_finish(j);
}

/* qj_count - one more event in window cur (one at a time: each answer is its window's) */
static void qj_count(struct qjob *j)
{
    char key[QUOTA_KEY_MAX], suffix[48];
    size_t kl;

    if (j->cur >= j->nw) {
        qj_finish(j);
        return;
    }
    j->win[j->cur] = (long long)(clock_now() / (time_t)j->w[j->cur].secs);
    snprintf(suffix, sizeof(suffix), "%c:%u:%lld", j->kind, j->w[j->cur].secs, j->win[j->cur]);
    kl = qj_key(j, key, suffix);
    if (store_incr(j->q->store, key, kl, 1, j->w[j->cur].secs, qj_on_incr, j) < 0)
        qj_store_error(j, qj_name(j), 0);
}

/* qj_windows - the message windows of an account new (fresh) or not, then count */
static void qj_windows(struct qjob *j, int fresh)
{
    j->nw = quota_effective(&j->q->lim, fresh, j->w);
    qj_count(j);
}

/* qj_fresh - created at t: younger than new_days? */
static int qj_fresh(const struct qjob *j, time_t t)
{
    return clock_now() - t < (time_t)j->q->lim.new_days * 86400;
}

/* qj_on_seen - the first-seen record: its time, or none yet (now is recorded) */
static void qj_on_seen(void *arg, const int status, const void *val, size_t vlen)
{
    struct qjob *j = arg;
    char buf[32], key[QUOTA_KEY_MAX];
    size_t kl;
    int n;

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status == STORE_OK && vlen < sizeof(buf)) {
        memcpy(buf, val, vlen);
        buf[vlen] = '\0';
        qj_windows(j, qj_fresh(j, (time_t)strtoll(buf, NULL, 10)));
        return;
    }
    if (status != STORE_NOTFOUND) {
        qj_store_error(j, "seen", status);
        return;
    }
    n = snprintf(buf, sizeof(buf), "%lld", (long long)clock_now());
    if ((kl = qj_key(j, key, "seen")))
        store_set(j->q->store, key, kl, buf, (size_t)n, 0, NULL, NULL);
    qj_windows(j, j->q->lim.new_days > 0);
}

/* qj_age - the account's age: the users file's creation date, or the first time seen */
static void qj_age(struct qjob *j)
{
    char key[QUOTA_KEY_MAX];
    size_t kl = qj_key(j, key, "seen");
    time_t created;

    if (j->q->lim.nfresh == 0 || j->q->lim.new_days == 0) {
        qj_windows(j, 0);
    } else if (quota_created(j->login, &created) == 0) {
        qj_windows(j, qj_fresh(j, created));
    } else if (store_get(j->q->store, key, kl, qj_on_seen, j) < 0) {
        qj_store_error(j, "seen", 0);
    }
}

/* qj_on_suspended - a suspension record refuses MAIL; else on to the windows */
static void qj_on_suspended(void *arg, int status, const void *val, size_t vlen)
{
    struct qjob *j = arg;

    if (j->cancelled) {
        free(j);
        return;
    }
    if (status == STORE_OK) {
        policy_verdict_set(&j->v, POLICY_REJECT, 550, "5.7.13", "suspended",
                           "Account suspended: sending is disabled, contact your provider");
        log_warn("event=quota login=%s kind=suspended action=reject", log_q(j->login));
        stats_count(j->q->stats, "quota.suspended");
        qj_finish(j);
    } else if (status == STORE_NOTFOUND) {
        qj_age(j);
    } else {
        qj_store_error(j, "suspended", status);
    }
}

/* quota_run - MAIL: suspension, age, message windows; RCPT: recipient windows */
static void quota_run(void *state, struct policy_job *job, enum policy_stage stage,
                      struct policy_client *cl)
{
    struct quota *q = state;
    struct qjob *j;
    char key[QUOTA_KEY_MAX];
    size_t kl;
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    if (!cl->login || !q->store || (stage == POLICY_RCPT && q->lim.nrcpt == 0)) {
        policy_job_done(job, &v);
        return;
    }
    if (!quota_login_ok(cl->login)) {
        log_warn("event=quota login=%s action=none reason=\"login not countable\"",
                 log_q(cl->login));
        policy_job_done(job, &v);
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->q = q;
    j->job = job;
    j->v = v;
    for (size_t i = 0; cl->login[i]; i++) /* as quota_key folds it, for the log and hook */
        j->login[i] =
            (cl->login[i] >= 'A' && cl->login[i] <= 'Z') ? (char)(cl->login[i] + 32) : cl->login[i];
    policy_job_set_data(job, j);
    if (stage == POLICY_RCPT) {
        j->kind = 'r';
        memcpy(j->w, q->lim.rcpt, q->lim.nrcpt * sizeof(j->w[0]));
        j->nw = q->lim.nrcpt;
        qj_count(j);
        return;
    }
    j->kind = 'm';
    kl = qj_key(j, key, "sus");
    if (store_get(q->store, key, kl, qj_on_suspended, j) < 0)
        qj_store_error(j, "suspended", 0);
}

/* quota_cancel - the session is gone: the pending store callback frees the job */
static void quota_cancel(void *state, struct policy_job *job)
{
    struct qjob *j = policy_job_data(job);

    policy_job_set_data(job, NULL);
    if (j)
        j->cancelled = 1;
}

/* quota_free - the hook (a running one finishes on its own) */
static void quota_free(void *state)
{
    struct quota *q = state;

    if (!q)
        return;
    quota_hook_free(q->hook);
    free(q);
}

/* quota_init - the quota section; a store unless only checking */
static int quota_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "quota");
    struct quota *q;
    const char *hook;

    if (!sec) {
        snprintf(err, errlen, "%s:0: quota: no quota section", env->cfg->path);
        return -1;
    }
    q = xcalloc(1, sizeof(*q));
    q->store = env->store;
    q->stats = env->stats;
    quota_limits_read(env->cfg, &q->lim);
    q->hook_after = (unsigned)cfg_getint(sec, "hook_after");
    hook = cfg_getstr(sec, "hook");
    if (hook && !(q->hook = quota_hook_new(env->checking ? NULL : env->base, hook, err, errlen))) {
        quota_free(q);
        return -1;
    }
    if (!q->store && !env->checking) {
        snprintf(err, errlen, "%s:%d: quota: needs a state store", env->cfg->path, sec->line);
        quota_free(q);
        return -1;
    }
    *state = q;
    return 0;
}

const struct policy_check_ops policy_check_quota = {
    .name = "quota",
    .stages = POLICY_STAGE(POLICY_MAIL) | POLICY_STAGE(POLICY_RCPT),
    .init = quota_init,
    .run = quota_run,
    .cancel = quota_cancel,
    .free = quota_free,
    .section = &quota_section,
};
