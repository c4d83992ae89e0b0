/* modules.c - the one list of configuration sections: a new module adds its row here,
 * a new policy check its row in policy/registry.c */
#include "modules.h"

#include <stddef.h>

#include "core/config.h"
#include "dns/dnsconf.h"
#include "policy/registry.h"
#include "queue/queueconf.h"
#include "relay/routes.h"
#include "smtp/serverconf.h"
#include "store/storeconf.h"
#include "tls/tlsconf.h"

#define MODULES_MAX 64

static const struct config_section *const modules_fixed[] = {
    &serverconf_listen_section,
    &routes_section,
    &tlsconf_section,
    &serverconf_limits_section,
    &serverconf_timeouts_section,
    &queueconf_queue_section,
    &queueconf_delivery_section,
    &dnsconf_section,
    &storeconf_section,
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
