/* test_dkim.c - the dkim check through the real pipeline: messages signed by dkimpy
 * and Mail::DKIM (tests/data/dkim/) streamed through policy_msg_*, their keys served
 * by a fake UDP DNS server, the END verdict and cl->auth->dkim */
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
#include "ts_dkim.h"
#include "ts_dns.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define NKEYS 5

struct ctx {
    struct ts_fixture fx;
    struct ts_dns_fake fake;
    struct dns *dns;
    struct ts_dns_entry table[NKEYS + 2];
    char rec[NKEYS][2400]; /* the records, split into strings of 250 by '|' */
};

static struct ctx *C;

/* split - a record as TXT strings of at most 250 octets ('|' between them) */
static void split(const char *rec, char *out, size_t outlen)
{
    size_t o = 0, n = strlen(rec);

    for (size_t i = 0; i < n && o + 2 < outlen; i++) {
        if (i > 0 && i % 250 == 0)
            out[o++] = '|';
        out[o++] = rec[i];
    }
    out[o] = '\0';
}

/* key - table entry i: name's TXT record rec */
static void key(size_t i, const char *name, const char *rec, int rcode, int drop)
{
    split(rec, C->rec[i], sizeof(C->rec[i]));
    C->table[i] = (struct ts_dns_entry){name, 16, rcode, drop, {{16, C->rec[i], 0}}};
}

/* setup - the keys of keys.txt, a testing key, a failing and a silent name */
static int setup(void **state)
{
    static struct ctx c;
    char testing[2100];

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_dkim"), 0);
    key(0, "rsa2048._domainkey.dkim.test", ts_dkim_record("rsa2048"), 0, 0);
    key(1, "ed25519._domainkey.dkim.test", ts_dkim_record("ed25519"), 0, 0);
    key(2, "rsa1024._domainkey.dkim.test", ts_dkim_record("rsa1024"), 0, 0);
    snprintf(testing, sizeof(testing), "t=y; %s", ts_dkim_record("rsa2048") + 9);
    key(3, "testing._domainkey.dkim.test", testing, 0, 0);
    key(4, "broken._domainkey.dkim.test", "", TS_RCODE_SERVFAIL, 0);
    c.table[5] = (struct ts_dns_entry){"silent._domainkey.dkim.test", 16, 0, 1, {{0, NULL, 0}}};
    ts_dns_fake_start(&c.fake, c.fx.base, c.table, NKEYS + 1);
    c.dns = ts_dns_resolver(&c.fake, c.fx.base, 2);
    c.fx.store = ts_store_open(&c.fx, "db", NULL, NULL);
    c.fx.stats = stats_new(c.fx.store);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ts_fixture_unload(&C->fx);
    dns_free(C->dns);
    ts_dns_fake_stop(&C->fake);
    ts_fixture_free(&C->fx);
    return 0;
}

/* load - a listener running dkim with this section; it must load */
static void load(const char *dkim)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[1024], err[256] = "";

    env.dns = C->dns;
    snprintf(conf, sizeof(conf),
             "hostname = \"mx.example.test\"\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dkim\"} }\n"
             "dkim { %s }\n",
             dkim);
    if (!ts_policy_load(&C->fx, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* stream_n - msg (len octets) through the message hooks as the session does: the
 * header once (truncated: as when it was over POLICY_HEADER_MAX), the body in pieces
 * of step octets */
static void stream_n(struct policy_client *cl, const char *msg, size_t len, size_t step,
                     int truncated)
{
    const char *body;
    size_t hlen, blen;

    ts_client(cl, "192.0.2.9");
    cl->helo = "client.example";
    cl->sender = "alice@dkim.test";
    ts_dkim_split(msg, len, &hlen, &body, &blen);
    cl->msg = policy_msg_begin(policy_chain_for(C->fx.pol, "mx"), cl);
    assert_non_null(cl->msg);
    policy_msg_header(cl->msg, msg, hlen, truncated);
    for (size_t i = 0; i < blen; i += step)
        policy_msg_body(cl->msg, body + i, blen - i < step ? blen - i : step);
    cl->header = msg;
    cl->header_len = hlen;
    cl->header_truncated = truncated;
}

static void stream(struct policy_client *cl, const char *msg, size_t step)
{
    stream_n(cl, msg, strlen(msg), step, 0);
}

/* end_n - the END stage of msg, streamed as stream_n does */
static struct ts_outcome end_n(struct policy_client *cl, const char *msg, size_t len, size_t step,
                               int truncated)
{
    struct ts_outcome o;

    stream_n(cl, msg, len, step, truncated);
    o = ts_stage(&C->fx, POLICY_END, cl, 5000);
    policy_msg_free(cl->msg);
    cl->msg = NULL;
    return o;
}

/* end - the END stage of msg, streamed in pieces of step */
static struct ts_outcome end(struct policy_client *cl, const char *msg, size_t step)
{
    return end_n(cl, msg, strlen(msg), step, 0);
}

/* fixture - a fixture, optionally with one string replaced (malloc'd) */
static char *fixture(const char *name, const char *from, const char *to)
{
    char *m = ts_dkim_read(name, NULL), *out;
    const char *p;

    if (!from)
        return m;
    p = strstr(m, from);
    assert_non_null(p);
    out = malloc(strlen(m) + strlen(to) + 1);
    assert_non_null(out);
    sprintf(out, "%.*s%s%s", (int)(p - m), m, to, p + strlen(from));
    free(m);
    return out;
}

/* test_signed_by_others_pass - dkimpy and Mail::DKIM, rsa and ed25519, simple and
 * relaxed, l=, two signatures: each pass, recorded in cl->auth->dkim in header order */
static void test_signed_by_others_pass(void **state)
{
    static const char *const names[] = {
        "py_rsa_relaxed.eml",   "py_rsa_simple.eml",   "py_ed25519.eml",   "py_rsa1024.eml",
        "perl_rsa_relaxed.eml", "perl_rsa_simple.eml", "py_rsa_length.eml"};
    struct policy_client cl;
    struct ts_outcome o;
    char *m, b[16];

    load("");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        m = fixture(names[i], NULL, NULL);
        o = end(&cl, m, 4096);
        assert_int_equal(o.v.action, POLICY_DUNNO);
        assert_int_equal(cl.auth->ndkim, 1);
        if (strcmp(cl.auth->dkim[0].result, "pass") != 0)
            fail_msg("%s: %s (%s)", names[i], cl.auth->dkim[0].result, cl.auth->dkim[0].reason);
        assert_string_equal(cl.auth->dkim[0].domain, "dkim.test");
        assert_string_equal(cl.auth->dkim[0].reason, "");
        snprintf(b, sizeof(b), "%.8s", strstr(m, " b=") + 3);
        assert_string_equal(cl.auth->dkim[0].b, b);
        free(m);
    }
    assert_string_equal(cl.auth->dkim[0].selector, "rsa2048");
    assert_string_equal(cl.auth->dkim[0].algo, "rsa-sha256");
    m = fixture("py_two.eml", NULL, NULL);
    o = end(&cl, m, 1000);
    assert_int_equal(cl.auth->ndkim, 2);
    assert_string_equal(cl.auth->dkim[0].algo, "ed25519-sha256");
    assert_string_equal(cl.auth->dkim[0].selector, "ed25519");
    assert_string_equal(cl.auth->dkim[0].result, "pass");
    assert_string_equal(cl.auth->dkim[1].algo, "rsa-sha256");
    assert_string_equal(cl.auth->dkim[1].result, "pass");
    free(m);
}

/* test_streamed_in_small_pieces - the body hash does not depend on how the body arrives */
static void test_streamed_in_small_pieces(void **state)
{
    struct policy_client cl;
    char *m = fixture("py_two.eml", NULL, NULL);

    load("");
    for (size_t step = 1; step <= 7; step++) {
        end(&cl, m, step);
        assert_string_equal(cl.auth->dkim[0].result, "pass");
        assert_string_equal(cl.auth->dkim[1].result, "pass");
    }
    free(m);
}

/* test_modified_fails_dunno_by_default - a changed body or header is a fail with its
 * reason; by default no action (DMARC decides) and nothing counted */
static void test_modified_fails_dunno_by_default(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    char *m = fixture("perl_rsa_relaxed.eml", "Hello Bob", "Hello Eve");

    load("");
    o = end(&cl, m, 64);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dkim[0].result, "fail");
    assert_string_equal(cl.auth->dkim[0].reason, "body hash mismatch");
    free(m);
    m = fixture("py_ed25519.eml", "To: bob@", "To: eve@");
    end(&cl, m, 64);
    assert_string_equal(cl.auth->dkim[0].result, "fail");
    assert_string_equal(cl.auth->dkim[0].reason, "signature did not verify");
    free(m);
    assert_int_equal(ts_stats_sum(&C->fx, "dkim.reject"), 0);
}

/* test_fail_actions - reject, tempfail, score; one passing signature of two is enough */
static void test_fail_actions(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    char *bad = fixture("py_rsa_relaxed.eml", "Hello Bob", "Hello Eve"),
         *half = fixture("py_two.eml", "A  test", "A  tent");

    load("fail = \"reject\"");
    o = end(&cl, bad, 4096);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 550);
    assert_string_equal(o.v.status, "5.7.20");
    assert_string_equal(o.v.text, "DKIM: no valid signature");
    assert_string_equal(o.v.reason, "result=fail domain=dkim.test signatures=1 "
                                    "reason=body hash mismatch");
    assert_int_equal(ts_stats_sum(&C->fx, "dkim.reject"), 1);
    o = end(&cl, half, 4096); /* both fail: Subject is signed by both */
    assert_int_equal(o.v.action, POLICY_REJECT);
    free(half);
    half = fixture("py_two.eml", "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;",
                   "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/simple;");
    o = end(&cl, half, 4096);
    assert_int_equal(o.v.action, POLICY_DUNNO); /* the rsa one passes */
    assert_string_equal(cl.auth->dkim[0].result, "fail");
    assert_string_equal(cl.auth->dkim[1].result, "pass");
    load("fail = \"tempfail\"");
    o = end(&cl, bad, 4096);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.7.20");
    assert_string_equal(o.v.text, "DKIM: no valid signature, try again later");
    load("fail = \"score\"  score = 7");
    o = end(&cl, bad, 4096);
    assert_int_equal(o.v.action, POLICY_DUNNO); /* a SCORE adds up, the score check decides */
    assert_int_equal(cl.score, 7);
    assert_int_equal(ts_stats_sum(&C->fx, "dkim.score"), 1);
    assert_string_equal(cl.score_tests, "dkim=7");
    free(bad);
    free(half);
}

/* test_refused_without_dns - rsa-sha1 is policy and needs no lookup; a bad field is
 * permerror and shows nothing of itself; a missing key is permerror */
static void test_refused_without_dns(void **state)
{
    struct policy_client cl;
    int before;
    char *m = fixture("py_rsa_sha1.eml", NULL, NULL);

    load("fail = \"reject\"");
    before = C->fake.queries;
    end(&cl, m, 4096);
    assert_int_equal(C->fake.queries, before);
    assert_string_equal(cl.auth->dkim[0].result, "policy");
    assert_string_equal(cl.auth->dkim[0].reason, "rsa-sha1 is not accepted (RFC 8301)");
    assert_string_equal(cl.auth->dkim[0].algo, "rsa-sha1");
    free(m);
    m = fixture("py_rsa_relaxed.eml", "d=dkim.test;", "d=dkim..test;");
    end(&cl, m, 4096);
    assert_string_equal(cl.auth->dkim[0].result, "permerror");
    assert_string_equal(cl.auth->dkim[0].reason, "bad d=");
    assert_string_equal(cl.auth->dkim[0].domain, "");
    free(m);
    m = fixture("py_rsa_relaxed.eml", "s=rsa2048;", "s=nokey;");
    end(&cl, m, 4096);
    assert_string_equal(cl.auth->dkim[0].result, "permerror");
    assert_string_equal(cl.auth->dkim[0].reason, "no key for signature");
    assert_string_equal(cl.auth->dkim[0].selector, "nokey");
    assert_true(C->fake.queries > before);
    free(m);
}

/* test_temperror - a key lookup that fails: temperror, with its own action */
static void test_temperror(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    char *m = fixture("py_rsa_relaxed.eml", "s=rsa2048;", "s=broken;");

    load("fail = \"reject\"");
    o = end(&cl, m, 4096);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dkim[0].result, "temperror");
    assert_string_equal(cl.auth->dkim[0].reason, "key lookup: servfail");
    load("temperror = \"tempfail\"");
    o = end(&cl, m, 4096);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.4.3");
    assert_string_equal(o.v.text, "DKIM: key lookup failed, try again later");
    free(m);
}

/* test_testing_key_never_acted_on - t=y: the result is reported, the action not taken */
static void test_testing_key_never_acted_on(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    char *m = fixture("py_rsa_relaxed.eml", "s=rsa2048;", "s=testing;");

    load("fail = \"reject\"");
    o = end(&cl, m, 4096);
    assert_string_equal(cl.auth->dkim[0].result, "fail");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    free(m);
}

/* test_unsigned_and_max_signatures - no signature: nothing recorded; with
 * max_signatures = 1 only the first is checked */
static void test_unsigned_and_max_signatures(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    char *m = fixture("py_two.eml", NULL, NULL), *plain = strstr(m, "From: Alice");

    load("");
    o = end(&cl, plain, 4096);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(cl.auth->ndkim, 0);
    load("max_signatures = 1");
    end(&cl, m, 4096);
    assert_int_equal(cl.auth->ndkim, 1);
    assert_string_equal(cl.auth->dkim[0].algo, "ed25519-sha256");
    free(m);
}

/* test_nul_and_truncated_header - a NUL inside a signature field is a syntax error
 * (the field is not cut short at it); a header section that was too long to keep
 * leaves every signature neutral, with no lookup and no action (nothing failed) */
static void test_nul_and_truncated_header(void **state)
{
    struct policy_client cl;
    size_t len;
    char *m = fixture("py_rsa_relaxed.eml", NULL, NULL);
    int before;

    load("fail = \"reject\"");
    len = strlen(m);
    strstr(m, "s=rsa2048;")[2] = '\0';
    end_n(&cl, m, len, 4096, 0);
    assert_string_equal(cl.auth->dkim[0].result, "permerror");
    assert_string_equal(cl.auth->dkim[0].reason, "bad character in tag s");
    free(m);
    m = fixture("py_two.eml", NULL, NULL);
    before = C->fake.queries;
    assert_int_equal(end_n(&cl, m, strlen(m), 4096, 1).v.action, POLICY_DUNNO);
    assert_int_equal(C->fake.queries, before);
    assert_int_equal(cl.auth->ndkim, 2);
    assert_string_equal(cl.auth->dkim[1].result, "neutral");
    assert_string_equal(cl.auth->dkim[1].reason, "header section too long to check");
    free(m);
}

/* test_cancel_mid_lookup - the session ends while DNS is silent: no verdict, nothing
 * leaks (ASan), and the loop runs on */
static void test_cancel_mid_lookup(void **state)
{
    struct policy_client cl;
    struct ts_outcome o = {0};
    struct policy_run *r;
    int never = 0;
    char *m = fixture("py_rsa_relaxed.eml", "s=rsa2048;", "s=silent;");

    load("");
    stream(&cl, m, 4096);
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_END, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    policy_cancel(r);
    policy_msg_free(cl.msg);
    ts_run_until(C->fx.base, &never, 1, 200);
    assert_int_equal(o.calls, 0);
    free(m);
}

/* test_bad_configuration - actions are one of four, max_signatures 1..8 */
static void test_bad_configuration(void **state)
{
    struct policy_env env = ts_env(&C->fx);
    char err[512] = "";

    env.dns = C->dns;
    ts_policy_load(&C->fx,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dkim\"} }\n"
                   "dkim { fail = \"bounce\"  max_signatures = 9 }\n",
                   &env, err, sizeof(err));
    assert_null(C->fx.cfg);
    assert_non_null(strstr(err, "dkim: fail must be"));
    assert_non_null(strstr(err, "max_signatures"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_by_others_pass),
        cmocka_unit_test(test_streamed_in_small_pieces),
        cmocka_unit_test(test_modified_fails_dunno_by_default),
        cmocka_unit_test(test_fail_actions),
        cmocka_unit_test(test_refused_without_dns),
        cmocka_unit_test(test_temperror),
        cmocka_unit_test(test_testing_key_never_acted_on),
        cmocka_unit_test(test_unsigned_and_max_signatures),
        cmocka_unit_test(test_nul_and_truncated_header),
        cmocka_unit_test(test_cancel_mid_lookup),
        cmocka_unit_test(test_bad_configuration),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
