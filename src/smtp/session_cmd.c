/* session_cmd.c - the SMTP commands: a table of verbs, where each may come, and their handlers */
#include "smtp/session_internal.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "queue/accept.h"
#include "relay/routes.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"

/* session_tx_free - forget the transaction (RSET, HELO, end of DATA, close) */
void session_tx_free(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    if (!tx)
        return;
    session_message_free(s);
    for (size_t i = 0; i < tx->nrcpt; i++) {
        free(tx->rcpt[i]);
        free(tx->rcpt_key[i]);
    }
    free(tx->rcpt);
    free(tx->rcpt_key);
    free(tx->headers);
    free(tx->sender);
    free(tx->dsn_ret);
    free(tx->dsn_envid);
    if (tx->writer)
        spool_writer_free(tx->writer);
    free(tx);
    s->tx = NULL;
    free(s->cl.auth);
    s->cl.auth = NULL;
    s->cl.sender = NULL;
    s->cl.nrcpt = 0;
}

/* helo_reply - the HELO/EHLO answer, after the HELO checks (their refusals wait for RCPT) */
static void helo_reply(struct session *s, const struct policy_verdict *v)
{
    const struct config *cfg = s->gen->cfg;
    struct accept_offer o;

    session_hold(s, "helo", v);
    if (s->state == SESS_CLOSING)
        return;
    if (!s->esmtp) {
        session_reply(s, "250 %s", cfg->hostname);
        return;
    }
    session_reply(s, "250-%s Hello %s [%s]", cfg->hostname, s->helo, s->ip);
    session_accept_offer(s, &o); /* what the routes' next hops can take */
    session_reply(s, "250-PIPELINING");
    session_reply(s, "250-SIZE %llu", (unsigned long long)o.size);
    if (o.eightbitmime)
        session_reply(s, "250-8BITMIME");
    if (s->gen->tls && s->listen->starttls && !s->tls)
        session_reply(s, "250-STARTTLS");
    if (s->listen->submission && s->gen->auth && s->tls && !s->login)
        session_reply(s, "250-AUTH PLAIN LOGIN"); /* RFC 4954: only where PLAIN is safe */
    if (o.smtputf8)
        session_reply(s, "250-SMTPUTF8");
    session_reply(s, "250 ENHANCEDSTATUSCODES");
}

/*
 * cmd_helo_args - the name must be a domain or an address literal (RFC 5321
 * 4.1.1.1), as Postfix's reject_invalid_helo_hostname: it goes into logs,
 * checks and the Received header. The name is not echoed back.
 */
static int cmd_helo_args(struct session *s, const struct smtp_cmd *c)
{
    if (addr_host_ok(c->arg))
        return 1;
    session_error(s, "helo", "501 5.5.2 Error: invalid %s hostname", smtp_verb_name(c->verb));
    return 0;
}

/* session_score_mark - the first time, remember the score; later, go back to it
 * (the tests list only grows, so its length is its state) */
static void session_score_mark(struct session *s, struct session_score *m)
{
    if (!m->saved) {
        m->score = s->cl.score;
        m->tests_len = s->cl.score_tests ? strlen(s->cl.score_tests) : 0;
        m->saved = 1;
        return;
    }
    s->cl.score = m->score;
    if (s->cl.score_tests)
        s->cl.score_tests[m->tests_len] = '\0';
}

/* session_tx_judgement - a transaction starts with what the connection earned:
 * the points of the connect and HELO checks, no authentication results */
static void session_tx_judgement(struct session *s)
{
    session_score_mark(s, &s->score_tx);
    /* Per transaction, not per session: 4.7 KB that an idle connection need not hold. */
    if (!s->cl.auth)
        s->cl.auth = xcalloc(1, sizeof(*s->cl.auth));
    else
        memset(s->cl.auth, 0, sizeof(*s->cl.auth));
    s->cl.quarantine[0] = '\0';
    s->cl.discard = 0;
    s->cl.user_allow = 0;
    s->cl.user_allowed = 0;
}

/* session_helo_judgement - a HELO again (after STARTTLS) is judged again, from
 * what the connect checks gave; every MAIL after it starts from its result */
static void session_helo_judgement(struct session *s)
{
    session_score_mark(s, &s->score_conn);
    s->score_tx.saved = 0;
}

/* cmd_helo - HELO and EHLO: a new start, the transaction is reset (RFC 5321 4.1.4) */
static void cmd_helo(struct session *s, const struct smtp_cmd *c)
{
    session_tx_free(s);
    free(s->helo);
    s->helo = xstrndup(c->arg, SMTP_DOMAIN_MAX);
    s->cl.helo = s->helo;
    s->esmtp = c->verb == SMTP_VERB_EHLO;
    session_helo_judgement(s);
    session_run_stage(s, POLICY_HELO, helo_reply);
}

/* cmd_has_params - any ESMTP parameter given (only allowed after EHLO) */
static int cmd_has_params(const struct smtp_cmd *c)
{
    return c->has_size || c->body != SMTP_BODY_UNSPEC || c->smtputf8 || c->ret || c->envid ||
           c->auth || c->notify || c->orcpt;
}

/* cmd_mail_args - SIZE, BODY and SMTPUTF8 against what we offer */
static int cmd_mail_args(struct session *s, const struct smtp_cmd *c)
{
    if (!s->esmtp && cmd_has_params(c)) {
        session_error(s, "mail", "555 5.5.4 Unsupported parameter");
        return 0;
    }
    if (c->body == SMTP_BODY_BINARY) {
        session_error(s, "mail", "555 5.5.4 Unsupported parameter");
        return 0;
    }
    if (c->has_size && c->size > s->gen->conf->limits.max_message_size) {
        session_error(s, "mail", "552 5.3.4 Message size exceeds fixed limit");
        return 0;
    }
    return 1;
}

/* mail_reply - the MAIL checks decided */
static void mail_reply(struct session *s, const struct policy_verdict *v)
{
    char *rewrite = s->cl.sender_rewrite, *headers = s->cl.add_headers;

    s->cl.sender_rewrite = NULL;
    s->cl.add_headers = NULL;
    if (v->action == POLICY_TEMPFAIL || v->action == POLICY_REJECT) {
        free(rewrite);
        free(headers);
        session_refuse(s, "mail", v);
        session_tx_free(s);
        return;
    }
    if (rewrite) { /* e.g. a BATV-signed return path */
        free(s->tx->sender);
        s->tx->sender = rewrite;
        s->cl.sender = rewrite;
    }
    s->tx->headers = headers;
    session_reply(s, "250 2.1.0 Ok");
}

/* cmd_mail_sender_ok - a submission session: authenticated, and as one of its addresses */
static int cmd_mail_sender_ok(struct session *s, const char *sender)
{
    if (!s->listen->submission)
        return 1;
    if (!s->login) {
        session_error(s, "mail", "530 5.7.0 Authentication required");
        return 0;
    }
    if (session_auth_sender_ok(s, sender))
        return 1;
    session_error(s, "mail", "553 5.7.1 <%s>: Sender address not owned by user %s", sender,
                  s->login);
    return 0;
}

/* cmd_mail - MAIL FROM: opens a transaction */
static void cmd_mail(struct session *s, const struct smtp_cmd *c)
{
    struct addr a;
    enum addr_err e;
    char buf[SMTP_PATH_MAX * 2];

    e = addr_parse(c->path, c->smtputf8, &a);
    if ((e != ADDR_OK && e != ADDR_EMPTY) || (e == ADDR_OK && a.domain[0] == '\0') ||
        (e == ADDR_OK && addr_format(&a, buf, sizeof(buf)) < 0)) {
        session_error(s, "mail", "501 5.1.7 Bad sender address syntax");
        return;
    }
    if (!cmd_mail_sender_ok(s, e == ADDR_EMPTY ? "" : buf))
        return;
    s->tx = xcalloc(1, sizeof(*s->tx));
    s->tx->started = clock_now_precise(); /* the message's arrival, for delay= */
    s->tx->sender = xstrdup(e == ADDR_EMPTY ? "" : buf);
    s->tx->body_8bit = c->body == SMTP_BODY_8BITMIME;
    s->tx->smtputf8 = c->smtputf8;
    s->tx->mail_size = c->has_size ? c->size : 0;
    s->tx->dsn_ret = c->ret ? xstrdup(c->ret) : NULL;
    s->tx->dsn_envid = c->envid ? xstrdup(c->envid) : NULL;
    s->cl.sender = s->tx->sender;
    session_tx_judgement(s);
    session_run_stage(s, POLICY_MAIL, mail_reply);
}

/* cmd_client_may_relay - the client is authenticated, or in relay_networks */
static int cmd_client_may_relay(const struct session *s)
{
    const struct config *cfg = s->gen->cfg;

    if (s->login)
        return 1;
    for (size_t i = 0; i < cfg->nrelay_networks; i++)
        if (cidr_match(&cfg->relay_networks[i], (const struct sockaddr *)&s->peer))
            return 1;
    return 0;
}

/*
 * cmd_rcpt_allowed - relay control. Our domains from anyone; other domains
 * only from relay networks. Forms that a host behind us might re-route
 * (%, !, source routes, quoted @) never pass, whatever the domain.
 */
static int cmd_rcpt_allowed(struct session *s, const struct addr *a, const char *addr)
{
    const struct config *cfg = s->gen->cfg;

    if (addr_is_relay_trick(a) ||
        (!config_is_local_domain(cfg, a->domain) && !cmd_client_may_relay(s))) {
        s->refused_by = "relay";
        session_error(s, "rcpt", "554 5.7.1 <%s>: Relay access denied", addr);
        return 0;
    }
    if (!routes_find(s->gen->routes, a->domain)) {
        session_error(s, "rcpt", "550 5.4.4 <%s>: No route to the recipient's domain", addr);
        return 0;
    }
    return 1;
}

/* cmd_rcpt_parse - the recipient as "local@domain"; postmaster alone means our postmaster */
static int cmd_rcpt_parse(struct session *s, const struct smtp_cmd *c, struct addr *a, char *buf,
                          size_t buflen)
{
    const struct config *cfg = s->gen->cfg;

    if (addr_parse(c->path, s->tx->smtputf8, a) != ADDR_OK)
        return -1;
    if (a->domain[0] == '\0') {
        if (cfg->ndomains == 0)
            return -1;
        snprintf(a->domain, sizeof(a->domain), "%s", cfg->domains[0]);
    }
    return addr_format(a, buf, buflen) < 0 ? -1 : 0;
}

/* cmd_rcpt_add - remember a recipient once: spellings of one address ("bob"@,
 * BOB@, bob@) are accepted but delivered once, to the first spelling given */
static void cmd_rcpt_add(struct smtp_tx *tx, const char *addr)
{
    char key[ADDR_CANON_MAX];

    if (addr_canon_lax(addr, ADDR_CANON_FOLD, key, sizeof(key)) < 0)
        snprintf(key, sizeof(key), "%s", addr); /* cannot happen: addr is a parsed path */
    for (size_t i = 0; i < tx->nrcpt; i++)
        if (strcmp(tx->rcpt_key[i], key) == 0)
            return;
    if (tx->nrcpt == tx->rcpt_cap) {
        tx->rcpt_cap = tx->rcpt_cap ? tx->rcpt_cap * 2 : 4;
        tx->rcpt = xreallocarray(tx->rcpt, tx->rcpt_cap, sizeof(*tx->rcpt));
        tx->rcpt_key = xreallocarray(tx->rcpt_key, tx->rcpt_cap, sizeof(*tx->rcpt_key));
    }
    tx->rcpt_key[tx->nrcpt] = xstrdup(key);
    tx->rcpt[tx->nrcpt++] = xstrdup(addr);
}

/* rcpt_reply - the RCPT checks decided */
static void rcpt_reply(struct session *s, const struct policy_verdict *v)
{
    char *rewrite = s->cl.rcpt_rewrite;

    s->cl.rcpt_rewrite = NULL;
    if (v->action == POLICY_TEMPFAIL || v->action == POLICY_REJECT) {
        session_refuse(s, "rcpt", v);
    } else {
        /* a rewrite (e.g. the BATV tag stripped) is what the internal server gets */
        cmd_rcpt_add(s->tx, rewrite ? rewrite : s->pending_rcpt);
        s->cl.user_allowed += s->cl.user_allow != 0; /* per-user allows, for END */
        s->cl.nrcpt = (unsigned)s->tx->nrcpt;
        session_reply(s, "250 2.1.5 Ok");
    }
    free(rewrite);
    free(s->pending_rcpt);
    s->pending_rcpt = NULL;
    s->cl.rcpt = NULL;
}

/* cmd_rcpt_judge - the RCPT checks; they also answer a held connect/HELO refusal */
static void cmd_rcpt_judge(struct session *s, const char *addr)
{
    s->pending_rcpt = xstrdup(addr);
    if (!s->pending_rcpt) {
        session_error(s, "rcpt", "451 4.3.0 Error: out of memory");
        return;
    }
    s->cl.held = s->held;
    s->cl.rcpt = s->pending_rcpt;
    s->cl.nrcpt = (unsigned)s->tx->nrcpt;
    session_run_stage(s, POLICY_RCPT, rcpt_reply);
}

/* cmd_rcpt - RCPT TO: parse, check limits and relay rules, then the checks */
static void cmd_rcpt(struct session *s, const struct smtp_cmd *c)
{
    struct addr a;
    char buf[SMTP_PATH_MAX * 2];

    if (s->tx->nrcpt >= s->gen->conf->limits.max_recipients) {
        /* RFC 5321 4.5.3.1.10: the client sends the rest later; not an error */
        session_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    s->cur_rcpt = c->path;
    if (cmd_rcpt_parse(s, c, &a, buf, sizeof(buf)) < 0)
        session_error(s, "rcpt", "501 5.1.3 Bad recipient address syntax");
    else if (cmd_rcpt_allowed(s, &a, buf) && session_accept_rcpt(s, buf) == 0)
        session_rcpt_mx(s, buf, cmd_rcpt_judge);
    s->cur_rcpt = NULL;
}

/* cmd_data - DATA: the table let it through only with a sender and a recipient */
static void cmd_data(struct session *s, const struct smtp_cmd *c)
{
    session_data_begin(s);
}

/* cmd_starttls - RFC 3207: answer 220, drop pipelined plaintext, switch when flushed */
static void cmd_starttls(struct session *s, const struct smtp_cmd *c)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);

    if (!s->gen->tls || !s->listen->starttls) {
        session_error(s, "command", "502 5.5.1 Error: command not implemented");
        return;
    }
    if (s->tls) {
        session_error(s, "command", "503 5.5.1 Error: TLS already active");
        return;
    }
    session_reply(s, "220 2.0.0 Ready to start TLS");
    evbuffer_drain(in, evbuffer_get_length(in)); /* CVE-2011-0411 */
    bufferevent_disable(s->bev, EV_READ);
    session_set_state(s, SESS_TLS_SWITCH);
}

/* cmd_rset - RSET: the transaction ends, the session stays */
static void cmd_rset(struct session *s, const struct smtp_cmd *c)
{
    session_tx_free(s);
    session_reply(s, "250 2.0.0 Ok");
}

/* cmd_noop - NOOP */
static void cmd_noop(struct session *s, const struct smtp_cmd *c)
{
    session_reply(s, "250 2.0.0 Ok");
}

/* cmd_help - HELP */
static void cmd_help(struct session *s, const struct smtp_cmd *c)
{
    session_reply(s, "214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321");
}

/* cmd_vrfy - RFC 5321 7.3: never tell a harvester which users exist */
static void cmd_vrfy(struct session *s, const struct smtp_cmd *c)
{
    session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

/* cmd_quit - QUIT */
static void cmd_quit(struct session *s, const struct smtp_cmd *c)
{
    session_close(s, "quit", "221 2.0.0 Bye");
}

/* cmd_auth - AUTH: on a submission listener under TLS (session_auth.c) */
static void cmd_auth(struct session *s, const struct smtp_cmd *c)
{
    session_auth_command(s, c->arg);
}

/* cmd_not_implemented - EXPN, BDAT, LHLO: not offered here */
static void cmd_not_implemented(struct session *s, const struct smtp_cmd *c)
{
    session_error(s, "command", "502 5.5.1 Error: command not implemented");
}

/*
 * Where in a session a command may come: the protocol's phases, derived
 * from the session (they are not I/O states: those are session_set_state's).
 */
enum cmd_phase {
    PH_INIT,  /* no HELO/EHLO yet */
    PH_READY, /* greeted, no transaction */
    PH_MAIL,  /* MAIL given, no recipient yet */
    PH_RCPT,  /* at least one recipient */
};
#define PH(p) (1u << (p))
#define PH_ANY (PH(PH_INIT) | PH(PH_READY) | PH(PH_MAIL) | PH(PH_RCPT))

struct cmd_entry {
    enum smtp_verb verb;
    const char *stage; /* the log's stage of its refusals */
    unsigned phases;   /* PH() bits where the verb may come */
    /* args - what the parser cannot judge alone; 0 after refusing (NULL: nothing) */
    int (*args)(struct session *s, const struct smtp_cmd *c);
    void (*run)(struct session *s, const struct smtp_cmd *c);
};

static const struct cmd_entry cmd_table[] = {
    {SMTP_VERB_HELO, "helo", PH_ANY, cmd_helo_args, cmd_helo},
    {SMTP_VERB_EHLO, "helo", PH_ANY, cmd_helo_args, cmd_helo},
    {SMTP_VERB_MAIL, "mail", PH(PH_READY), cmd_mail_args, cmd_mail},
    {SMTP_VERB_RCPT, "rcpt", PH(PH_MAIL) | PH(PH_RCPT), NULL, cmd_rcpt},
    {SMTP_VERB_DATA, "data", PH(PH_RCPT), NULL, cmd_data},
    {SMTP_VERB_RSET, "command", PH_ANY, NULL, cmd_rset},
    {SMTP_VERB_NOOP, "command", PH_ANY, NULL, cmd_noop},
    {SMTP_VERB_HELP, "command", PH_ANY, NULL, cmd_help},
    {SMTP_VERB_VRFY, "command", PH_ANY, NULL, cmd_vrfy},
    {SMTP_VERB_QUIT, "command", PH_ANY, NULL, cmd_quit},
    {SMTP_VERB_STARTTLS, "command", PH_ANY, NULL, cmd_starttls},
    {SMTP_VERB_AUTH, "command", PH_ANY, NULL, cmd_auth},
    {SMTP_VERB_EXPN, "command", PH_ANY, NULL, cmd_not_implemented},
    {SMTP_VERB_BDAT, "command", PH_ANY, NULL, cmd_not_implemented},
    {SMTP_VERB_LHLO, "command", PH_ANY, NULL, cmd_not_implemented},
};

/* cmd_phase - where the session is in the protocol */
static enum cmd_phase cmd_phase(const struct session *s)
{
    if (!s->helo)
        return PH_INIT;
    if (!s->tx)
        return PH_READY;
    return s->tx->nrcpt > 0 ? PH_RCPT : PH_MAIL;
}

/* cmd_out_of_phase - 503 naming the step that is missing (or MAIL given twice) */
static void cmd_out_of_phase(struct session *s, const struct cmd_entry *e, enum cmd_phase ph)
{
    const char *why;

    if (ph == PH_INIT && (e->phases & PH(PH_READY)))
        why = "send HELO/EHLO first";
    else if (ph < PH_MAIL)
        why = "need MAIL command";
    else if (e->phases & PH(PH_READY))
        why = "nested MAIL command";
    else
        why = "need RCPT command";
    session_error(s, e->stage, "503 5.5.1 Error: %s", why);
}

/* cmd_parse_error - the reply for a line the parser refused */
static void cmd_parse_error(struct session *s, enum smtp_parse_err e, const struct smtp_cmd *c)
{
    switch (e) {
    case SMTP_PARSE_UNKNOWN_VERB:
        session_error(s, "command", "500 5.5.1 Error: command not recognized");
        break;
    case SMTP_PARSE_BAD_PATH:
        if (c->verb == SMTP_VERB_MAIL)
            session_error(s, "mail", "501 5.1.7 Bad sender address syntax");
        else
            session_error(s, "rcpt", "501 5.1.3 Bad recipient address syntax");
        break;
    case SMTP_PARSE_BAD_PARAM:
        session_error(s, "command", "555 5.5.4 Unsupported parameter");
        break;
    case SMTP_PARSE_NUL:
    case SMTP_PARSE_BAD_CHAR:
        session_error(s, "command", "500 5.5.2 Error: invalid character in command");
        break;
    default:
        if (c->verb == SMTP_VERB_HELO || c->verb == SMTP_VERB_EHLO)
            session_error(s, "helo", "501 5.5.4 Syntax: %s hostname", smtp_verb_name(c->verb));
        else
            session_error(s, "command", "501 5.5.4 Syntax error in parameters");
        break;
    }
}

/* cmd_lookup - the table row of a verb the parser recognised */
static const struct cmd_entry *cmd_lookup(enum smtp_verb verb)
{
    for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
        if (cmd_table[i].verb == verb)
            return &cmd_table[i];
    return NULL;
}

/* session_command - parse one command line, check where it comes and its arguments, run it */
void session_command(struct session *s, char *line, size_t len)
{
    struct smtp_cmd c;
    enum smtp_parse_err e;
    const struct cmd_entry *ce;
    enum cmd_phase ph;

    if (s->auth_step != AUTH_STEP_NONE) { /* a SASL response, not a command */
        session_auth_line(s, line);
        return;
    }
    e = smtp_parse_command(line, len, &c);
    if (e == SMTP_PARSE_OK && !(ce = cmd_lookup(c.verb)))
        e = SMTP_PARSE_UNKNOWN_VERB;
    if (e != SMTP_PARSE_OK) {
        cmd_parse_error(s, e, &c);
        return;
    }
    ph = cmd_phase(s);
    if (!(ce->phases & PH(ph)))
        cmd_out_of_phase(s, ce, ph);
    else if (!ce->args || ce->args(s, &c))
        ce->run(s, &c);
}
