/* authconf.c - the auth section */
#include "auth/authconf.h"

#include <confuse.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "core/xmalloc.h"

static cfg_opt_t authconf_opts[] = {
    CFG_STR("users", NULL, CFGF_NODEFAULT),       CFG_STR("senders", NULL, CFGF_NODEFAULT),
    CFG_STR("dovecot", NULL, CFGF_NODEFAULT),     CFG_STR("default_domain", NULL, CFGF_NODEFAULT),
    CFG_BOOL("show_login", cfg_false, CFGF_NONE), CFG_BOOL("header_from", cfg_false, CFGF_NONE),
    CFG_INT("cache_ttl", 300, CFGF_NONE),         CFG_INT("cache_size", 4096, CFGF_NONE),
    CFG_INT("max_failures", 10, CFGF_NONE),       CFG_INT("tarpit_after", 3, CFGF_NONE),
    CFG_INT("tarpit_delay", 5, CFGF_NONE),        CFG_INT("failure_window", 600, CFGF_NONE),
    CFG_INT("lockout", 900, CFGF_NONE),           CFG_END(),
};

static const struct config_bound authconf_bounds[] = {
    {"auth|cache_ttl", 0, 86400},    {"auth|cache_size", 1, 1000000},
    {"auth|max_failures", 1, 10000}, {"auth|tarpit_after", 0, 10000},
    {"auth|tarpit_delay", 0, 60},    {"auth|failure_window", 1, 86400},
    {"auth|lockout", 1, 7 * 86400},  {NULL, 0, 0},
};

/* authconf_check - one source of passwords */
static void authconf_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *a = cfg_getsec(root, "auth");

    if (a && cfg_getstr(a, "users") && cfg_getstr(a, "dovecot"))
        config_error(d, a->line, "auth: users and dovecot are exclusive");
}

const struct config_section authconf_section = {
    .name = "auth",
    .opts = authconf_opts,
    .bounds = authconf_bounds,
    .check = authconf_check,
};

/* authconf_path - a file option made absolute (the daemon may chdir) */
static char *authconf_path(cfg_t *a, const char *opt)
{
    const char *v = cfg_getstr(a, opt);

    return v ? fs_abspath(v) : NULL;
}

void authconf_read(const struct config *cfg, struct authconf *ac)
{
    cfg_t *a = cfg_getsec(cfg->raw, "auth");
    const char *dd;

    memset(ac, 0, sizeof(*ac));
    if (!a)
        return;
    ac->users = authconf_path(a, "users");
    ac->senders = authconf_path(a, "senders");
    ac->dovecot = authconf_path(a, "dovecot");
    dd = cfg_getstr(a, "default_domain");
    if (!dd && cfg->ndomains > 0)
        dd = cfg->domains[0];
    ac->default_domain = dd ? xstrdup(dd) : NULL;
    ac->show_login = cfg_getbool(a, "show_login");
    ac->header_from = cfg_getbool(a, "header_from");
    ac->cache_ttl = (unsigned)cfg_getint(a, "cache_ttl");
    ac->cache_size = (unsigned)cfg_getint(a, "cache_size");
    ac->max_failures = (unsigned)cfg_getint(a, "max_failures");
    ac->tarpit_after = (unsigned)cfg_getint(a, "tarpit_after");
    ac->tarpit_delay = (unsigned)cfg_getint(a, "tarpit_delay");
    ac->failure_window = (unsigned)cfg_getint(a, "failure_window");
    ac->lockout = (unsigned)cfg_getint(a, "lockout");
}

void authconf_clear(struct authconf *ac)
{
    free(ac->users);
    free(ac->senders);
    free(ac->dovecot);
    free(ac->default_domain);
    memset(ac, 0, sizeof(*ac));
}
