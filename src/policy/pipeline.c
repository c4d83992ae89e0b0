/* pipeline.c - run a listener's checks for a stage, one verdict at a time */
#include "policy/policy.h"

#include <confuse.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/registry.h"
#include "policy/stats.h"

struct policy_inst {
    const struct policy_check_ops *ops;
    void *state;
};

struct policy_chain {
    const struct policy *p;
    const char *listener;
    struct policy_inst **checks;
    size_t n;
    unsigned stages;
};

struct policy {
    struct policy_env env;
    struct policy_inst *inst; /* one per distinct check */
    size_t ninst;
    struct policy_chain *chains; /* one per listener */
    size_t nchains;
};

struct policy_job {
    struct policy_run *run;
    struct policy_inst *inst;
    void *data;
    int pending; /* run() was called and done not yet */
};

struct policy_run {
    const struct policy *p;
    const struct policy_chain *chain;
    enum policy_stage stage;
    struct policy_client *cl;
    policy_done_fn done;
    void *arg;
    size_t next;
    int in_step; /* the step loop is on the stack: a synchronous done just returns */
    int decided;
    int held_pass; /* RCPT with a held refusal: only passes_held checks run (run_held_pass) */
    struct policy_job job;
    struct policy_verdict result;
    struct event *ev;
};

static const char *const stage_names[] = {"connect", "helo", "mail", "rcpt", "data", "end"};
static const char *const action_names[] = {"dunno", "ok", "tempfail", "reject", "score"};

/* policy_stage_name - for logs */
const char *policy_stage_name(enum policy_stage s)
{
    return s < POLICY_NSTAGES ? stage_names[s] : "?";
}

/* policy_action_name - for logs and counters */
const char *policy_action_name(enum policy_action a)
{
    return a <= POLICY_SCORE ? action_names[a] : "?";
}

/* policy_client_add_header - one more field for the stored message's top */
int policy_client_add_header(struct policy_client *cl, const char *name, const char *value)
{
    size_t have = cl->add_headers ? strlen(cl->add_headers) : 0;
    size_t add = strlen(name) + 2 + strlen(value) + 2;

    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) /* never a line break or a control */
            return -1;
    if (have + add + 1 > POLICY_HEADERS_MAX)
        return -1;
    cl->add_headers = xrealloc(cl->add_headers, have + add + 1);
    snprintf(cl->add_headers + have, add + 1, "%s: %s\r\n", name, value);
    return 0;
}

/* policy_client_quarantine - the first check that asks decides */
int policy_client_quarantine(struct policy_client *cl, const char *check, const char *why)
{
    if (cl->quarantine[0] || cl->discard)
        return -1;
    snprintf(cl->quarantine, sizeof(cl->quarantine), "%s: %s", check, why);
    for (char *p = cl->quarantine; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return 0;
}

/* policy_verdict_dunno - no opinion */
void policy_verdict_dunno(struct policy_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->action = POLICY_DUNNO;
}

/* policy_verdict_set - fill a verdict in one call */
void policy_verdict_set(struct policy_verdict *v, enum policy_action a, int code,
                        const char *status, const char *reason, const char *fmt, ...)
{
    va_list ap;

    memset(v, 0, sizeof(*v));
    v->action = a;
    v->code = code;
    snprintf(v->status, sizeof(v->status), "%s", status ? status : "");
    snprintf(v->reason, sizeof(v->reason), "%s", reason ? reason : "");
    va_start(ap, fmt);
    vsnprintf(v->text, sizeof(v->text), fmt, ap);
    va_end(ap);
}

/* policy_job_set_data - per-job storage */
void policy_job_set_data(struct policy_job *job, void *data)
{
    job->data = data;
}

/* policy_job_data - per-job storage */
void *policy_job_data(const struct policy_job *job)
{
    return job->data;
}

/* One message's per-check data, in chain order (policy_msg_begin). */
struct policy_msg {
    const struct policy_chain *chain;
    void **data; /* chain->n slots; NULL for checks without msg ops */
};

/* policy_msg_begin - every msg check of the chain starts on a new message */
struct policy_msg *policy_msg_begin(const struct policy_chain *c, struct policy_client *cl)
{
    struct policy_msg *m;
    int any = 0;

    for (size_t i = 0; c && i < c->n; i++)
        any |= c->checks[i]->ops->msg != NULL;
    if (!any)
        return NULL;
    m = xcalloc(1, sizeof(*m));
    m->chain = c;
    m->data = xcalloc(c->n, sizeof(*m->data));
    for (size_t i = 0; i < c->n; i++) {
        const struct policy_inst *in = c->checks[i];
        if (in->ops->msg && !(cl->allowlisted && !in->ops->trusted_too))
            m->data[i] = in->ops->msg->begin(in->state, cl);
    }
    return m;
}

/* policy_msg_header - the header section, to every check that kept data */
void policy_msg_header(struct policy_msg *m, const char *hdr, size_t len, int truncated)
{
    for (size_t i = 0; m && i < m->chain->n; i++)
        if (m->data[i] && m->chain->checks[i]->ops->msg->header)
            m->chain->checks[i]->ops->msg->header(m->data[i], hdr, len, truncated);
}

/* policy_msg_body - body octets, to every check that kept data */
void policy_msg_body(struct policy_msg *m, const char *data, size_t len)
{
    for (size_t i = 0; m && i < m->chain->n; i++)
        if (m->data[i] && m->chain->checks[i]->ops->msg->body)
            m->chain->checks[i]->ops->msg->body(m->data[i], data, len);
}

/* policy_msg_free - the message is decided or abandoned */
void policy_msg_free(struct policy_msg *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->chain->n; i++)
        if (m->data[i])
            m->chain->checks[i]->ops->msg->free(m->data[i]);
    free(m->data);
    free(m);
}

/* policy_job_msg - the running check's data for the message of its session */
void *policy_job_msg(const struct policy_job *job)
{
    const struct policy_msg *m = job->run->cl->msg;

    for (size_t i = 0; m && i < m->chain->n; i++)
        if (m->chain->checks[i] == job->inst)
            return m->data[i];
    return NULL;
}

/* policy_score_add - points and their name, for the score check and the headers */
void policy_score_add(struct policy_client *cl, const char *check, int points)
{
    size_t have;

    if (!cl->score_tests)
        cl->score_tests = xcalloc(1, POLICY_SCORE_TESTS_MAX);
    have = strlen(cl->score_tests);
    cl->score += points;
    if (have + strlen(check) + 16 < POLICY_SCORE_TESTS_MAX)
        snprintf(cl->score_tests + have, POLICY_SCORE_TESTS_MAX - have, "%s%s=%d", have ? "," : "",
                 check, points);
}

/* run_finish - hand the decision to the session and free the run */
static void run_finish(struct policy_run *r)
{
    policy_done_fn done = r->done;
    void *arg = r->arg;
    struct policy_verdict v = r->result;

    event_free(r->ev);
    free(r);
    done(arg, &v);
}

/* run_skip - checks that do not apply now */
static int run_skip(const struct policy_run *r, const struct policy_inst *in)
{
    if (!(in->ops->stages & POLICY_STAGE(r->stage)))
        return 1;
    if (r->held_pass && !in->ops->passes_held)
        return 1;
    /* An allow from the access list trusts the client for every judging check. */
    return r->cl->allowlisted && !in->ops->trusted_too;
}

/* run_step - start checks until one is pending or the stage is decided */
static void run_step(struct policy_run *r)
{
    r->in_step = 1;
    while (!r->decided && r->next < r->chain->n) {
        struct policy_inst *in = r->chain->checks[r->next++];
        if (run_skip(r, in))
            continue;
        r->job = (struct policy_job){.run = r, .inst = in, .pending = 1};
        in->ops->run(in->state, &r->job, r->stage, r->cl);
        if (r->job.pending) {
            r->in_step = 0;
            return; /* asynchronous: policy_job_done continues */
        }
    }
    r->in_step = 0;
    if (r->held_pass && !r->decided)
        r->result = *r->cl->held; /* no check let the recipient pass: the held refusal */
    run_finish(r);
}

/* run_held_verdict - a passes_held check allowed the recipient: judge it as
 * if nothing were held, every RCPT check from the first (counted then) */
static void run_held_verdict(struct policy_run *r, const struct policy_verdict *v)
{
    if (v->action == POLICY_OK) {
        r->held_pass = 0;
        r->next = 0;
    }
    if (!r->in_step)
        run_step(r);
}

/* run_user_allowed - a per-user allow overrides the refusal of a user_allowable
 * check: logged with the decision it overrode, counted, and no opinion instead */
static const struct policy_verdict *run_user_allowed(struct policy_run *r, struct policy_job *job,
                                                     const struct policy_verdict *v,
                                                     struct policy_verdict *dunno)
{
    const struct policy_client *cl = r->cl;
    const char *check = job->inst->ops->name; /* ours, from the registry */
    char rcpt[LOG_QUOTE_MAX + 8] = "";

    if (!cl->user_allow || !job->inst->ops->user_allowable ||
        (v->action != POLICY_TEMPFAIL && v->action != POLICY_REJECT))
        return v;
    if (cl->rcpt) /* at END the allow is every recipient's */
        snprintf(rcpt, sizeof(rcpt), " rcpt=%s", log_qaddr(cl->rcpt));
    log_info("event=allowed_by_user client=%s stage=%s from=%s%s overrode=%s decision=\"%d %s\" "
             "reason=%s",
             cl->ip, policy_stage_name(r->stage), log_qaddr(cl->sender ? cl->sender : ""), rcpt,
             check, v->code, v->status, log_q(v->reason));
    stats_count(r->p->env.stats, "userlists.override");
    policy_verdict_dunno(dunno);
    snprintf(dunno->reason, sizeof(dunno->reason), "allowed by user");
    return dunno;
}

/* policy_job_done - record the check's verdict; continue or decide */
void policy_job_done(struct policy_job *job, const struct policy_verdict *v)
{
    struct policy_run *r = job->run;
    struct policy_verdict dunno;
    char counter[96];

    job->pending = 0;
    v = run_user_allowed(r, job, v, &dunno);
    if (r->held_pass) {
        run_held_verdict(r, v);
        return;
    }
    if (v->action != POLICY_DUNNO) {
        snprintf(counter, sizeof(counter), "%s.%s", job->inst->ops->name,
                 policy_action_name(v->action));
        stats_count(r->p->env.stats, counter);
    }
    if (v->action == POLICY_SCORE)
        policy_score_add(r->cl, job->inst->ops->name, v->score);
    if (v->action == POLICY_OK || v->action == POLICY_TEMPFAIL || v->action == POLICY_REJECT) {
        r->result = *v;
        r->result.check = job->inst->ops->name;
        r->decided = 1;
    }
    if (!r->in_step)
        run_step(r);
}

/* run_postmaster - is the recipient postmaster@ one of our domains (RFC 5321 4.5.1) */
static int run_postmaster(const struct policy_run *r)
{
    const char *rcpt = r->cl->rcpt;

    return rcpt && strncasecmp(rcpt, "postmaster@", 11) == 0 &&
           config_is_local_domain(r->p->env.cfg, rcpt + 11);
}

/* run_kick - first step from the loop, so done never runs inside policy_start */
static void run_kick(evutil_socket_t fd, short what, void *arg)
{
    run_step(arg);
}

/* policy_start - run the chain for a stage */
struct policy_run *policy_start(const struct policy_chain *c, enum policy_stage stage,
                                struct policy_client *cl, policy_done_fn done, void *arg)
{
    struct policy_run *r = xcalloc(1, sizeof(*r));

    r->p = c->p;
    r->chain = c;
    r->stage = stage;
    r->cl = cl;
    r->done = done;
    r->arg = arg;
    policy_verdict_dunno(&r->result);
    if (stage == POLICY_RCPT || stage == POLICY_END)
        cl->user_allow = 0; /* the userlists check, listed first, says it anew */
    r->held_pass = stage == POLICY_RCPT && cl->held && !run_postmaster(r);
    r->ev = event_new(c->p->env.base, -1, 0, run_kick, r);
    if (!r->ev) {
        free(r);
        return NULL;
    }
    event_active(r->ev, EV_TIMEOUT, 0);
    return r;
}

/* policy_cancel - the session is gone: stop the pending check, forget the run */
void policy_cancel(struct policy_run *r)
{
    if (!r)
        return;
    if (r->job.pending && r->job.inst->ops->cancel)
        r->job.inst->ops->cancel(r->job.inst->state, &r->job);
    event_free(r->ev);
    free(r);
}

/* policy_disconnect - the session is gone: checks forget what they kept for it */
void policy_disconnect(const struct policy_chain *c, struct policy_client *cl)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (c->checks[i]->ops->disconnect)
            c->checks[i]->ops->disconnect(c->checks[i]->state, cl);
}

/* policy_has_check - whether the chain runs name */
int policy_has_check(const struct policy_chain *c, const char *name)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->checks[i]->ops->name, name) == 0)
            return 1;
    return 0;
}

/* policy_has_stage - whether a run for stage would do anything */
int policy_has_stage(const struct policy_chain *c, enum policy_stage stage)
{
    return c && (c->stages & POLICY_STAGE(stage)) != 0;
}

/* policy_chain_for - the listener's chain, NULL when it runs no checks */
const struct policy_chain *policy_chain_for(const struct policy *p, const char *listener)
{
    for (size_t i = 0; p && i < p->nchains; i++)
        if (strcmp(p->chains[i].listener, listener) == 0)
            return p->chains[i].n ? &p->chains[i] : NULL;
    return NULL;
}

/* policy_instance - the instance of name, initialised on first use */
static struct policy_inst *policy_instance(struct policy *p, const char *name, char *err,
                                           size_t errlen)
{
    const struct policy_check_ops *ops = policy_check_find(name);
    struct policy_inst *in;

    if (!ops) {
        snprintf(err, errlen, "unknown check \"%s\"", name);
        return NULL;
    }
    for (size_t i = 0; i < p->ninst; i++)
        if (p->inst[i].ops == ops)
            return &p->inst[i];
    in = &p->inst[p->ninst];
    in->ops = ops;
    if (ops->init && ops->init(&p->env, &in->state, err, errlen) < 0)
        return NULL;
    p->ninst++;
    return in;
}

/* policy_build_chain - one listener's checks in its order */
static int policy_build_chain(struct policy *p, cfg_t *l, struct policy_chain *c, char *err,
                              size_t errlen)
{
    size_t n = cfg_size(l, "checks");
    char e[256];

    c->p = p;
    c->listener = cfg_title(l);
    c->checks = xcalloc(n ? n : 1, sizeof(*c->checks));
    for (size_t i = 0; i < n; i++) {
        struct policy_inst *in =
            policy_instance(p, cfg_getnstr(l, "checks", (unsigned)i), e, sizeof(e));
        if (!in) {
            snprintf(err, errlen, "listen %s: %s", c->listener, e);
            return -1;
        }
        c->checks[c->n++] = in;
        c->stages |= in->ops->stages;
    }
    /* A connect or HELO refusal is held until RCPT and answered by the RCPT stage. */
    if (c->stages & (POLICY_STAGE(POLICY_CONNECT) | POLICY_STAGE(POLICY_HELO)))
        c->stages |= POLICY_STAGE(POLICY_RCPT);
    return 0;
}

/* policy_new - every listener's chain; each check initialised once */
struct policy *policy_new(const struct policy_env *env, char *err, size_t errlen)
{
    cfg_t *raw = env->cfg->raw;
    struct policy *p = xcalloc(1, sizeof(*p));
    size_t total = 0, nlisten = cfg_size(raw, "listen");

    p->env = *env;
    /* the listeners are the server's sections; the policy reads only their checks */
    for (size_t i = 0; i < nlisten; i++)
        total += cfg_size(cfg_getnsec(raw, "listen", (unsigned)i), "checks");
    p->inst = xcalloc(total ? total : 1, sizeof(*p->inst));
    p->chains = xcalloc(nlisten ? nlisten : 1, sizeof(*p->chains));
    for (size_t i = 0; i < nlisten; i++, p->nchains++) {
        cfg_t *l = cfg_getnsec(raw, "listen", (unsigned)i);
        if (policy_build_chain(p, l, &p->chains[i], err, errlen) < 0) {
            p->nchains++;
            policy_free(p);
            return NULL;
        }
    }
    return p;
}

/* policy_reload - SIGHUP: each check re-reads its files */
void policy_reload(struct policy *p)
{
    for (size_t i = 0; p && i < p->ninst; i++)
        if (p->inst[i].ops->reload)
            p->inst[i].ops->reload(p->inst[i].state);
}

/* policy_retire - see policy.h */
void policy_retire(struct policy *p)
{
    for (size_t i = 0; p && i < p->ninst; i++)
        if (p->inst[i].ops->retire)
            p->inst[i].ops->retire(p->inst[i].state);
}

/* policy_free - checks and chains */
void policy_free(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->ninst; i++)
        if (p->inst[i].ops->free)
            p->inst[i].ops->free(p->inst[i].state);
    for (size_t i = 0; i < p->nchains; i++)
        free(p->chains[i].checks);
    free(p->chains);
    free(p->inst);
    free(p);
}
