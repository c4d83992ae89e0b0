/* session_data.c - DATA: strict line reading into the spool, and the durable commit */
#include "smtp/session_internal.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/commitq.h"
#include "policy/stats.h"
#include "queue/queue.h"
#include "queue/quarantine.h"
#include "mail/address.h"
#include "auth/auth.h"
#include "mail/received.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"

/* A commit runs in the pool; the session may be gone when it finishes. */
struct session_commit {
    struct server *srv;
    struct session *s; /* NULL once the session ended */
    struct spool_writer *writer;
    char id[SPOOL_ID_LEN + 1];
    char sid[24];
    char ip[64];
    char *sender;
    char *msgid, *rcpts; /* for the queued line */
    double arrived;      /* the transaction began (delay=) */
    size_t nrcpt;
    uint64_t size;
    int submitted;    /* from an authenticated session: counted as a submission too */
    char *quarantine; /* kept in quarantine/ for this reason (a check asked), or NULL */
    int rc;
    int err;
};

/* data_envelope - the spool envelope of the current transaction */
static void data_envelope(struct session *s, struct spool_envelope *env, struct spool_rcpt *r)
{
    struct smtp_tx *tx = s->tx;

    memset(env, 0, sizeof(*env));
    memcpy(env->id, tx->id, sizeof(env->id));
    env->arrival = clock_now();
    env->client_ip = s->ip;
    env->client_name = s->rdns_name ? s->rdns_name : "unknown";
    env->helo = s->helo;
    env->sender = tx->sender;
    env->body_8bit = tx->body_8bit;
    env->smtputf8 = tx->smtputf8;
    env->dsn_ret = tx->dsn_ret;
    env->dsn_envid = tx->dsn_envid;
    env->nrcpt = tx->nrcpt;
    for (size_t i = 0; i < tx->nrcpt; i++)
        r[i] = (struct spool_rcpt){.addr = tx->rcpt[i]};
    env->rcpt = r;
}

/* data_received - the checks' fields (Received-SPF: above our Received, RFC 7208
 * 9.1), then our trace header, first in the stored message */
static int data_received(struct session *s)
{
    char hdr[2048];
    struct received_info ri = {
        .helo = s->helo,
        .client_name = s->rdns_name ? s->rdns_name : "unknown",
        .client_ip = s->ip,
        .by = s->gen->cfg->hostname,
        .esmtp = s->esmtp,
        .tls = s->tls ? s->tls_desc : NULL,
        .auth = s->login != NULL,
        .login = s->login && auth_conf(s->gen->auth)->show_login ? s->login : NULL,
        .id = s->tx->id,
        .rcpt = s->tx->nrcpt == 1 ? s->tx->rcpt[0] : NULL,
        .when = clock_now(),
    };
    int n = received_format(&ri, hdr, sizeof(hdr));

    if (n < 0) {
        ri.helo = "(too long)";
        n = received_format(&ri, hdr, sizeof(hdr));
    }
    if (n < 0)
        return -1;
    if (s->tx->headers &&
        spool_writer_write(s->tx->writer, s->tx->headers, strlen(s->tx->headers)) < 0)
        return -1;
    return spool_writer_write(s->tx->writer, hdr, (size_t)n);
}

/* session_data_begin - open tmp/ID, write the Received header, answer 354 */
void session_data_begin(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    struct spool_envelope env;
    struct spool_rcpt *r = xcalloc(tx->nrcpt, sizeof(*r));

    spool_new_id(tx->id);
    if (r) {
        data_envelope(s, &env, r);
        tx->writer = spool_writer_begin(s->srv->spool, &env);
    }
    free(r);
    if (!tx->writer || data_received(s) < 0) {
        log_err("event=error sid=%s what=\"spool write\" error=%s", s->sid, log_q(strerror(errno)));
        session_tx_free(s);
        session_error(s, "data", "451 4.3.0 Error: queue file write error");
        return;
    }
    tx->prev_crlf = 1; /* the start of DATA counts as a line start */
    tx->size = 0;
    tx->hdr_off = spool_writer_size(tx->writer);
    s->cl.queue_id = tx->id;
    session_message_begin(s);
    session_set_state(s, SESS_DATA);
    session_set_timeout(s, s->gen->conf->timeouts.data);
    session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* data_fail - remember the first thing wrong with the text; stop storing it */
static void data_fail(struct smtp_tx *tx, enum data_error e)
{
    if (tx->derr == DATA_OK)
        tx->derr = e;
    if (tx->writer) {
        spool_writer_free(tx->writer);
        tx->writer = NULL;
    }
}

/* session_data_write - octets of the text into the spool file; 0, or -1 (remembered) */
int session_data_write(struct session *s, const char *p, size_t len)
{
    if (s->tx->derr != DATA_OK)
        return -1;
    if (spool_writer_write(s->tx->writer, p, len) < 0) {
        data_fail(s->tx, DATA_IO);
        return -1;
    }
    return 0;
}

/* data_store - one line (with its line end): the header through the checks'
 * view of it (which may hold a field back), the body straight to the spool */
static void data_store(struct session *s, const char *line, size_t len)
{
    struct smtp_tx *tx = s->tx;

    if (tx->derr != DATA_OK)
        return;
    eightbit_scan_line(&tx->scan, line, len);
    tx->size += len;
    if (tx->size > s->gen->conf->limits.max_message_size)
        data_fail(tx, DATA_TOO_BIG);
    else if (tx->in_header)
        session_message_header_line(s, line, len);
    else if (session_data_write(s, line, len) == 0)
        session_message_body_line(s, line, len);
}

/* data_discard - drop n octets of an over-long line, remembering the last one */
static void data_discard(struct smtp_tx *tx, struct evbuffer *in, size_t n)
{
    struct evbuffer_ptr p;

    if (n == 0)
        return;
    evbuffer_ptr_set(in, &p, n - 1, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(in, &p, &tx->last_octet, 1);
    evbuffer_drain(in, n);
}

static void data_end(struct session *s);

/*
 * session_data_step - one text line. Only CRLF ends a line, only
 * CRLF "." CRLF ends the text (so "\n.\r\n" and "\r\n.\n" smuggle nothing);
 * bare CR/LF, over-long lines and oversize text are remembered and
 * answered after the real end, while the rest is read and dropped.
 */
int session_data_step(struct session *s, struct evbuffer *in)
{
    struct smtp_tx *tx = s->tx;
    char line[SMTP_TEXT_LINE_MAX + 2];
    size_t avail = evbuffer_get_length(in), len, stuffed = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
    int crlf;

    if (p.pos < 0) {
        if (tx->discard || avail > SMTP_TEXT_LINE_MAX + 1) {
            data_fail(tx, DATA_LONG);
            data_discard(tx, in, avail);
            tx->discard = 1;
        }
        return 0;
    }
    len = (size_t)p.pos + 1; /* with the LF */
    if (!tx->discard && len == SMTP_TEXT_LINE_MAX + 1) {
        /* RFC 5321 4.5.3.1.6: the transparency dot does not count */
        evbuffer_copyout(in, line, 1);
        stuffed = line[0] == '.';
    }
    if (tx->discard || len > SMTP_TEXT_LINE_MAX + stuffed) {
        data_fail(tx, DATA_LONG);
        data_discard(tx, in, len - 1);
        evbuffer_drain(in, 1);
        tx->discard = 0;
        tx->prev_crlf = tx->last_octet == '\r';
        return 1;
    }
    evbuffer_remove(in, line, len);
    session_arm_deadline(s); /* per complete line: a trickle of octets renews nothing */
    crlf = len >= 2 && line[len - 2] == '\r';
    if (!crlf || memchr(line, '\r', len - 2))
        data_fail(tx, DATA_BARE);
    if (crlf && tx->prev_crlf && len == 3 && line[0] == '.') {
        data_end(s);
        return 1;
    }
    tx->prev_crlf = crlf;
    data_store(s, line, len);
    return 1;
}

/* data_refuse - the text was read to its end but cannot be accepted */
static void data_refuse(struct session *s)
{
    enum data_error e = s->tx->derr;

    session_tx_free(s);
    session_set_state(s, SESS_COMMAND);
    session_set_timeout(s, s->gen->conf->timeouts.command);
    if (e == DATA_BARE)
        session_error(s, "data", "550 5.6.0 Error: bare <CR> or <LF> in message text");
    else if (e == DATA_LONG)
        session_error(s, "data", "500 5.5.2 Error: message line too long");
    else if (e == DATA_TOO_BIG)
        session_error(s, "data", "552 5.3.4 Error: message file too big");
    else
        session_error(s, "data", "451 4.3.0 Error: queue file write error");
}

/* session_quarantined - the message is durable in quarantine/, not queued */
static void session_quarantined(const char *sid, const char *id, const char *why,
                                struct stats *stats)
{
    log_info("event=quarantined sid=%s id=%s reason=%s", sid, id, log_q(why));
    stats_count(stats, "quarantine.kept");
}

/* commit_done - on the loop: answer the client (if still there) and schedule delivery */
static void commit_done(void *arg, int rc, int err)
{
    struct session_commit *c = arg;
    struct session *s = c->s;

    c->rc = rc;
    c->err = err;
    if (c->rc == 0) {
        log_info("event=queued sid=%s id=%s client=%s from=%s nrcpt=%zu size=%llu msgid=%s "
                 "rcpts=%s",
                 c->sid, c->id, c->ip, log_qaddr(c->sender), c->nrcpt, (unsigned long long)c->size,
                 log_q(c->msgid ? c->msgid : ""), log_q(c->rcpts));
        stats_count(c->srv->stats, c->submitted ? "submission.accepted" : "accepted");
        if (c->quarantine)
            session_quarantined(c->sid, c->id, c->quarantine, c->srv->stats);
        else if (c->srv->queue) /* NULL during shutdown: the next start picks it up */
            queue_add_arrived(c->srv->queue, c->id, c->arrived);
    } else {
        log_err("event=error sid=%s id=%s what=\"spool commit\" error=%s", c->sid, c->id,
                log_q(strerror(c->err)));
    }
    if (s) {
        s->commit = NULL;
        session_set_state(s, SESS_COMMAND);
        session_set_timeout(s, s->gen->conf->timeouts.command);
        if (c->rc == 0) {
            s->nmessages++;
            s->cl.nmessages = s->nmessages;
            session_reply(s, "250 2.0.0 Ok: queued as %s", c->id);
        } else {
            session_error(s, "data", "451 4.3.0 Error: queue file write error");
        }
        session_process(s);
    }
    spool_writer_free(c->writer);
    free(c->sender);
    free(c->msgid);
    free(c->rcpts);
    free(c->quarantine);
    free(c);
}

/* data_commit - the message is accepted: commit off the loop, answer when it is durable */
static void data_commit(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    struct session_commit *c;

    c = xcalloc(1, sizeof(*c));
    c->srv = s->srv;
    c->s = s;
    c->writer = tx->writer;
    tx->writer = NULL;
    memcpy(c->id, tx->id, sizeof(c->id));
    memcpy(c->sid, s->sid, sizeof(c->sid));
    memcpy(c->ip, s->ip, sizeof(c->ip));
    c->sender = xstrdup(tx->sender);
    c->nrcpt = tx->nrcpt;
    c->submitted = s->login != NULL;
    c->size = spool_writer_size(c->writer);
    c->msgid = session_log_msgid(s);
    c->rcpts = session_log_rcpts(tx);
    c->arrived = tx->started;
    if (s->cl.quarantine[0] && spool_writer_quarantine(c->writer, s->cl.quarantine) == 0)
        c->quarantine = xstrdup(s->cl.quarantine);
    session_tx_free(s);
    s->commit = c;
    session_set_state(s, SESS_COMMIT);
    commitq_submit(s->srv->commits, c->writer, commit_done, c);
}

/* data_prepend - the fields the END stage decided go on top of the stored message */
static int data_prepend(struct session *s)
{
    char *fields = session_message_fields(s);
    int rc = 0;

    if (fields && spool_writer_prepend(s->tx->writer, fields, strlen(fields)) < 0) {
        log_err("event=error sid=%s what=\"spool write\" error=%s", s->sid, log_q(strerror(errno)));
        rc = -1;
    }
    free(fields);
    return rc;
}

/* end_discarded - a check (a milter) discarded the message: accepted, never queued */
static void end_discarded(struct session *s, const struct policy_verdict *v)
{
    log_info("event=discarded sid=%s id=%s client=%s from=%s nrcpt=%zu check=%s reason=%s", s->sid,
             s->tx->id, s->ip, log_qaddr(s->tx->sender), s->tx->nrcpt, v->check ? v->check : "-",
             log_q(v->reason));
    stats_count(s->srv->stats, "discarded");
    free(s->cl.add_headers);
    s->cl.add_headers = NULL;
    s->nmessages++;
    s->cl.nmessages = s->nmessages;
    session_reply(s, "250 2.0.0 Ok: queued as %s", s->tx->id);
    session_tx_free(s);
    session_set_timeout(s, s->gen->conf->timeouts.command);
}

/* end_done - the END checks judged the message: refuse it now, or commit it */
static void end_done(struct session *s, const struct policy_verdict *v)
{
    if (v->action == POLICY_TEMPFAIL || v->action == POLICY_REJECT) {
        free(s->cl.add_headers);
        s->cl.add_headers = NULL;
        session_refuse(s, "data", v);
        session_tx_free(s);
        if (s->state != SESS_CLOSING)
            session_set_timeout(s, s->gen->conf->timeouts.command);
        return;
    }
    if (s->cl.discard) {
        end_discarded(s, v);
        return;
    }
    if (session_edit_apply(s) < 0 || data_prepend(s) < 0) {
        session_tx_free(s);
        session_error(s, "data", "451 4.3.0 Error: queue file write error");
        return;
    }
    data_commit(s);
}

/* data_end - the final dot: refuse what cannot be taken, judge the message, then commit */
static void data_end(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    if (tx->derr == DATA_OK && session_accept_end(s) < 0)
        return; /* a recipient's route could never take it: refused now, not bounced later */
    if (tx->derr != DATA_OK) {
        data_refuse(s);
        return;
    }
    session_message_end(s);
    if (!session_auth_header_ok(s)) { /* the header From: is not the login's: refused */
        session_tx_free(s);
        if (s->state != SESS_CLOSING) {
            session_set_state(s, SESS_COMMAND);
            session_set_timeout(s, s->gen->conf->timeouts.command);
        }
        return;
    }
    session_run_stage(s, POLICY_END, end_done);
}

/* session_commit_detach - the client left before the commit finished; the message stays queued */
void session_commit_detach(struct session *s)
{
    s->commit->s = NULL;
    s->commit = NULL;
}
