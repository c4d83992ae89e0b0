/* test_score.c - the score check through the real pipeline: the points of s25r,
 * dnsbl, spf and sender, thresholds at RCPT and END, the X-Spam-* fields */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/config.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "ts_dns.h"
#include "ts_fixture.h"
#include "ts_policy.h"

static const struct ts_dns_entry table[] = {
    /* 192.0.2.7 is listed */
    {"7.2.0.192.bl.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"soft.test", 16, 0, 0, {{16, "v=spf1 ~all", 0}}},
    {"soft.test", 15, 0, 0, {{15, "mx.soft.test", 10}}},
};

static struct ts_dns_world *C;

static int setup(void **state)
{
    static struct ts_dns_world c;

    C = &c;
    ts_dns_world_start(&c, "test_score", table, sizeof(table) / sizeof(table[0]), 2);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ts_dns_world_stop(C);
    return 0;
}

/* load - a listener running checks with these sections; it must load */
static void load(const char *checks, const char *sections)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[2048], err[256] = "";

    env.dns = C->dns;
    snprintf(conf, sizeof(conf),
             "hostname = \"mx.example.test\"\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {%s} }\n%s",
             checks, sections);
    if (!ts_policy_load(&C->fx, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* at - a client with a score already given, at stage st */
static struct ts_outcome at(struct policy_client *cl, enum policy_stage st, int score,
                            const char *tests)
{
    ts_client(cl, "192.0.2.30");
    cl->sender = "a@b.test";
    cl->rcpt = "bob@example.test";
    cl->score = score;
    snprintf(cl->score_tests, POLICY_SCORE_TESTS_MAX, "%s", tests);
    return ts_stage(&C->fx, st, cl, 0);
}

/* test_thresholds - reject and tempfail at RCPT and END, with the score in the
 * text and every check's points in the reason; counted as score.reject */
static void test_thresholds(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("\"score\"", "score { tag = 5  tempfail = 10  reject = 15 }\n");
    o = at(&cl, POLICY_RCPT, 9, "s25r=5,spf=4");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_null(cl.add_headers); /* fields only at the end of DATA */
    o = at(&cl, POLICY_RCPT, 10, "s25r=5,spf=5");
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.7.1");
    assert_string_equal(o.v.text,
                        "Message deferred as possible spam (score 10, limit 10); try again later");
    assert_string_equal(o.v.reason, "score=10 required=10 tests=s25r=5,spf=5");
    o = at(&cl, POLICY_END, 16, "s25r=5,dnsbl=6,spf=5");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 550);
    assert_string_equal(o.v.status, "5.7.1");
    assert_string_equal(o.v.text, "Message rejected as spam (score 16, limit 15)");
    assert_string_equal(o.v.reason, "score=16 required=15 tests=s25r=5,dnsbl=6,spf=5");
    assert_string_equal(o.v.check, "score");
    assert_null(cl.add_headers);
    assert_int_equal(ts_stats_sum(&C->fx, "score.reject"), 1);
    assert_int_equal(ts_stats_sum(&C->fx, "score.tempfail"), 1);
    /* 0 is never */
    load("\"score\"", "score { tempfail = 0  reject = 0 }\n");
    assert_int_equal(at(&cl, POLICY_RCPT, 1000, "x=1000").v.action, POLICY_DUNNO);
}

/* test_tag_fields - X-Spam-Score and X-Spam-Status on an accepted message */
static void test_tag_fields(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("\"score\"", "score { tag = 5  tempfail = 10  reject = 15 }\n");
    o = at(&cl, POLICY_END, 7, "s25r=5,spf=2");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_non_null(cl.add_headers);
    assert_string_equal(cl.add_headers,
                        "X-Spam-Score: 7\r\n"
                        "X-Spam-Status: Yes, score=7 required=5 tests=s25r=5,spf=2\r\n");
    free(cl.add_headers);
    o = at(&cl, POLICY_END, 0, "");
    assert_string_equal(cl.add_headers, "X-Spam-Score: 0\r\n"
                                        "X-Spam-Status: No, score=0 required=5 tests=none\r\n");
    free(cl.add_headers);
    o = at(&cl, POLICY_END, -3, "dnsbl=-3");
    assert_string_equal(cl.add_headers,
                        "X-Spam-Score: -3\r\n"
                        "X-Spam-Status: No, score=-3 required=5 tests=dnsbl=-3\r\n");
    free(cl.add_headers);
}

/* test_checks_feed_it - s25r, dnsbl and spf "score" actions add their points at
 * their stages; the score check sums them at RCPT and tags at END */
static void test_checks_feed_it(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("\"dnsbl\", \"s25r\", \"spf\", \"score\"",
         "dnsbl { action = \"score\"  threshold = 1  zone \"bl.test\" { weight = 3 } }\n"
         "s25r { action = \"score\"  score = 5 }\n"
         "spf { softfail = \"score\"  score = 4  helo = false }\n"
         "score { tag = 5  tempfail = 0  reject = 13 }\n");
    ts_client_rdns(&cl, "192.0.2.7", RDNS_NONE, NULL);
    o = ts_stage(&C->fx, POLICY_CONNECT, &cl, 5000);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(cl.score, 8);
    cl.helo = "[192.0.2.7]";
    cl.sender = "a@soft.test";
    o = ts_stage(&C->fx, POLICY_MAIL, &cl, 5000);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    free(cl.add_headers); /* Received-SPF */
    cl.add_headers = NULL;
    cl.rcpt = "bob@example.test";
    assert_int_equal(ts_stage(&C->fx, POLICY_RCPT, &cl, 5000).v.action, POLICY_DUNNO);
    o = ts_stage(&C->fx, POLICY_END, &cl, 5000);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.add_headers,
                        "X-Spam-Score: 12\r\n"
                        "X-Spam-Status: Yes, score=12 required=5 tests=dnsbl=3,s25r=5,spf=4\r\n");
    free(cl.add_headers);
    /* one more point and the RCPT stage refuses, naming each check's points */
    cl.add_headers = NULL;
    policy_score_add(&cl, "sender", 1);
    o = ts_stage(&C->fx, POLICY_RCPT, &cl, 5000);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "score=13 required=13 tests=dnsbl=3,s25r=5,spf=4,sender=1");
}

/* test_quarantine - between quarantine and the refusals the message is kept (and
 * tagged); a per-user allow of every recipient lifts refusal, quarantine and tag */
static void test_quarantine(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("\"score\"", "score { tag = 5  quarantine = 8  tempfail = 10  reject = 15 }\n");
    o = at(&cl, POLICY_END, 7, "s25r=7");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.quarantine, "");
    free(cl.add_headers);
    o = at(&cl, POLICY_END, 9, "s25r=5,spf=4");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.quarantine, "score: score=9 required=8");
    assert_non_null(strstr(cl.add_headers, "X-Spam-Status: Yes, score=9"));
    free(cl.add_headers);
    o = at(&cl, POLICY_END, 10, "s25r=10");
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_string_equal(cl.quarantine, ""); /* refused, not kept */

    /* userlists (listed first) finds at END that every recipient allowed the sender */
    load("\"userlists\", \"score\"",
         "userlists { store = false }\n"
         "score { tag = 5  quarantine = 8  tempfail = 10  reject = 15 }\n");
    ts_client(&cl, "192.0.2.30");
    cl.sender = "a@b.test";
    cl.score = 9;
    cl.nrcpt = 2;
    cl.user_allowed = 1; /* one of two: no */
    o = ts_stage(&C->fx, POLICY_END, &cl, 0);
    assert_string_equal(cl.quarantine, "score: score=9 required=8");
    free(cl.add_headers);
    ts_client(&cl, "192.0.2.30");
    cl.sender = "a@b.test";
    cl.score = 9;
    cl.nrcpt = 2;
    cl.user_allowed = 2;
    o = ts_stage(&C->fx, POLICY_END, &cl, 0);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.quarantine, "");
    assert_null(cl.add_headers);
    cl.score = 20;
    o = ts_stage(&C->fx, POLICY_END, &cl, 0);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(ts_stats_sum(&C->fx, "userlists.override"), 1);
}

/* test_bad_thresholds - tempfail must stay below reject */
static void test_bad_thresholds(void **state)
{
    struct policy_env env = ts_env(&C->fx);
    char err[512] = "";

    ts_policy_load(&C->fx,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"score\"} }\n"
                   "score { tempfail = 20  reject = 15 }\n",
                   &env, err, sizeof(err));
    assert_null(C->fx.cfg);
    assert_non_null(strstr(err, "score: tempfail (20) must be below reject (15)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds),     cmocka_unit_test(test_tag_fields),
        cmocka_unit_test(test_checks_feed_it), cmocka_unit_test(test_bad_thresholds),
        cmocka_unit_test(test_quarantine),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
