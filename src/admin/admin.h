/*
 * admin.h - the HTTP admin listener (libevent's evhttp, on the daemon's loop):
 *   GET  /metrics                     Prometheus text format (admin/http_metrics.c)
 *   GET  /api/...                     JSON (admin/http_api.c)
 *   POST /api/...                     actions, with "Authorization: Bearer <token>"
 *   GET  /                            the dashboard (admin/www/, compiled in)
 * Only these fixed routes exist (no file is ever opened for a request);
 * requests are bounded in header and body size and in time.
 */
#ifndef MX_ADMIN_ADMIN_H
#define MX_ADMIN_ADMIN_H

#include <stddef.h>

struct adm_env;
struct config;
struct event_base;
struct admin;

/*
 * admin_listen - bind the admin section's address and read its token file (as
 * root, before privileges are dropped: the token file may be root's). *out is
 * NULL when no address is configured. 0, or -1 with err.
 */
int admin_listen(struct event_base *base, const struct config *cfg, struct admin **out, char *err,
                 size_t errlen);
/* admin_start - serve, with the daemon's parts (env is copied); before it, 503 */
void admin_start(struct admin *a, const struct adm_env *env);
void admin_close(struct admin *a);

#endif
