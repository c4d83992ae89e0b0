/* storeconf.c - the store section */
#include "store/storeconf.h"

#include <confuse.h>
#include <stdio.h>

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

static const struct config_validator storeconf_validators[] = {
    {"store|uri", storeconf_valid_uri},
    {NULL, NULL},
};

static cfg_opt_t storeconf_opts[] = {
    CFG_STR("uri", NULL, CFGF_NODEFAULT), /* default lmdb:<state_dir>/db */
    CFG_INT("cleanup", 900, CFGF_NONE),   /* seconds between expiry sweeps */
    CFG_END(),
};

const struct config_section storeconf_section = {
    .name = "store",
    .opts = storeconf_opts,
    .validators = storeconf_validators,
};

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
