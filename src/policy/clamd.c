/*
 * clamd.c - the clamd check: the message text through clamd's INSTREAM
 * (clamd.h), judged at the end of DATA, so that a virus is refused while the
 * client still waits and is never accepted and bounced.
 *
 *   clamd { socket = "/run/clamav/clamd.ctl"  on_error = "tempfail"
 *           max_size = 26214400  timeout = 30  action = "reject" }
 *
 * A virus: 554 5.7.1 naming the signature (action "reject"), or the message
 * kept in quarantine (action "quarantine"). clamd down, slow or confused:
 * on_error "tempfail" answers 451 4.7.0, "accept" passes the message marked
 * "X-Mxgate-Virus-Scan: skipped (error)". A text over max_size is not sent
 * (the rest of it is not streamed) and passes marked "skipped (size)". Each
 * scan is logged (event=clamd result=clean|virus|error|skipped) and counted
 * (clamd.clean, clamd.virus, clamd.error, clamd.skipped).
 */
#include "policy/checks.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/clamd.h"
#include "policy/stats.h"

#define CLAMD_TIMEOUT_MAX 3600
#define CLAMD_SIZE_MIN 1024L
#define CLAMD_SIZE_MAX 4294967295L /* what an INSTREAM length can carry in all */

struct clamd_conf {
    struct event_base *base;
    struct stats *stats;
    struct sockaddr_storage sa;
    socklen_t salen;
    int tempfail;   /* on_error: 1 tempfail, 0 accept */
    int quarantine; /* action: 1 quarantine, 0 reject */
    unsigned long long max_size;
    unsigned timeout;
};

/* One message on its way to clamd. */
struct clamd_msg {
    struct clamd_conf *cc;
    struct clamd_conn *conn;
    unsigned long long size;
    int too_big;
    struct policy_job *job; /* END: waiting for the reply */
    struct policy_client *cl;
};

/* ---- the text as it arrives ---- */

static void *clamd_msg_begin(void *state, const struct policy_client *cl)
{
    struct clamd_conf *cc = state;
    struct clamd_msg *m = xcalloc(1, sizeof(*m));

    m->cc = cc;
    m->conn = clamd_conn_open(cc->base, &cc->sa, cc->salen, cc->timeout);
    return m;
}

/* clamd_msg_add - stream octets while under max_size; past it stop talking to clamd */
static void clamd_msg_add(struct clamd_msg *m, const char *data, size_t len)
{
    if (m->too_big)
        return;
    m->size += len;
    if (m->size > m->cc->max_size) {
        m->too_big = 1;
        clamd_conn_free(m->conn);
        m->conn = NULL;
        return;
    }
    clamd_conn_write(m->conn, data, len);
}

static void clamd_msg_header(void *mdata, const char *hdr, size_t len, int truncated)
{
    clamd_msg_add(mdata, hdr, len);
    clamd_msg_add(mdata, "\r\n", 2); /* the empty line the header section ends with */
}

static void clamd_msg_body(void *mdata, const char *data, size_t len)
{
    clamd_msg_add(mdata, data, len);
}

static void clamd_msg_free(void *mdata)
{
    struct clamd_msg *m = mdata;

    clamd_conn_free(m->conn);
    free(m);
}

/* ---- the verdict ---- */

/* clamd_mark - an unscanned message passes with a header saying why */
static void clamd_mark(struct clamd_msg *m, const char *why, struct policy_verdict *v)
{
    char value[64];

    snprintf(value, sizeof(value), "skipped (%s)", why);
    policy_client_add_header(m->cl, "X-Mxgate-Virus-Scan", value);
    stats_count(m->cc->stats, strcmp(why, "size") == 0 ? "clamd.skipped" : "clamd.error");
    snprintf(v->reason, sizeof(v->reason), "skipped (%s)", why);
}

/* clamd_virus - refuse, or keep in quarantine */
static void clamd_virus(struct clamd_msg *m, const char *sig, struct policy_verdict *v)
{
    char why[96];

    stats_count(m->cc->stats, "clamd.virus");
    log_info("event=clamd result=virus client=%s signature=%s action=%s", m->cl->ip, log_q(sig),
             m->cc->quarantine ? "quarantine" : "reject");
    if (!m->cc->quarantine) {
        policy_verdict_set(v, POLICY_REJECT, 554, "5.7.1", "", "Virus found: \"%s\"", sig);
        snprintf(v->reason, sizeof(v->reason), "signature=%s", sig);
        return;
    }
    snprintf(why, sizeof(why), "virus %s", sig);
    policy_client_quarantine(m->cl, "clamd", why);
    snprintf(v->reason, sizeof(v->reason), "quarantine signature=%s", sig);
}

/* clamd_error - on_error decides */
static void clamd_error(struct clamd_msg *m, const char *text, struct policy_verdict *v)
{
    log_warn("event=clamd result=error client=%s error=%s on_error=%s", m->cl->ip, log_q(text),
             m->cc->tempfail ? "tempfail" : "accept");
    if (m->cc->tempfail) {
        stats_count(m->cc->stats, "clamd.error");
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.7.0", "",
                           "Virus scanner unavailable; try again later");
        snprintf(v->reason, sizeof(v->reason), "clamd error: %.160s", text);
        return;
    }
    clamd_mark(m, "error", v);
}

/* clamd_done - clamd answered (or failed): the END verdict */
static void clamd_done(void *arg, enum clamd_result r, const char *text)
{
    struct clamd_msg *m = arg;
    struct policy_job *job = m->job;
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    m->job = NULL;
    policy_job_set_data(job, NULL);
    if (r == CLAMD_FOUND) {
        clamd_virus(m, text, &v);
    } else if (r == CLAMD_ERROR && strstr(text, "size limit exceeded")) {
        log_info("event=clamd result=skipped client=%s why=size size=%llu", m->cl->ip, m->size);
        clamd_mark(m, "size", &v); /* clamd's StreamMaxLength is below our max_size */
    } else if (r == CLAMD_ERROR) {
        clamd_error(m, text, &v);
    } else {
        stats_count(m->cc->stats, "clamd.clean");
        log_debug("event=clamd result=clean client=%s size=%llu", m->cl->ip, m->size);
        snprintf(v.reason, sizeof(v.reason), "clean");
    }
    policy_job_done(job, &v);
}

/* clamd_run - END: send the end of the text and wait for clamd's answer */
static void clamd_run(void *state, struct policy_job *job, enum policy_stage stage,
                      struct policy_client *cl)
{
    struct clamd_msg *m = policy_job_msg(job);
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    if (!m) {
        policy_job_done(job, &v);
        return;
    }
    m->cl = cl;
    if (m->too_big || !m->conn) {
        log_info("event=clamd result=skipped client=%s why=size size=%llu", cl->ip, m->size);
        clamd_mark(m, "size", &v);
        policy_job_done(job, &v);
        return;
    }
    m->job = job;
    policy_job_set_data(job, m);
    clamd_conn_finish(m->conn, clamd_done, m);
}

/* clamd_cancel - the session is gone: no answer is wanted */
static void clamd_cancel(void *state, struct policy_job *job)
{
    struct clamd_msg *m = policy_job_data(job);

    if (!m)
        return;
    policy_job_set_data(job, NULL);
    m->job = NULL;
    clamd_conn_free(m->conn);
    m->conn = NULL;
}

/* ---- configuration ---- */

static int clamd_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "clamd");
    struct clamd_conf *cc = xcalloc(1, sizeof(*cc));
    const char *sock = cfg_getstr(sec, "socket");

    if (clamd_addr_parse(sock, &cc->sa, &cc->salen) < 0) {
        snprintf(err, errlen, "clamd: socket \"%s\" is neither a path nor a literal host:port",
                 sock ? sock : "");
        free(cc);
        return -1;
    }
    cc->base = env->base;
    cc->stats = env->stats;
    cc->tempfail = strcmp(cfg_getstr(sec, "on_error"), "accept") != 0;
    cc->quarantine = strcmp(cfg_getstr(sec, "action"), "quarantine") == 0;
    cc->max_size = (unsigned long long)cfg_getint(sec, "max_size");
    cc->timeout = config_uint(sec, "timeout");
    *state = cc;
    return 0;
}

static void clamd_free(void *state)
{
    free(state);
}

/* clamd_valid_word - on_error and action each name one of two words */
static int clamd_valid_word(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0), *name = cfg_opt_name(opt);
    int on_error = strcmp(name, "on_error") == 0;
    const char *a = on_error ? "tempfail" : "reject", *b = on_error ? "accept" : "quarantine";

    if (!v || (strcmp(v, a) != 0 && strcmp(v, b) != 0))
        cfg_error(sec, "clamd: %s must be \"%s\" or \"%s\", not \"%s\"", name, a, b, v ? v : "");
    return 0;
}

/* clamd_check - the socket must be usable as written */
static void clamd_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *sec = cfg_getsec(root, "clamd");
    struct sockaddr_storage sa;
    socklen_t len;
    const char *s = cfg_getstr(sec, "socket");

    if (clamd_addr_parse(s, &sa, &len) < 0)
        config_error(d, sec->line,
                     "clamd: socket \"%s\" must be a path (/run/clamav/clamd.ctl) or a literal "
                     "address and port (127.0.0.1:3310, [::1]:3310)",
                     s ? s : "");
}

static cfg_opt_t clamd_opts[] = {
    CFG_STR("socket", "/run/clamav/clamd.ctl", CFGF_NONE),
    CFG_STR("on_error", "tempfail", CFGF_NONE),
    CFG_STR("action", "reject", CFGF_NONE),
    CFG_INT("max_size", 26214400, CFGF_NONE),
    CFG_INT("timeout", 30, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound clamd_bounds[] = {
    {"max_size", CLAMD_SIZE_MIN, CLAMD_SIZE_MAX},
    {"timeout", 1, CLAMD_TIMEOUT_MAX},
    {NULL, 0, 0},
};

static const struct config_validator clamd_validators[] = {
    {"clamd|on_error", clamd_valid_word},
    {"clamd|action", clamd_valid_word},
    {NULL, NULL},
};

static const struct config_section clamd_section = {
    .name = "clamd",
    .opts = clamd_opts,
    .bounds = clamd_bounds,
    .validators = clamd_validators,
    .check = clamd_check,
};

static const struct policy_msg_ops clamd_msg_ops = {
    .begin = clamd_msg_begin,
    .header = clamd_msg_header,
    .body = clamd_msg_body,
    .free = clamd_msg_free,
};

const struct policy_check_ops policy_check_clamd = {
    .name = "clamd",
    .stages = POLICY_STAGE(POLICY_END),
    .init = clamd_init,
    .run = clamd_run,
    .cancel = clamd_cancel,
    .free = clamd_free,
    .section = &clamd_section,
    .msg = &clamd_msg_ops,
};
