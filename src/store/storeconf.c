/* storeconf.c - the store section */
#include "store/storeconf.h"

#include <confuse.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "store/store.h"

/* storeconf_valid_uri - a scheme this binary has, and a location */
static int storeconf_valid_uri(cfg_t *cfg, cfg_opt_t *opt)
{
    char err[512];

    if (store_uri_check(cfg_opt_getnstr(opt, 0), err, sizeof(err)) < 0)
        cfg_error(cfg, "store: %s", err);
    return 0; /* reported; keep parsing to list every error */
}

/* storeconf_valid_on_error - "pass" or "tempfail" */
static int storeconf_valid_on_error(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strcmp(v, "pass") != 0 && strcmp(v, "tempfail") != 0)
        cfg_error(cfg, "store: on_error must be \"pass\" or \"tempfail\", not \"%s\"", v);
    return 0;
}

/* storeconf_valid_prefix - printable, no space, at most STORECONF_PREFIX_MAX octets */
static int storeconf_valid_prefix(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strlen(v) > STORECONF_PREFIX_MAX)
        cfg_error(cfg, "store: prefix longer than %d octets", STORECONF_PREFIX_MAX);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) {
            cfg_error(cfg, "store: prefix must be printable ASCII without spaces");
            break;
        }
    return 0;
}

static const struct config_validator storeconf_validators[] = {
    {"store|uri", storeconf_valid_uri},
    {"store|on_error", storeconf_valid_on_error},
    {"store|prefix", storeconf_valid_prefix},
    {NULL, NULL},
};

static const struct config_bound storeconf_bounds[] = {
    {"timeout", 10, 60000},
    {NULL, 0, 0},
};

static cfg_opt_t storeconf_opts[] = {
    CFG_STR("uri", NULL, CFGF_NODEFAULT),    /* default lmdb:<state_dir>/db */
    CFG_INT("cleanup", 900, CFGF_NONE),      /* seconds between expiry sweeps */
    CFG_STR("on_error", "pass", CFGF_NONE),  /* a check while the store is down: pass | tempfail */
    CFG_STR("prefix", "mxgate:", CFGF_NONE), /* Redis: the namespace of every key */
    CFG_INT("timeout", 2000, CFGF_NONE),     /* Redis: ms for a connection or a command */
    CFG_END(),
};

const struct config_section storeconf_section = {
    .name = "store",
    .opts = storeconf_opts,
    .bounds = storeconf_bounds,
    .validators = storeconf_validators,
};

void storeconf_options(const struct config *cfg, struct store_options *opt)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "store");

    memset(opt, 0, sizeof(*opt));
    opt->prefix = cfg_getstr(sec, "prefix");
    opt->timeout_ms = (unsigned)cfg_getint(sec, "timeout");
    opt->on_error = strcmp(cfg_getstr(sec, "on_error"), "tempfail") == 0 ? STORE_ON_ERROR_TEMPFAIL
                                                                         : STORE_ON_ERROR_PASS;
}

void storeconf_uri(const struct config *cfg, char *dst, size_t dstlen)
{
    const char *uri = cfg_getstr(cfg_getsec(cfg->raw, "store"), "uri");

    if (uri)
        snprintf(dst, dstlen, "%s", uri);
    else
        snprintf(dst, dstlen, "lmdb:%s/db", cfg->state_dir);
}

unsigned storeconf_cleanup(const struct config *cfg)
{
    return (unsigned)cfg_getint(cfg_getsec(cfg->raw, "store"), "cleanup");
}
