/* test_ratelimit.c - the ratelimit check through the real pipeline on a real LMDB store */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"

#define T0 1700000040 /* the injected clock starts here: a multiple of 60 */

struct ctx {
    struct event_base *base;
    char dir[64];
    int nstores;
    struct store *store; /* a fresh one per test: no counts carried over */
    struct stats *stats;
    struct config *cfg;
    struct policy *pol;
};

static struct ctx *C;
static time_t fake_now;

/* fake_clock - the time the store and the check both see */
static time_t fake_clock(void)
{
    return fake_now;
}

/* setup - loop and scratch directory; the check reads the fake clock */
static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    c.base = event_base_new();
    assert_non_null(c.base);
    snprintf(c.dir, sizeof(c.dir), "/tmp/test_ratelimit.XXXXXX");
    assert_non_null(mkdtemp(c.dir));
    policy_ratelimit_set_clock(fake_clock);
    *state = &c;
    return 0;
}

/* rm_entry - nftw helper removing one entry */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* unload - the policy, configuration and store of one test */
static void unload(void)
{
    policy_free(C->pol);
    config_free(C->cfg);
    stats_free(C->stats);
    store_close(C->store);
    C->pol = NULL;
    C->cfg = NULL;
    C->stats = NULL;
    C->store = NULL;
}

/* teardown - free everything */
static int teardown(void **state)
{
    unload();
    policy_ratelimit_set_clock(NULL);
    event_base_free(C->base);
    nftw(C->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* try_load - a new store (unless with_store is 0) and this ratelimit section */
static struct policy *try_load(const char *section, int with_store, char *err, size_t errlen)
{
    struct policy_env env = {C->base, NULL, NULL, NULL, NULL};
    char path[128], uri[128];
    FILE *f;

    unload();
    if (with_store) {
        snprintf(uri, sizeof(uri), "lmdb:%s/db%d", C->dir, C->nstores++);
        C->store = store_open(C->base, uri, err, errlen);
        assert_non_null(C->store);
        store_set_clock(C->store, fake_clock);
    }
    C->stats = stats_new(C->store);
    assert_non_null(C->stats);
    snprintf(path, sizeof(path), "%s/mxgate.conf", C->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "listen mx { address = \"127.0.0.1:2525\"  checks = {\"ratelimit\"} }\n%s\n",
            section);
    assert_int_equal(fclose(f), 0);
    C->cfg = config_load(path, stderr);
    assert_non_null(C->cfg);
    env.cfg = C->cfg;
    env.store = C->store;
    env.stats = C->stats;
    C->pol = policy_new(&env, err, errlen);
    fake_now = T0;
    return C->pol;
}

/* load - as try_load with a store, and it must work */
static void load(const char *section)
{
    char err[256] = "";

    if (!try_load(section, 1, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

struct outcome {
    int calls;
    struct policy_verdict v;
    double secs;
};

/* on_done - the pipeline's verdict */
static void on_done(void *arg, const struct policy_verdict *v)
{
    struct outcome *o = arg;

    o->calls++;
    o->v = *v;
}

/* on_deadline - a safety net so that a broken check fails instead of hanging */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    *(int *)arg = 1;
}

/* run_loop - run the loop until *flag is set or ms passed */
static void run_loop(const int *flag, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    int expired = 0;
    struct event *t = evtimer_new(C->base, on_deadline, &expired);

    assert_non_null(t);
    evtimer_add(t, &tv);
    while (!*flag && !expired)
        event_base_loop(C->base, EVLOOP_ONCE);
    event_free(t);
}

/* client - a session's client struct for ip */
static void client(struct policy_client *cl, const char *ip)
{
    memset(cl, 0, sizeof(*cl));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&cl->addr;
        s->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&cl->addr;
        s->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    }
    snprintf(cl->ip, sizeof(cl->ip), "%s", ip);
    cl->listener = "mx";
    cl->sender = "s@x.test";
    cl->rcpt = "r@y.test";
}

/* stage - run one stage for cl; the verdict and how long it took */
static struct outcome stage(struct policy_client *cl, enum policy_stage st)
{
    struct outcome o;
    struct timespec t0, t1;

    memset(&o, 0, sizeof(o));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_non_null(policy_start(policy_chain_for(C->pol, "mx"), st, cl, on_done, &o));
    run_loop(&o.calls, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(o.calls, 1);
    o.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return o;
}

/* connect_once - a whole short session from ip: CONNECT, then it ends; the verdict */
static struct policy_verdict connect_once(const char *ip)
{
    struct policy_client cl;
    struct outcome o;

    client(&cl, ip);
    o = stage(&cl, POLICY_CONNECT);
    policy_disconnect(policy_chain_for(C->pol, "mx"), &cl);
    return o.v;
}

/* assert_refused - a TEMPFAIL from ratelimit with this code, text and reason */
static void assert_refused(const struct policy_verdict *v, int code, const char *text,
                           const char *reason)
{
    assert_int_equal(v->action, POLICY_TEMPFAIL);
    assert_int_equal(v->code, code);
    assert_string_equal(v->status, code == 421 ? "4.7.0" : "4.7.1");
    assert_string_equal(v->text, text);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "ratelimit");
}

#define CONN_TEXT "Too many connections from your network, try later"

/* ---------------------------------------------------------------------- */

/* test_connections_limit - N connections pass, the N+1th gets 421; others unaffected */
static void test_connections_limit(void **state)
{
    struct policy_verdict v;

    load("ratelimit { interval = 60  connections = 3 }");
    for (int i = 0; i < 3; i++) {
        fake_now = T0 + i * 10;
        v = connect_once("192.0.2.1");
        assert_int_equal(v.action, POLICY_DUNNO);
    }
    fake_now = T0 + 59;
    v = connect_once("192.0.2.1");
    assert_refused(&v, 421, CONN_TEXT, "connections 4/3 per 60s net=192.0.2.1/32");
    v = connect_once("192.0.2.1");
    assert_refused(&v, 421, CONN_TEXT, "connections 5/3 per 60s net=192.0.2.1/32");
    v = connect_once("192.0.2.2"); /* another address: its own count */
    assert_int_equal(v.action, POLICY_DUNNO);
}

/* test_window_rollover - the count starts again with the next window */
static void test_window_rollover(void **state)
{
    struct policy_verdict v;

    load("ratelimit { interval = 60  connections = 2 }");
    fake_now = T0 + 58;
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    fake_now = T0 + 59;
    v = connect_once("192.0.2.1");
    assert_refused(&v, 421, CONN_TEXT, "connections 3/2 per 60s net=192.0.2.1/32");
    fake_now = T0 + 60; /* the next window */
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    v = connect_once("192.0.2.1");
    assert_refused(&v, 421, CONN_TEXT, "connections 3/2 per 60s net=192.0.2.1/32");
    fake_now = T0 + 1000; /* long after: the old windows have expired too */
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
}

/* test_messages_and_recipients - MAIL and RCPT counted per window, 451 when over */
static void test_messages_and_recipients(void **state)
{
    struct policy_client cl;
    struct outcome o;

    load("ratelimit { interval = 300  messages = 2  recipients = 3 }");
    client(&cl, "2001:db8::7");
    assert_int_equal(stage(&cl, POLICY_CONNECT).v.action, POLICY_DUNNO);
    assert_int_equal(stage(&cl, POLICY_MAIL).v.action, POLICY_DUNNO);
    for (int i = 0; i < 3; i++)
        assert_int_equal(stage(&cl, POLICY_RCPT).v.action, POLICY_DUNNO);
    o = stage(&cl, POLICY_RCPT);
    assert_refused(&o.v, 451, "Recipient rate limit exceeded",
                   "recipients 4/3 per 300s net=2001:db8::7/128");
    assert_int_equal(stage(&cl, POLICY_MAIL).v.action, POLICY_DUNNO);
    o = stage(&cl, POLICY_MAIL);
    assert_refused(&o.v, 451, "Message rate limit exceeded, try again later",
                   "messages 3/2 per 300s net=2001:db8::7/128");
    fake_now = T0 + 300;
    assert_int_equal(stage(&cl, POLICY_MAIL).v.action, POLICY_DUNNO);
    assert_int_equal(stage(&cl, POLICY_RCPT).v.action, POLICY_DUNNO);
    policy_disconnect(policy_chain_for(C->pol, "mx"), &cl);
}

/* test_network_prefix - a /24 shares one count */
static void test_network_prefix(void **state)
{
    struct policy_verdict v;

    load("ratelimit { interval = 60  connections = 2  ipv4_prefix = 24 }");
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    assert_int_equal(connect_once("192.0.2.200").action, POLICY_DUNNO);
    v = connect_once("192.0.2.77");
    assert_refused(&v, 421, CONN_TEXT, "connections 3/2 per 60s net=192.0.2.0/24");
    assert_int_equal(connect_once("192.0.3.1").action, POLICY_DUNNO);
}

/* test_concurrent_with_disconnect - open sessions counted until they end */
static void test_concurrent_with_disconnect(void **state)
{
    const struct policy_chain *chain;
    struct policy_client a, b, c, d, other;
    struct outcome o;

    load("ratelimit { concurrent = 2 }");
    chain = policy_chain_for(C->pol, "mx");
    client(&a, "192.0.2.1");
    client(&b, "192.0.2.1");
    client(&c, "192.0.2.1");
    client(&d, "192.0.2.1");
    client(&other, "192.0.2.9");
    assert_int_equal(stage(&a, POLICY_CONNECT).v.action, POLICY_DUNNO);
    assert_int_equal(stage(&b, POLICY_CONNECT).v.action, POLICY_DUNNO);
    o = stage(&c, POLICY_CONNECT);
    assert_refused(&o.v, 421, CONN_TEXT, "concurrent 3/2 net=192.0.2.1/32");
    assert_int_equal(stage(&other, POLICY_CONNECT).v.action, POLICY_DUNNO);
    policy_disconnect(chain, &c); /* the refused session closes */
    o = stage(&d, POLICY_CONNECT);
    assert_refused(&o.v, 421, CONN_TEXT, "concurrent 3/2 net=192.0.2.1/32");
    policy_disconnect(chain, &d);
    policy_disconnect(chain, &a);
    assert_int_equal(stage(&d, POLICY_CONNECT).v.action, POLICY_DUNNO);
    policy_disconnect(chain, &a); /* twice: no harm */
    o = stage(&c, POLICY_CONNECT);
    assert_refused(&o.v, 421, CONN_TEXT, "concurrent 3/2 net=192.0.2.1/32");
    /* sessions still open when the policy is freed are released with it */
}

/* test_concurrent_without_store - the in-memory limit needs no store */
static void test_concurrent_without_store(void **state)
{
    struct policy_client a, b;
    struct outcome o;
    char err[256] = "";

    if (!try_load("ratelimit { concurrent = 1 }", 0, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
    client(&a, "192.0.2.1");
    client(&b, "::ffff:192.0.2.1"); /* v4-mapped is the same client */
    assert_int_equal(stage(&a, POLICY_CONNECT).v.action, POLICY_DUNNO);
    o = stage(&b, POLICY_CONNECT);
    assert_refused(&o.v, 421, CONN_TEXT, "concurrent 2/1 net=192.0.2.1/32");
    assert_int_equal(stage(&a, POLICY_MAIL).v.action, POLICY_DUNNO); /* no limit there */
    policy_disconnect(policy_chain_for(C->pol, "mx"), &b);
    policy_disconnect(policy_chain_for(C->pol, "mx"), &a);
}

/* test_tarpit - the refusal waits tarpit seconds; a pass does not */
static void test_tarpit(void **state)
{
    struct policy_client a;
    struct outcome o;

    load("ratelimit { messages = 1  tarpit = 1 }");
    client(&a, "192.0.2.1");
    o = stage(&a, POLICY_MAIL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_true(o.secs < 0.5);
    o = stage(&a, POLICY_MAIL);
    assert_refused(&o.v, 451, "Message rate limit exceeded, try again later",
                   "messages 2/1 per 60s net=192.0.2.1/32");
    assert_true(o.secs > 0.95 && o.secs < 1.8);
}

/* on_never - a cancelled run must not report */
static void on_never(void *arg, const struct policy_verdict *v)
{
    fail_msg("verdict after policy_cancel");
}

/* on_cancel_timer - cancel the run while the check waits */
static void on_cancel_timer(evutil_socket_t fd, short what, void *arg)
{
    policy_cancel(arg);
}

/* test_tarpit_cancel - the session ends during the tarpit: no verdict, nothing left */
static void test_tarpit_cancel(void **state)
{
    struct policy_client a, b;
    struct policy_run *r;
    struct event *ev;
    struct timeval tv = {0, 300000};
    int never = 0;

    load("ratelimit { concurrent = 1  tarpit = 2 }");
    client(&a, "192.0.2.1");
    client(&b, "192.0.2.1");
    assert_int_equal(stage(&a, POLICY_CONNECT).v.action, POLICY_DUNNO);
    r = policy_start(policy_chain_for(C->pol, "mx"), POLICY_CONNECT, &b, on_never, NULL);
    assert_non_null(r);
    ev = evtimer_new(C->base, on_cancel_timer, r);
    assert_non_null(ev);
    evtimer_add(ev, &tv);
    run_loop(&never, 2500);
    event_free(ev);
    policy_disconnect(policy_chain_for(C->pol, "mx"), &b);
    policy_disconnect(policy_chain_for(C->pol, "mx"), &a);
}

/* on_cancel_now - runs between the check's store request and its answer */
static void on_cancel_now(void *arg, int status, const void *val, size_t vlen)
{
    policy_cancel(arg);
}

/* test_store_cancel - the session ends while the count is pending */
static void test_store_cancel(void **state)
{
    struct policy_client a;
    struct policy_run *r;
    int never = 0;

    load("ratelimit { connections = 5 }");
    client(&a, "192.0.2.1");
    r = policy_start(policy_chain_for(C->pol, "mx"), POLICY_CONNECT, &a, on_never, NULL);
    assert_non_null(r);
    /* Completions are delivered in order: ours comes before the check's answer. */
    assert_int_equal(store_get(C->store, "x", 1, on_cancel_now, r), 0);
    run_loop(&never, 200);
}

/* test_init_errors - windowed limits need a store; bounds */
static void test_init_errors(void **state)
{
    char err[256];

    assert_null(try_load("ratelimit { messages = 5 }", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "need a state store"));
    assert_null(try_load("ratelimit { interval = 0  messages = 5 }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "mxgate.conf:2: ratelimit: interval"));
    assert_null(try_load("ratelimit { ipv6_prefix = 129 }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "ipv6_prefix"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_limit),
        cmocka_unit_test(test_window_rollover),
        cmocka_unit_test(test_messages_and_recipients),
        cmocka_unit_test(test_network_prefix),
        cmocka_unit_test(test_concurrent_with_disconnect),
        cmocka_unit_test(test_concurrent_without_store),
        cmocka_unit_test(test_tarpit),
        cmocka_unit_test(test_tarpit_cancel),
        cmocka_unit_test(test_store_cancel),
        cmocka_unit_test(test_init_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
