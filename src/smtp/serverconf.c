/* serverconf.c - the listen, limits and timeouts sections */
#include "smtp/serverconf.h"

#include <confuse.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "smtp/proxyproto.h"

/* serverconf_valid_address - a listen address is "ip:port" */
static int serverconf_valid_address(cfg_t *cfg, cfg_opt_t *opt)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *a = cfg_opt_getnstr(opt, 0);

    if (sockaddr_parse(a, 25, &ss, &len) < 0)
        cfg_error(cfg, "listen %s: bad address \"%s\" (want IP:PORT or [IPv6]:PORT)",
                  cfg_title(cfg), a);
    return 0; /* reported; keep parsing to list every error */
}

/* serverconf_valid_tls_mode - listen tls is starttls, implicit or none */
static int serverconf_valid_tls_mode(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *m = cfg_opt_getnstr(opt, 0);

    if (strcmp(m, "starttls") && strcmp(m, "implicit") && strcmp(m, "none"))
        cfg_error(cfg, "listen %s: tls must be \"starttls\", \"implicit\" or \"none\"",
                  cfg_title(cfg));
    return 0; /* reported; keep parsing to list every error */
}

/* serverconf_dup_address - an earlier listen section with the same address as s, or NULL */
static cfg_t *serverconf_dup_address(cfg_t *root, unsigned i)
{
    struct sockaddr_storage a, b;
    socklen_t la, lb;
    const char *mine = cfg_getstr(cfg_getnsec(root, "listen", i), "address");

    if (!mine || sockaddr_parse(mine, 25, &a, &la) < 0)
        return NULL;
    for (unsigned j = 0; j < i; j++) {
        cfg_t *o = cfg_getnsec(root, "listen", j);
        const char *other = cfg_getstr(o, "address");
        if (other && sockaddr_parse(other, 25, &b, &lb) == 0 && la == lb && memcmp(&a, &b, la) == 0)
            return o;
    }
    return NULL;
}

/* serverconf_valid_role - listen role is mx, submission or policy */
static int serverconf_valid_role(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *m = cfg_opt_getnstr(opt, 0);

    if (strcmp(m, "mx") && strcmp(m, "submission") && strcmp(m, "policy"))
        cfg_error(cfg, "listen %s: role must be \"mx\", \"submission\" or \"policy\"",
                  cfg_title(cfg));
    return 0;
}

/* serverconf_proxy_versions - PROXYPROTO_* bits of a proxy_protocol value; -1 if unknown */
static int serverconf_proxy_versions(const char *m)
{
    if (strcmp(m, "none") == 0)
        return 0;
    if (strcmp(m, "v1") == 0)
        return PROXYPROTO_V1;
    if (strcmp(m, "v2") == 0)
        return PROXYPROTO_V2;
    if (strcmp(m, "any") == 0)
        return PROXYPROTO_V1 | PROXYPROTO_V2;
    return -1;
}

/* serverconf_valid_proxy - listen proxy_protocol is none, v1, v2 or any */
static int serverconf_valid_proxy(cfg_t *cfg, cfg_opt_t *opt)
{
    if (serverconf_proxy_versions(cfg_opt_getnstr(opt, 0)) < 0)
        cfg_error(cfg, "listen %s: proxy_protocol must be \"none\", \"v1\", \"v2\" or \"any\"",
                  cfg_title(cfg));
    return 0;
}

/* serverconf_valid_proxy_from - each entry of listen proxy_from is an address or network */
static int serverconf_valid_proxy_from(cfg_t *cfg, cfg_opt_t *opt)
{
    struct cidr c;

    for (unsigned i = 0; i < opt->nvalues; i++)
        if (cidr_parse(cfg_opt_getnstr(opt, i), &c) < 0)
            cfg_error(cfg, "listen %s: proxy_from: bad address or network \"%s\"", cfg_title(cfg),
                      cfg_opt_getnstr(opt, i));
    return 0;
}

/* serverconf_check_proxy - a PROXY listener names its balancers; a policy listener
 * speaks to Postfix directly and has no TLS */
static void serverconf_check_proxy(cfg_t *s, struct config_diag *d)
{
    int proxy = serverconf_proxy_versions(cfg_getstr(s, "proxy_protocol")) > 0;

    if (proxy && cfg_size(s, "proxy_from") == 0)
        config_error(d, s->line,
                     "listen %s: proxy_protocol needs proxy_from (the load balancers' addresses)",
                     cfg_title(s));
    if (!proxy && cfg_size(s, "proxy_from") > 0)
        config_error(d, s->line, "listen %s: proxy_from without proxy_protocol", cfg_title(s));
    if (strcmp(cfg_getstr(s, "role"), "policy") != 0)
        return;
    if (proxy)
        config_error(d, s->line, "listen %s: role = \"policy\" takes no proxy_protocol",
                     cfg_title(s));
    if (strcmp(cfg_getstr(s, "tls"), "implicit") == 0)
        config_error(d, s->line, "listen %s: role = \"policy\" takes no tls = \"implicit\"",
                     cfg_title(s));
}

/* serverconf_check_role - a submission listener needs TLS (AUTH is offered only under
 * it) and users to authenticate */
static void serverconf_check_role(cfg_t *root, cfg_t *s, int have_tls, struct config_diag *d)
{
    cfg_t *auth = cfg_getsec(root, "auth");

    if (strcmp(cfg_getstr(s, "role"), "submission") != 0)
        return;
    if (!have_tls || strcmp(cfg_getstr(s, "tls"), "none") == 0)
        config_error(d, s->line,
                     "listen %s: role = \"submission\" needs TLS (a tls section, "
                     "tls = \"starttls\" or \"implicit\")",
                     cfg_title(s));
    if (!auth || (!cfg_getstr(auth, "users") && !cfg_getstr(auth, "dovecot")))
        config_error(d, s->line,
                     "listen %s: role = \"submission\" needs auth { users = FILE } "
                     "(or dovecot = SOCKET)",
                     cfg_title(s));
}

/* serverconf_check_listen - an address each, not another's; implicit TLS needs a certificate */
static void serverconf_check_listen(cfg_t *root, struct config_diag *d)
{
    cfg_t *tls = cfg_getsec(root, "tls");
    int have_tls = tls && cfg_getstr(tls, "certificate") && cfg_getstr(tls, "key");

    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *s = cfg_getnsec(root, "listen", i);
        if (!cfg_getstr(s, "address"))
            config_error(d, s->line, "listen %s: address is required", cfg_title(s));
        else if (strcmp(cfg_getstr(s, "tls"), "implicit") == 0 && !have_tls)
            config_error(d, s->line, "listen %s: tls = \"implicit\" needs a tls section",
                         cfg_title(s));
        serverconf_check_role(root, s, have_tls, d);
        serverconf_check_proxy(s, d);
        if (serverconf_dup_address(root, i))
            config_error(d, s->line, "listen %s: address %s is also listen %s's", cfg_title(s),
                         cfg_getstr(s, "address"), cfg_title(serverconf_dup_address(root, i)));
    }
    if (cfg_size(root, "listen") == 0)
        config_error(d, 0, "no listen section: nothing to serve");
}

static cfg_opt_t serverconf_listen_opts[] = {
    CFG_STR("address", NULL, CFGF_NODEFAULT),
    CFG_STR("tls", "starttls", CFGF_NONE),
    CFG_STR("role", "mx", CFGF_NONE),        /* "submission": AUTH after TLS, no MAIL before it */
    CFG_STR_LIST("checks", "{}", CFGF_NONE), /* the policy checks, in order (policy/ reads it) */
    CFG_STR("proxy_protocol", "none", CFGF_NONE), /* "v1", "v2", "any": behind a balancer */
    CFG_STR_LIST("proxy_from", "{}", CFGF_NONE),  /* the balancers' addresses or networks */
    CFG_INT("proxy_timeout", 10, CFGF_NONE),      /* seconds the PROXY header may take */
    CFG_END(),
};

static const struct config_bound serverconf_listen_bounds[] = {
    {"proxy_timeout", 1, 3600},
    {NULL, 0, 0},
};

static const struct config_validator serverconf_listen_validators[] = {
    {"listen|address", serverconf_valid_address},
    {"listen|tls", serverconf_valid_tls_mode},
    {"listen|role", serverconf_valid_role},
    {"listen|proxy_protocol", serverconf_valid_proxy},
    {"listen|proxy_from", serverconf_valid_proxy_from},
    {NULL, NULL},
};

const struct config_section serverconf_listen_section = {
    .name = "listen",
    .opts = serverconf_listen_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
    .bounds = serverconf_listen_bounds,
    .validators = serverconf_listen_validators,
    .check = serverconf_check_listen,
};

static cfg_opt_t serverconf_limits_opts[] = {
    CFG_INT("max_connections", 1000, CFGF_NONE),
    CFG_INT("max_connections_per_ip", 20, CFGF_NONE),
    CFG_INT("ipv6_prefix", 64, CFGF_NONE), /* IPv6 clients grouped per /N for the above */
    CFG_INT("max_message_size", 10240000, CFGF_NONE),
    CFG_INT("max_recipients", 1000, CFGF_NONE),
    CFG_INT("max_errors", 10, CFGF_NONE),
    CFG_INT("max_commands", 10000, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound serverconf_limits_bounds[] = {
    {"max_connections", 1, INT_MAX}, {"max_connections_per_ip", 1, INT_MAX},
    {"ipv6_prefix", 16, 128},        {"max_message_size", 1024, INT_MAX},
    {"max_recipients", 1, INT_MAX},  {"max_errors", 1, INT_MAX},
    {"max_commands", 0, INT_MAX},    {NULL, 0, 0},
};

const struct config_section serverconf_limits_section = {
    .name = "limits",
    .opts = serverconf_limits_opts,
    .bounds = serverconf_limits_bounds,
};

static cfg_opt_t serverconf_timeouts_opts[] = {
    CFG_INT("command", 300, CFGF_NONE),
    CFG_INT("data", 180, CFGF_NONE),
    CFG_INT("greeting_delay", 0, CFGF_NONE),
    CFG_INT("session", 3600, CFGF_NONE), /* a whole session at most; then 421 4.4.2 */
    CFG_INT("shutdown", 30, CFGF_NONE),  /* SIGTERM: messages under way may finish this long */
    CFG_END(),
};

static const struct config_bound serverconf_timeouts_bounds[] = {
    {"command", 1, INT_MAX}, {"data", 1, INT_MAX},  {"greeting_delay", 0, INT_MAX},
    {"session", 1, INT_MAX}, {"shutdown", 0, 3600}, {NULL, 0, 0},
};

const struct config_section serverconf_timeouts_section = {
    .name = "timeouts",
    .opts = serverconf_timeouts_opts,
    .bounds = serverconf_timeouts_bounds,
};

/* serverconf_take_numbers - limits and timeouts */
static void serverconf_take_numbers(struct serverconf *sc, cfg_t *root)
{
    cfg_t *l = cfg_getsec(root, "limits"), *t = cfg_getsec(root, "timeouts");

    sc->limits.max_connections = config_uint(l, "max_connections");
    sc->limits.max_connections_per_ip = config_uint(l, "max_connections_per_ip");
    sc->limits.ipv6_prefix = config_uint(l, "ipv6_prefix");
    sc->limits.max_message_size = (uint64_t)cfg_getint(l, "max_message_size");
    sc->limits.max_recipients = config_uint(l, "max_recipients");
    sc->limits.max_errors = config_uint(l, "max_errors");
    sc->limits.max_commands = config_uint(l, "max_commands");
    sc->timeouts.command = config_uint(t, "command");
    sc->timeouts.data = config_uint(t, "data");
    sc->timeouts.greeting_delay = config_uint(t, "greeting_delay");
    sc->timeouts.session = config_uint(t, "session");
    sc->timeouts.shutdown = config_uint(t, "shutdown");
}

/* serverconf_take_proxy - the PROXY protocol settings of listen section s */
static void serverconf_take_proxy(struct serverconf_listen *l, cfg_t *s)
{
    int v = serverconf_proxy_versions(cfg_getstr(s, "proxy_protocol"));

    l->proxy = v > 0 ? (unsigned)v : 0;
    l->proxy_timeout = config_uint(s, "proxy_timeout");
    l->nproxy_from = cfg_size(s, "proxy_from");
    l->proxy_from = xcalloc(l->nproxy_from ? l->nproxy_from : 1, sizeof(*l->proxy_from));
    for (size_t i = 0; i < l->nproxy_from; i++)
        cidr_parse(cfg_getnstr(s, "proxy_from", (unsigned)i), &l->proxy_from[i]); /* validated */
}

struct serverconf *serverconf_load(const struct config *cfg)
{
    struct serverconf *sc = xcalloc(1, sizeof(*sc));
    size_t n = cfg_size(cfg->raw, "listen");

    sc->listen = xcalloc(n ? n : 1, sizeof(*sc->listen));
    for (size_t i = 0; i < n; i++, sc->nlisten++) {
        cfg_t *s = cfg_getnsec(cfg->raw, "listen", (unsigned)i);
        struct serverconf_listen *l = &sc->listen[i];
        const char *mode = cfg_getstr(s, "tls");
        l->name = xstrdup(cfg_title(s));
        l->address = xstrdup(cfg_getstr(s, "address")); /* required by the check */
        l->implicit_tls = strcmp(mode, "implicit") == 0;
        l->starttls = strcmp(mode, "starttls") == 0;
        l->submission = strcmp(cfg_getstr(s, "role"), "submission") == 0;
        l->policy = strcmp(cfg_getstr(s, "role"), "policy") == 0;
        serverconf_take_proxy(l, s);
    }
    serverconf_take_numbers(sc, cfg->raw);
    return sc;
}

void serverconf_free(struct serverconf *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->nlisten; i++) {
        free(sc->listen[i].name);
        free(sc->listen[i].address);
        free(sc->listen[i].proxy_from);
    }
    free(sc->listen);
    free(sc);
}
