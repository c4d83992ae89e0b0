/* modules.c - the one list of configuration sections: a new module adds its row here,
 * a new policy check its row in policy/registry.c */
#include "modules.h"

#include <confuse.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>

#include "admin/adminconf.h"
#include "auth/auth.h"
#include "auth/authconf.h"
#include "core/config.h"
#include "core/privs.h"
#include "dns/dns.h"
#include "dns/dnsconf.h"
#include "policy/policy.h"
#include "policy/registry.h"
#include "policy/validate.h"
#include "queue/quarantine.h"
#include "queue/queueconf.h"
#include "relay/dest.h"
#include "relay/mxhost.h"
#include "relay/routes.h"
#include "smtp/serverconf.h"
#include "smtp/signconf.h"
#include "store/storeconf.h"
#include "tls/tlsconf.h"

#define MODULES_MAX 64

static const struct config_section *const modules_fixed[] = {
    &serverconf_listen_section,
    &routes_section,
    &dests_section,
    &mxhosts_section,
    &tlsconf_section,
    &serverconf_limits_section,
    &serverconf_timeouts_section,
    &queueconf_queue_section,
    &queueconf_delivery_section,
    &quarantine_section,
    &dnsconf_section,
    &storeconf_section,
    &adminconf_section,
    &signconf_section,
    &authconf_section,
    NULL,
};

const struct config_section *const *modules_sections(void)
{
    static const struct config_section *all[MODULES_MAX + 1];
    size_t n = 0;

    if (all[0])
        return all;
    for (size_t i = 0; modules_fixed[i] && n < MODULES_MAX; i++)
        all[n++] = modules_fixed[i];
    for (size_t i = 0; policy_section(i) && n < MODULES_MAX; i++)
        all[n++] = policy_section(i);
    all[n] = NULL;
    return all;
}

struct config *modules_config_load(const char *path, FILE *errout)
{
    return config_load(path, modules_sections(), errout);
}

/* modules_validate_tls - the server certificate and key load and match */
static void modules_validate_tls(const struct config *cfg, struct config_diag *d)
{
    SSL_CTX *ctx;
    char err[512];

    if (tlsconf_server_ctx(cfg, &ctx, err, sizeof(err)) < 0)
        config_error(d, cfg_getsec(cfg->raw, "tls")->line, "tls: %s", err);
    SSL_CTX_free(ctx);
}

/* modules_validate_dns - the servers named parse (a resolver made and dropped) */
static void modules_validate_dns(const struct config *cfg, struct event_base *base,
                                 struct config_diag *d)
{
    struct dns *dns;
    char err[512];

    if (!dnsconf_has_servers(cfg))
        return;
    if (!(dns = dnsconf_open(cfg, base, err, sizeof(err))))
        config_error(d, cfg_getsec(cfg->raw, "dns")->line, "dns: %s", err);
    else
        dns_free(dns);
}

/* modules_validate_auth - the users file and senders map parse */
static void modules_validate_auth(const struct config *cfg, struct config_diag *d)
{
    char err[512];
    struct auth *a = auth_new(cfg, err, sizeof(err));

    if (!a && err[0])
        config_error(d, cfg_getsec(cfg->raw, "auth")->line, "auth: %s", err);
    auth_free(a);
}

unsigned modules_validate(const struct config *cfg, FILE *out)
{
    struct config_diag d = {.out = out, .path = cfg->path};
    struct event_base *base = event_base_new(); /* for the checks' timers; never run */
    struct routes *routes = routes_load(cfg);
    struct policy_env env = {.base = base, .cfg = cfg, .routes = routes, .checking = 1};
    char err[512];

    if (!base) {
        config_error(&d, 0, "cannot make an event base");
    } else {
        if (privs_user_check(cfg->user, err, sizeof(err)) < 0)
            config_error(&d, config_line(cfg, "user"), "%s", err);
        modules_validate_tls(cfg, &d);
        modules_validate_dns(cfg, base, &d);
        adminconf_validate(cfg, &d);
        signconf_validate(cfg, &d);
        modules_validate_auth(cfg, &d);
        policy_validate(&env, &d);
    }
    routes_free(routes);
    if (base)
        event_base_free(base);
    return d.errors;
}
