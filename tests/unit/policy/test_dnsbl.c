/* test_dnsbl.c - the dnsbl check through the real pipeline against a fake UDP DNS server */
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

#include "core/config.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_dns.h"
#include "ts_fixture.h"
#include "ts_policy.h"

/* ----------------------------------------------------------------------
 * the fake server's table (see ts_dns.h); "*.zone" matches every name under zone */

#define LONG_TXT                                                                                   \
    "  bad\tchars\001here \200 "                                                                   \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const struct ts_dns_entry table[] = {
    {"2.2.0.192.bl.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"2.2.0.192.bl.test",
     16,
     0,
     0,
     {{16, "Listed by bl.test|, see http://bl.test/q?192.0.2.2", 0}}},
    {"4.2.0.192.refuse.test", 1, 0, 0, {{1, "127.255.255.254", 0}}},
    {"4.2.0.192.open.test", 1, 0, 0, {{1, "10.0.0.1", 0}}},
    {"5.2.0.192.bl.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"5.2.0.192.wl.test", 1, 0, 0, {{1, "127.0.0.5", 0}}},
    {"6.2.0.192.codes.test", 1, 0, 0, {{1, "127.0.0.4", 0}}},
    {"7.2.0.192.codes.test", 1, 0, 0, {{1, "127.0.0.4", 0}, {1, "127.0.0.3", 0}}},
    {"8.2.0.192.a.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"8.2.0.192.b.test", 1, 0, 0, {{1, "127.0.0.9", 0}}},
    {"8.2.0.192.b.test", 16, 0, 0, {{16, "b says no", 0}}},
    {"10.2.0.192.a.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"9.2.0.192.bl.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"9.2.0.192.bl.test", 16, 0, 0, {{16, LONG_TXT, 0}}},
    {"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test",
     1,
     0,
     0,
     {{1, "127.0.0.2", 0}}},
    /* listed, but the TXT query is never answered */
    {"11.2.0.192.bl.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"11.2.0.192.bl.test", 16, 0, 1, {{0, NULL, 0}}},
    {"*.silent.test", 1, 0, 1, {{0, NULL, 0}}},
};

/* ---------------------------------------------------------------------- */
/* the pipeline around the check                                            */

struct ctx {
    struct ts_fixture fx;
    struct ts_dns_fake fake;
    struct dns *dns;
};

static struct ctx *C;

/* setup - loop, fake server, resolver, a store for the statistics */
static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_dnsbl"), 0);
    ts_dns_fake_start(&c.fake, c.fx.base, table, sizeof(table) / sizeof(table[0]));
    /* The resolver's own timeout is longer than any zone's budget in these tests. */
    c.dns = ts_dns_resolver(&c.fake, c.fx.base, 8);
    c.fx.store = ts_store_open(&c.fx, "db", NULL, NULL);
    c.fx.stats = stats_new(c.fx.store);
    assert_non_null(c.fx.stats);
    *state = &c;
    return 0;
}

/* teardown - free everything; the resolver and the server before their loop */
static int teardown(void **state)
{
    ts_fixture_unload(&C->fx);
    dns_free(C->dns);
    ts_dns_fake_stop(&C->fake);
    ts_fixture_free(&C->fx);
    return 0;
}

/* try_load - write a configuration with this dnsbl section; the policy or NULL with err */
static struct policy *try_load(const char *on_timeout, const char *dnsbl, int with_dns, char *err,
                               size_t errlen)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[4096];

    env.dns = with_dns ? C->dns : NULL;
    snprintf(conf, sizeof(conf),
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dnsbl\"} }\n"
             "dns { servers = {\"%s\"}  timeout = 8  on_timeout = \"%s\" }\n"
             "dnsbl {\n%s\n}\n",
             C->fake.server, on_timeout, dnsbl);
    ts_policy_load(&C->fx, conf, &env, err, errlen);
    assert_non_null(C->fx.cfg);
    return C->fx.pol;
}

/* load - as try_load, and it must work */
static void load(const char *on_timeout, const char *dnsbl)
{
    char err[256] = "";

    if (!try_load(on_timeout, dnsbl, 1, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* client - a policy_client for ip (IPv4 or IPv6), its rDNS not looked at yet */
static void client(struct policy_client *cl, const char *ip)
{
    ts_client(cl, ip);
    cl->rdns = RDNS_UNCHECKED;
}

/* judge - the CONNECT stage for ip; the verdict, its time and the client's score */
static struct ts_outcome judge(const char *ip, int *score)
{
    struct policy_client cl;
    struct ts_outcome o;

    client(&cl, ip);
    o = ts_stage(&C->fx, POLICY_CONNECT, &cl, 10000);
    if (score)
        *score = cl.score;
    return o;
}

/* counter - this hour's statistics counter name (0 when missing) */
static int64_t counter(const char *name)
{
    char key[160], hour[16];
    time_t now = time(NULL);
    struct tm tm;
    struct ts_got g;
    int64_t n = 0;

    gmtime_r(&now, &tm);
    strftime(hour, sizeof(hour), "%Y%m%d%H", &tm);
    snprintf(key, sizeof(key), "stats:%s:%s", hour, name);
    g = ts_store_get(C->fx.base, C->fx.store, key);
    if (g.status == STORE_OK)
        assert_int_equal(store_counter_decode(g.val, g.vlen, &n), 0);
    return n;
}

/* ---------------------------------------------------------------------- */
/* the tests                                                                */

/* test_listed_with_txt - 554 naming the zone and its TXT reason; counted */
static void test_listed_with_txt(void **state)
{
    int64_t before = counter("dnsbl.reject");
    struct ts_outcome o;

    load("tempfail", "threshold = 1  zone \"bl.test\" { weight = 1 }");
    o = judge("192.0.2.2", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 554);
    assert_string_equal(o.v.status, "5.7.1");
    assert_string_equal(o.v.text, "Service unavailable; client [192.0.2.2] blocked using bl.test; "
                                  "Listed by bl.test, see http://bl.test/q?192.0.2.2");
    assert_string_equal(o.v.reason, "zone=bl.test answer=127.0.0.2 weight=1 total=1");
    assert_string_equal(o.v.check, "dnsbl");
    assert_int_equal(counter("dnsbl.reject"), before + 1);
}

/* test_not_listed - NXDOMAIN everywhere: no opinion, quickly */
static void test_not_listed(void **state)
{
    struct ts_outcome o;

    load("tempfail", "zone \"bl.test\" { }  zone \"a.test\" { }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_true(o.secs < 0.9);
}

/* test_ipv6_listed - an IPv6 client is looked up by its nibbles */
static void test_ipv6_listed(void **state)
{
    struct ts_outcome o;

    load("tempfail", "zone \"bl.test\" { }");
    o = judge("2001:db8::5", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text,
                        "Service unavailable; client [2001:db8::5] blocked using bl.test");
}

/* test_unusable_ignored - 127.255.255.254 and 10.0.0.1 list nobody; warned and counted */
static void test_unusable_ignored(void **state)
{
    int64_t before = counter("dnsbl.unusable");
    struct ts_outcome o;

    load("tempfail", "zone \"refuse.test\" { }  zone \"open.test\" { }  zone \"bl.test\" { }");
    o = judge("192.0.2.4", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(counter("dnsbl.unusable"), before + 2);
    /* the same answers are refused as configured codes */
    assert_null(try_load("tempfail", "zone \"refuse.test\" { codes = {\"127.255.255.254\"} }", 1,
                         (char[256]){0}, 256));
}

/* test_silent_zone_costs_its_budget - a silent zone while another answers: budget, not more */
static void test_silent_zone_costs_its_budget(void **state)
{
    struct ts_outcome o;

    load("tempfail", "zone \"bl.test\" { timeout = 3 }  zone \"a.silent.test\" { timeout = 1 }");
    o = judge("192.0.2.2", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "zone=bl.test answer=127.0.0.2 weight=1 total=1");
    assert_true(o.secs > 0.9 && o.secs < 1.6);
}

/* test_parallel_budgets - two silent zones of 1 s and 2 s cost 2 s, not 3 */
static void test_parallel_budgets(void **state)
{
    struct ts_outcome o;

    load("pass", "zone \"a.silent.test\" { timeout = 2 }  zone \"b.silent.test\" { timeout = 1 }"
                 "  zone \"bl.test\" { }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_true(o.secs > 1.9 && o.secs < 2.6);
}

/* test_all_timeout_tempfail - every zone silent and on_timeout tempfail: 451 4.4.3 */
static void test_all_timeout_tempfail(void **state)
{
    struct ts_outcome o;

    load("tempfail",
         "zone \"a.silent.test\" { timeout = 1 }  zone \"b.silent.test\" { timeout = 1 }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.4.3");
    assert_string_equal(o.v.text, "DNS blocklist lookup failed; try again later");
    assert_string_equal(o.v.reason, "dns-timeout");
    assert_true(o.secs > 0.9 && o.secs < 1.6);
}

/* test_all_timeout_pass - the same with on_timeout pass: no opinion */
static void test_all_timeout_pass(void **state)
{
    struct ts_outcome o;

    load("pass", "zone \"a.silent.test\" { timeout = 1 }  zone \"b.silent.test\" { timeout = 1 }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
}

/* test_txt_never_answers - the hit stands without its reason once the budget is spent */
static void test_txt_never_answers(void **state)
{
    struct ts_outcome o;

    load("tempfail", "zone \"bl.test\" { timeout = 1 }");
    o = judge("192.0.2.11", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text, "Service unavailable; client [192.0.2.11] blocked using bl.test");
    assert_true(o.secs > 0.9 && o.secs < 1.6);
}

/* test_txt_sanitized - control and 8-bit octets replaced, length bounded */
static void test_txt_sanitized(void **state)
{
    const char *want = "Service unavailable; client [192.0.2.9] blocked using bl.test; "
                       "bad?chars?here ? xxx";
    struct ts_outcome o;

    load("tempfail", "zone \"bl.test\" { }");
    o = judge("192.0.2.9", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_memory_equal(o.v.text, want, strlen(want));
    assert_true(strlen(o.v.text) < sizeof(o.v.text));
    for (const char *p = o.v.text; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

/* test_threshold_and_weights - two zones needed; the heavier one names the reply */
static void test_threshold_and_weights(void **state)
{
    struct ts_outcome o;

    load("tempfail",
         "threshold = 3  zone \"a.test\" { weight = 1 }  zone \"b.test\" { weight = 2 }");
    o = judge("192.0.2.8", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text,
                        "Service unavailable; client [192.0.2.8] blocked using b.test; b says no");
    assert_string_equal(o.v.reason, "zone=b.test answer=127.0.0.9 weight=2 total=3");
    o = judge("192.0.2.10", NULL); /* only a.test: 1 < 3 */
    assert_int_equal(o.v.action, POLICY_DUNNO);
}

/* test_tempfail_and_score_actions - 450 4.7.1 with the same text; score adds up */
static void test_tempfail_and_score_actions(void **state)
{
    struct ts_outcome o;
    int score = -1;

    load("tempfail", "action = \"tempfail\"  zone \"bl.test\" { }");
    o = judge("192.0.2.2", NULL);
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 450);
    assert_string_equal(o.v.status, "4.7.1");
    assert_non_null(strstr(o.v.text, "client [192.0.2.2] blocked using bl.test"));
    load("tempfail", "action = \"score\"  threshold = 2  zone \"a.test\" { weight = 1 }"
                     "  zone \"b.test\" { weight = 4 }");
    o = judge("192.0.2.8", &score);
    assert_int_equal(o.v.action, POLICY_DUNNO); /* a score decides nothing by itself */
    assert_int_equal(score, 5);
}

/* test_dnswl_negative_weight - an allow zone not outweighed: OK, trusted */
static void test_dnswl_negative_weight(void **state)
{
    struct ts_outcome o;

    load("tempfail", "zone \"bl.test\" { weight = 1 }  zone \"wl.test\" { weight = -5 }");
    o = judge("192.0.2.5", NULL);
    assert_int_equal(o.v.action, POLICY_OK);
    assert_string_equal(o.v.reason, "dnswl wl.test");
    /* outweighed by a heavy blocklist */
    load("tempfail", "zone \"bl.test\" { weight = 10 }  zone \"wl.test\" { weight = -5 }");
    o = judge("192.0.2.5", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "zone=bl.test answer=127.0.0.2 weight=10 total=5");
}

/* test_codes_filter - only the configured answers list */
static void test_codes_filter(void **state)
{
    struct ts_outcome o;

    load("tempfail", "zone \"codes.test\" { codes = {\"127.0.0.2\", \"127.0.0.3\"} }");
    o = judge("192.0.2.6", NULL); /* 127.0.0.4 only */
    assert_int_equal(o.v.action, POLICY_DUNNO);
    o = judge("192.0.2.7", NULL); /* 127.0.0.4 and 127.0.0.3 */
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "zone=codes.test answer=127.0.0.3 weight=1 total=1");
    load("tempfail", "zone \"codes.test\" { }");
    o = judge("192.0.2.6", NULL); /* no codes: any 127/8 answer lists */
    assert_int_equal(o.v.action, POLICY_REJECT);
}

/* on_never - a cancelled run must not report */
static void on_never(void *arg, const struct policy_verdict *v)
{
    fail_msg("verdict after policy_cancel");
}

/* test_cancel_pending - the session ends while zones are pending: nothing runs later */
static void test_cancel_pending(void **state)
{
    struct policy_client cl;
    struct policy_run *r;
    int never = 0;

    load("tempfail", "zone \"a.silent.test\" { timeout = 1 }  zone \"bl.test\" { }");
    client(&cl, "192.0.2.2");
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_CONNECT, &cl, on_never, NULL);
    assert_non_null(r);
    event_base_loop(C->fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* the check starts its queries */
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1,
                 1500); /* the zone timer and the bl.test answer would fire here */
}

/* test_init_errors - no resolver, bad code, no zone, bad action, bad on_timeout */
static void test_init_errors(void **state)
{
    char err[256];

    assert_null(try_load("tempfail", "zone \"bl.test\" { }", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "dnsbl needs a dns section"));
    assert_null(
        try_load("tempfail", "zone \"bl.test\" { codes = {\"10.0.0.2\"} }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "mxgate.conf:"));
    assert_non_null(strstr(err, "10.0.0.2"));
    assert_null(try_load("tempfail", "threshold = 1", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "zone"));
    assert_null(
        try_load("tempfail", "action = \"drop\"  zone \"bl.test\" { }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "action"));
    assert_null(try_load("maybe", "zone \"bl.test\" { }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "on_timeout"));
    assert_null(try_load("tempfail", "zone \"bl.test\" { weight = 0 }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "weight"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_with_txt),
        cmocka_unit_test(test_not_listed),
        cmocka_unit_test(test_ipv6_listed),
        cmocka_unit_test(test_unusable_ignored),
        cmocka_unit_test(test_silent_zone_costs_its_budget),
        cmocka_unit_test(test_parallel_budgets),
        cmocka_unit_test(test_all_timeout_tempfail),
        cmocka_unit_test(test_all_timeout_pass),
        cmocka_unit_test(test_txt_never_answers),
        cmocka_unit_test(test_txt_sanitized),
        cmocka_unit_test(test_threshold_and_weights),
        cmocka_unit_test(test_tempfail_and_score_actions),
        cmocka_unit_test(test_dnswl_negative_weight),
        cmocka_unit_test(test_codes_filter),
        cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_init_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
