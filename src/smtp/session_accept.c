/*
 * session_accept.c - the session's side of "the next hop can take it"
 * (queue/accept.h): what EHLO announces, and the refusals at RCPT and at
 * the end of DATA, logged and counted like a check's (check=maildir or
 * check=nexthop).
 */
#include "smtp/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/xmalloc.h"
#include "queue/accept.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"

/* accept_verdict - a refusal in the pipeline's terms, for session_refuse */
static void accept_verdict(const struct accept_reply *r, struct policy_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->action = r->code >= 500 ? POLICY_REJECT : POLICY_TEMPFAIL;
    v->code = r->code;
    snprintf(v->status, sizeof(v->status), "%s", r->status);
    snprintf(v->text, sizeof(v->text), "%s", r->text);
    snprintf(v->reason, sizeof(v->reason), "%s", r->reason ? r->reason : "");
    v->check = r->reason && strncmp(r->reason, "maildir", 7) == 0 ? "maildir" : "nexthop";
}

/* session_accept_offer - what the EHLO reply announces */
void session_accept_offer(struct session *s, struct accept_offer *o)
{
    accept_offer(s->gen->routes, s->srv->nexthops, s->gen->conf->limits.max_message_size, o);
}

/* session_accept_rcpt - 0 when rcpt's route can take it; else refused (replied, logged) */
int session_accept_rcpt(struct session *s, const char *rcpt)
{
    struct accept_reply r;
    struct policy_verdict v;

    if (s->held) /* a connect/HELO refusal answers first: tell such a client nothing */
        return 0;
    if (accept_rcpt(s->gen->routes, s->srv->nexthops, s->tx->sender, rcpt, s->tx->mail_size, &r) ==
        0)
        return 0;
    accept_verdict(&r, &v);
    s->pending_rcpt = xstrdup(rcpt); /* for the log line's rcpt= */
    session_refuse(s, "rcpt", &v);
    free(s->pending_rcpt);
    s->pending_rcpt = NULL;
    return -1;
}

/* session_accept_message - 0 when every route can take the message; else
 * the refusal is in v */
static int session_accept_message(struct session *s, uint64_t size, struct policy_verdict *v)
{
    struct smtp_tx *tx = s->tx;
    struct accept_reply r;

    if (accept_message(s->gen->routes, s->srv->nexthops, tx->rcpt, tx->nrcpt, tx->smtputf8,
                       &tx->scan, size, &r) == 0)
        return 0;
    accept_verdict(&r, v);
    return -1;
}

/* session_accept_end - the final dot: refuse here (550 5.6.9, 554 5.6.3,
 * 552 5.3.4) what a recipient's route could never take; 0 to go on and
 * commit, -1 when refused (the transaction is gone) */
int session_accept_end(struct session *s)
{
    struct policy_verdict v;

    if (session_accept_message(s, spool_writer_size(s->tx->writer), &v) == 0)
        return 0;
    session_refuse(s, "data", &v);
    session_tx_free(s);
    if (s->state != SESS_CLOSING) {
        s->state = SESS_COMMAND;
        session_set_timeout(s, s->gen->conf->timeouts.command);
    }
    return -1;
}
