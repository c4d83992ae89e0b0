/* test_greylist_auth.c - identity-aware greylisting through the real pipeline on
 * a real LMDB store: an SPF-authorised pool retrying from another address, the
 * first-attempt skip, and greylisting decided at the end of DATA by aligned DKIM */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/config.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define T0 1700000000
#define DELAY 300

static struct ts_fixture *C;

static int setup(void **state)
{
    static struct ts_fixture c;

    C = &c;
    assert_int_equal(ts_fixture_init(&c, "test_greylist_auth"), 0);
    c.store = ts_store_open(&c, "db", NULL, ts_clock);
    c.stats = stats_new(c.store);
    clock_set(ts_clock);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    clock_set(NULL);
    ts_fixture_free(C);
    return 0;
}

/* load - greylist alone with these options (no grouping: /32); the clock restarts */
static void load(const char *opts)
{
    struct policy_env env = ts_env(C);
    char conf[1024], err[256] = "";

    snprintf(conf, sizeof(conf),
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"greylist\"} }\n"
             "greylist { delay = %d  ipv4_prefix = 32  %s }\n",
             DELAY, opts);
    if (!ts_policy_load(C, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
    ts_now = T0;
    ts_store_wipe(C, "gl:");
}

/* client - a transaction of alice@big.test to bob@example.test from ip; spf is the
 * SPF result for MAIL FROM's domain ("" when SPF did not run) */
static void client(struct policy_client *cl, const char *ip, const char *spf)
{
    ts_client(cl, ip);
    cl->sender = "alice@big.test";
    cl->rcpt = "bob@example.test";
    snprintf(cl->auth->spf, sizeof(cl->auth->spf), "%s", spf);
    if (spf[0])
        snprintf(cl->auth->spf_domain, sizeof(cl->auth->spf_domain), "big.test");
}

/* rcpt - the RCPT stage from ip with this SPF result */
static struct policy_verdict rcpt(const char *ip, const char *spf)
{
    struct policy_client cl;

    client(&cl, ip, spf);
    return ts_stage(C, POLICY_RCPT, &cl, 0).v;
}

static void assert_greylisted(const struct policy_verdict *v)
{
    char text[64];

    snprintf(text, sizeof(text), "Greylisted, please try again in %d seconds", DELAY);
    assert_int_equal(v->action, POLICY_TEMPFAIL);
    assert_int_equal(v->code, 451);
    assert_string_equal(v->status, "4.7.1");
    assert_string_equal(v->text, text);
    assert_string_equal(v->check, "greylist");
}

/* greylisted - assert_greylisted of a verdict by value */
static void greylisted(struct policy_verdict v)
{
    assert_greylisted(&v);
}

/* record - the value under key ("" when missing) */
static const char *record(const char *key)
{
    static struct ts_got g;

    g = ts_store_get(C->base, C->store, key);
    return g.status == STORE_OK ? g.val : "";
}

/* test_pool_retry_passes - SPF pass keys the triplet by the sender domain: the
 * pool's retry from another address passes at the second attempt (the default) */
static void test_pool_retry_passes(void **state)
{
    struct policy_verdict v;
    char want[32];

    load("");
    v = rcpt("192.0.2.10", "pass");
    assert_greylisted(&v);
    assert_string_equal(v.reason, "new triplet");
    snprintf(want, sizeof(want), "first %d", T0);
    assert_string_equal(record("gl:t:spf:big.test:alice@big.test:bob@example.test"), want);
    assert_string_equal(record("gl:t:192.0.2.10/32:alice@big.test:bob@example.test"), "");
    ts_now = T0 + DELAY;
    v = rcpt("198.51.100.20", "pass"); /* another machine of the pool */
    assert_int_equal(v.action, POLICY_DUNNO);
    snprintf(want, sizeof(want), "pass %d", T0 + DELAY);
    assert_string_equal(record("gl:t:spf:big.test:alice@big.test:bob@example.test"), want);
    /* the network of each machine still earns trust on its own */
    snprintf(want, sizeof(want), "1 %d", T0 + DELAY);
    assert_string_equal(record("gl:c:198.51.100.20/32"), want);
}

/* test_no_spf_no_pool - without SPF pass (none, fail, the HELO's pass, another
 * domain's pass) a retry from another address is a new triplet */
static void test_no_spf_no_pool(void **state)
{
    struct policy_client cl;

    load("");
    greylisted(rcpt("192.0.2.10", ""));
    ts_now = T0 + DELAY;
    greylisted(rcpt("198.51.100.20", ""));
    greylisted(rcpt("198.51.100.21", "softfail"));
    load("");
    client(&cl, "192.0.2.10", "pass");
    cl.auth->spf_helo = 1; /* the HELO name's pass says nothing of the sender */
    greylisted(ts_stage(C, POLICY_RCPT, &cl, 0).v);
    assert_string_equal(record("gl:t:spf:big.test:alice@big.test:bob@example.test"), "");
    assert_string_equal(record("gl:t:192.0.2.10/32:alice@big.test:bob@example.test"),
                        "first 1700000000");
    client(&cl, "192.0.2.10", "pass");
    snprintf(cl.auth->spf_domain, sizeof(cl.auth->spf_domain), "other.test");
    greylisted(ts_stage(C, POLICY_RCPT, &cl, 0).v);
    assert_string_equal(record("gl:t:spf:big.test:alice@big.test:bob@example.test"), "");
}

/* test_modes - "ignore" keys by network as ever; "skip" passes an SPF-authorised
 * first attempt at once and writes nothing, and greylists the others */
static void test_modes(void **state)
{
    load("spf_pass = \"ignore\"");
    greylisted(rcpt("192.0.2.10", "pass"));
    ts_now = T0 + DELAY;
    greylisted(rcpt("198.51.100.20", "pass"));
    load("spf_pass = \"skip\"");
    assert_int_equal(rcpt("192.0.2.10", "pass").action, POLICY_DUNNO);
    assert_string_equal(record("gl:t:spf:big.test:alice@big.test:bob@example.test"), "");
    greylisted(rcpt("192.0.2.10", "neutral"));
}

/* end - the END stage of cl with a DKIM result (result "" for none) */
static struct policy_verdict end(struct policy_client *cl, const char *result, const char *d,
                                 const char *hdr)
{
    memset(cl->auth->dkim, 0, sizeof(cl->auth->dkim));
    cl->auth->ndkim = 0;
    if (result[0]) {
        snprintf(cl->auth->dkim[0].result, sizeof(cl->auth->dkim[0].result), "%s", result);
        snprintf(cl->auth->dkim[0].domain, sizeof(cl->auth->dkim[0].domain), "%s", d);
        cl->auth->ndkim = 1;
    }
    cl->header = hdr;
    cl->header_len = strlen(hdr);
    return ts_stage(C, POLICY_END, cl, 0).v;
}

/* transaction - MAIL then RCPT of a new transaction on cl */
static struct policy_verdict transaction(struct policy_client *cl)
{
    assert_int_equal(ts_stage(C, POLICY_MAIL, cl, 0).v.action, POLICY_DUNNO);
    return ts_stage(C, POLICY_RCPT, cl, 0).v;
}

/* test_dkim_defer - a recipient that would be greylisted is accepted at RCPT; at
 * the end of DATA an aligned DKIM pass lets the message in, anything else gets 451 */
static void test_dkim_defer(void **state)
{
    struct policy_client cl;
    struct policy_verdict v;
    char want[32];

    load("dkim_pass = \"defer\"  spf_pass = \"ignore\"");
    client(&cl, "192.0.2.10", "");
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    snprintf(want, sizeof(want), "first %d", T0); /* the retry is timed from here */
    assert_string_equal(record("gl:t:192.0.2.10/32:alice@big.test:bob@example.test"), want);
    v = end(&cl, "", "", "From: a@big.test\r\n");
    assert_greylisted(&v);
    assert_string_equal(v.reason, "deferred, no aligned dkim");
    /* a new transaction: a pass of another domain, or a failed one, is not enough */
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    greylisted(end(&cl, "pass", "other.test", "From: a@big.test\r\n"));
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    greylisted(end(&cl, "fail", "big.test", "From: a@big.test\r\n"));
    /* aligned with MAIL FROM, or with the From: domain: one organisational domain */
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    assert_int_equal(end(&cl, "pass", "big.test", "Subject: x\r\n").action, POLICY_DUNNO);
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    assert_int_equal(end(&cl, "pass", "news.test", "From: n@mail.news.test\r\n").action,
                     POLICY_DUNNO);
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    assert_int_equal(end(&cl, "pass", "dkim.big.test", "Subject: x\r\n").action, POLICY_DUNNO);
    /* a public suffix is nobody's organisation: co.uk does not align with x.co.uk */
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    greylisted(end(&cl, "pass", "co.uk", "From: a@shop.co.uk\r\n"));
    /* after the delay the retry passes at RCPT: nothing waits for the end */
    ts_now = T0 + DELAY;
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    assert_int_equal(end(&cl, "", "", "From: a@big.test\r\n").action, POLICY_DUNNO);
}

/* test_dkim_defer_forgotten - a new MAIL or the end of the session drops a deferral */
static void test_dkim_defer_forgotten(void **state)
{
    struct policy_client cl;

    load("dkim_pass = \"defer\"");
    client(&cl, "192.0.2.10", "");
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    policy_disconnect(policy_chain_for(C->pol, "mx"), &cl);
    assert_int_equal(end(&cl, "", "", "").action, POLICY_DUNNO);
    assert_int_equal(transaction(&cl).action, POLICY_DUNNO);
    assert_int_equal(ts_stage(C, POLICY_MAIL, &cl, 0).v.action, POLICY_DUNNO); /* RSET, MAIL */
    assert_int_equal(end(&cl, "", "", "").action, POLICY_DUNNO);
    /* without the mode the RCPT stage refuses, as ever */
    load("");
    greylisted(transaction(&cl));
}

/* test_bad_modes - the options name their modes */
static void test_bad_modes(void **state)
{
    struct policy_env env = ts_env(C);
    char err[512] = "";

    ts_policy_load(C,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"greylist\"} }\n"
                   "greylist { spf_pass = \"trust\"  dkim_pass = \"skip\" }\n",
                   &env, err, sizeof(err));
    assert_null(C->cfg);
    assert_non_null(strstr(err, "greylist: spf_pass must be \"pool\", \"skip\" or \"ignore\""));
    assert_non_null(strstr(err, "greylist: dkim_pass must be \"defer\" or \"ignore\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_retry_passes),
        cmocka_unit_test(test_no_spf_no_pool),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_dkim_defer),
        cmocka_unit_test(test_dkim_defer_forgotten),
        cmocka_unit_test(test_bad_modes),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
