/* test_spf.c - the spf check through the real pipeline against a fake UDP DNS server */
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

/* The clients are 192.0.2.x; "*.zone" matches every name under zone (ts_dns.h). */
static const struct ts_dns_entry table[] = {
    {"pass.test", 16, 0, 0, {{16, "v=spf1 ip4:192.0.2.0/24 -all", 0}}},
    {"fail.test", 16, 0, 0, {{16, "v=spf1 -all exp=why.fail.test", 0}}},
    {"why.fail.test", 16, 0, 0, {{16, "%{i} is not one of|  %{d}'s servers", 0}}},
    {"bad.test", 16, 0, 0, {{16, "v=spf1 -all exp=why.bad.test", 0}}},
    {"why.bad.test", 16, 0, 0, {{16, "%{i}\r\n250 fake|\001", 0}}},
    {"soft.test", 16, 0, 0, {{16, "v=spf1 ~all", 0}}},
    {"helo.test", 16, 0, 0, {{16, "v=spf1 -all", 0}}},
    {"broken.test", 16, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"*.silent.test", 16, 0, 1, {{0, NULL, 0}}},
};

static struct ts_dns_world *C;

/* setup - loop, fake server, resolver, a store for the statistics */
static int setup(void **state)
{
    static struct ts_dns_world c;

    C = &c;
    ts_dns_world_start(&c, "test_spf", table, sizeof(table) / sizeof(table[0]), 2);
    *state = &c;
    return 0;
}

/* teardown - the resolver and the server before their loop */
static int teardown(void **state)
{
    ts_dns_world_stop(C);
    return 0;
}

/* load - a listener running spf with this section; it must load */
static void load(const char *spf)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[1024], err[256] = "";

    env.dns = C->dns;
    snprintf(conf, sizeof(conf),
             "hostname = \"mx.example.test\"\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"spf\"} }\n"
             "spf { %s }\n",
             spf);
    if (!ts_policy_load(&C->fx, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* mail - the MAIL stage of a client at ip with helo and sender */
static struct ts_outcome mail(struct policy_client *cl, const char *ip, const char *helo,
                              const char *sender)
{
    ts_client(cl, ip);
    cl->helo = helo;
    cl->sender = sender;
    return ts_stage(&C->fx, POLICY_MAIL, cl, 5000);
}

/* test_fail_rejects_with_a_safe_explanation - 550 5.7.23 with the domain's own
 * explanation; one with line breaks or controls is not used (the default is) */
static void test_fail_rejects_with_a_safe_explanation(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = mail(&cl, "192.0.2.7", "[192.0.2.7]", "alice@fail.test");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 550);
    assert_string_equal(o.v.status, "5.7.23");
    assert_string_equal(o.v.text,
                        "SPF fail for fail.test: 192.0.2.7 is not one of  fail.test's servers");
    assert_non_null(strstr(o.v.reason, "result=fail identity=mailfrom domain=fail.test"));
    assert_non_null(cl.add_headers);
    assert_true(strncmp(cl.add_headers, "Received-SPF: fail ", 19) == 0);
    free(cl.add_headers);
    o = mail(&cl, "192.0.2.7", "[192.0.2.7]", "alice@bad.test");
    assert_int_equal(o.v.code, 550);
    assert_null(strpbrk(o.v.text, "\r\n\001"));
    assert_null(strstr(o.v.text, "250 fake"));
    free(cl.add_headers);
}

/* test_pass_adds_one_header_line - no opinion, and Received-SPF as one CRLF line */
static void test_pass_adds_one_header_line(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    size_t n;

    load("");
    o = mail(&cl, "192.0.2.8", "client.example", "bob@pass.test");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_non_null(cl.add_headers);
    n = strlen(cl.add_headers);
    assert_true(strncmp(cl.add_headers, "Received-SPF: pass ", 19) == 0);
    assert_string_equal(cl.add_headers + n - 2, "\r\n");
    assert_ptr_equal(strchr(cl.add_headers, '\r'), cl.add_headers + n - 2); /* one line */
    assert_non_null(strstr(cl.add_headers, "client-ip=192.0.2.8;"));
    free(cl.add_headers);
}

/* test_helo_fail_decides - a HELO whose own record fails decides before MAIL FROM */
static void test_helo_fail_decides(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = mail(&cl, "192.0.2.9", "helo.test", "bob@pass.test");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_non_null(strstr(o.v.reason, "identity=helo domain=helo.test"));
    free(cl.add_headers);
    load("helo = false");
    o = mail(&cl, "192.0.2.9", "helo.test", "bob@pass.test");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    free(cl.add_headers);
}

/* test_actions - softfail scored, temperror refused for now, null sender via HELO */
static void test_actions(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("softfail = \"score\"  score = 7");
    o = mail(&cl, "192.0.2.10", "[192.0.2.10]", "x@soft.test");
    assert_int_equal(o.v.action, POLICY_DUNNO); /* a score goes on: the total is kept */
    assert_int_equal(cl.score, 7);
    free(cl.add_headers);
    o = mail(&cl, "192.0.2.10", "[192.0.2.10]", "x@broken.test");
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.7.24");
    free(cl.add_headers);
    o = mail(&cl, "192.0.2.10", "[192.0.2.10]", ""); /* no identity to check */
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_null(cl.add_headers);
    o = mail(&cl, "192.0.2.10", "helo.test", ""); /* postmaster@helo.test */
    assert_int_equal(o.v.action, POLICY_REJECT);
    free(cl.add_headers);
}

/* test_cancel_mid_lookup - the session ends while DNS is silent: no verdict, nothing
 * leaks (ASan), and the loop runs on */
static void test_cancel_mid_lookup(void **state)
{
    struct policy_client cl;
    struct ts_outcome o = {0};
    struct policy_run *r;
    int never = 0;

    load("helo = false");
    ts_client(&cl, "192.0.2.11");
    cl.helo = "[192.0.2.11]";
    cl.sender = "x@a.silent.test";
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_MAIL, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    assert_int_equal(o.calls, 0);
    assert_null(cl.add_headers);
}

/* test_bad_action - a result's action must be one of four */
static void test_bad_action(void **state)
{
    struct policy_env env = ts_env(&C->fx);
    char err[512] = "";

    env.dns = C->dns;
    ts_policy_load(&C->fx,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"spf\"} }\n"
                   "spf { softfail = \"bounce\" }\n",
                   &env, err, sizeof(err));
    assert_null(C->fx.cfg);
    assert_non_null(strstr(err, "spf: softfail must be"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_rejects_with_a_safe_explanation),
        cmocka_unit_test(test_pass_adds_one_header_line),
        cmocka_unit_test(test_helo_fail_decides),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_cancel_mid_lookup),
        cmocka_unit_test(test_bad_action),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
