/*
 * control.h - the local control socket that mxgatectl talks to.
 * Protocol: one request line, one reply line.
 *   "flush"        -> "ok <n>"      every waiting message is retried now
 *   "delete <ID>"  -> "ok" | "error <text>"
 */
#ifndef MX_ADMIN_CONTROL_H
#define MX_ADMIN_CONTROL_H

struct event_base;
struct queue;
struct control;

/* control_open - listen on path (mode 0600, replacing a stale socket); NULL on error */
struct control *control_open(struct event_base *base, const char *path, struct queue *q);
void control_close(struct control *c);

#endif
