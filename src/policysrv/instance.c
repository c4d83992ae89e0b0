/*
 * instance.c - a Postfix transaction judged by the pipeline as an SMTP
 * session of our own is: connect and HELO refusals held for RCPT (421 at
 * once), a MAIL refusal answers the MAIL and every later request, RCPT
 * checks judge each recipient and answer a held refusal.
 */
#include "policysrv/instance.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "policysrv/policysrv.h"
#include "policysrv/request.h"

#define STAGE_BIT(s) (1u << (s))

struct policysrv_instance {
    const struct policysrv_env *env;
    char sid[24];
    char *instance, *client_name, *ptr_name, *helo, *login, *sender; /* owned */
    struct policy_client cl;
    unsigned judged; /* stages run (connect, HELO, MAIL: once per transaction) */
    struct policy_verdict held;
    int has_held;
    struct policy_verdict refusal; /* a MAIL refusal or a 421: every later answer */
    int refused;
    char *prepend; /* a header field a check added, for the next answer that is no refusal */
    const char *refused_by; /* counted as stopped by this mechanism */
    int passed;             /* a request of the transaction was answered without a refusal */
    /* the request being judged */
    const struct policysrv_req *req;
    unsigned todo;
    enum policy_stage stage;
    struct policy_run *run;
    struct policy_verdict rcpt_v;
    struct event *kick;
    policysrv_answer_fn answer;
    void *arg;
};

/* policysrv_known - a client name attribute that names something ("unknown" does not) */
static char *policysrv_known(const char *s)
{
    return s && s[0] && strcmp(s, "unknown") != 0 ? xstrdup(s) : NULL;
}

/* policysrv_address - an address as our session stores it (addr_format), or as given
 * when it does not parse (Postfix sends quoted local parts unquoted) */
static char *policysrv_address(const char *s)
{
    struct addr a;
    char buf[SMTP_PATH_MAX * 2];

    if (s[0] && addr_parse(s, 1, &a) == ADDR_OK && a.domain[0] &&
        addr_format(&a, buf, sizeof(buf)) > 0)
        return xstrdup(buf);
    return xstrdup(s);
}

/* policysrv_sockaddr - client_address (an IPv4 or IPv6 literal, policysrv_req_complete
 * checked) as a socket address */
static void policysrv_sockaddr(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1)
        s6->sin6_family = AF_INET6;
}

/* policysrv_client - the policy_client of r: address, names as Postfix resolved them */
static void policysrv_client(struct policysrv_instance *ins, const struct policysrv_req *r)
{
    struct policy_client *cl = &ins->cl;

    policysrv_sockaddr(r->client_address, &cl->addr);
    sockaddr_ip((struct sockaddr *)&cl->addr, cl->ip, sizeof(cl->ip));
    cl->listener = ins->env->listener;
    ins->client_name = policysrv_known(r->client_name);
    ins->ptr_name = policysrv_known(r->reverse_client_name);
    cl->rdns_name = ins->client_name;
    cl->ptr_name = ins->ptr_name ? ins->ptr_name : ins->client_name;
    cl->rdns = ins->client_name ? RDNS_CONFIRMED : ins->ptr_name ? RDNS_UNCONFIRMED : RDNS_NONE;
    ins->helo = policysrv_known(r->helo_name);
    ins->login = r->sasl_username && r->sasl_username[0] ? xstrdup(r->sasl_username) : NULL;
    cl->login = ins->login;
    ins->sender = r->sender ? policysrv_address(r->sender) : NULL;
}

/* policysrv_instance_new - see instance.h */
struct policysrv_instance *policysrv_instance_new(const struct policysrv_env *env,
                                                  const struct policysrv_req *r)
{
    struct policysrv_instance *ins = xcalloc(1, sizeof(*ins));

    ins->env = env;
    env->new_id(env->arg, ins->sid, sizeof(ins->sid));
    ins->instance = r->instance ? xstrdup(r->instance) : NULL;
    policysrv_client(ins, r);
    stats_count(env->stats, "connections");
    log_info("event=policy_client sid=%s client=%s name=%s ptr=%s listener=%s instance=%s",
             ins->sid, ins->cl.ip, ins->client_name ? log_q(ins->client_name) : "unknown",
             ins->ptr_name ? log_q(ins->ptr_name) : "-", log_q(env->listener),
             ins->instance ? log_q(ins->instance) : "-");
    return ins;
}

/* policysrv_same_str - equal strings, NULL equal only to NULL */
static int policysrv_same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* policysrv_instance_same - see instance.h */
int policysrv_instance_same(const struct policysrv_instance *ins, const struct policysrv_req *r)
{
    char ip[64];
    struct sockaddr_storage ss;
    const char *login = r->sasl_username && r->sasl_username[0] ? r->sasl_username : NULL;
    char *helo, *sender;
    int same;

    if (!ins->instance || !r->instance || strcmp(ins->instance, r->instance) != 0)
        return 0;
    policysrv_sockaddr(r->client_address, &ss);
    if (strcmp(sockaddr_ip((struct sockaddr *)&ss, ip, sizeof(ip)), ins->cl.ip) != 0 ||
        !policysrv_same_str(login, ins->login))
        return 0;
    helo = policysrv_known(r->helo_name);
    sender = r->sender ? policysrv_address(r->sender) : NULL;
    same = (!ins->helo || policysrv_same_str(helo, ins->helo)) &&
           (!ins->sender || policysrv_same_str(sender, ins->sender));
    free(helo);
    free(sender);
    return same;
}

/* policysrv_stages - what a request in protocol_state needs judged */
static unsigned policysrv_stages(const struct policysrv_instance *ins,
                                 const struct policysrv_req *r)
{
    const char *st = r->protocol_state;
    unsigned want = STAGE_BIT(POLICY_CONNECT);

    if (strcmp(st, "CONNECT") != 0 && ins->helo)
        want |= STAGE_BIT(POLICY_HELO);
    if (ins->sender &&
        (strcmp(st, "MAIL") == 0 || strcmp(st, "RCPT") == 0 || strcmp(st, "DATA") == 0 ||
         strcmp(st, "BDAT") == 0 || strcmp(st, "END-OF-MESSAGE") == 0))
        want |= STAGE_BIT(POLICY_MAIL);
    if (strcmp(st, "RCPT") == 0)
        want |= STAGE_BIT(POLICY_RCPT);
    return want;
}

/* policysrv_mechanism - what a refusal is counted under; S25R-flagged greylisting apart */
static const char *policysrv_mechanism(const struct policysrv_instance *ins,
                                       const struct policy_verdict *v)
{
    if (v->check && strcmp(v->check, "greylist") == 0 && ins->cl.suspicious)
        return "s25r+greylist";
    return v->check ? v->check : "policy";
}

/*
 * policysrv_count_stopped - the transaction's first refusal, unless a request of it
 * passed: counted as stopped at once, not when the transaction ends, since Postfix
 * keeps the connection (and the last transaction) open for minutes
 */
static void policysrv_count_stopped(struct policysrv_instance *ins, const struct policy_verdict *v)
{
    char counter[96];

    if (ins->refused_by || ins->passed)
        return;
    ins->refused_by = policysrv_mechanism(ins, v);
    stats_count(ins->env->stats, "stopped");
    snprintf(counter, sizeof(counter), "stopped.%s", ins->refused_by);
    stats_count(ins->env->stats, counter);
}

/* policysrv_refused_log - the reject line of an SMTP session's, for the same tools */
static void policysrv_refused_log(struct policysrv_instance *ins, const char *stage,
                                  const struct policy_verdict *v)
{
    char helo[LOG_QUOTE_MAX + 8], from[LOG_QUOTE_MAX + 8], rcpt[LOG_QUOTE_MAX + 8];

    helo[0] = from[0] = rcpt[0] = '\0';
    if (ins->helo)
        snprintf(helo, sizeof(helo), " helo=%s", log_q(ins->helo));
    if (ins->sender)
        snprintf(from, sizeof(from), " from=%s", log_qaddr(ins->sender));
    if (ins->cl.rcpt)
        snprintf(rcpt, sizeof(rcpt), " rcpt=%s", log_qaddr(ins->cl.rcpt));
    log_info("event=reject sid=%s client=%s stage=%s code=%d status=%s check=%s reason=%s "
             "text=%s%s%s%s",
             ins->sid, ins->cl.ip, stage, v->code, v->status, v->check ? v->check : "-",
             log_q(v->reason), log_q(v->text), helo, from, rcpt);
    policysrv_count_stopped(ins, v);
}

/* policysrv_take_headers - the first field a check added (Received-SPF), unfolded, to
 * give as PREPEND; Postfix takes one field per answer */
static void policysrv_take_headers(struct policysrv_instance *ins)
{
    char *h = ins->cl.add_headers, *out;
    size_t o = 0;

    ins->cl.add_headers = NULL;
    if (!h || ins->prepend) {
        free(h);
        return;
    }
    out = xmalloc(strlen(h) + 1);
    for (const char *p = h; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p++;
            continue;
        }
        if (p[0] == '\r' || p[0] == '\n')
            break;
        out[o++] = *p;
    }
    out[o] = '\0';
    free(h);
    ins->prepend = out;
}

/* policysrv_action - see policysrv.h */
void policysrv_action(const struct policy_verdict *v, char *dst, size_t len)
{
    char text[sizeof(v->text)];
    size_t i;

    for (i = 0; v->text[i] && i < sizeof(text) - 1; i++)
        text[i] = (unsigned char)v->text[i] < 0x20 || v->text[i] == 0x7f ? '?' : v->text[i];
    text[i] = '\0';
    if (v->action == POLICY_TEMPFAIL && v->code != 421 && v->check &&
        strcmp(v->check, "greylist") == 0)
        snprintf(dst, len, "DEFER_IF_PERMIT %s %s", v->status, text);
    else
        snprintf(dst, len, "%d %s %s", v->code, v->status, text);
}

/* policysrv_refusal - a verdict that refuses */
static int policysrv_refusal(const struct policy_verdict *v)
{
    return v->action == POLICY_TEMPFAIL || v->action == POLICY_REJECT;
}

/* policysrv_finish - every stage of the request ran: the answer */
static void policysrv_finish(struct policysrv_instance *ins)
{
    char action[1024];
    const struct policy_verdict *v = NULL;
    policysrv_answer_fn answer = ins->answer;

    if (ins->refused)
        v = &ins->refusal;
    else if (strcmp(ins->req->protocol_state, "RCPT") == 0)
        v = policysrv_refusal(&ins->rcpt_v) ? &ins->rcpt_v : NULL;
    else if (ins->has_held)
        v = &ins->held; /* no RCPT to come in this request: the held refusal now */
    if (v) {
        policysrv_action(v, action, sizeof(action));
    } else {
        if (ins->prepend && strlen(ins->prepend) + 9 <= sizeof(action))
            snprintf(action, sizeof(action), "PREPEND %s", ins->prepend);
        else
            snprintf(action, sizeof(action), "DUNNO");
        free(ins->prepend); /* given once per transaction */
        ins->prepend = NULL;
        ins->passed |= strcmp(ins->req->protocol_state, "CONNECT") != 0;
    }
    log_debug("event=policy_answer sid=%s state=%s action=%s", ins->sid,
              log_q(ins->req->protocol_state), log_q(action));
    free(ins->cl.rcpt_rewrite);
    ins->cl.rcpt_rewrite = NULL;
    free((char *)ins->cl.rcpt);
    ins->cl.rcpt = NULL;
    ins->req = NULL;
    ins->answer = NULL;
    answer(ins->arg, action);
}

static void policysrv_next(struct policysrv_instance *ins);

/* policysrv_stage_done - one stage decided: hold, refuse, or note, then the next */
static void policysrv_stage_done(void *arg, const struct policy_verdict *v)
{
    struct policysrv_instance *ins = arg;
    const char *stage = policy_stage_name(ins->stage);

    ins->run = NULL;
    free(ins->cl.sender_rewrite); /* the internal server never sees this envelope */
    ins->cl.sender_rewrite = NULL;
    policysrv_take_headers(ins);
    if (ins->stage == POLICY_RCPT) {
        ins->rcpt_v = *v;
        if (policysrv_refusal(v))
            policysrv_refused_log(ins, stage, v);
    } else if (policysrv_refusal(v) && (ins->stage == POLICY_MAIL || v->code == 421)) {
        ins->refusal = *v;
        ins->refused = 1;
        policysrv_refused_log(ins, stage, v);
    } else if (policysrv_refusal(v) && !ins->has_held) {
        ins->held = *v; /* given at RCPT, as an SMTP session of ours does */
        ins->has_held = 1;
        if (strcmp(ins->req->protocol_state, "RCPT") != 0)
            policysrv_refused_log(ins, stage, v);
    }
    policysrv_next(ins);
}

/* policysrv_kick - answer from the loop (judge never answers inside the call) */
static void policysrv_kick(evutil_socket_t fd, short what, void *arg)
{
    policysrv_next(arg);
}

/* policysrv_next - the next stage the request needs, or the answer */
static void policysrv_next(struct policysrv_instance *ins)
{
    while (ins->todo && !ins->refused) {
        enum policy_stage st = (enum policy_stage)__builtin_ctz(ins->todo);
        ins->todo &= ~STAGE_BIT(st);
        if (st != POLICY_RCPT)
            ins->judged |= STAGE_BIT(st);
        if (!policy_has_stage(ins->env->chain, st))
            continue;
        ins->stage = st;
        ins->cl.helo = st >= POLICY_HELO ? ins->helo : NULL;
        ins->cl.sender = st >= POLICY_MAIL ? ins->sender : NULL;
        ins->cl.held = st == POLICY_RCPT && ins->has_held ? &ins->held : NULL;
        ins->run = policy_start(ins->env->chain, st, &ins->cl, policysrv_stage_done, ins);
        if (ins->run)
            return;
    }
    policysrv_finish(ins);
}

/* policysrv_instance_judge - see instance.h */
void policysrv_instance_judge(struct policysrv_instance *ins, const struct policysrv_req *r,
                              policysrv_answer_fn answer, void *arg)
{
    static const struct timeval now = {0, 0};

    ins->req = r;
    ins->answer = answer;
    ins->arg = arg;
    if (!ins->helo) /* a transaction seen first at CONNECT learns its HELO and sender later */
        ins->helo = policysrv_known(r->helo_name);
    if (!ins->sender && r->sender)
        ins->sender = policysrv_address(r->sender);
    ins->todo = policysrv_stages(ins, r) & ~ins->judged;
    memset(&ins->rcpt_v, 0, sizeof(ins->rcpt_v));
    free((char *)ins->cl.rcpt);
    ins->cl.rcpt = r->recipient && (ins->todo & STAGE_BIT(POLICY_RCPT))
                       ? policysrv_address(r->recipient)
                       : NULL;
    stats_count(ins->env->stats, "policy_service.requests");
    if (!ins->kick)
        ins->kick = evtimer_new(ins->env->base, policysrv_kick, ins);
    if (!ins->kick || evtimer_add(ins->kick, &now) < 0)
        policysrv_next(ins); /* out of memory: answer now rather than never */
}

/* policysrv_instance_end - see instance.h */
void policysrv_instance_end(struct policysrv_instance *ins)
{
    if (ins->run)
        policy_cancel(ins->run);
    if (ins->kick)
        event_free(ins->kick);
    policy_disconnect(ins->env->chain, &ins->cl);
    free((char *)ins->cl.rcpt);
    free(ins->cl.rcpt_rewrite);
    free(ins->cl.sender_rewrite);
    free(ins->cl.add_headers);
    free(ins->prepend);
    free(ins->instance);
    free(ins->client_name);
    free(ins->ptr_name);
    free(ins->helo);
    free(ins->login);
    free(ins->sender);
    free(ins);
}
