/*
 * session_mx.c - a recipient routed to "mx" (relay/mx.h) must be one the
 * Internet can take: its domain's MX is looked up while the client waits for
 * the RCPT reply, so that a sender (a relay_networks client) hears at once
 * that a domain does not exist or takes no mail, instead of a bounce later.
 */
#include "smtp/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "relay/mx.h"
#include "relay/routes.h"
#include "smtp/server.h"

/* smx_verdict - the refusal for a result that forbids the recipient; 0 when none */
static int smx_verdict(const struct mx_result *res, const char *rcpt, struct policy_verdict *v)
{
    const char *why = strchr(res->text, ' ');

    memset(v, 0, sizeof(*v));
    if (res->status == MX_NODOMAIN || res->status == MX_NULLMX) {
        v->action = POLICY_REJECT;
        v->code = res->status == MX_NULLMX ? 556 : 550;
        snprintf(v->status, sizeof(v->status), "5.1.10");
    } else if (res->status == MX_TEMP && strncmp(res->text, "4.4.3", 5) == 0) {
        v->action = POLICY_TEMPFAIL; /* a DNS error: the client tries again */
        v->code = 451;
        snprintf(v->status, sizeof(v->status), "4.4.3");
    } else {
        return 0; /* servers found, or none reachable yet: the queue will try */
    }
    snprintf(v->text, sizeof(v->text), "<%s>: Recipient address rejected: %s", rcpt,
             why ? why + 1 : res->text);
    snprintf(v->reason, sizeof(v->reason), "%s",
             res->status == MX_NULLMX     ? "null-mx"
             : res->status == MX_NODOMAIN ? "no-domain"
                                          : "dns-error");
    v->check = "mx";
    return 1;
}

/* smx_done - the lookup answered: refuse or go on, then read on */
static void smx_done(void *arg, const struct mx_result *res)
{
    struct session *s = arg;
    char *rcpt = s->mx_rcpt;
    void (*next)(struct session *, const char *) = s->mx_next;
    struct policy_verdict v;

    s->mxq = NULL;
    s->mx_rcpt = NULL;
    s->mx_next = NULL;
    session_set_state(s, SESS_COMMAND);
    if (smx_verdict(res, rcpt, &v)) {
        s->pending_rcpt = rcpt; /* for the log line's rcpt= */
        session_refuse(s, "rcpt", &v);
        s->pending_rcpt = NULL;
    } else {
        next(s, rcpt);
    }
    free(rcpt);
    if (s->state == SESS_COMMAND)
        session_process(s);
}

/* session_rcpt_mx - see session_internal.h */
void session_rcpt_mx(struct session *s, const char *rcpt,
                     void (*next)(struct session *s, const char *rcpt))
{
    const char *at = strrchr(rcpt, '@');
    const struct routes_entry *rt = routes_find(s->gen->routes, at ? at + 1 : "");

    if (!at || !rt || rt->target.kind != ROUTE_MX || s->held || !s->gen->dns) {
        next(s, rcpt);
        return;
    }
    s->mx_rcpt = xstrdup(rcpt);
    s->mx_next = next;
    s->mxq = mx_lookup(s->gen->dns, at + 1, rt->target.port, smx_done, s);
    if (!s->mxq) { /* no lookup: no opinion, the queue decides */
        free(s->mx_rcpt);
        s->mx_rcpt = NULL;
        s->mx_next = NULL;
        next(s, rcpt);
        return;
    }
    session_set_state(s, SESS_POLICY);
}

/* session_mx_cancel - see session_internal.h */
void session_mx_cancel(struct session *s)
{
    mx_cancel(s->mxq);
    s->mxq = NULL;
    free(s->mx_rcpt);
    s->mx_rcpt = NULL;
}
