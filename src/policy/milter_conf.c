/* milter_conf.c - the milter "NAME" { ... } sections */
#include "policy/milter_conf.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/xmalloc.h"

/* conf_inet - "IP:PORT" or "[IPv6]:PORT" */
static int conf_inet(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon, *h = s;
    size_t hl;
    char *end;
    long port;

    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1, hl = (size_t)(rb - h), colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    port = strtol(colon + 1, &end, 10);
    if (hl == 0 || hl >= sizeof(host) || *end || port < 1 || port > 65535 || !colon[1])
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -1; /* a literal only: no name lookup on the event loop */
}

int milter_conf_socket(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    const char *path = NULL;

    if (!spec)
        return -1;
    if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0)
        return conf_inet(strchr(spec, ':') + 1, ss, len);
    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
        path = strchr(spec, ':') + 1;
    if (!path || path[0] != '/' || strlen(path) >= sizeof(un->sun_path))
        return -1;
    memset(ss, 0, sizeof(*ss));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, strlen(path) + 1);
    *len = (socklen_t)sizeof(*un);
    return 0;
}

static int conf_on_error(const char *s)
{
    static const char *const names[] = {"tempfail", "accept", "reject"};

    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int conf_valid_socket(cfg_t *sec, cfg_opt_t *opt)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *v = cfg_opt_getnstr(opt, 0);

    if (milter_conf_socket(v, &ss, &len) < 0)
        cfg_error(sec, "milter: socket must be \"inet:IP:PORT\" or \"unix:/path\", not \"%s\"", v);
    return 0;
}

static int conf_valid_on_error(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (conf_on_error(v) < 0)
        cfg_error(sec,
                  "milter: on_error must be \"tempfail\", \"accept\" or \"reject\", not \"%s\"", v);
    return 0;
}

static int conf_valid_header(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    for (const char *p = v; p && *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == ':')
            return cfg_error(sec, "milter: spam_header must be a field name, not \"%s\"", v), 0;
    return 0;
}

int milter_conf_load(cfg_t *root, struct milter_conf **out, size_t *n, char *err, size_t errlen)
{
    unsigned count = cfg_size(root, "milter");
    struct milter_conf *m = xcalloc(count ? count : 1, sizeof(*m));

    for (unsigned i = 0; i < count; i++) {
        cfg_t *sec = cfg_getnsec(root, "milter", i);
        m[i].name = xstrdup(cfg_title(sec));
        m[i].socket = xstrdup(cfg_getstr(sec, "socket") ? cfg_getstr(sec, "socket") : "");
        m[i].on_error = (enum milter_on_error)conf_on_error(cfg_getstr(sec, "on_error"));
        m[i].timeout = config_uint(sec, "timeout");
        m[i].max_size = (uint64_t)cfg_getint(sec, "max_size");
        m[i].spam_header = xstrdup(cfg_getstr(sec, "spam_header"));
        m[i].score = (int)cfg_getint(sec, "score");
        if (milter_conf_socket(m[i].socket, &m[i].addr, &m[i].addrlen) < 0 ||
            (int)m[i].on_error < 0) {
            snprintf(err, errlen, "milter %s: bad socket or on_error", m[i].name);
            milter_conf_free(m, i + 1);
            return -1;
        }
    }
    *out = m;
    *n = count;
    return 0;
}

void milter_conf_free(struct milter_conf *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].name);
        free(m[i].socket);
        free(m[i].spam_header);
    }
    free(m);
}

static cfg_opt_t conf_opts[] = {
    CFG_STR("socket", NULL, CFGF_NODEFAULT),
    CFG_STR("on_error", "tempfail", CFGF_NONE),
    CFG_INT("timeout", 30, CFGF_NONE),
    CFG_INT("max_size", 26214400, CFGF_NONE),
    CFG_STR("spam_header", "X-Spam", CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound conf_bounds[] = {
    {"timeout", 1, 3600},
    {"max_size", 0, 2147483647L},
    {"score", -1000, 1000},
    {NULL, 0, 0},
};

static const struct config_validator conf_validators[] = {
    {"milter|socket", conf_valid_socket},
    {"milter|on_error", conf_valid_on_error},
    {"milter|spam_header", conf_valid_header},
    {NULL, NULL},
};

/* conf_check - every milter needs its socket */
static void conf_check(cfg_t *root, struct config_diag *d)
{
    for (unsigned i = 0; i < cfg_size(root, "milter"); i++) {
        cfg_t *sec = cfg_getnsec(root, "milter", i);
        if (!cfg_getstr(sec, "socket"))
            config_error(d, sec->line, "milter %s: socket is required", cfg_title(sec));
    }
}

const struct config_section milter_conf_section = {
    .name = "milter",
    .opts = conf_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
    .bounds = conf_bounds,
    .validators = conf_validators,
    .check = conf_check,
};
