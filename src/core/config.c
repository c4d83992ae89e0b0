/* config.c - the configuration file: a libconfuse option table, validated into struct config */
#include "core/fsutil.h"
#include "core/config.h"

#include <confuse.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/address.h"

static FILE *config_errout;
static const char *config_path;
static int config_nerrors;

/* config_errfunc - every libconfuse error as "path:line: message" */
static void config_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
    fprintf(config_errout, "%s:%d: ", config_path, cfg ? cfg->line : 0);
    vfprintf(config_errout, fmt, ap);
    fputc('\n', config_errout);
    config_nerrors++;
}

/* config_error - an error found after parsing, tied to a line when known */
static void config_error(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void config_error(int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(config_errout, "%s:%d: ", config_path, line);
    va_start(ap, fmt);
    vfprintf(config_errout, fmt, ap);
    va_end(ap);
    fputc('\n', config_errout);
    config_nerrors++;
}

/* config_valid_nonneg - numeric options are counts or seconds: never negative */
static int config_valid_nonneg(cfg_t *cfg, cfg_opt_t *opt)
{
    for (unsigned i = 0; i < opt->nvalues; i++) {
        if (cfg_opt_getnint(opt, i) < 0 || cfg_opt_getnint(opt, i) > INT_MAX) {
            cfg_error(cfg, "%s must be between 0 and %d", opt->name, INT_MAX);
            return 0; /* reported; keep parsing to list every error */
        }
    }
    return 0;
}

/* config_valid_route - "to" must be a route target */
static int config_valid_route(cfg_t *cfg, cfg_opt_t *opt)
{
    struct route_target t;
    char err[256];

    if (route_target_parse(cfg_opt_getnstr(opt, 0), &t, err, sizeof(err)) < 0) {
        cfg_error(cfg, "route %s: %s", cfg_title(cfg), err);
        return 0; /* reported; keep parsing to list every error */
    }
    return 0;
}

/* config_valid_address - a listen address is "ip:port" */
static int config_valid_address(cfg_t *cfg, cfg_opt_t *opt)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *a = cfg_opt_getnstr(opt, 0);

    if (sockaddr_parse(a, 25, &ss, &len) < 0) {
        cfg_error(cfg, "listen %s: bad address \"%s\" (want IP:PORT or [IPv6]:PORT)",
                  cfg_title(cfg), a);
        return 0; /* reported; keep parsing to list every error */
    }
    return 0;
}

/* config_valid_networks - each relay network is a CIDR */
static int config_valid_networks(cfg_t *cfg, cfg_opt_t *opt)
{
    struct cidr c;

    for (unsigned i = 0; i < opt->nvalues; i++) {
        if (cidr_parse(cfg_opt_getnstr(opt, i), &c) < 0) {
            cfg_error(cfg, "relay_networks: bad network \"%s\"", cfg_opt_getnstr(opt, i));
            return 0; /* reported; keep parsing to list every error */
        }
    }
    return 0;
}

/* config_valid_domains - each domain must be a valid domain name */
static int config_valid_domains(cfg_t *cfg, cfg_opt_t *opt)
{
    struct addr a;
    char probe[SMTP_DOMAIN_MAX + 16];

    for (unsigned i = 0; i < opt->nvalues; i++) {
        snprintf(probe, sizeof(probe), "x@%s", cfg_opt_getnstr(opt, i));
        if (addr_parse(probe, 1, &a) != ADDR_OK || a.is_literal) {
            cfg_error(cfg, "domains: bad domain \"%s\"", cfg_opt_getnstr(opt, i));
            return 0; /* reported; keep parsing to list every error */
        }
    }
    return 0;
}

/* config_valid_tls_mode - listen tls is starttls, implicit or none */
static int config_valid_tls_mode(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *m = cfg_opt_getnstr(opt, 0);

    if (strcmp(m, "starttls") && strcmp(m, "implicit") && strcmp(m, "none")) {
        cfg_error(cfg, "listen %s: tls must be \"starttls\", \"implicit\" or \"none\"",
                  cfg_title(cfg));
        return 0; /* reported; keep parsing to list every error */
    }
    return 0;
}

static cfg_opt_t listen_opts[] = {
    CFG_STR("address", NULL, CFGF_NODEFAULT),
    CFG_STR("tls", "starttls", CFGF_NONE),
    CFG_STR_LIST("checks", "{}", CFGF_NONE),
    CFG_END(),
};

/* The policy checks read their own sections from config->raw (see policy/). */
static cfg_opt_t dns_opts[] = {
    CFG_STR_LIST("servers", "{}", CFGF_NONE), /* empty: /etc/resolv.conf */
    CFG_INT("timeout", 3, CFGF_NONE),
    CFG_INT("tries", 2, CFGF_NONE),
    CFG_STR("on_timeout", "tempfail", CFGF_NONE), /* tempfail | pass */
    CFG_END(),
};

static cfg_opt_t store_opts[] = {
    CFG_STR("uri", NULL, CFGF_NODEFAULT), /* default lmdb:<state_dir>/db */
    CFG_INT("cleanup", 900, CFGF_NONE),   /* seconds between expiry sweeps */
    CFG_END(),
};

static cfg_opt_t access_opts[] = {
    CFG_STR("client", NULL, CFGF_NODEFAULT), CFG_STR("rdns", NULL, CFGF_NODEFAULT),
    CFG_STR("helo", NULL, CFGF_NODEFAULT),   CFG_STR("sender", NULL, CFGF_NODEFAULT),
    CFG_STR("rcpt", NULL, CFGF_NODEFAULT),   CFG_END(),
};

static cfg_opt_t s25r_opts[] = {
    CFG_STR("action", "greylist", CFGF_NONE), /* greylist | tempfail | reject | score */
    CFG_STR("rules", NULL, CFGF_NODEFAULT),   /* default: the shipped six rules */
    CFG_STR("exceptions", NULL, CFGF_NODEFAULT),
    CFG_BOOL("no_ptr", cfg_true, CFGF_NONE),
    CFG_BOOL("unconfirmed", cfg_true, CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t dnsbl_zone_opts[] = {
    CFG_INT("weight", 1, CFGF_NONE),
    CFG_STR_LIST("codes", "{}", CFGF_NONE), /* empty: any 127.0.0.0/8 answer but 127.255.255.x */
    CFG_INT("timeout", 3, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t dnsbl_opts[] = {
    CFG_INT("threshold", 1, CFGF_NONE),
    CFG_STR("action", "reject", CFGF_NONE), /* reject | tempfail | score */
    CFG_SEC("zone", dnsbl_zone_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_END(),
};

static cfg_opt_t greylist_opts[] = {
    CFG_INT("delay", 300, CFGF_NONE),
    CFG_INT("retry_window", 172800, CFGF_NONE), /* how long a first attempt is remembered */
    CFG_INT("pass_ttl", 3024000, CFGF_NONE),    /* how long an unused pass is remembered */
    CFG_INT("awl_count", 5, CFGF_NONE),         /* passes before a network is trusted (postgrey) */
    CFG_INT("ipv4_prefix", 24, CFGF_NONE),
    CFG_INT("ipv6_prefix", 64, CFGF_NONE),
    CFG_BOOL("only_suspicious", cfg_false, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t recipients_opts[] = {
    CFG_STR("file", NULL, CFGF_NODEFAULT),   /* addresses and @domain catch-alls, SIGHUP reloads */
    CFG_BOOL("probe", cfg_false, CFGF_NONE), /* ask the route's server: MAIL FROM:<> RCPT TO: */
    CFG_INT("positive_ttl", 86400, CFGF_NONE), CFG_INT("negative_ttl", 3600, CFGF_NONE), CFG_END(),
};

static cfg_opt_t harvest_opts[] = {
    CFG_INT("threshold", 10, CFGF_NONE), /* unknown recipients per client per window */
    CFG_INT("window", 600, CFGF_NONE),
    CFG_INT("tarpit", 1, CFGF_NONE), /* seconds added to every reply past the threshold */
    CFG_INT("block", 600, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t batv_opts[] = {
    CFG_STR_LIST("domains", "{}", CFGF_NONE),
    CFG_INT("key", 1, CFGF_NONE),             /* the key number that signs */
    CFG_STR_LIST("secrets", "{}", CFGF_NONE), /* "N:secret", N a digit */
    CFG_INT("days", 7, CFGF_NONE),            /* validity of a tag */
    CFG_END(),
};

static cfg_opt_t bounce_flood_opts[] = {
    CFG_INT("interval", 60, CFGF_NONE),
    CFG_INT("start", 100, CFGF_NONE), /* bounces per interval that declare a flood */
    CFG_INT("stop", 10, CFGF_NONE),   /* at or below this ... */
    CFG_INT("hold", 300, CFGF_NONE),  /* ... for this long ends it */
    CFG_STR("hook", NULL, CFGF_NODEFAULT),
    CFG_END(),
};

static cfg_opt_t ratelimit_opts[] = {
    CFG_INT("interval", 60, CFGF_NONE),
    CFG_INT("concurrent", 0, CFGF_NONE), /* 0: off; per client address or network */
    CFG_INT("connections", 0, CFGF_NONE),
    CFG_INT("messages", 0, CFGF_NONE),
    CFG_INT("recipients", 0, CFGF_NONE),
    CFG_INT("ipv4_prefix", 32, CFGF_NONE),
    CFG_INT("ipv6_prefix", 128, CFGF_NONE),
    CFG_INT("tarpit", 0, CFGF_NONE), /* seconds to wait before a limit reply */
    CFG_END(),
};

static cfg_opt_t route_opts[] = {
    CFG_STR("to", NULL, CFGF_NODEFAULT),
    CFG_BOOL("create", cfg_false, CFGF_NONE), /* maildir: make unknown mailboxes */
    CFG_END(),
};

static cfg_opt_t tls_opts[] = {
    CFG_STR("certificate", NULL, CFGF_NODEFAULT),
    CFG_STR("key", NULL, CFGF_NODEFAULT),
    CFG_STR("ciphers", NULL, CFGF_NODEFAULT),
    CFG_END(),
};

static cfg_opt_t limits_opts[] = {
    CFG_INT("max_connections", 1000, CFGF_NONE),
    CFG_INT("max_connections_per_ip", 20, CFGF_NONE),
    CFG_INT("max_message_size", 10240000, CFGF_NONE),
    CFG_INT("max_recipients", 1000, CFGF_NONE),
    CFG_INT("max_errors", 10, CFGF_NONE),
    CFG_INT("max_commands", 10000, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t timeouts_opts[] = {
    CFG_INT("command", 300, CFGF_NONE),
    CFG_INT("data", 180, CFGF_NONE),
    CFG_INT("greeting_delay", 0, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t queue_opts[] = {
    CFG_INT("retry_min", 60, CFGF_NONE),
    CFG_INT("retry_max", 3600, CFGF_NONE),
    CFG_INT("lifetime", 432000, CFGF_NONE),
    CFG_INT("fsync_threads", 16, CFGF_NONE),
    CFG_INT("recycle", 1024, CFGF_NONE), /* queue files kept in free/ for reuse; 0: off */
    CFG_INT("max_deliveries", 100, CFGF_NONE),
    CFG_INT("bounce_limit", 5, CFGF_NONE),
    CFG_INT("bounce_window", 3600, CFGF_NONE),
    CFG_INT("bounce_domain_limit", 100, CFGF_NONE),
    CFG_STR("sync", "filesystem", CFGF_NONE), /* filesystem (syncfs group commit) | file */
    CFG_END(),
};

static cfg_opt_t delivery_opts[] = {
    CFG_INT("connect_timeout", 30, CFGF_NONE),
    CFG_INT("command_timeout", 300, CFGF_NONE),
    CFG_INT("data_timeout", 600, CFGF_NONE),
    CFG_BOOL("starttls", cfg_true, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t root_opts[] = {
    CFG_STR("hostname", NULL, CFGF_NODEFAULT),
    CFG_STR("user", NULL, CFGF_NODEFAULT),
    CFG_STR("spool_dir", "var/spool", CFGF_NONE),
    CFG_STR("state_dir", "var/state", CFGF_NONE),
    CFG_STR("log_level", "info", CFGF_NONE),
    CFG_STR_LIST("domains", "{}", CFGF_NONE),
    CFG_STR_LIST("relay_networks", "{}", CFGF_NONE),
    CFG_SEC("listen", listen_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_SEC("route", route_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_SEC("tls", tls_opts, CFGF_NONE),
    CFG_SEC("limits", limits_opts, CFGF_NONE),
    CFG_SEC("timeouts", timeouts_opts, CFGF_NONE),
    CFG_SEC("queue", queue_opts, CFGF_NONE),
    CFG_SEC("delivery", delivery_opts, CFGF_NONE),
    CFG_SEC("dns", dns_opts, CFGF_NONE),
    CFG_SEC("store", store_opts, CFGF_NONE),
    CFG_SEC("access", access_opts, CFGF_NONE),
    CFG_SEC("s25r", s25r_opts, CFGF_NONE),
    CFG_SEC("dnsbl", dnsbl_opts, CFGF_NONE),
    CFG_SEC("greylist", greylist_opts, CFGF_NONE),
    CFG_SEC("ratelimit", ratelimit_opts, CFGF_NONE),
    CFG_SEC("recipients", recipients_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_SEC("harvest", harvest_opts, CFGF_NONE),
    CFG_SEC("batv", batv_opts, CFGF_NONE),
    CFG_SEC("bounce_flood", bounce_flood_opts, CFGF_NONE),
    CFG_END(),
};

/* config_set_validators - hook the checks that must report the offending line */
static void config_set_validators(cfg_t *cfg)
{
    static const char *const numeric[] = {
        "limits|max_connections",   "limits|max_connections_per_ip",
        "limits|max_message_size",  "limits|max_recipients",
        "limits|max_errors",        "limits|max_commands",
        "timeouts|command",         "timeouts|data",
        "timeouts|greeting_delay",  "queue|retry_min",
        "queue|retry_max",          "queue|lifetime",
        "queue|fsync_threads",      "queue|max_deliveries",
        "queue|bounce_limit",       "queue|bounce_window",
        "delivery|connect_timeout", "delivery|command_timeout",
        "delivery|data_timeout",    "queue|recycle",
    };

    for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++)
        cfg_set_validate_func(cfg, numeric[i], config_valid_nonneg);
    cfg_set_validate_func(cfg, "queue|bounce_domain_limit", config_valid_nonneg);
    cfg_set_validate_func(cfg, "route|to", config_valid_route);
    cfg_set_validate_func(cfg, "listen|address", config_valid_address);
    cfg_set_validate_func(cfg, "listen|tls", config_valid_tls_mode);
    cfg_set_validate_func(cfg, "relay_networks", config_valid_networks);
    cfg_set_validate_func(cfg, "domains", config_valid_domains);
}

/* config_strlist - copy a string list option */
static char **config_strlist(cfg_t *cfg, const char *name, size_t *n)
{
    char **v;

    *n = cfg_size(cfg, name);
    v = calloc(*n + 1, sizeof(*v));
    for (size_t i = 0; v && i < *n; i++)
        v[i] = strdup(cfg_getnstr(cfg, name, (unsigned)i));
    return v;
}

/* config_uint - a numeric option already validated as non-negative */
static unsigned config_uint(cfg_t *sec, const char *name)
{
    return (unsigned)cfg_getint(sec, name);
}

/* config_take_limits - limits, timeouts, queue and delivery sections */
static void config_take_numbers(struct config *c, cfg_t *root)
{
    cfg_t *l = cfg_getsec(root, "limits"), *t = cfg_getsec(root, "timeouts");
    cfg_t *q = cfg_getsec(root, "queue"), *d = cfg_getsec(root, "delivery");

    c->limits.max_connections = config_uint(l, "max_connections");
    c->limits.max_connections_per_ip = config_uint(l, "max_connections_per_ip");
    c->limits.max_message_size = (uint64_t)cfg_getint(l, "max_message_size");
    c->limits.max_recipients = config_uint(l, "max_recipients");
    c->limits.max_errors = config_uint(l, "max_errors");
    c->limits.max_commands = config_uint(l, "max_commands");
    c->timeouts.command = config_uint(t, "command");
    c->timeouts.data = config_uint(t, "data");
    c->timeouts.greeting_delay = config_uint(t, "greeting_delay");
    c->queue.retry_min = config_uint(q, "retry_min");
    c->queue.retry_max = config_uint(q, "retry_max");
    c->queue.lifetime = config_uint(q, "lifetime");
    c->queue.fsync_threads = config_uint(q, "fsync_threads");
    c->queue.recycle = config_uint(q, "recycle");
    c->queue.max_deliveries = config_uint(q, "max_deliveries");
    c->queue.bounce_limit = config_uint(q, "bounce_limit");
    c->queue.bounce_window = config_uint(q, "bounce_window");
    c->queue.bounce_domain_limit = config_uint(q, "bounce_domain_limit");
    c->queue.sync_filesystem = strcmp(cfg_getstr(q, "sync"), "file") != 0;
    if (c->queue.sync_filesystem && strcmp(cfg_getstr(q, "sync"), "filesystem") != 0)
        config_error(q->line, "queue: sync must be \"filesystem\" or \"file\"");
    c->delivery.connect_timeout = config_uint(d, "connect_timeout");
    c->delivery.command_timeout = config_uint(d, "command_timeout");
    c->delivery.data_timeout = config_uint(d, "data_timeout");
    c->delivery.starttls = cfg_getbool(d, "starttls") == cfg_true;
}

/* config_check_numbers - relations between numbers that a single validator cannot see */
static void config_check_numbers(const struct config *c)
{
    if (c->limits.max_connections == 0 || c->limits.max_connections_per_ip == 0)
        config_error(0, "limits: max_connections and max_connections_per_ip must be > 0");
    if (c->limits.max_recipients == 0 || c->limits.max_errors == 0)
        config_error(0, "limits: max_recipients and max_errors must be > 0");
    if (c->limits.max_message_size < 1024)
        config_error(0, "limits: max_message_size must be at least 1024");
    if (c->timeouts.command == 0 || c->timeouts.data == 0)
        config_error(0, "timeouts: command and data must be > 0");
    if (c->queue.fsync_threads == 0 || c->queue.fsync_threads > 64)
        config_error(0, "queue: fsync_threads must be between 1 and 64");
    if (c->queue.recycle > 100000)
        config_error(0, "queue: recycle must be between 0 and 100000");
    if (c->queue.max_deliveries == 0 || c->queue.retry_min == 0)
        config_error(0, "queue: max_deliveries and retry_min must be > 0");
    if (c->queue.retry_max < c->queue.retry_min)
        config_error(0, "queue: retry_max must not be below retry_min");
    if (c->delivery.connect_timeout == 0 || c->delivery.command_timeout == 0 ||
        c->delivery.data_timeout == 0)
        config_error(0, "delivery: timeouts must be > 0");
}

/* config_take_listen - listen sections */
static void config_take_listen(struct config *c, cfg_t *root)
{
    c->nlisten = cfg_size(root, "listen");
    c->listen = calloc(c->nlisten ? c->nlisten : 1, sizeof(*c->listen));
    for (size_t i = 0; i < c->nlisten; i++) {
        cfg_t *s = cfg_getnsec(root, "listen", (unsigned)i);
        struct config_listen *l = &c->listen[i];
        const char *mode = cfg_getstr(s, "tls");
        l->name = strdup(cfg_title(s));
        l->checks = config_strlist(s, "checks", &l->nchecks);
        if (!cfg_getstr(s, "address")) {
            config_error(s->line, "listen %s: address is required", l->name);
            continue;
        }
        l->address = strdup(cfg_getstr(s, "address"));
        l->implicit_tls = strcmp(mode, "implicit") == 0;
        l->starttls = strcmp(mode, "starttls") == 0 && c->tls_certificate != NULL;
        if (l->implicit_tls && !c->tls_certificate)
            config_error(s->line, "listen %s: tls = \"implicit\" needs a tls section", l->name);
    }
    if (c->nlisten == 0)
        config_error(0, "no listen section: nothing to serve");
}

/* config_take_routes - route sections; each domain of `domains` must have one */
static void config_take_routes(struct config *c, cfg_t *root)
{
    char err[256];

    c->nroutes = cfg_size(root, "route");
    c->routes = calloc(c->nroutes ? c->nroutes : 1, sizeof(*c->routes));
    for (size_t i = 0; i < c->nroutes; i++) {
        cfg_t *s = cfg_getnsec(root, "route", (unsigned)i);
        c->routes[i].domain = strdup(cfg_title(s));
        if (!cfg_getstr(s, "to")) {
            config_error(s->line, "route %s: \"to\" is required", c->routes[i].domain);
            continue;
        }
        if (route_target_parse(cfg_getstr(s, "to"), &c->routes[i].target, err, sizeof(err)) < 0)
            config_error(s->line, "route %s: %s", c->routes[i].domain, err);
        c->routes[i].create = cfg_getbool(s, "create");
        if (c->routes[i].create && c->routes[i].target.kind != ROUTE_MAILDIR)
            config_error(s->line, "route %s: create is for maildir routes", c->routes[i].domain);
    }
    for (size_t i = 0; i < c->ndomains; i++)
        if (!config_route_for(c, c->domains[i]))
            config_error(0, "domain %s has no route", c->domains[i]);
}

/* config_take_tls - the tls section: both files or neither */
static void config_take_tls(struct config *c, cfg_t *root)
{
    cfg_t *t = cfg_getsec(root, "tls");
    const char *cert, *key;

    if (!t)
        return;
    cert = cfg_getstr(t, "certificate");
    key = cfg_getstr(t, "key");
    if (!cert && !key)
        return;
    if (!cert || !key) {
        config_error(t->line, "tls: both certificate and key are required");
        return;
    }
    c->tls_certificate = fs_abspath(cert);
    c->tls_key = fs_abspath(key);
    if (cfg_getstr(t, "ciphers"))
        c->tls_ciphers = strdup(cfg_getstr(t, "ciphers"));
}

/* config_take_root - top-level scalars and lists */
static void config_take_root(struct config *c, cfg_t *root)
{
    char host[256];
    size_t n;
    char **nets;

    if (cfg_getstr(root, "hostname")) {
        c->hostname = strdup(cfg_getstr(root, "hostname"));
    } else {
        if (gethostname(host, sizeof(host)) < 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        c->hostname = strdup(host);
    }
    if (cfg_getstr(root, "user") && *cfg_getstr(root, "user"))
        c->user = strdup(cfg_getstr(root, "user"));
    c->spool_dir = fs_abspath(cfg_getstr(root, "spool_dir"));
    c->state_dir = fs_abspath(cfg_getstr(root, "state_dir"));
    c->log_level = strdup(cfg_getstr(root, "log_level"));
    if (strcmp(c->log_level, "info") && strcmp(c->log_level, "debug"))
        config_error(0, "log_level must be \"info\" or \"debug\"");
    c->domains = config_strlist(root, "domains", &c->ndomains);
    for (size_t i = 0; i < c->ndomains; i++)
        for (char *p = c->domains[i]; *p; p++)
            *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    nets = config_strlist(root, "relay_networks", &n);
    c->relay_networks = calloc(n ? n : 1, sizeof(*c->relay_networks));
    c->nrelay_networks = n;
    for (size_t i = 0; i < n; i++) {
        cidr_parse(nets[i], &c->relay_networks[i]); /* validated while parsing */
        free(nets[i]);
    }
    free(nets);
}

/* config_load - parse, validate, convert */
struct config *config_load(const char *path, FILE *errout)
{
    cfg_t *root = cfg_init(root_opts, CFGF_NONE);
    struct config *c;
    int rc;

    config_errout = errout;
    config_path = path;
    config_nerrors = 0;
    cfg_set_error_function(root, config_errfunc);
    config_set_validators(root);
    rc = cfg_parse(root, path);
    if (rc == CFG_FILE_ERROR) {
        fprintf(errout, "%s:0: cannot read: %s\n", path, strerror(errno));
        cfg_free(root);
        return NULL;
    }
    if (rc != CFG_SUCCESS || config_nerrors) {
        cfg_free(root);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    c->path = fs_abspath(path);
    config_take_root(c, root);
    config_take_tls(c, root);
    config_take_listen(c, root);
    config_take_routes(c, root);
    config_take_numbers(c, root);
    config_check_numbers(c);
    c->raw = root; /* the policy checks read their sections from it */
    if (config_nerrors) {
        config_free(c);
        return NULL;
    }
    return c;
}

/* config_free - release everything config_load made */
void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndomains; i++)
        free(c->domains[i]);
    for (size_t i = 0; i < c->nlisten; i++) {
        for (size_t j = 0; j < c->listen[i].nchecks; j++)
            free(c->listen[i].checks[j]);
        free(c->listen[i].checks);
        free(c->listen[i].name);
        free(c->listen[i].address);
    }
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->routes[i].domain);
    free(c->domains);
    free(c->relay_networks);
    free(c->listen);
    free(c->routes);
    free(c->path);
    free(c->hostname);
    free(c->user);
    free(c->spool_dir);
    free(c->state_dir);
    free(c->log_level);
    free(c->tls_certificate);
    free(c->tls_key);
    free(c->tls_ciphers);
    if (c->raw)
        cfg_free(c->raw);
    free(c);
}

/* config_is_local_domain - one of ours */
int config_is_local_domain(const struct config *c, const char *domain)
{
    for (size_t i = 0; i < c->ndomains; i++)
        if (strcasecmp(c->domains[i], domain) == 0)
            return 1;
    return 0;
}

/* config_route_for - exact, then the longest ".parent" pattern, then "*" */
const struct config_route *config_route_for(const struct config *c, const char *domain)
{
    const struct config_route *best = NULL, *star = NULL;

    for (size_t i = 0; i < c->nroutes; i++) {
        const char *pat = c->routes[i].domain;
        if (strcmp(pat, "*") == 0)
            star = &c->routes[i];
        else if (strcasecmp(pat, domain) == 0)
            return &c->routes[i];
        else if (pat[0] == '.' && addr_domain_match(domain, pat) &&
                 (!best || strlen(pat) > strlen(best->domain)))
            best = &c->routes[i];
    }
    return best ? best : star;
}

/* config_control_socket - where the daemon listens for mxgatectl */
void config_control_socket(const struct config *c, char *dst, size_t dstlen)
{
    snprintf(dst, dstlen, "%s/control.sock", c->state_dir);
}

/* config_store_uri - store { uri } or the embedded default lmdb:<state_dir>/db */
void config_store_uri(const struct config *c, char *dst, size_t dstlen)
{
    const char *uri = cfg_getstr(cfg_getsec(c->raw, "store"), "uri");

    if (uri)
        snprintf(dst, dstlen, "%s", uri);
    else
        snprintf(dst, dstlen, "lmdb:%s/db", c->state_dir);
}
