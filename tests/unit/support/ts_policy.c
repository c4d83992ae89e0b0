/* ts_policy.c - configuration loading and pipeline driving for the policy tests */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/config.h"
#include "dns/dns.h"
#include "policy/stats.h"
#include "modules.h"
#include "relay/routes.h"
#include "ts_fs.h"
#include "ts_policy.h"

struct policy_env ts_env(const struct ts_fixture *fx)
{
    struct policy_env env = {.base = fx->base, .store = fx->store, .stats = fx->stats};

    return env;
}

struct policy *ts_policy_load(struct ts_fixture *fx, const char *conf, struct policy_env *env,
                              char *err, size_t errlen)
{
    char path[128], *msg = NULL;
    size_t msglen = 0;
    FILE *out;
    const struct routes *own = fx->routes; /* an env kept from the last load may hold it */

    if (env->routes == own)
        env->routes = NULL;
    ts_fixture_unload(fx);
    ts_write_file(fx->dir, "mxgate.conf", conf, path, sizeof(path));
    /* the load's messages ("path:line: message" lines) become err, for tests to assert on */
    out = open_memstream(&msg, &msglen);
    assert_non_null(out);
    fx->cfg = modules_config_load(path, out);
    fclose(out);
    if (!fx->cfg) {
        fputs(msg, stderr);
        while (msglen && msg[msglen - 1] == '\n')
            msg[--msglen] = '\0';
        snprintf(err, errlen, "%s", msglen ? msg : "config_load failed");
        free(msg);
        return NULL;
    }
    free(msg);
    if (!env->routes)
        env->routes = fx->routes = routes_load(fx->cfg);
    env->cfg = fx->cfg;
    err[0] = '\0';
    fx->pol = policy_new(env, err, errlen);
    return fx->pol;
}

int ts_policy_checks(struct ts_fixture *fx, const char *checks, const char *sections)
{
    char conf[4096], *o = conf;
    struct policy_env env = ts_env(fx);

    o += snprintf(o, 512,
                  "hostname = \"mx.test\"\nspool_dir = \"%s/spool\"\nstate_dir = \"%s/state\"\n"
                  "listen mx { address = \"127.0.0.1:2525\"  checks = {%s} }\n",
                  fx->dir, fx->dir, checks);
    /* list files live in the fixture directory, whose name the test cannot know */
    for (const char *s = sections; *s && o < conf + sizeof(conf) - 80; s++)
        o += *s == '@' ? sprintf(o, "%s", fx->dir) : sprintf(o, "%c", *s);
    ts_policy_load(fx, conf, &env, fx->err, sizeof(fx->err));
    assert_non_null(fx->cfg);
    return fx->pol ? 0 : -1;
}

void ts_client(struct policy_client *cl, const char *ip)
{
    /* The session allocates auth at MAIL; a test's client gets a zeroed one from
     * this ring (no test holds more clients at once than it has). */
    static struct policy_auth auths[16];
    static char tests[16][POLICY_SCORE_TESTS_MAX];
    static size_t next;

    memset(cl, 0, sizeof(*cl));
    cl->auth = &auths[next % 16];
    memset(cl->auth, 0, sizeof(*cl->auth));
    /* given, so that the pipeline does not allocate one no test would free */
    cl->score_tests = tests[next++ % 16];
    cl->score_tests[0] = '\0';
    snprintf(cl->ip, sizeof(cl->ip), "%s", ip);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&cl->addr;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&cl->addr;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    cl->listener = "mx";
}

void ts_client_rdns(struct policy_client *cl, const char *ip, enum policy_rdns rdns,
                    const char *name)
{
    ts_client(cl, ip);
    cl->rdns = rdns;
    cl->rdns_name = rdns == RDNS_CONFIRMED ? name : NULL;
    cl->ptr_name = name;
}

void ts_on_verdict(void *arg, const struct policy_verdict *v)
{
    struct ts_outcome *o = arg;

    o->calls++;
    o->v = *v;
}

struct ts_outcome ts_stage(struct ts_fixture *fx, enum policy_stage st, struct policy_client *cl,
                           int ms)
{
    struct ts_outcome o;
    struct timespec t0, t1;
    const struct policy_chain *chain = policy_chain_for(fx->pol, "mx");

    memset(&o, 0, sizeof(o));
    assert_non_null(chain);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_non_null(policy_start(chain, st, cl, ts_on_verdict, &o));
    o.sync = o.calls;
    if (ms > 0)
        ts_run_until(fx->base, &o.calls, 1, ms);
    else
        ts_settle(fx->base, &o.calls);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(o.calls, 1);
    o.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return o;
}

void ts_dns_world_start(struct ts_dns_world *w, const char *name, const struct ts_dns_entry *table,
                        size_t n, unsigned timeout)
{
    memset(w, 0, sizeof(*w));
    assert_int_equal(ts_fixture_init(&w->fx, name), 0);
    ts_dns_fake_start(&w->fake, w->fx.base, table, n);
    w->dns = ts_dns_resolver(&w->fake, w->fx.base, timeout);
    w->fx.store = ts_store_open(&w->fx, "db", NULL, NULL);
    w->fx.stats = stats_new(w->fx.store);
}

void ts_dns_world_stop(struct ts_dns_world *w)
{
    ts_fixture_unload(&w->fx);
    dns_free(w->dns);
    ts_dns_fake_stop(&w->fake);
    ts_fixture_free(&w->fx);
}
