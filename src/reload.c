/* reload.c - SIGHUP: a new configuration generation, or the old one kept and the reason logged */
#include "reload.h"

#include <confuse.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "dns/dnsconf.h"
#include "modules.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "queue/queueconf.h"
#include "relay/nexthop.h"
#include "relay/routes.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "smtp/signconf.h"
#include "store/store.h"
#include "store/storeconf.h"
#include "tls/tlsconf.h"

/* reload_log_diag - the lines config_load and modules_validate wrote ("file:line:
 * [warning: ]message"), one log line each; the first error into first */
static void reload_log_diag(char *text, char *first, size_t firstlen)
{
    char *save = NULL;

    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (strstr(ln, ": warning: ")) {
            log_warn("event=reload status=warning error=%s", log_q(ln));
            continue;
        }
        log_err("event=reload status=refused error=%s", log_q(ln));
        if (!first[0])
            snprintf(first, firstlen, "%s", ln);
    }
}

/* reload_check - the file loaded and validated as `mxgated -n` does; NULL after logging why */
static struct config *reload_check(const char *path, char *first, size_t firstlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *diag = open_memstream(&text, &len);
    struct config *cfg;
    unsigned errors = 0;

    if (!diag) {
        snprintf(first, firstlen, "cannot collect the errors: out of memory");
        return NULL;
    }
    cfg = modules_config_load(path, diag);
    if (cfg)
        errors = modules_validate(cfg, diag);
    fclose(diag);
    reload_log_diag(text, first, firstlen);
    free(text);
    if (cfg && errors > 0) {
        config_free(cfg);
        return NULL;
    }
    if (!cfg && !first[0])
        snprintf(first, firstlen, "%s: cannot load", path);
    return cfg;
}

/* reload_keep_str - a string setting that needs a restart: the running value stays */
static void reload_keep_str(char **now, const char *running, const char *option)
{
    if ((*now == NULL) == (running == NULL) && (!running || strcmp(*now, running) == 0))
        return;
    log_warn("event=reload status=warning setting=%s error=\"changing it needs a restart: the "
             "running value stays\" running=%s",
             option, log_q(running ? running : ""));
    free(*now);
    *now = running ? xstrdup(running) : NULL;
}

/* reload_keep_raw - a root string option read from the tree only at start (pidfile) */
static void reload_keep_raw(const struct config *cfg, const struct config *old, const char *option)
{
    const char *now = cfg_getstr(cfg->raw, option), *running = cfg_getstr(old->raw, option);

    if ((now == NULL) == (running == NULL) && (!now || strcmp(now, running) == 0))
        return;
    log_warn("event=reload status=warning setting=%s error=\"changing it needs a restart: the "
             "running value stays\" running=%s",
             option, log_q(running ? running : ""));
}

/* reload_keep_sec - an option of an optional section read only at start (the admin
 * listener binds before the privilege drop and reads its token as root) */
static void reload_keep_sec(const struct config *cfg, const struct config *old, const char *sec,
                            const char *opt)
{
    cfg_t *sn = cfg_getsec(cfg->raw, sec), *so = cfg_getsec(old->raw, sec);
    const char *now = sn ? cfg_getstr(sn, opt) : NULL, *running = so ? cfg_getstr(so, opt) : NULL;

    if ((now == NULL) == (running == NULL) && (!now || strcmp(now, running) == 0))
        return;
    log_warn("event=reload status=warning setting=%s.%s error=\"changing it needs a restart: "
             "the running value stays\" running=%s",
             sec, opt, log_q(running ? running : ""));
}

/* reload_keep_num - a number that needs a restart changed: say so (the caller keeps it) */
static void reload_keep_num(long now, long running, const char *option)
{
    if (now != running)
        log_warn("event=reload status=warning setting=%s error=\"changing it needs a restart: the "
                 "running value stays\" running=%ld",
                 option, running);
}

/* reload_restart_only - what only a start can change keeps its running value, each with a
 * warning: the spool, the store and the user are opened or taken once, as root */
static void reload_restart_only(struct config *cfg, const struct config *old)
{
    char uri_now[4200], uri_old[4200];
    struct queueconf qn, qo;
    cfg_t *ln = cfg_getsec(cfg->raw, "limits"), *lo = cfg_getsec(old->raw, "limits");

    reload_keep_str(&cfg->user, old->user, "user");
    reload_keep_str(&cfg->spool_dir, old->spool_dir, "spool_dir");
    reload_keep_str(&cfg->state_dir, old->state_dir, "state_dir");
    reload_keep_raw(cfg, old, "pidfile");
    reload_keep_sec(cfg, old, "admin", "address");
    reload_keep_sec(cfg, old, "admin", "token_file");
    reload_keep_sec(cfg, old, "store", "on_error"); /* the store has them from its opening */
    reload_keep_sec(cfg, old, "store", "prefix");
    reload_keep_num(cfg_getint(cfg_getsec(cfg->raw, "store"), "timeout"),
                    cfg_getint(cfg_getsec(old->raw, "store"), "timeout"), "store.timeout");
    storeconf_uri(cfg, uri_now, sizeof(uri_now));
    storeconf_uri(old, uri_old, sizeof(uri_old));
    if (strcmp(uri_now, uri_old) != 0)
        log_warn("event=reload status=warning setting=store.uri error=\"changing it needs a "
                 "restart: the running value stays\" running=%s",
                 log_q(store_uri_safe(uri_old, uri_old, sizeof(uri_old))));
    queueconf_read(cfg, &qn);
    queueconf_read(old, &qo);
    reload_keep_num(qn.queue.fsync_threads, qo.queue.fsync_threads, "queue.fsync_threads");
    reload_keep_num(qn.queue.sync_filesystem, qo.queue.sync_filesystem, "queue.sync");
    reload_keep_num(qn.queue.recycle, qo.queue.recycle, "queue.recycle");
    reload_keep_num(qn.queue.bounce_limit, qo.queue.bounce_limit, "queue.bounce_limit");
    reload_keep_num(qn.queue.bounce_window, qo.queue.bounce_window, "queue.bounce_window");
    reload_keep_num(qn.queue.bounce_domain_limit, qo.queue.bounce_domain_limit,
                    "queue.bounce_domain_limit");
    reload_keep_num(cfg_getint(ln, "ipv6_prefix"), cfg_getint(lo, "ipv6_prefix"),
                    "limits.ipv6_prefix");
    reload_keep_num(cfg_getint(cfg_getsec(cfg->raw, "quarantine"), "max_age"),
                    cfg_getint(cfg_getsec(old->raw, "quarantine"), "max_age"),
                    "quarantine.max_age"); /* the expiry timer is set up at start */
}

/* reload_dns - a resolver when checks may need one or servers are named (as at start) */
static int reload_dns(const struct config *cfg, struct event_base *base, struct dns **dns,
                      char *err, size_t errlen)
{
    size_t checks = 0;

    *dns = NULL;
    for (unsigned i = 0; i < cfg_size(cfg->raw, "listen"); i++)
        checks += cfg_size(cfg_getnsec(cfg->raw, "listen", i), "checks");
    if (!dnsconf_has_servers(cfg) && checks == 0)
        return 0;
    *dns = dnsconf_open(cfg, base, err, errlen);
    return *dns ? 0 : -1;
}

/* reload_build - the new generation's parts; NULL with err (what was made is freed) */
static struct server_gen *reload_build(struct reload_ctx *rc, struct config *cfg, char *err,
                                       size_t errlen)
{
    struct server *srv = rc->srv;
    struct server_gen *g =
        server_gen_new(cfg, serverconf_load(cfg), routes_load(cfg), NULL, NULL, NULL);
    struct policy_env env = {.base = srv->base,
                             .cfg = cfg,
                             .store = rc->store,
                             .stats = srv->stats,
                             .routes = g->routes,
                             .pool = srv->pool};
    char why[512] = "";
    const char *what = NULL;

    if (tlsconf_server_ctx(cfg, &g->tls, why, sizeof(why)) < 0)
        what = "tls";
    else if (reload_dns(cfg, srv->base, &g->dns, why, sizeof(why)) < 0)
        what = "dns";
    else if (server_gen_load_auth(g, why, sizeof(why)) < 0)
        what = "auth";
    else if (env.dns = g->dns, !(g->policy = policy_new(&env, why, sizeof(why))))
        what = "policy";
    else if (!(g->sign = signconf_load(cfg, why, sizeof(why))))
        what = "dkim_sign";
    if (!what)
        return g;
    snprintf(err, errlen, "%s: %s", what, why);
    server_gen_unref(g);
    return NULL;
}

/* reload_refused - the outcome when the running configuration stays */
static int reload_refused(const char *why, char *msg, size_t msglen)
{
    log_err("event=reload status=refused error=%s action=\"the running configuration stays\"",
            log_q(why));
    if (msg)
        snprintf(msg, msglen, "refused: %s", why);
    return -1;
}

/* reload_next_hops - the new routes' next hops are asked what they take when first needed */
static void reload_next_hops(struct server *srv, const struct routes *routes)
{
    for (size_t i = 0; srv->nexthops && i < routes_count(routes); i++)
        nexthops_add(srv->nexthops, &routes_at(routes, i)->target);
}

void reload_init(struct reload_ctx *rc)
{
    struct server *srv = rc->srv;

    if (srv->queue)
        queue_reconfigure(srv->queue, srv->gen->cfg, srv->gen->routes, server_gen_hold, srv->gen);
}

int reload_all(void *arg, char *msg, size_t msglen)
{
    struct reload_ctx *rc = arg;
    struct server *srv = rc->srv;
    char err[1024] = "";
    struct config *cfg;
    struct server_gen *g, *old;

    log_info("event=reload status=started file=%s", log_q(rc->path));
    if (srv->drain_done)
        return reload_refused("shutting down", msg, msglen);
    if (!(cfg = reload_check(rc->path, err, sizeof(err))))
        return reload_refused(err, msg, msglen);
    reload_restart_only(cfg, srv->gen->cfg);
    if (!(g = reload_build(rc, cfg, err, sizeof(err))))
        return reload_refused(err, msg, msglen);
    old = server_gen_ref(srv->gen);
    if (server_install(srv, g, err, sizeof(err)) < 0) {
        server_gen_unref(old);
        server_gen_unref(g);
        return reload_refused(err, msg, msglen);
    }
    policy_retire(old->policy); /* its sessions finish on it; its timers stop */
    server_gen_unref(old);
    reload_next_hops(srv, g->routes);
    if (srv->queue)
        queue_reconfigure(srv->queue, g->cfg, g->routes, server_gen_hold, g);
    log_set_debug(rc->debug || strcmp(g->cfg->log_level, "debug") == 0);
    rc->reloads++;
    log_info("event=reload status=done generation=%lu listeners=%zu domains=%zu routes=%zu", g->id,
             srv->nlisteners, g->cfg->ndomains, routes_count(g->routes));
    if (msg)
        snprintf(msg, msglen, "reloaded: generation %lu", g->id);
    return 0;
}
