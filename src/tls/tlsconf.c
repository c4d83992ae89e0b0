/* tlsconf.c - the tls section */
#include "tls/tlsconf.h"

#include <confuse.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
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

/* tlsconf_readable - both files can be read: say which cannot, and why, in plain words
 * (OpenSSL's own error for a missing file is "system lib") */
static int tlsconf_readable(const char *cert, const char *key, char *err, size_t errlen)
{
    int ce = access(cert, R_OK) < 0 ? errno : 0;
    int ke = access(key, R_OK) < 0 ? errno : 0;

    if (ce && ke)
        snprintf(err, errlen, "certificate %s: %s; key %s: %s", cert, strerror(ce), key,
                 strerror(ke));
    else if (ce || ke)
        snprintf(err, errlen, "%s %s: %s", ce ? "certificate" : "key", ce ? cert : key,
                 strerror(ce ? ce : ke));
    return ce || ke ? -1 : 0;
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
    if (!cert || !key)
        snprintf(err, errlen, "out of memory");
    else if (tlsconf_readable(cert, key, err, errlen) == 0)
        *ctx = tls_server_ctx(cert, key, cfg_getstr(t, "ciphers"), err, errlen);
    free(cert);
    free(key);
    return *ctx ? 0 : -1;
}
