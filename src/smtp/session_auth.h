/* session_auth.h - SMTP AUTH in a session (session_auth.c) */
#ifndef MX_SMTP_SESSION_AUTH_H
#define MX_SMTP_SESSION_AUTH_H

struct session;

enum session_auth_step {
    AUTH_STEP_NONE,       /* no exchange under way: lines are commands */
    AUTH_STEP_PLAIN,      /* 334 sent, the PLAIN response is next */
    AUTH_STEP_LOGIN_USER, /* 334 "Username:" sent */
    AUTH_STEP_LOGIN_PASS, /* 334 "Password:" sent */
    AUTH_STEP_CHECKING,   /* the pool checks the password */
};

/* session_auth_command - AUTH mechanism [initial-response] */
void session_auth_command(struct session *s, const char *arg);
/* session_auth_line - a response line while an exchange is under way */
void session_auth_line(struct session *s, const char *line);
/* session_auth_free - cancel a check under way, forget the login */
void session_auth_free(struct session *s);
/* session_auth_sender_ok - may the authenticated login use addr as envelope sender (true
 * when not authenticated); a mismatch is logged and counted */
int session_auth_sender_ok(struct session *s, const char *addr);
/* session_auth_header_ok - with auth { header_from = true }, the From: addresses of the
 * message are the login's too; 0 after refusing with 550 5.7.1 */
int session_auth_header_ok(struct session *s);

#endif
