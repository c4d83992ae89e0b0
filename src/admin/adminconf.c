/* adminconf.c - the admin section */
#include "admin/adminconf.h"

#include <confuse.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/cidr.h"
#include "core/config.h"

/* adminconf_valid_address - "IP:PORT" */
static int adminconf_valid_address(cfg_t *cfg, cfg_opt_t *opt)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *s = cfg_opt_getnstr(opt, 0);

    if (s && s[0] && sockaddr_parse(s, -1, &ss, &len) < 0)
        cfg_error(cfg, "admin: bad address \"%s\" (want IP:PORT or [IPv6]:PORT)", s);
    return 0;
}

static const struct config_validator adminconf_validators[] = {
    {"admin|address", adminconf_valid_address},
    {NULL, NULL},
};

static const struct config_bound adminconf_bounds[] = {
    {"timeout", 1, 3600},
    {NULL, 0, 0},
};

static cfg_opt_t adminconf_opts[] = {
    CFG_STR("address", NULL, CFGF_NODEFAULT),
    CFG_STR("token_file", NULL, CFGF_NODEFAULT),
    CFG_INT("timeout", 10, CFGF_NONE),
    CFG_STR_LIST("hosts", "{}", CFGF_NONE), /* names besides addresses a Host: may give */
    CFG_END(),
};

const struct config_section adminconf_section = {
    .name = "admin",
    .opts = adminconf_opts,
    .bounds = adminconf_bounds,
    .validators = adminconf_validators,
};

const char *adminconf_address(const struct config *cfg, char *dst, size_t len)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "admin");
    const char *a = sec ? cfg_getstr(sec, "address") : NULL;

    if (!a || !a[0])
        return NULL;
    snprintf(dst, len, "%s", a);
    return dst;
}

const char *adminconf_token_file(const struct config *cfg)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "admin");
    const char *t = sec ? cfg_getstr(sec, "token_file") : NULL;

    return t && t[0] ? t : NULL;
}

unsigned adminconf_timeout(const struct config *cfg)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "admin");

    return sec ? config_uint(sec, "timeout") : 10;
}

int adminconf_read_token(const struct config *cfg, char *tok, size_t len, char *err, size_t errlen)
{
    const char *path = adminconf_token_file(cfg);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY) : -1;
    ssize_t n;
    size_t l;

    if (fd < 0) {
        snprintf(err, errlen, "admin token_file %s: %s", path ? path : "(none)",
                 path ? strerror(errno) : "not set");
        return -1;
    }
    n = read(fd, tok, len - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "admin token_file %s: %s", path, strerror(errno));
        return -1;
    }
    tok[n] = '\0';
    l = strcspn(tok, "\r\n");
    while (l > 0 && (tok[l - 1] == ' ' || tok[l - 1] == '\t'))
        l--;
    tok[l] = '\0';
    if (l < ADMINCONF_TOKEN_MIN || l > ADMINCONF_TOKEN_MAX) {
        snprintf(err, errlen, "admin token_file %s: the token must be %d to %d characters", path,
                 ADMINCONF_TOKEN_MIN, ADMINCONF_TOKEN_MAX);
        return -1;
    }
    return (int)l;
}

void adminconf_validate(const struct config *cfg, struct config_diag *d)
{
    char tok[ADMINCONF_TOKEN_MAX + 2], err[600], addr[8];

    if (!adminconf_address(cfg, addr, sizeof(addr)) || !adminconf_token_file(cfg))
        return;
    if (adminconf_read_token(cfg, tok, sizeof(tok), err, sizeof(err)) < 0)
        config_error(d, cfg_getsec(cfg->raw, "admin")->line, "%s", err);
    explicit_bzero(tok, sizeof(tok));
}

int adminconf_host_ok(const struct config *cfg, const char *host)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "admin");
    char name[256], *end;
    struct sockaddr_storage ss;
    socklen_t sl;
    size_t n;

    if (!host || !*host || strlen(host) >= sizeof(name))
        return 0;
    snprintf(name, sizeof(name), "%s", host);
    if (name[0] == '[') { /* [IPv6] or [IPv6]:port */
        end = strchr(name, ']');
        return end && sockaddr_parse(name, 80, &ss, &sl) == 0;
    }
    if ((end = strchr(name, ':')) && end == strrchr(name, ':'))
        *end = '\0'; /* host:port */
    if (sockaddr_parse(name, 80, &ss, &sl) == 0 || strcasecmp(name, "localhost") == 0)
        return 1;
    n = sec ? cfg_size(sec, "hosts") : 0;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(cfg_getnstr(sec, "hosts", i), name) == 0)
            return 1;
    return 0;
}
