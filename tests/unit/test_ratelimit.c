/* test_ratelimit.c - the ratelimit check through the real pipeline on a real LMDB store */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define T0 1700000040 /* the injected clock starts here: a multiple of 60 */

struct ctx {
    struct ts_fixture fx; /* its store: a fresh one per test, no counts carried over */
    int nstores;
};

static struct ctx *C;

/* setup - loop and scratch directory; the check reads the fake clock */
static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_ratelimit"), 0);
    clock_set(ts_clock);
    *state = &c;
    return 0;
}

/* unload - the policy, configuration and store of one test */
static void unload(void)
{
    ts_fixture_unload(&C->fx);
    stats_free(C->fx.stats);
    store_close(C->fx.store);
    C->fx.stats = NULL;
    C->fx.store = NULL;
}

/* teardown - free everything */
static int teardown(void **state)
{
    clock_set(NULL);
    ts_fixture_free(&C->fx);
    return 0;
}

/* try_load - a new store (unless with_store is 0) and this ratelimit section */
static struct policy *try_load(const char *section, int with_store, char *err, size_t errlen)
{
    struct policy_env env;
    char name[16], conf[4096];

    unload();
    if (with_store) {
        snprintf(name, sizeof(name), "db%d", C->nstores++);
        C->fx.store = ts_store_open(&C->fx, name, NULL, ts_clock);
    }
    C->fx.stats = stats_new(C->fx.store);
    assert_non_null(C->fx.stats);
    env = ts_env(&C->fx);
    snprintf(conf, sizeof(conf),
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"ratelimit\"} }\n%s\n", section);
    ts_policy_load(&C->fx, conf, &env, err, errlen); /* bad bounds fail the load itself */
    ts_now = T0;
    return C->fx.pol;
}

/* load - as try_load with a store, and it must work */
static void load(const char *section)
{
    char err[256] = "";

    if (!try_load(section, 1, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* client - a session's client struct for ip */
static void client(struct policy_client *cl, const char *ip)
{
    ts_client(cl, ip);
    cl->sender = "s@x.test";
    cl->rcpt = "r@y.test";
}

/* stage - run one stage for cl; the verdict and how long it took */
static struct ts_outcome stage(struct policy_client *cl, enum policy_stage st)
{
    return ts_stage(&C->fx, st, cl, 5000);
}

/* connect_once - a whole short session from ip: CONNECT, then it ends; the verdict */
static struct policy_verdict connect_once(const char *ip)
{
    struct policy_client cl;
    struct ts_outcome o;

    client(&cl, ip);
    o = stage(&cl, POLICY_CONNECT);
    policy_disconnect(policy_chain_for(C->fx.pol, "mx"), &cl);
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
        ts_now = T0 + i * 10;
        v = connect_once("192.0.2.1");
        assert_int_equal(v.action, POLICY_DUNNO);
    }
    ts_now = T0 + 59;
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
    ts_now = T0 + 58;
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    ts_now = T0 + 59;
    v = connect_once("192.0.2.1");
    assert_refused(&v, 421, CONN_TEXT, "connections 3/2 per 60s net=192.0.2.1/32");
    ts_now = T0 + 60; /* the next window */
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
    v = connect_once("192.0.2.1");
    assert_refused(&v, 421, CONN_TEXT, "connections 3/2 per 60s net=192.0.2.1/32");
    ts_now = T0 + 1000; /* long after: the old windows have expired too */
    assert_int_equal(connect_once("192.0.2.1").action, POLICY_DUNNO);
}

/* test_messages_and_recipients - MAIL and RCPT counted per window, 451 when over */
static void test_messages_and_recipients(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

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
    ts_now = T0 + 300;
    assert_int_equal(stage(&cl, POLICY_MAIL).v.action, POLICY_DUNNO);
    assert_int_equal(stage(&cl, POLICY_RCPT).v.action, POLICY_DUNNO);
    policy_disconnect(policy_chain_for(C->fx.pol, "mx"), &cl);
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
    struct ts_outcome o;

    load("ratelimit { concurrent = 2 }");
    chain = policy_chain_for(C->fx.pol, "mx");
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
    struct ts_outcome o;
    char err[256] = "";

    if (!try_load("ratelimit { concurrent = 1 }", 0, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
    client(&a, "192.0.2.1");
    client(&b, "::ffff:192.0.2.1"); /* v4-mapped is the same client */
    assert_int_equal(stage(&a, POLICY_CONNECT).v.action, POLICY_DUNNO);
    o = stage(&b, POLICY_CONNECT);
    assert_refused(&o.v, 421, CONN_TEXT, "concurrent 2/1 net=192.0.2.1/32");
    assert_int_equal(stage(&a, POLICY_MAIL).v.action, POLICY_DUNNO); /* no limit there */
    policy_disconnect(policy_chain_for(C->fx.pol, "mx"), &b);
    policy_disconnect(policy_chain_for(C->fx.pol, "mx"), &a);
}

/* test_tarpit - the refusal waits tarpit seconds; a pass does not */
static void test_tarpit(void **state)
{
    struct policy_client a;
    struct ts_outcome o;

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
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_CONNECT, &b, on_never, NULL);
    assert_non_null(r);
    ev = evtimer_new(C->fx.base, on_cancel_timer, r);
    assert_non_null(ev);
    evtimer_add(ev, &tv);
    ts_run_until(C->fx.base, &never, 1, 2500);
    event_free(ev);
    policy_disconnect(policy_chain_for(C->fx.pol, "mx"), &b);
    policy_disconnect(policy_chain_for(C->fx.pol, "mx"), &a);
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
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_CONNECT, &a, on_never, NULL);
    assert_non_null(r);
    /* Completions are delivered in order: ours comes before the check's answer. */
    assert_int_equal(store_get(C->fx.store, "x", 1, on_cancel_now, r), 0);
    ts_run_until(C->fx.base, &never, 1, 200);
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
