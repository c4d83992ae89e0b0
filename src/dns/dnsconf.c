/* dnsconf.c - the dns section */
#include "dns/dnsconf.h"

#include <confuse.h>
#include <stdio.h>

#include "core/config.h"
#include "dns/dns.h"

#define DNSCONF_MAX_SERVERS 16

/* dnsconf_check - at most DNSCONF_MAX_SERVERS servers */
static void dnsconf_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *s = cfg_getsec(root, "dns");

    if (cfg_size(s, "servers") > DNSCONF_MAX_SERVERS)
        config_error(d, s->line, "dns: at most %d servers", DNSCONF_MAX_SERVERS);
}

static cfg_opt_t dnsconf_opts[] = {
    CFG_STR_LIST("servers", "{}", CFGF_NONE), /* empty: /etc/resolv.conf */
    CFG_INT("timeout", 3, CFGF_NONE),
    CFG_INT("tries", 2, CFGF_NONE),
    CFG_STR("on_timeout", "tempfail", CFGF_NONE), /* tempfail | pass (read by the checks) */
    CFG_END(),
};

const struct config_section dnsconf_section = {
    .name = "dns",
    .opts = dnsconf_opts,
    .check = dnsconf_check,
};

int dnsconf_has_servers(const struct config *cfg)
{
    return cfg_size(cfg_getsec(cfg->raw, "dns"), "servers") > 0;
}

struct dns *dnsconf_open(const struct config *cfg, struct event_base *base, char *err,
                         size_t errlen)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "dns");
    const char *servers[DNSCONF_MAX_SERVERS];
    size_t n = cfg_size(sec, "servers");

    if (n > DNSCONF_MAX_SERVERS) {
        snprintf(err, errlen, "at most %d servers", DNSCONF_MAX_SERVERS);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        servers[i] = cfg_getnstr(sec, "servers", (unsigned)i);
    return dns_new(base, servers, n, (unsigned)cfg_getint(sec, "timeout"),
                   (unsigned)cfg_getint(sec, "tries"), err, errlen);
}
