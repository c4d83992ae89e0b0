/* main.c - mxgated: start-up, privilege drop, wiring, signals, shutdown */
#include <errno.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <confuse.h>

#include "admin/adm.h"
#include "admin/admin.h"
#include "admin/control.h"
#include "daemon.h"
#include "dns/dns.h"
#include "dns/dnsconf.h"
#include "modules.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/fdlimit.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/looptime.h"
#include "core/pool.h"
#include "queue/commitq.h"
#include "core/privs.h"
#include "queue/quarantine.h"
#include "queue/queue.h"
#include "queue/queueconf.h"
#include "relay/routes.h"
#include "queue/spool.h"
#include "relay/nexthop.h"
#include "reload.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "smtp/signconf.h"
#include "store/storeconf.h"
#include "tls/tls.h"
#include "tls/tlsconf.h"
#include "version.h"

#define MXGATE_DEFAULT_CONFIG MXGATE_CONFIG_FILE
/* next-hop capabilities: asked again after REFRESH seconds (every delivery
 * also refreshes them), every RETRY seconds while the next hop is down, and
 * forgotten (not refused on) without an answer for FORGET seconds */
#define NEXTHOP_REFRESH 300
#define NEXTHOP_RETRY 10
#define NEXTHOP_FORGET 86400

struct options {
    const char *config;
    int foreground;
    int check_only;
    int debug;
};

/* usage - the command line, then exit 2 */
static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr, "usage: mxgated [-f] [-n] [-d] [-V] [-c config]\n"
                    "  -c FILE  configuration (default " MXGATE_DEFAULT_CONFIG ")\n"
                    "  -f       stay in the foreground, log to stderr\n"
                    "  -n       check the configuration as the start does, and exit\n"
                    "  -d       debug logging\n"
                    "  -V       print the version and exit\n");
    exit(2);
}

/* parse_options - getopt */
static void parse_options(int argc, char **argv, struct options *o)
{
    char version[256];
    int ch;

    o->config = MXGATE_DEFAULT_CONFIG;
    while ((ch = getopt(argc, argv, "c:fndhV")) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'f':
            o->foreground = 1;
            break;
        case 'n':
            o->check_only = 1;
            break;
        case 'd':
            o->debug = 1;
            break;
        case 'V':
            daemon_version(version, sizeof version);
            printf("%s\n", version);
            exit(0);
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
}

/* on_drained - the sessions ended (or their time is up): leave the loop */
static void on_drained(void *arg)
{
    event_base_loopexit(arg, NULL);
}

/* on_stop - SIGTERM/SIGINT: stop accepting, let messages under way finish (server_drain),
 * then leave the loop; a second signal leaves at once. Shutdown happens in main. */
static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    log_info("event=stopping signal=%d", (int)sig);
    daemon_stopping();
    if (srv->drain_done)
        event_base_loopexit(srv->base, NULL);
    else
        server_drain(srv, srv->conf->timeouts.shutdown, on_drained, srv->base);
}

/* on_hup - the whole configuration again (reload.c) */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    daemon_reloading();
    reload_all(arg, NULL, 0);
    daemon_reloaded();
}

/* request_reload - mxgatectl reload and POST /api/reload: exactly what SIGHUP does */
static void request_reload(void *arg)
{
    kill(getpid(), SIGHUP);
}

/* setup_dns - a resolver when checks may need one, servers are named or a route is "mx";
 * none means no DNS at all */
static struct dns *setup_dns(const struct config *cfg, struct event_base *base,
                             const struct routes *routes)
{
    size_t checks = 0;
    char err[512];
    struct dns *dns;

    for (unsigned i = 0; i < cfg_size(cfg->raw, "listen"); i++)
        checks += cfg_size(cfg_getnsec(cfg->raw, "listen", i), "checks");
    for (size_t i = 0; i < routes_count(routes); i++)
        checks += routes_at(routes, i)->target.kind == ROUTE_MX;
    if (!dnsconf_has_servers(cfg) && checks == 0)
        return NULL;
    dns = dnsconf_open(cfg, base, err, sizeof(err));
    if (!dns)
        log_fatal("event=fatal what=dns error=%s", log_q(err));
    return dns;
}

/* setup_store - the state store (greylist, rate limits, statistics) */
static struct store *setup_store(const struct config *cfg, struct event_base *base)
{
    char uri[4200], err[512], safe[4200];
    struct store_options opt;
    struct store *st;

    storeconf_uri(cfg, uri, sizeof(uri));
    storeconf_options(cfg, &opt);
    st = store_open_opts(base, uri, &opt, err, sizeof(err));
    if (!st)
        log_fatal("event=fatal what=store uri=%s error=%s",
                  log_q(store_uri_safe(uri, safe, sizeof(safe))), log_q(err));
    store_set_expire_interval(st, storeconf_cleanup(cfg));
    return st;
}

/* setup_policy - every listener's checks */
static struct policy *setup_policy(struct server *srv, struct store *st)
{
    struct policy_env env = {.base = srv->base,
                             .cfg = srv->cfg,
                             .dns = srv->dns,
                             .store = st,
                             .stats = srv->stats,
                             .routes = srv->routes,
                             .pool = srv->pool};
    char err[512];
    struct policy *p = policy_new(&env, err, sizeof(err));

    if (!p)
        log_fatal("event=fatal what=policy error=%s", log_q(err));
    return p;
}

/* setup_nexthops - what each route's next hop takes, asked at once */
static struct nexthops *setup_nexthops(const struct config *cfg, const struct queueconf *qc,
                                       const struct routes *routes, struct event_base *base,
                                       struct pool *pool, SSL_CTX *client_tls)
{
    struct nexthop_opts o = {
        .helo = cfg->hostname,
        .tls = qc->delivery.starttls ? client_tls : NULL,
        .connect_timeout = qc->delivery.connect_timeout,
        .command_timeout = qc->delivery.command_timeout,
        .refresh = NEXTHOP_REFRESH,
        .retry = NEXTHOP_RETRY,
        .forget = NEXTHOP_FORGET,
    };
    struct nexthops *nh = nexthops_new(base, pool, &o);

    for (size_t i = 0; i < routes_count(routes); i++)
        nexthops_add(nh, &routes_at(routes, i)->target);
    nexthops_start(nh);
    return nh;
}

static struct quarantine_expiry *qexpiry; /* setup_delivery's; run frees it */

/* setup_delivery - the thread pool, group commit, queue, next-hop knowledge, and the
 * quarantine's expiry */
static void setup_delivery(struct server *srv, const struct queueconf *qc, struct store *st,
                           SSL_CTX *client_tls)
{
    srv->pool = pool_new(srv->base, (int)qc->queue.fsync_threads);
    srv->commits = srv->pool ? commitq_new(srv->pool, qc->queue.sync_filesystem) : NULL;
    srv->queue = srv->commits ? queue_new(srv->base, srv->cfg, srv->routes, srv->spool, srv->pool,
                                          client_tls, st)
                              : NULL;
    if (!srv->queue)
        log_fatal("event=fatal what=\"out of memory\"");
    srv->nexthops = setup_nexthops(srv->cfg, qc, srv->routes, srv->base, srv->pool, client_tls);
    queue_set_nexthops(srv->queue, srv->nexthops);
    queue_set_dns(srv->queue, srv->dns);
    qexpiry = quarantine_expiry_start(srv->base, srv->pool, srv->spool, srv->cfg);
}

/* stop_delivery - setup_delivery's parts, after the queue: each after what calls it back */
static void stop_delivery(struct server *srv)
{
    nexthops_free(srv->nexthops); /* before the pool runs the lookups' callbacks */
    pool_free(srv->pool);
    quarantine_expiry_free(qexpiry); /* after the pool: a sweep under way calls back */
    commitq_free(srv->commits);
}

/* setup_tls - server and client contexts */
static void setup_tls(const struct config *cfg, const struct queueconf *qc, struct server *srv,
                      SSL_CTX **client)
{
    char err[512];

    if (tlsconf_server_ctx(cfg, &srv->tls, err, sizeof(err)) < 0)
        log_fatal("event=fatal what=tls error=%s", log_q(err));
    *client = NULL;
    /* made even without delivery.starttls: a reload may turn it on */
    if (!(*client = tls_client_ctx(err, sizeof(err))))
        log_fatal("event=fatal what=tls-client error=%s", log_q(err));
}

/* on_corrupt - a queue file failed its checks at load: the operator must hear of
 * it (the message in it was accepted with a 250) and the statistics count it */
static void on_corrupt(const char *id, const char *reason, int moved, void *arg)
{
    struct server *srv = arg;
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s/%s", srv->cfg->spool_dir, moved ? "corrupt" : "queue", id);
    log_err("event=corrupt id=%s reason=%s file=%s", log_q(id), log_q(reason), log_q(path));
    stats_count(srv->stats, "queue_corrupt");
}

/* warn_foreign - name what a run as another user (root) left in the spool: the daemon
 * user can neither read those messages nor take them over, and root no longer hands
 * over anything inside the spool (core/privs.c) */
static void warn_foreign(const struct config *cfg)
{
    char first[300];
    int n;

    if (!cfg->user || getuid() == 0)
        return;
    n = spool_foreign(cfg->spool_dir, getuid(), first, sizeof(first));
    if (n > 0)
        log_warn("event=spool_foreign count=%d first=%s user=%s error=\"not the daemon user's: "
                 "waiting until their owner is changed (chown -R)\"",
                 n, log_q(first), log_q(cfg->user));
}

/* setup_dirs - spool and state, created (if not by privs_drop) and opened with the
 * rights the daemon lives with */
static struct spool *setup_dirs(const struct config *cfg, const struct queueconf *qc)
{
    char err[512];
    struct spool *sp;

    if (fs_mkdir_p(cfg->state_dir, 0700) < 0)
        log_fatal("event=fatal what=state_dir path=%s error=%s", log_q(cfg->state_dir),
                  log_q(strerror(errno)));
    if (fs_mkdir_p(cfg->spool_dir, 0700) < 0)
        log_fatal("event=fatal what=spool_dir path=%s error=%s", log_q(cfg->spool_dir),
                  log_q(strerror(errno)));
    sp = spool_open(cfg->spool_dir, err, sizeof(err));
    if (!sp)
        log_fatal("event=fatal what=spool error=%s", log_q(err));
    warn_foreign(cfg);
    spool_set_sync(sp, qc->queue.sync_filesystem ? SPOOL_SYNC_FILESYSTEM : SPOOL_SYNC_FILE);
    /* Recycling needs the sync that covers every directory: with per-file
     * fsync, a rename out of free/ would not be made durable. */
    if (spool_set_recycle(sp, qc->queue.sync_filesystem ? qc->queue.recycle : 0) < 0)
        log_fatal("event=fatal what=spool dir=free/ error=%s", log_q(strerror(errno)));
    return sp;
}

/* new_event_base - epoll with a changelist: a reply's write-event add and
 * delete within one loop turn collapse into no epoll_ctl at all */
static struct event_base *new_event_base(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (!ec)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

/* setup_fdlimit - descriptors for every connection the limits allow, while root may
 * still raise the hard limit: sessions, deliveries, and a margin for spool files,
 * DNS, the store, logs and the admin listener */
static void setup_fdlimit(const struct serverconf *sc, const struct queueconf *qc)
{
    long want = (long)sc->limits.max_connections + (long)qc->queue.max_deliveries + 1024;
    long got = fdlimit_raise(want);

    if (got < want)
        log_warn("event=fd_limit limit=%ld want=%ld max_connections=%u "
                 "what=\"RLIMIT_NOFILE below what limits need; new connections wait when it is "
                 "reached\"",
                 got, want, sc->limits.max_connections);
    else
        log_info("event=fd_limit limit=%ld want=%ld", got, want);
}

/* setup_settings - the typed settings each module reads from the tree, and the
 * descriptor limit they need */
static void setup_settings(const struct config *cfg, struct serverconf **sc, struct routes **rt,
                           struct queueconf *qc)
{
    *sc = serverconf_load(cfg);
    *rt = routes_load(cfg);
    queueconf_read(cfg, qc);
    setup_fdlimit(*sc, qc);
}

/* setup_control - the control socket and the admin listener, with the daemon's parts */
static struct control *setup_control(struct server *srv, struct store *st, struct admin *admin)
{
    struct adm_env env = {.base = srv->base,
                          .cfg = &srv->cfg,
                          .queue = srv->queue,
                          .spool = srv->spool,
                          .store = st,
                          .started = clock_now(),
                          .sessions = &srv->nconn,
                          .reload = request_reload};
    struct control *ctl;
    char sock[4096];

    config_control_socket(srv->cfg, sock, sizeof(sock));
    if (!(ctl = control_open(srv->base, sock, &env)))
        log_fatal("event=fatal what=control path=%s error=%s", log_q(sock), log_q(strerror(errno)));
    admin_start(admin, &env);
    return ctl;
}

/* setup_listen - the listeners and the first generation, with the auth section's files
 * (read before privileges are dropped: root may own them) */
static void setup_listen(struct server *srv, struct config *cfg, struct serverconf *sc,
                         struct routes *routes)
{
    char err[512];

    if (server_listen(srv, server_gen_new(cfg, sc, routes, srv->tls, NULL, NULL), err,
                      sizeof(err)) < 0)
        log_fatal("event=fatal what=listen error=%s", log_q(err));
    if (server_gen_load_auth(srv->gen, err, sizeof(err)) < 0)
        log_fatal("event=fatal what=auth error=%s", log_q(err));
}

/* run - everything between configuration and exit */
static int run(struct config *cfg, const struct options *o)
{
    struct server srv = {.cfg = cfg};
    struct reload_ctx rc = {.srv = &srv, .path = o->config, .debug = o->debug};
    struct serverconf *sc;
    struct routes *routes;
    struct queueconf qc;
    struct event *sig_term, *sig_int, *sig_hup;
    struct control *ctl;
    struct admin *admin;
    struct store *st;
    SSL_CTX *client_tls;
    char err[512];
    /* As root, only these directories themselves are touched (core/privs.c);
     * the spool is opened and walked after the drop, as the daemon user. */
    const struct privs_dir dirs[] = {
        {cfg->state_dir, NULL}, {cfg->spool_dir, spool_subdirs}, {NULL, NULL}};

    setup_settings(cfg, &sc, &routes, &qc);
    srv.conf = sc;
    srv.routes = routes;
    srv.base = new_event_base();
    if (!srv.base)
        log_fatal("event=fatal what=\"event_base_new failed\"");
    log_batch(srv.base);
    LIST_INIT(&srv.sessions);
    setup_tls(cfg, &qc, &srv, &client_tls);
    setup_listen(&srv, cfg, sc, routes);
    if (admin_listen(srv.base, cfg, &admin, err, sizeof(err)) < 0)
        log_fatal("event=fatal what=admin error=%s", log_q(err));
    if (privs_drop(cfg->user, dirs, err, sizeof(err)) < 0)
        log_fatal("event=fatal what=privileges error=%s", log_q(err));
    srv.spool = setup_dirs(cfg, &qc);
    st = setup_store(cfg, srv.base);
    srv.stats = stats_new(st);
    stats_set_host(srv.stats, cfg->hostname);
    if (!srv.stats || stats_batch(srv.stats, srv.base, 1000) < 0)
        log_fatal("event=fatal what=\"out of memory\"");
    spool_on_corrupt(srv.spool, on_corrupt, &srv);
    srv.dns = setup_dns(cfg, srv.base, srv.routes);
    setup_delivery(&srv, &qc, st, client_tls); /* before the checks: they share the pool */
    srv.gen->policy = srv.policy = setup_policy(&srv, st);
    srv.gen->dns = srv.dns;
    if (!(srv.gen->sign = signconf_load(cfg, err, sizeof(err))))
        log_fatal("event=fatal what=dkim_sign error=%s", log_q(err));
    rc.store = st;
    srv.store = st;
    reload_init(&rc);
    ctl = setup_control(&srv, st, admin);
    sig_term = evsignal_new(srv.base, SIGTERM, on_stop, &srv);
    sig_int = evsignal_new(srv.base, SIGINT, on_stop, &srv);
    sig_hup = evsignal_new(srv.base, SIGHUP, on_hup, &rc);
    evsignal_add(sig_term, NULL);
    evsignal_add(sig_int, NULL);
    evsignal_add(sig_hup, NULL);
    queue_start(srv.queue);
    server_enable(&srv);
    log_info("event=ready hostname=%s", log_q(cfg->hostname));
    daemon_ready();
    looptime_watch();
    event_base_dispatch(srv.base);

    /* Sessions first (their commits detach), then deliveries, then the pool drains. */
    server_close(&srv);
    control_close(ctl);
    admin_close(admin);
    queue_free(srv.queue);
    srv.queue = NULL;
    stop_delivery(&srv);
    server_gen_unref(srv.gen); /* the configuration, routes, TLS, resolver and checks */
    stats_free(srv.stats);
    store_close(st);
    spool_close(srv.spool);
    event_free(sig_term);
    event_free(sig_int);
    event_free(sig_hup);
    SSL_CTX_free(client_tls);
    log_batch_end();
    event_base_free(srv.base);
    log_info("event=stopped");
    return 0;
}

/* start_daemon - detach unless -f (the parent waits for the start-up's result), then the
 * pidfile, before privileges are dropped */
static void start_daemon(const struct config *cfg, const struct options *o)
{
    char err[512], buf[4096];
    unsigned mode;
    const char *pidfile;

    if (!o->foreground && daemon_detach(err, sizeof(err)) < 0)
        log_fatal("event=fatal what=daemon error=%s", log_q(err));
    pidfile = daemon_pidfile_path(cfg_getstr(cfg->raw, "pidfile"), cfg->state_dir, !o->foreground,
                                  buf, sizeof(buf), &mode);
    if (pidfile && daemon_pidfile(pidfile, mode, err, sizeof(err)) < 0)
        log_fatal("event=fatal what=pidfile error=%s", log_q(err));
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct config *cfg;
    int rc;

    parse_options(argc, argv, &o);
    cfg = modules_config_load(o.config, stderr);
    if (!cfg)
        return 1;
    /* -n and the start run the same validation: every error (and warning) as FILE:LINE */
    if (modules_validate(cfg, stderr) > 0) {
        config_free(cfg);
        return 1;
    }
    if (o.check_only) {
        printf("%s: ok\n", o.config);
        config_free(cfg);
        return 0;
    }
    log_init("mxgated", o.foreground, o.debug || strcmp(cfg->log_level, "debug") == 0);
    signal(SIGPIPE, SIG_IGN);
    /* no chdir: relative paths of check files (lists, hook) stay as the operator wrote them */
    start_daemon(cfg, &o);
    rc = run(cfg, &o); /* cfg now belongs to the first configuration generation */
    return rc;
}
