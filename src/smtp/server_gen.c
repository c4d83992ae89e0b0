/* server_gen.c - configuration generations: what a session started with stays until it ends */
#include "smtp/server.h"

#include <openssl/ssl.h>
#include <stdlib.h>

#include "auth/auth.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "relay/routes.h"
#include "smtp/serverconf.h"

struct server_gen *server_gen_new(struct config *cfg, struct serverconf *conf,
                                  struct routes *routes, SSL_CTX *tls, struct dns *dns,
                                  struct policy *policy)
{
    struct server_gen *g = xcalloc(1, sizeof(*g));

    g->refs = 1;
    g->cfg = cfg;
    g->conf = conf;
    g->routes = routes;
    g->tls = tls;
    g->dns = dns;
    g->policy = policy;
    return g;
}

struct server_gen *server_gen_ref(struct server_gen *g)
{
    g->refs++;
    return g;
}

/* server_gen_unref - the checks go first (they hold the resolver and the routes), the
 * configuration they were read from last */
void server_gen_unref(struct server_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    log_debug("event=generation_freed generation=%lu", g->id);
    policy_free(g->policy);
    auth_free(g->auth);
    if (g->dns)
        dns_free(g->dns);
    SSL_CTX_free(g->tls);
    routes_free(g->routes);
    serverconf_free(g->conf);
    config_free(g->cfg);
    free(g);
}

/* server_gen_hold - a delivery attempt started (+1) or ended (-1) under gen */
void server_gen_hold(void *gen, int delta)
{
    if (delta > 0)
        server_gen_ref(gen);
    else
        server_gen_unref(gen);
}

int server_gen_load_auth(struct server_gen *g, char *err, size_t errlen)
{
    g->auth = auth_new(g->cfg, err, errlen);
    return g->auth || err[0] == '\0' ? 0 : -1;
}
