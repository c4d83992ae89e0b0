/*
 * server_policy.c - a listener with role = "policy": the connection goes to
 * the policy service (policysrv/) instead of an SMTP session, holding the
 * generation whose checks judge it and its slot under the connection limits.
 */
#include "smtp/server.h"

#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/xmalloc.h"
#include "policy/policy.h"
#include "policysrv/policysrv.h"
#include "smtp/serverconf.h"

struct server_policy_hold {
    struct server *srv;
    struct server_gen *gen;
    struct sockaddr_storage peer;
    char listener[64];
    void (*release)(void *arg, const struct sockaddr *sa);
    void *release_arg;
};

/* server_policy_id - each transaction a session id like an SMTP session's */
static void server_policy_id(void *arg, char *dst, size_t len)
{
    struct server_policy_hold *h = arg;

    server_session_id(h->srv, dst, len);
}

/* server_policy_done - the connection is over: its slot and generation go */
static void server_policy_done(void *arg)
{
    struct server_policy_hold *h = arg;

    h->release(h->release_arg, (struct sockaddr *)&h->peer);
    server_gen_unref(h->gen);
    free(h);
}

/* server_policy_start - see server.h */
void server_policy_start(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                         const struct sockaddr *sa, socklen_t salen,
                         void (*release)(void *arg, const struct sockaddr *sa), void *release_arg)
{
    struct server_policy_hold *h = xcalloc(1, sizeof(*h));
    struct policysrv_env env;
    char ip[64];

    h->srv = srv;
    h->gen = server_gen_ref(srv->gen);
    memcpy(&h->peer, sa, salen < sizeof(h->peer) ? salen : sizeof(h->peer));
    h->release = release;
    h->release_arg = release_arg;
    if (!srv->policysrv)
        srv->policysrv = policysrv_new();
    memset(&env, 0, sizeof(env));
    env.base = srv->base;
    env.chain = policy_chain_for(h->gen->policy, l->name);
    env.stats = srv->stats;
    env.listener = l->name; /* lives as long as the generation h holds */
    env.idle_timeout = h->gen->conf->timeouts.command;
    env.new_id = server_policy_id;
    env.done = server_policy_done;
    env.arg = h;
    policysrv_start(srv->policysrv, &env, fd, sockaddr_ip(sa, ip, sizeof(ip)));
}
