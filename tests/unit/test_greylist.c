/* test_greylist.c - the greylist check through the real pipeline on a real LMDB store */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define T0 1700000000 /* the injected clock starts here */

/* The seed profile, as README and mxgate.conf(5) document it: greytime 25 min,
 * first-seen record 45 min, pass record 20 days, cleanup every 15 min, no grouping. */
#define SEED_PROFILE                                                                               \
    "greylist { delay = 1500  retry_window = 2700  pass_ttl = 1728000\n"                           \
    "           ipv4_prefix = 32  ipv6_prefix = 128 }\n"                                           \
    "store { cleanup = 900 }\n"
/* ... with the /24 grouping it leaves off */
#define SEED_PROFILE_24                                                                            \
    "greylist { delay = 1500  retry_window = 2700  pass_ttl = 1728000  ipv4_prefix = 24 }\n"

static struct ts_fixture *C;

/* setup - loop, scratch directory, store; the check reads the same clock */
static int setup(void **state)
{
    static struct ts_fixture c;

    C = &c;
    assert_int_equal(ts_fixture_init(&c, "test_greylist"), 0);
    c.store = ts_store_open(&c, "db", NULL, ts_clock);
    c.stats = stats_new(c.store);
    assert_non_null(c.stats);
    clock_set(ts_clock);
    *state = &c;
    return 0;
}

/* teardown - free everything */
static int teardown(void **state)
{
    clock_set(NULL);
    ts_fixture_free(C);
    return 0;
}

/* try_load - a configuration with these sections over store st; the policy or NULL */
static struct policy *try_load(const char *sections, struct store *st, char *err, size_t errlen)
{
    struct policy_env env = ts_env(C);
    char conf[4096];

    env.store = st;
    snprintf(conf, sizeof(conf),
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"greylist\"} }\n%s", sections);
    return ts_policy_load(C, conf, &env, err, errlen);
}

/* load - as try_load on the test store, and it must work; the clock restarts at T0 */
static void load(const char *sections)
{
    char err[256] = "";

    if (!try_load(sections, C->store, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
    ts_now = T0;
    ts_store_wipe(C, "gl:"); /* forget the records of earlier tests (the clock restarts) */
}

/* client - a policy_client at RCPT for ip */
static void client(struct policy_client *cl, const char *ip, const char *sender, const char *rcpt)
{
    ts_client(cl, ip);
    cl->sender = sender;
    cl->rcpt = rcpt;
}

/* judge_cl - the RCPT stage for a prepared client */
static struct policy_verdict judge_cl(struct policy_client *cl)
{
    return ts_stage(C, POLICY_RCPT, cl, 0).v;
}

/* judge - the RCPT stage for ip, sender, recipient */
static struct policy_verdict judge(const char *ip, const char *sender, const char *rcpt)
{
    struct policy_client cl;

    client(&cl, ip, sender, rcpt);
    return judge_cl(&cl);
}

/* record - the value under key in the test store, "" when missing */
static struct ts_got record(const char *key)
{
    return ts_store_get(C->base, C->store, key);
}

/* assert_greylisted - 451 4.7.1 with the delay in the text and this reason */
static void assert_greylisted(const struct policy_verdict *v, unsigned delay, const char *reason)
{
    char text[64];

    snprintf(text, sizeof(text), "Greylisted, please try again in %u seconds", delay);
    assert_int_equal(v->action, POLICY_TEMPFAIL);
    assert_int_equal(v->code, 451);
    assert_string_equal(v->status, "4.7.1");
    assert_string_equal(v->text, text);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "greylist");
}

/* assert_passed - no opinion (the pipeline keeps no reason for that) */
static void assert_passed(const struct policy_verdict *v)
{
    assert_int_equal(v->action, POLICY_DUNNO);
    assert_null(v->check);
}

/* assert_record - the value under key, or missing when want is NULL */
static void assert_record(const char *key, const char *want)
{
    struct ts_got g = record(key);

    if (!want) {
        assert_int_equal(g.status, STORE_NOTFOUND);
        return;
    }
    assert_int_equal(g.status, STORE_OK);
    assert_string_equal(g.val, want);
}

/* assert_pass_record - the triplet turned into a pass at time t */
static void assert_pass_record(const char *key, long t)
{
    char want[32];

    snprintf(want, sizeof(want), "pass %ld", t);
    assert_record(key, want);
}

/* ---------------------------------------------------------------------- */

/* test_seed_profile - first 451, too early 451, passes at the delay, records as documented */
static void test_seed_profile(void **state)
{
    const char *tkey = "gl:t:198.51.100.5/32:alice@example.test:bob@local.test";
    struct policy_verdict v;
    char want[32];

    load(SEED_PROFILE);
    v = judge("198.51.100.5", "Alice@Example.TEST", "Bob@Local.TEST");
    assert_greylisted(&v, 1500, "new triplet");
    snprintf(want, sizeof(want), "first %d", T0);
    assert_record(tkey, want);
    ts_now = T0 + 100;
    v = judge("198.51.100.5", "alice@example.test", "bob@local.test");
    assert_greylisted(&v, 1500, "too early, 1400s left");
    ts_now = T0 + 1499;
    v = judge("198.51.100.5", "ALICE@example.test", "bob@LOCAL.test");
    assert_greylisted(&v, 1500, "too early, 1s left");
    assert_record(tkey, want); /* a retry does not move the first-seen time */
    ts_now = T0 + 1500;
    v = judge("198.51.100.5", "\"alice\"@example.test", "bob@local.test");
    assert_passed(&v);
    assert_pass_record(tkey, T0 + 1500);
    snprintf(want, sizeof(want), "1 %d", T0 + 1500);
    assert_record("gl:c:198.51.100.5/32", want);
    /* no grouping: the neighbour is greylisted on its own */
    v = judge("198.51.100.6", "alice@example.test", "bob@local.test");
    assert_greylisted(&v, 1500, "new triplet");
    /* an unused pass is remembered 20 days (pass_ttl), and no longer */
    ts_now = T0 + 1500 + 1728000 - 1;
    assert_record("gl:c:198.51.100.5/32", want);
    assert_pass_record(tkey, T0 + 1500);
    ts_now = T0 + 1500 + 1728000;
    assert_record("gl:c:198.51.100.5/32", NULL);
    assert_record(tkey, NULL);
}

/* pass_once - a new triplet from ip: 451, then the retry after delay passes */
static void pass_once(const char *ip, const char *sender, const char *rcpt, unsigned delay)
{
    struct policy_verdict v = judge(ip, sender, rcpt);

    assert_greylisted(&v, delay, "new triplet");
    ts_now += delay;
    v = judge(ip, sender, rcpt);
    assert_passed(&v);
}

/* test_awl_needs_count - one retry of one host trusts nobody; awl_count passes, counted
 * once an hour, trust the network (any sender, any recipient, any host in it) */
static void test_awl_needs_count(void **state)
{
    struct policy_verdict v;
    char rcpt[32], want[32];

    load("greylist { delay = 60  retry_window = 3600  pass_ttl = 86400 }\n"); /* awl_count 5 */
    pass_once("203.0.113.9", "a@x.test", "b@y.test", 60);
    v = judge("203.0.113.9", "other@z.test", "c@y.test"); /* one pass is not trust */
    assert_greylisted(&v, 60, "new triplet");
    snprintf(want, sizeof(want), "1 %d", T0 + 60);
    assert_record("gl:c:203.0.113.0/24", want);
    /* a burst of passes within the hour counts once */
    for (int i = 0; i < 10; i++) {
        v = judge("203.0.113.9", "a@x.test", "b@y.test");
        assert_passed(&v);
    }
    assert_record("gl:c:203.0.113.0/24", want);
    /* passes 2..4, an hour apart: still not trusted */
    for (int i = 2; i <= 4; i++) {
        ts_now = T0 + 60 + 3600 * (i - 1);
        snprintf(rcpt, sizeof(rcpt), "r%d@y.test", i);
        pass_once("203.0.113.9", "a@x.test", rcpt, 60);
    }
    v = judge("203.0.113.200", "news@z.test", "d@y.test");
    assert_greylisted(&v, 60, "new triplet");
    /* the fifth: the network is trusted */
    ts_now = T0 + 120 + 3600 * 4;
    v = judge("203.0.113.9", "a@x.test", "b@y.test"); /* a known triplet counts too */
    assert_passed(&v);
    snprintf(want, sizeof(want), "5 %ld", (long)ts_now);
    assert_record("gl:c:203.0.113.0/24", want);
    v = judge("203.0.113.200", "", "e@y.test"); /* same /24, null sender */
    assert_passed(&v);
    v = judge("203.0.113.7", "other@z.test", "f@y.test");
    assert_passed(&v);
    /* the awl hits wrote no triplet */
    assert_record("gl:t:203.0.113.0/24::e@y.test", NULL);
    assert_record("gl:t:203.0.113.0/24:other@z.test:f@y.test", NULL);
}

/* test_awl_count_one_and_off - awl_count = 1 trusts at the first pass; 0 never */
static void test_awl_count_one_and_off(void **state)
{
    struct policy_verdict v;

    load("greylist { delay = 60  retry_window = 3600  pass_ttl = 86400  awl_count = 1 }\n");
    pass_once("203.0.113.9", "a@x.test", "b@y.test", 60);
    v = judge("203.0.113.9", "other@z.test", "c@y.test");
    assert_passed(&v);
    load("greylist { delay = 60  retry_window = 3600  pass_ttl = 86400  awl_count = 0 }\n");
    for (int i = 0; i < 3; i++) {
        char rcpt[32];
        snprintf(rcpt, sizeof(rcpt), "r%d@y.test", i);
        ts_now = T0 + 7200 * i;
        pass_once("203.0.113.9", "a@x.test", rcpt, 60);
    }
    assert_record("gl:c:203.0.113.0/24", NULL);
    v = judge("203.0.113.9", "other@z.test", "c@y.test");
    assert_greylisted(&v, 60, "new triplet");
}

/* test_refreshed_when_used - a correspondent that keeps sending is never delayed
 * again: the triplet's pass and the network's trust are renewed by use */
static void test_refreshed_when_used(void **state)
{
    struct policy_verdict v;
    char want[32];

    load("greylist { delay = 60  retry_window = 3600  pass_ttl = 86400  awl_count = 2 }\n");
    pass_once("198.51.100.5", "list@big.test", "u@local.test", 60);
    /* one message a day for ten days, each 2 s before the last pass would expire */
    for (int day = 1; day <= 10; day++) {
        ts_now = T0 + 60 + (time_t)day * (86400 - 2);
        v = judge("198.51.100.5", "list@big.test", "u@local.test");
        assert_passed(&v);
    }
    /* counted at the first two passes, then renewed at most once an hour */
    snprintf(want, sizeof(want), "2 %ld", (long)ts_now);
    assert_record("gl:c:198.51.100.0/24", want);
    /* trusted since the second pass; every awl hit renewed the trust */
    ts_now += 86400 - 1;
    v = judge("198.51.100.5", "new@big.test", "w@local.test");
    assert_passed(&v);
    ts_now += 86400 - 1;
    v = judge("198.51.100.5", "new2@big.test", "w@local.test");
    assert_passed(&v);
    /* silence for pass_ttl: forgotten */
    ts_now += 86400;
    v = judge("198.51.100.5", "list@big.test", "u@local.test");
    assert_greylisted(&v, 60, "new triplet");
}

/* test_known_triplet - a passed triplet outlives a deleted awl record and restores it */
static void test_known_triplet(void **state)
{
    char want[32];
    struct policy_verdict v;

    load("greylist { delay = 60  retry_window = 3600  pass_ttl = 86400 }\n");
    v = judge("203.0.113.9", "a@x.test", "b@y.test");
    ts_now = T0 + 60;
    v = judge("203.0.113.9", "a@x.test", "b@y.test");
    assert_passed(&v);
    assert_int_equal(store_del(C->store, "gl:c:203.0.113.0/24", 19, NULL, NULL), 0);
    ts_now = T0 + 1000;
    v = judge("203.0.113.9", "a@x.test", "b@y.test");
    assert_passed(&v);
    snprintf(want, sizeof(want), "1 %d", T0 + 1000);
    assert_record("gl:c:203.0.113.0/24", want);
    assert_pass_record("gl:t:203.0.113.0/24:a@x.test:b@y.test", T0 + 1000);
}

/* test_retry_window_expiry - a retry after the window starts over */
static void test_retry_window_expiry(void **state)
{
    struct policy_verdict v;

    load(SEED_PROFILE);
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 1500, "new triplet");
    ts_now = T0 + 2700; /* the first-seen record lived 45 minutes */
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 1500, "new triplet");
    ts_now = T0 + 2700 + 1000;
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 1500, "too early, 500s left");
    ts_now = T0 + 2700 + 1500;
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_passed(&v);
    assert_pass_record("gl:t:192.0.2.5/32:s@x.test:r@y.test", T0 + 2700 + 1500);
}

/* test_clock_backwards - a first-seen time in the future is not trusted: start over */
static void test_clock_backwards(void **state)
{
    struct policy_verdict v;

    load(SEED_PROFILE);
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 1500, "new triplet");
    ts_now = T0 - 100;
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 1500, "new triplet");
    assert_record("gl:t:192.0.2.5/32:s@x.test:r@y.test", "first 1699999900");
}

/* test_grouping_24 - with /24 grouping, 192.0.2.7 rides on the triplet of 192.0.2.5 */
static void test_grouping_24(void **state)
{
    struct policy_verdict v;

    load(SEED_PROFILE_24);
    v = judge("192.0.2.5", "list@big.test", "u@local.test");
    assert_greylisted(&v, 1500, "new triplet");
    ts_now = T0 + 1600; /* the pool retries from another address */
    v = judge("192.0.2.7", "list@big.test", "u@local.test");
    assert_passed(&v);
    assert_pass_record("gl:t:192.0.2.0/24:list@big.test:u@local.test", T0 + 1600);
    v = judge("192.0.2.99", "list@big.test", "u@local.test");
    assert_passed(&v);
    v = judge("192.0.3.7", "list@big.test", "u@local.test"); /* another /24 */
    assert_greylisted(&v, 1500, "new triplet");
}

/* test_single_ip_and_ipv6 - prefix 32 separates neighbours; IPv6 groups by /64 */
static void test_single_ip_and_ipv6(void **state)
{
    struct policy_verdict v;

    load("greylist { delay = 10  retry_window = 100  pass_ttl = 1000  ipv4_prefix = 32 }\n");
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 10, "new triplet");
    ts_now = T0 + 10;
    v = judge("192.0.2.7", "s@x.test", "r@y.test");
    assert_greylisted(&v, 10, "new triplet");
    assert_record("gl:t:192.0.2.7/32:s@x.test:r@y.test", "first 1700000010");
    v = judge("2001:db8:1:2::5", "s@x.test", "r@y.test");
    assert_greylisted(&v, 10, "new triplet");
    ts_now = T0 + 20;
    v = judge("2001:db8:1:2:ffff::9", "s@x.test", "r@y.test");
    assert_passed(&v);
    assert_pass_record("gl:t:2001:db8:1:2::/64:s@x.test:r@y.test", T0 + 20);
    v = judge("::ffff:192.0.2.5", "s@x.test", "r@y.test"); /* v4-mapped counts as IPv4 */
    assert_passed(&v);
    assert_pass_record("gl:t:192.0.2.5/32:s@x.test:r@y.test", T0 + 20);
}

/* test_only_suspicious - clean clients untouched; suspicious ones greylisted with the rule */
static void test_only_suspicious(void **state)
{
    struct policy_client cl;
    struct policy_verdict v;

    load("greylist { delay = 2  retry_window = 3600  pass_ttl = 86400  only_suspicious = true }\n");
    client(&cl, "192.0.2.20", "good@server.test", "u@local.test");
    v = judge_cl(&cl);
    assert_passed(&v);
    assert_record("gl:t:192.0.2.0/24:good@server.test:u@local.test", NULL);
    client(&cl, "198.51.100.33", "dyn@isp.test", "u@local.test");
    cl.suspicious = 1;
    snprintf(cl.suspicious_why, sizeof(cl.suspicious_why), "s25r:rule3");
    v = judge_cl(&cl);
    assert_greylisted(&v, 2, "new triplet s25r:rule3");
    ts_now = T0 + 1;
    v = judge_cl(&cl);
    assert_greylisted(&v, 2, "too early, 1s left s25r:rule3");
    ts_now = T0 + 2;
    v = judge_cl(&cl);
    assert_passed(&v);
    assert_pass_record("gl:t:198.51.100.0/24:dyn@isp.test:u@local.test", T0 + 2);
}

/* fill_with - write vlen-octet junk until a write fails; the number written */
static int fill_with(struct store *st, size_t vlen, int from)
{
    char key[64], val[1000];
    int i = from;

    memset(val, 'f', sizeof(val));
    for (;; i++) {
        struct ts_got one;
        /* next to where the triplet goes, and no larger: no page keeps room for it */
        snprintf(key, sizeof(key), "gl:t:192.0.2.0/24:j%06d", i);
        assert_int_equal(store_set(st, key, strlen(key), val, vlen, 0, NULL, NULL), 0);
        one = ts_store_get(C->base, st, key);
        if (one.status == STORE_NOTFOUND)
            return i + 1;
        assert_int_equal(one.status, STORE_OK);
        assert_true(i < from + 100000);
    }
}

/* test_store_full_fails_open - a store that cannot record the triplet lets mail through */
static void test_store_full_fails_open(void **state)
{
    struct store_options opt = {.map_size = 64 * 1024, .map_max = 64 * 1024};
    struct store *small = ts_store_open(C, "small", &opt, ts_clock);
    struct policy_verdict v;
    char err[256] = "";

    fill_with(small, 8, fill_with(small, 100, fill_with(small, 1000, 0)));
    if (!try_load("greylist { delay = 5 }\n", small, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
    v = judge("192.0.2.5", "s@x.test", "r@y.test");
    assert_passed(&v);
    ts_fixture_unload(C);
    store_close(small);
}

struct canceller {
    struct policy_run *run;
    int done;
};

/* on_cancel_now - runs between the check's store request and its answer */
static void on_cancel_now(void *arg, int status, const void *val, size_t vlen)
{
    struct canceller *c = arg;

    policy_cancel(c->run);
    c->done = 1;
}

/* on_never - a cancelled run must not report */
static void on_never(void *arg, const struct policy_verdict *v)
{
    fail_msg("verdict after policy_cancel");
}

/* test_cancel_pending - the session ends while the store read is pending */
static void test_cancel_pending(void **state)
{
    struct policy_client cl;
    struct canceller c = {NULL, 0};

    load(SEED_PROFILE);
    client(&cl, "192.0.2.5", "s@x.test", "r@y.test");
    c.run = policy_start(policy_chain_for(C->pol, "mx"), POLICY_RCPT, &cl, on_never, NULL);
    assert_non_null(c.run);
    /* Completions are delivered in order: ours comes before the check's answer. */
    assert_int_equal(store_get(C->store, "x", 1, on_cancel_now, &c), 0);
    ts_settle(C->base, &c.done);
    for (int i = 0; i < 10; i++)
        event_base_loop(C->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    /* nothing was decided, so nothing was written */
    assert_record("gl:t:192.0.2.5/32:s@x.test:r@y.test", NULL);
}

/* test_init_errors - no store; retry window not longer than the delay; bad prefix */
static void test_init_errors(void **state)
{
    char err[256];

    assert_null(try_load("greylist { delay = 5 }\n", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "greylist needs a state store"));
    assert_null(
        try_load("greylist { delay = 300  retry_window = 300 }\n", C->store, err, sizeof(err)));
    assert_non_null(strstr(err, "retry_window"));
    assert_non_null(strstr(err, "mxgate.conf:2: greylist:"));
    assert_null(try_load("greylist { ipv4_prefix = 33 }\n", C->store, err, sizeof(err)));
    assert_non_null(strstr(err, "ipv4_prefix"));
    assert_null(try_load("greylist { delay = -1 }\n", C->store, err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_profile),          cmocka_unit_test(test_awl_needs_count),
        cmocka_unit_test(test_awl_count_one_and_off), cmocka_unit_test(test_refreshed_when_used),
        cmocka_unit_test(test_known_triplet),         cmocka_unit_test(test_retry_window_expiry),
        cmocka_unit_test(test_clock_backwards),       cmocka_unit_test(test_grouping_24),
        cmocka_unit_test(test_single_ip_and_ipv6),    cmocka_unit_test(test_only_suspicious),
        cmocka_unit_test(test_store_full_fails_open), cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_init_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
