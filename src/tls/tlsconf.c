/* tlsconf.c - the tls section */
#include "tls/tlsconf.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "tls/tls.h"

/* tlsconf_check - both files or neither */
static void tlsconf_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *t = cfg_getsec(root, "tls");

    if (t && !cfg_getstr(t, "certificate") != !cfg_getstr(t, "key"))
        config_error(d, t->line, "tls: both certificate and key are required");
}

static cfg_opt_t tlsconf_opts[] = {
    CFG_STR("certificate", NULL, CFGF_NODEFAULT),
    CFG_STR("key", NULL, CFGF_NODEFAULT),
    CFG_STR("ciphers", NULL, CFGF_NODEFAULT), /* NULL: OpenSSL defaults */
    CFG_END(),
};

const struct config_section tlsconf_section = {
    .name = "tls",
    .opts = tlsconf_opts,
    .check = tlsconf_check,
};

int tlsconf_enabled(const struct config *cfg)
{
    cfg_t *t = cfg_getsec(cfg->raw, "tls");

    return t && cfg_getstr(t, "certificate") && cfg_getstr(t, "key");
}

int tlsconf_server_ctx(const struct config *cfg, SSL_CTX **ctx, char *err, size_t errlen)
{
    cfg_t *t = cfg_getsec(cfg->raw, "tls");
    char *cert, *key;

    *ctx = NULL;
    if (!tlsconf_enabled(cfg))
        return 0;
    cert = fs_abspath(cfg_getstr(t, "certificate"));
    key = fs_abspath(cfg_getstr(t, "key"));
    if (cert && key)
        *ctx = tls_server_ctx(cert, key, cfg_getstr(t, "ciphers"), err, errlen);
    else
        snprintf(err, errlen, "out of memory");
    free(cert);
    free(key);
    return *ctx ? 0 : -1;
}
