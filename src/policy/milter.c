/*
 * milter.c - the "milter" check: every milter section, in the order
 * configured, judges each session as Postfix lets milters judge it. At the
 * connect stage each milter gets a connection (negotiation, then CONNECT);
 * HELO, MAIL and each RCPT are sent as they happen, so a milter can refuse a
 * recipient at RCPT; the message goes at the end of DATA (milter_msg.c).
 * A stage ends at the first milter that refuses (its own reply code when it
 * gives one); a milter that accepts is left alone for the transaction (or,
 * at connect and HELO, the session). Discard: the message is accepted and
 * dropped (cl->discard, verdict OK so that nothing else judges it).
 *
 * A milter that cannot be reached, does not answer within its timeout or
 * breaks the protocol is logged once, counted (milter:NAME.error) and left
 * for the rest of the session; its on_error answers for it at that stage
 * and every later one (451 4.7.0 for tempfail, 550 5.7.0 for reject), or
 * the mail goes on without it (accept).
 *
 * Every decision is logged with the milter's name (event=milter) and counted
 * as milter:NAME.ACTION; the check's own verdicts count as milter.ACTION.
 */
#include "policy/milter_internal.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/checks.h"
#include "policy/stats.h"

static void sess_step(struct milter_sess *ss);
static void link_pump(struct milter_link *l);

/* ---- the sessions' links, found by their client ---- */

static size_t sess_hash(const struct policy_client *cl)
{
    return ((uintptr_t)cl >> 4) % MILTER_BUCKETS;
}

static struct milter_sess *sess_find(struct milter_state *st, const struct policy_client *cl)
{
    for (struct milter_sess *ss = st->buckets[sess_hash(cl)]; ss; ss = ss->next)
        if (ss->cl == cl)
            return ss;
    return NULL;
}

static struct milter_sess *sess_get(struct milter_state *st, struct policy_client *cl)
{
    struct milter_sess *ss = sess_find(st, cl);
    size_t h = sess_hash(cl);

    if (ss)
        return ss;
    ss = xcalloc(1, sizeof(*ss));
    ss->st = st;
    ss->cl = cl;
    ss->links = xcalloc(st->n ? st->n : 1, sizeof(*ss->links));
    for (size_t i = 0; i < st->n; i++) {
        ss->links[i].mc = &st->conf[i];
        ss->links[i].ss = ss;
    }
    ss->next = st->buckets[h];
    st->buckets[h] = ss;
    return ss;
}

static void sess_free(struct milter_sess *ss)
{
    struct milter_sess **pp = &ss->st->buckets[sess_hash(ss->cl)];

    while (*pp && *pp != ss)
        pp = &(*pp)->next;
    if (*pp)
        *pp = ss->next;
    for (size_t i = 0; i < ss->st->n; i++)
        milter_client_close(ss->links[i].conn);
    free(ss->links);
    free(ss);
}

/* ---- log, count, decide ---- */

static void milter_count(struct milter_state *st, const struct milter_conf *mc, const char *what)
{
    char counter[160];

    snprintf(counter, sizeof(counter), "milter:%s.%s", mc->name, what);
    stats_count(st->stats, counter);
}

/* milter_decide - a milter's refusal ends the stage with its answer */
static void milter_decide(struct milter_sess *ss, struct milter_link *l, enum policy_action a,
                          int code, const char *status, const char *text)
{
    char reason[160];
    const char *what = a == POLICY_REJECT ? "reject" : "tempfail";

    snprintf(reason, sizeof(reason), "milter %s: %s", l->mc->name, what);
    policy_verdict_set(&ss->v, a, code, status, reason, "%s", text);
    ss->decided = 1;
    log_info("event=milter name=%s stage=%s action=%s client=%s code=%d status=%s text=%s",
             log_q(l->mc->name), policy_stage_name(ss->stage), what, ss->cl->ip, code, status,
             log_q(text));
    milter_count(ss->st, l->mc, what);
}

/* milter_on_error - the milter failed: its on_error answers for it */
static void milter_on_error(struct milter_sess *ss, struct milter_link *l)
{
    if (l->mc->on_error == MILTER_ON_TEMPFAIL)
        milter_decide(ss, l, POLICY_TEMPFAIL, 451, "4.7.0",
                      "Service unavailable - try again later");
    else if (l->mc->on_error == MILTER_ON_REJECT)
        milter_decide(ss, l, POLICY_REJECT, 550, "5.7.0", "Message content rejected");
}

/* link_fail - log and count once, close, and answer for the stage if one waits */
static void link_fail(struct milter_link *l, int err, const char *why)
{
    struct milter_sess *ss = l->ss;
    int waited = l->awaiting;
    const char *kind = milter_client_errname(err); /* a fixed token */

    log_warn("event=milter_error name=%s stage=%s client=%s error=%s why=%s on_error=%s",
             log_q(l->mc->name), policy_stage_name(ss->stage), ss->cl->ip, kind,
             log_q(why ? why : ""),
             l->mc->on_error == MILTER_ON_TEMPFAIL ? "tempfail"
             : l->mc->on_error == MILTER_ON_ACCEPT ? "accept"
                                                   : "reject");
    milter_count(ss->st, l->mc, "error");
    if (err == MILTER_ERR_TIMEOUT)
        milter_count(ss->st, l->mc, "timeout");
    milter_client_close(l->conn);
    l->conn = NULL;
    l->state = LINK_DEAD;
    l->awaiting = 0;
    if (!ss->job || !waited)
        return; /* between stages: the next stage answers for it */
    milter_on_error(ss, l);
    if (!ss->decided)
        ss->cur++;
    sess_step(ss);
}

/* link_through - l has nothing more to say in this stage: the next milter */
static void link_through(struct milter_link *l)
{
    struct milter_sess *ss = l->ss;

    if (ss->stage == POLICY_END && l->eom) {
        l->eom = 0;
        l->in_tx = 0;
    }
    ss->cur++;
    sess_step(ss);
}

/* link_accept - accept (or discard) ends this milter's part of the transaction or session */
static void link_final(struct milter_link *l, char cmd)
{
    struct milter_sess *ss = l->ss;
    int session = ss->stage == POLICY_CONNECT || ss->stage == POLICY_HELO;

    if (cmd == SMFIR_DISCARD) {
        log_info("event=milter name=%s stage=%s action=discard client=%s", log_q(l->mc->name),
                 policy_stage_name(ss->stage), ss->cl->ip);
        milter_count(ss->st, l->mc, "discard");
        ss->discard = 1;
        ss->discard_all |= session;
        snprintf(ss->discard_by, sizeof(ss->discard_by), "%s", l->mc->name);
    } else if (cmd == SMFIR_SHUTDOWN || session) {
        milter_client_close(l->conn);
        l->conn = NULL;
        l->state = LINK_DONE;
    }
    l->skip_tx = 1;
    link_through(l);
}

/* link_negotiated - the SMFIC_OPTNEG answer: what the milter wants to see */
static void link_negotiated(struct milter_link *l, const struct milter_reply *r)
{
    if (r->cmd != SMFIC_OPTNEG || r->version < 2) {
        link_fail(l, MILTER_ERR_PROTOCOL, "negotiation");
        return;
    }
    l->actions = r->actions & MILTER_PROTO_ACTIONS;
    l->proto = r->protocol & MILTER_PROTO_OFFER; /* what we did not offer is not done */
    l->state = LINK_OPEN;
    l->awaiting = 0;
    milter_client_wait(l->conn, 0);
    link_pump(l);
}

/* link_reply - an answer of the milter (or its failure) */
static void link_reply(void *arg, const struct milter_reply *r, int err, const char *why)
{
    struct milter_link *l = arg;
    struct milter_sess *ss = l->ss;

    if (err) {
        link_fail(l, err, why);
        return;
    }
    if (!ss->job) { /* the session ended while waiting: nothing to decide */
        l->awaiting = 0;
        return;
    }
    if (l->state == LINK_NEG) {
        link_negotiated(l, r);
        return;
    }
    switch (r->cmd) {
    case SMFIR_PROGRESS:
        return;
    case SMFIR_CONTINUE:
        l->awaiting = 0;
        milter_client_wait(l->conn, 0);
        if (l->eom)
            link_through(l);
        else
            link_pump(l);
        return;
    case SMFIR_SKIP:
        if (ss->stage != POLICY_END || l->mstep != 4) {
            link_fail(l, MILTER_ERR_PROTOCOL, "unexpected-skip");
            return;
        }
        l->body_skip = 1;
        l->awaiting = 0;
        link_pump(l);
        return;
    case SMFIR_ACCEPT:
    case SMFIR_DISCARD:
    case SMFIR_SHUTDOWN:
        l->awaiting = 0;
        milter_client_wait(l->conn, 0);
        link_final(l, r->cmd);
        return;
    case SMFIR_REJECT:
    case SMFIR_TEMPFAIL:
    case SMFIR_REPLYCODE:
    case SMFIR_CONN_FAIL:
        l->awaiting = 0;
        milter_client_wait(l->conn, 0);
        if (r->cmd == SMFIR_CONN_FAIL)
            milter_decide(ss, l, POLICY_TEMPFAIL, 421, "4.7.0", "Service unavailable");
        else
            milter_decide(ss, l, r->code / 100 == 5 ? POLICY_REJECT : POLICY_TEMPFAIL, r->code,
                          r->status, r->text);
        sess_step(ss);
        return;
    default: {
        const char *bad;
        if (milter_msg_modify(ss, l, r, &bad) < 0)
            link_fail(l, MILTER_ERR_PROTOCOL, bad);
        return;
    }
    }
}

/* ---- the envelope stages ---- */

static void port_of(const struct policy_client *cl, char *buf, size_t len)
{
    const struct sockaddr_storage *a = &cl->addr;
    unsigned port = a->ss_family == AF_INET    ? ntohs(((const struct sockaddr_in *)a)->sin_port)
                    : a->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
                                               : 0;

    snprintf(buf, len, "%u", port);
}

/* env_macros - the macros Postfix sends before item */
static void env_macros(struct milter_sess *ss, unsigned item, struct milter_pkt *k)
{
    const struct policy_client *cl = ss->cl;
    char port[8], underscore[400];
    const char *name = cl->rdns_name ? cl->rdns_name : "unknown";
    const char *rcpt_at = cl->rcpt ? strrchr(cl->rcpt, '@') : NULL;
    const char *mail_at = cl->sender ? strrchr(cl->sender, '@') : NULL;

    port_of(cl, port, sizeof(port));
    snprintf(underscore, sizeof(underscore), "%s [%s]", name, cl->ip);
    if (item == MILTER_STEP_CONNECT) {
        const char *kv[] = {"j",
                            ss->st->cfg->hostname,
                            "{daemon_name}",
                            cl->listener,
                            "v",
                            "mxgate",
                            "_",
                            underscore,
                            "{client_addr}",
                            cl->ip,
                            "{client_port}",
                            port,
                            "{client_name}",
                            name};
        milter_proto_macros(k, SMFIC_CONNECT, kv, 7);
    } else if (item == MILTER_STEP_HELO) {
        const char *kv[] = {"{client_ptr}", cl->ptr_name};
        milter_proto_macros(k, SMFIC_HELO, kv, 1);
    } else if (item == MILTER_STEP_MAIL) {
        const char *kv[] = {"{auth_authen}", cl->login,
                            "{auth_type}",   cl->login ? "PLAIN" : NULL,
                            "{mail_mailer}", "smtp",
                            "{mail_addr}",   cl->sender,
                            "{mail_host}",   mail_at ? mail_at + 1 : NULL};
        milter_proto_macros(k, SMFIC_MAIL, kv, 5);
    } else {
        const char *kv[] = {"{rcpt_mailer}", "smtp",        "{rcpt_addr}",
                            cl->rcpt,        "{rcpt_host}", rcpt_at ? rcpt_at + 1 : NULL};
        milter_proto_macros(k, SMFIC_RCPT, kv, 3);
    }
}

/* env_command - the command of item, and whether the milter answers it */
static void env_command(struct milter_sess *ss, struct milter_link *l, unsigned item,
                        struct milter_pkt *k, int *want)
{
    const struct policy_client *cl = ss->cl;

    if (item == MILTER_STEP_CONNECT) {
        char fam = cl->addr.ss_family == AF_INET6 ? '6' : '4';
        char port[8];
        port_of(cl, port, sizeof(port));
        /* the client's name as Postfix sends it: "unknown" without a confirmed one */
        milter_proto_connect(k, cl->rdns_name ? cl->rdns_name : "unknown", fam,
                             (uint16_t)atoi(port), cl->ip);
        *want = !(l->proto & SMFIP_NR_CONN);
    } else if (item == MILTER_STEP_HELO) {
        milter_proto_simple(k, SMFIC_HELO, cl->helo ? cl->helo : "");
        *want = !(l->proto & SMFIP_NR_HELO);
    } else if (item == MILTER_STEP_MAIL) {
        milter_proto_simple(k, SMFIC_MAIL, cl->sender ? cl->sender : "");
        l->in_tx = 1;
        *want = !(l->proto & SMFIP_NR_MAIL);
    } else {
        milter_proto_simple(k, SMFIC_RCPT, cl->rcpt ? cl->rcpt : "");
        *want = !(l->proto & SMFIP_NR_RCPT);
    }
}

/* env_skipped - the milter asked not to see item */
static int env_skipped(const struct milter_link *l, unsigned item)
{
    unsigned flag = item == MILTER_STEP_CONNECT ? SMFIP_NOCONNECT
                    : item == MILTER_STEP_HELO  ? SMFIP_NOHELO
                    : item == MILTER_STEP_MAIL  ? SMFIP_NOMAIL
                                                : SMFIP_NORCPT;

    return (l->proto & flag) != 0;
}

/* env_next - the next packet of the envelope items still to send; 0 when none */
static int env_next(struct milter_sess *ss, struct milter_link *l, struct milter_pkt *k, int *want)
{
    while (l->todo) {
        unsigned item = l->todo & -l->todo; /* the lowest: connect, helo, mail, rcpt */
        if (env_skipped(l, item)) {
            l->todo &= ~item;
            l->sub = 0;
            continue;
        }
        if (l->sub == 0) {
            l->sub = 1;
            env_macros(ss, item, k);
            *want = 0;
            return 1;
        }
        l->sub = 0;
        l->todo &= ~item;
        env_command(ss, l, item, k, want);
        return 1;
    }
    return 0;
}

/* link_pump - send until an answer is due, or the stage is through for l */
static void link_pump(struct milter_link *l)
{
    struct milter_sess *ss = l->ss;

    for (;;) {
        struct milter_pkt k = {0};
        int want = 0, more = env_next(ss, l, &k, &want);

        if (!more && ss->stage == POLICY_END)
            more = milter_msg_next(ss, l, &k, &want);
        if (!more) {
            milter_proto_free(&k);
            link_through(l);
            return;
        }
        milter_client_send(l->conn, &k);
        milter_proto_free(&k);
        if (want) {
            l->awaiting = 1;
            milter_client_wait(l->conn, 1);
            return;
        }
    }
}

/* link_todo - what l sends in this stage (a link opened late catches up) */
static unsigned link_todo(const struct milter_sess *ss, struct milter_link *l)
{
    unsigned todo = 0;

    if (!l->sent_conn)
        todo |= MILTER_STEP_CONNECT;
    l->sent_conn = 1;
    if (ss->stage == POLICY_HELO && ss->cl->helo)
        todo |= MILTER_STEP_HELO;
    if (ss->stage == POLICY_MAIL)
        todo |= MILTER_STEP_MAIL;
    if (ss->stage == POLICY_RCPT)
        todo |= MILTER_STEP_RCPT;
    return todo;
}

/* link_start - l's part of the stage begins; 0 when it has none */
static int link_start(struct milter_sess *ss, struct milter_link *l)
{
    struct milter_pkt k = {0};

    if (l->state == LINK_DONE || (l->skip_tx && ss->stage >= POLICY_RCPT))
        return 0;
    if (ss->stage == POLICY_END && ss->msg && ss->msg->size > l->mc->max_size) {
        log_info("event=milter name=%s stage=end action=skip client=%s why=\"message over "
                 "max_size\"",
                 log_q(l->mc->name), ss->cl->ip);
        return 0;
    }
    l->todo = link_todo(ss, l);
    l->sub = 0;
    l->mstep = 0;
    l->hdr_pos = 0;
    l->body_pos = 0;
    l->body_skip = 0;
    l->eom = 0;
    if (l->state == LINK_NEW) {
        l->conn = milter_client_open(ss->st->base, l->mc, link_reply, l);
        if (!l->conn) {
            l->awaiting = 1;
            link_fail(l, MILTER_ERR_CONNECT, "no-socket");
            return 1;
        }
        l->state = LINK_NEG;
        milter_proto_optneg(&k, MILTER_PROTO_ACTIONS, MILTER_PROTO_OFFER);
        milter_client_send(l->conn, &k);
        milter_proto_free(&k);
        l->awaiting = 1;
        milter_client_wait(l->conn, 1);
        return 1;
    }
    link_pump(l);
    return 1;
}

/* sess_finish - the stage's verdict */
static void sess_finish(struct milter_sess *ss)
{
    struct policy_job *job = ss->job;
    struct policy_verdict v;

    ss->job = NULL;
    if (ss->decided) {
        v = ss->v;
    } else if (ss->stage == POLICY_END && (ss->discard || ss->discard_all)) {
        ss->cl->discard = 1;
        policy_verdict_set(&v, POLICY_OK, 0, "", "", "discarded");
        snprintf(v.reason, sizeof(v.reason), "milter %s: discard", ss->discard_by);
    } else if (ss->stage == POLICY_END && ss->score) {
        policy_verdict_set(&v, POLICY_SCORE, 0, "", "", "spam");
        v.score = ss->score;
        snprintf(v.reason, sizeof(v.reason), "milter %s: spam", ss->tags);
    } else {
        policy_verdict_dunno(&v);
    }
    policy_job_done(job, &v);
}

/* sess_step - the milters in order, until one is waited for or the stage is decided */
static void sess_step(struct milter_sess *ss)
{
    while (ss->job && !ss->decided && ss->cur < ss->st->n) {
        struct milter_link *l = &ss->links[ss->cur];
        if (ss->discard && ss->stage >= POLICY_RCPT)
            break; /* discarded: no milter judges it further */
        if (l->state == LINK_DEAD) {
            milter_on_error(ss, l);
            ss->cur++;
            continue;
        }
        size_t at = ss->cur;
        if (link_start(ss, l))
            return; /* asynchronous: link_reply goes on (ss->cur moved on if it is through) */
        if (ss->cur == at)
            ss->cur++;
    }
    if (ss->job)
        sess_finish(ss);
}

/* milter_new_tx - MAIL starts a transaction: links that saw the last one unfinished get ABORT */
static void milter_new_tx(struct milter_sess *ss)
{
    for (size_t i = 0; i < ss->st->n; i++) {
        struct milter_link *l = &ss->links[i];
        if (l->in_tx && l->conn && l->state == LINK_OPEN) {
            struct milter_pkt k = {0};
            milter_proto_simple(&k, SMFIC_ABORT, NULL);
            milter_client_send(l->conn, &k);
            milter_proto_free(&k);
        }
        l->in_tx = 0;
        l->skip_tx = 0;
    }
    ss->discard = ss->discard_all;
    ss->score = 0;
    ss->tags[0] = '\0';
}

static void milter_run(void *state, struct policy_job *job, enum policy_stage stage,
                       struct policy_client *cl)
{
    struct milter_sess *ss = sess_get(state, cl);

    ss->job = job;
    ss->stage = stage;
    ss->cur = 0;
    ss->decided = 0;
    ss->msg = stage == POLICY_END ? policy_job_msg(job) : NULL;
    policy_job_set_data(job, ss);
    if (stage == POLICY_MAIL)
        milter_new_tx(ss);
    sess_step(ss);
}

static void milter_cancel(void *state, struct policy_job *job)
{
    struct milter_sess *ss = policy_job_data(job);

    (void)state;
    if (ss)
        ss->job = NULL;
}

static void milter_disconnect(void *state, struct policy_client *cl)
{
    struct milter_sess *ss = sess_find(state, cl);

    if (ss)
        sess_free(ss);
}

static int milter_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    struct milter_state *st = xcalloc(1, sizeof(*st));

    if (milter_conf_load(env->cfg->raw, &st->conf, &st->n, err, errlen) < 0) {
        free(st);
        return -1;
    }
    if (st->n == 0) {
        snprintf(err, errlen, "%s:0: the milter check needs a milter section", env->cfg->path);
        milter_conf_free(st->conf, st->n);
        free(st);
        return -1;
    }
    for (size_t i = 0; i < st->n; i++)
        if (st->conf[i].max_size > st->max_size)
            st->max_size = st->conf[i].max_size;
    st->base = env->base;
    st->stats = env->stats;
    st->cfg = env->cfg;
    *state = st;
    return 0;
}

static void milter_free_state(void *state)
{
    struct milter_state *st = state;

    for (size_t i = 0; i < MILTER_BUCKETS; i++)
        while (st->buckets[i])
            sess_free(st->buckets[i]);
    milter_conf_free(st->conf, st->n);
    free(st);
}

static const struct policy_msg_ops milter_msg_ops = {
    .begin = milter_msg_begin,
    .body = milter_msg_body,
    .free = milter_msg_free,
};

const struct policy_check_ops policy_check_milter = {
    .name = "milter",
    .stages = POLICY_STAGE(POLICY_CONNECT) | POLICY_STAGE(POLICY_HELO) | POLICY_STAGE(POLICY_MAIL) |
              POLICY_STAGE(POLICY_RCPT) | POLICY_STAGE(POLICY_END),
    .init = milter_init,
    .run = milter_run,
    .cancel = milter_cancel,
    .free = milter_free_state,
    .disconnect = milter_disconnect,
    .trusted_too = 1, /* a milter may sign (OpenDKIM): it sees trusted clients too */
    .section = &milter_conf_section,
    .msg = &milter_msg_ops,
};
