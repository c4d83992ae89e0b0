/*
 * control.h - the local control socket that mxgatectl talks to. Protocol: one
 * request line (words separated by single spaces), one reply: "ok <n>" (how
 * many things changed), "ok" followed by lines of text or one line of JSON
 * (status), or "error <text>". The reply ends when the daemon closes.
 *   flush                                   every waiting message is retried now
 *   hold|release|delete ID|all              queue actions (admin/adm.h selectors)
 *   hold|release|delete sender ADDR|domain DOMAIN
 *   greylist allow|remove NET [SENDER RCPT]
 *   blocks clear ADDRESS|NETWORK|all
 *   reload                                  what SIGHUP does
 *   status | status json
 * The same adm_* functions answer the HTTP API (admin/admin.h).
 */
#ifndef MX_ADMIN_CONTROL_H
#define MX_ADMIN_CONTROL_H

struct adm_env;
struct event_base;
struct control;

/* control_open - listen on path (mode 0600, replacing a stale socket) with the
 * daemon's parts (env is copied; env->reload is what "reload" calls); NULL on error */
struct control *control_open(struct event_base *base, const char *path, const struct adm_env *env);
void control_close(struct control *c);

#endif
