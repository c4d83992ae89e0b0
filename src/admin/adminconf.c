/* adminconf.c - the admin section */
#include "admin/adminconf.h"

#include <confuse.h>
#include <stdio.h>
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
