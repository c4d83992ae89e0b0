/*
 * session_auth.c - SMTP AUTH (RFC 4954) on a submission listener: PLAIN
 * (RFC 4616) and LOGIN, only under TLS; the password check runs in the pool
 * (auth/auth.h) while the session's input waits.
 */
#include "smtp/session_auth.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/guard.h"
#include "auth/sasl.h"
#include "auth/users.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/from.h"
#include "policy/stats.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "smtp/session_internal.h"

/* auth_fields - the login and password buffers, from the first AUTH of the session
 * (most sessions never authenticate: they do not carry them) */
static void auth_fields(struct session *s)
{
    if (!s->auth_user) {
        s->auth_user = xcalloc(1, SESSION_AUTH_FIELD);
        s->auth_pass = xcalloc(1, SESSION_AUTH_FIELD);
    }
}

/* auth_reset - the exchange is over: forget what the client sent */
static void auth_reset(struct session *s)
{
    s->auth_step = AUTH_STEP_NONE;
    if (s->auth_user)
        sasl_wipe(s->auth_user, SESSION_AUTH_FIELD);
}

/* auth_failed_reply - the 535, once the failure is counted (and the tarpit waited) */
static void auth_failed_reply(struct session *s)
{
    session_set_state(s, SESS_COMMAND);
    auth_reset(s);
    session_error(s, "auth", "535 5.7.8 Error: authentication failed");
    if (s->state == SESS_COMMAND && !s->auth_inline) /* else the caller's loop goes on */
        session_process(s);
}

static void auth_tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
    auth_failed_reply(arg);
}

/* auth_counted - the failure is in the store: lock-out logged, reply delayed past
 * tarpit_after failures */
static void auth_counted(void *arg, unsigned failures, int locked)
{
    struct session *s = arg;
    const struct authconf *ac = auth_conf(s->gen->auth);
    struct timeval tv = {ac->tarpit_delay, 0};

    s->guard = NULL;
    if (locked) {
        stats_count(s->srv->stats, "submission.lockouts");
        log_warn("event=auth_lockout sid=%s client=%s login=%s failures=%u lockout=%u", s->sid,
                 s->ip, log_q(s->auth_user), failures, ac->lockout);
    }
    if (failures > ac->tarpit_after && ac->tarpit_delay > 0 &&
        (s->tarpit || (s->tarpit = evtimer_new(s->srv->base, auth_tarpit_cb, s))) &&
        evtimer_add(s->tarpit, &tv) == 0) {
        log_info("event=auth_tarpit sid=%s client=%s failures=%u delay=%u", s->sid, s->ip, failures,
                 ac->tarpit_delay);
        return;
    }
    auth_failed_reply(s);
}

/* auth_known - the login to count failures under: only the users file's (see guard.h) */
static const char *auth_known(const struct session *s)
{
    return users_find(auth_users(s->gen->auth), s->auth_user) ? s->auth_user : NULL;
}

/* auth_done - the pool checked the password */
static void auth_done(void *arg, enum auth_result r, int cached)
{
    struct session *s = arg;

    s->auth_job = NULL;
    if (r == AUTH_FAIL) {
        log_info("event=auth sid=%s client=%s status=fail mech=%s login=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->auth_user));
        stats_count(s->srv->stats, "submission.auth_failures");
        if (!s->srv->store)
            auth_counted(s, 0, 0);
        else
            s->guard = guard_fail(s->srv->store, auth_conf(s->gen->auth), s->ip, auth_known(s),
                                  auth_counted, s);
        return;
    }
    session_set_state(s, SESS_COMMAND);
    if (r == AUTH_OK) {
        s->login = xstrdup(s->auth_user);
        s->cl.login = s->login;
        log_info("event=auth sid=%s client=%s status=ok mech=%s login=%s cached=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->login), cached ? "yes" : "no");
        session_reply(s, "235 2.7.0 Authentication successful");
    } else {
        log_warn("event=auth sid=%s client=%s status=tempfail mech=%s login=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->auth_user));
        session_reply(s, "454 4.7.0 Temporary authentication failure");
    }
    auth_reset(s);
    if (s->state == SESS_COMMAND && !s->auth_inline) /* else the caller's loop goes on */
        session_process(s);
}

/* auth_checked - the lock-out state is known: refuse, or check the password */
static void auth_checked(void *arg, unsigned failures, int locked)
{
    struct session *s = arg;

    s->guard = NULL;
    if (locked) {
        sasl_wipe(s->auth_pass, SESSION_AUTH_FIELD);
        log_warn("event=auth sid=%s client=%s status=locked mech=%s login=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->auth_user));
        auth_reset(s);
        session_close(s, "auth_lockout",
                      "421 4.7.0 %s Error: too many failed authentications, try again later",
                      s->gen->cfg->hostname);
        return;
    }
    s->auth_job = auth_verify(s->gen->auth, s->srv->pool, s->auth_user, s->auth_pass, auth_done, s);
    sasl_wipe(s->auth_pass, SESSION_AUTH_FIELD);
}

/* auth_login_ok - a login as the users file allows them (printable ASCII, no blanks):
 * it appears in replies, headers and logs, and Dovecot's logins are the client's */
static int auth_login_ok(const char *l)
{
    for (; *l; l++)
        if ((unsigned char)*l <= 0x20 || (unsigned char)*l >= 0x7f)
            return 0;
    return 1;
}

/* auth_check - user and password known: the lock-outs, then the password off the loop */
static void auth_check(struct session *s, const char *user, const char *password)
{
    if (!auth_login_ok(user)) {
        auth_reset(s);
        session_error(s, "auth", "535 5.7.8 Error: authentication failed");
        return;
    }
    auth_fields(s);
    snprintf(s->auth_user, SESSION_AUTH_FIELD, "%s", user);
    snprintf(s->auth_pass, SESSION_AUTH_FIELD, "%s", password);
    s->auth_step = AUTH_STEP_CHECKING;
    session_set_state(s, SESS_POLICY);
    /* the store and the cache may answer before their call returns */
    s->auth_inline = 1;
    if (!s->srv->store)
        auth_checked(s, 0, 0);
    else
        s->guard = guard_check(s->srv->store, s->ip, auth_known(s), auth_checked, s);
    s->auth_inline = 0;
}

/* auth_plain - a decoded PLAIN response; an authzid other than the user is refused */
static void auth_plain(struct session *s, const char *buf, size_t len)
{
    struct sasl_plain p;

    if (sasl_plain_parse(buf, len, &p) < 0) {
        auth_reset(s);
        session_error(s, "auth", "501 5.5.2 Error: malformed PLAIN response");
        return;
    }
    if (p.authzid[0] && strcasecmp(p.authzid, p.authcid) != 0) {
        sasl_wipe(&p, sizeof(p));
        auth_reset(s);
        session_error(s, "auth", "535 5.7.8 Error: authorization identity not allowed");
        return;
    }
    auth_check(s, p.authcid, p.passwd);
    sasl_wipe(&p, sizeof(p));
}

/* auth_decode - a base64 response into buf; -1 after answering 501 */
static int auth_decode(struct session *s, const char *in, char *buf, size_t buflen)
{
    int n = sasl_b64_decode(in, buf, buflen);

    if (n < 0) {
        auth_reset(s);
        session_error(s, "auth", "501 5.5.2 Error: cannot decode response");
    }
    return n;
}

/* auth_login_user - LOGIN's user name arrived: ask for the password */
static void auth_login_user(struct session *s, const char *buf, size_t len)
{
    if (len == 0 || len > SASL_FIELD_MAX || memchr(buf, '\0', len)) {
        auth_reset(s);
        session_error(s, "auth", "501 5.5.2 Error: malformed user name");
        return;
    }
    auth_fields(s);
    memcpy(s->auth_user, buf, len + 1);
    s->auth_step = AUTH_STEP_LOGIN_PASS;
    session_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
}

/* auth_response - one response line (initial or after a 334) */
static void auth_response(struct session *s, const char *in)
{
    char buf[SMTP_CMD_LINE_MAX];
    char user[SASL_FIELD_MAX + 1];
    int n;

    if (strcmp(in, "*") == 0) {
        auth_reset(s);
        session_error(s, "auth", "501 5.7.0 Error: authentication aborted");
        return;
    }
    if ((n = auth_decode(s, in, buf, sizeof(buf))) < 0)
        return;
    if (s->auth_step == AUTH_STEP_PLAIN)
        auth_plain(s, buf, (size_t)n);
    else if (s->auth_step == AUTH_STEP_LOGIN_USER)
        auth_login_user(s, buf, (size_t)n);
    else if (n == 0 || memchr(buf, '\0', (size_t)n) || n > SASL_FIELD_MAX) {
        auth_reset(s);
        session_error(s, "auth", "535 5.7.8 Error: authentication failed");
    } else {
        memcpy(user, s->auth_user, sizeof(user));
        auth_check(s, user, buf);
    }
    sasl_wipe(buf, sizeof(buf));
}

void session_auth_line(struct session *s, const char *line)
{
    auth_response(s, line);
}

/* auth_refused - why AUTH cannot start here; NULL when it can */
static const char *auth_refused(const struct session *s)
{
    if (!s->listen->submission || !s->gen->auth)
        return "502 5.5.1 Error: authentication not enabled";
    if (!s->tls)
        return "538 5.7.11 Encryption required for requested authentication mechanism";
    if (!s->helo || !s->esmtp)
        return "503 5.5.1 Error: send EHLO first";
    if (s->login)
        return "503 5.5.1 Error: already authenticated";
    if (s->tx)
        return "503 5.5.1 Error: MAIL transaction in progress";
    return NULL;
}

void session_auth_command(struct session *s, const char *arg)
{
    const char *why = auth_refused(s), *sp;
    char mech[16];
    size_t ml;

    if (why) {
        session_error(s, "auth", "%s", why);
        return;
    }
    sp = arg ? strchr(arg, ' ') : NULL;
    ml = arg ? (sp ? (size_t)(sp - arg) : strlen(arg)) : 0;
    if (ml == 0 || ml >= sizeof(mech)) {
        session_error(s, "auth", "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    memcpy(mech, arg, ml);
    mech[ml] = '\0';
    if (strcasecmp(mech, "PLAIN") == 0) {
        s->auth_mech = "PLAIN";
        s->auth_step = AUTH_STEP_PLAIN;
    } else if (strcasecmp(mech, "LOGIN") == 0) {
        s->auth_mech = "LOGIN";
        s->auth_step = AUTH_STEP_LOGIN_USER;
    } else {
        session_error(s, "auth", "504 5.5.4 Error: unrecognized authentication type");
        return;
    }
    if (sp && strcmp(sp + 1, "=") == 0 && s->auth_step == AUTH_STEP_PLAIN) {
        auth_reset(s); /* an empty initial response: PLAIN has nothing to check */
        session_error(s, "auth", "501 5.5.2 Error: malformed PLAIN response");
    } else if (sp)
        auth_response(s, sp + 1);
    else
        session_reply(s, s->auth_step == AUTH_STEP_PLAIN ? "334 " : "334 VXNlcm5hbWU6");
}

void session_auth_free(struct session *s)
{
    auth_cancel(s->auth_job);
    s->auth_job = NULL;
    guard_cancel(s->guard);
    s->guard = NULL;
    if (s->tarpit)
        event_free(s->tarpit);
    s->tarpit = NULL;
    if (s->auth_pass)
        sasl_wipe(s->auth_pass, SESSION_AUTH_FIELD);
    auth_reset(s);
    free(s->auth_user);
    free(s->auth_pass);
    s->auth_user = s->auth_pass = NULL;
    free(s->login);
    s->login = NULL;
    s->cl.login = NULL;
}

/* auth_mismatch - log and count a sender the login may not use */
static void auth_mismatch(struct session *s, const char *where, const char *addr)
{
    s->refused_by = "sender_mismatch";
    stats_count(s->srv->stats, "submission.sender_mismatch");
    log_info("event=sender_mismatch sid=%s client=%s login=%s %s=%s", s->sid, s->ip,
             log_q(s->login), where, log_qaddr(addr));
}

int session_auth_sender_ok(struct session *s, const char *addr)
{
    if (!s->login || !s->gen->auth || auth_sender_ok(s->gen->auth, s->login, addr))
        return 1;
    auth_mismatch(s, "sender", addr);
    return 0;
}

int session_auth_header_ok(struct session *s)
{
    char addrs[FROM_MAX_ADDRS][ADDR_CANON_MAX];
    const struct smtp_tx *tx = s->tx;
    int n;

    if (!s->login || !s->gen->auth || !auth_conf(s->gen->auth)->header_from)
        return 1;
    n = from_addresses(tx->hdr ? tx->hdr : "", tx->hdr_len, addrs, FROM_MAX_ADDRS);
    if (n <= 0) {
        auth_mismatch(s, "from", "");
        session_error(s, "data",
                      "550 5.7.1 Error: the message needs one From: field "
                      "with your address");
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (!auth_sender_ok(s->gen->auth, s->login, addrs[i])) {
            auth_mismatch(s, "from", addrs[i]);
            session_error(s, "data", "550 5.7.1 <%s>: From: address not owned by user %s", addrs[i],
                          s->login);
            return 0;
        }
    return 1;
}
