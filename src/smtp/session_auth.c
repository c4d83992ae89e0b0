/*
 * session_auth.c - SMTP AUTH (RFC 4954) on a submission listener: PLAIN
 * (RFC 4616) and LOGIN, only under TLS; the password check runs in the pool
 * (auth/auth.h) while the session's input waits.
 */
#include "smtp/session_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/stats.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "smtp/session_internal.h"

/* auth_reset - the exchange is over: forget what the client sent */
static void auth_reset(struct session *s)
{
    s->auth_step = AUTH_STEP_NONE;
    sasl_wipe(s->auth_user, sizeof(s->auth_user));
}

/* auth_done - the pool checked the password */
static void auth_done(void *arg, enum auth_result r, int cached)
{
    struct session *s = arg;

    s->auth_job = NULL;
    session_set_state(s, SESS_COMMAND);
    if (r == AUTH_OK) {
        s->login = xstrdup(s->auth_user);
        s->cl.login = s->login;
        log_info("event=auth sid=%s client=%s status=ok mech=%s login=%s cached=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->login), cached ? "yes" : "no");
        session_reply(s, "235 2.7.0 Authentication successful");
    } else if (r == AUTH_TEMPFAIL) {
        log_warn("event=auth sid=%s client=%s status=tempfail mech=%s login=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->auth_user));
        session_reply(s, "454 4.7.0 Temporary authentication failure");
    } else {
        log_info("event=auth sid=%s client=%s status=fail mech=%s login=%s", s->sid, s->ip,
                 s->auth_mech, log_q(s->auth_user));
        stats_count(s->srv->stats, "submission.auth_failures");
        session_error(s, "auth", "535 5.7.8 Error: authentication failed");
    }
    auth_reset(s);
    if (s->state == SESS_COMMAND)
        session_process(s);
}

/* auth_check - user and password known: check them off the loop */
static void auth_check(struct session *s, const char *user, const char *password)
{
    snprintf(s->auth_user, sizeof(s->auth_user), "%s", user);
    s->auth_step = AUTH_STEP_CHECKING;
    session_set_state(s, SESS_POLICY);
    s->auth_job = auth_verify(s->gen->auth, s->srv->pool, user, password, auth_done, s);
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
    auth_reset(s);
    free(s->login);
    s->login = NULL;
    s->cl.login = NULL;
}

int session_auth_sender_ok(const struct session *s, const char *addr)
{
    return !s->login || !s->gen->auth || auth_sender_ok(s->gen->auth, s->login, addr);
}
