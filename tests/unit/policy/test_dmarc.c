/* test_dmarc.c - the dmarc check: record parsing, organisational domains from the
 * Public Suffix List, alignment, pct with a controlled random source, and the
 * check through the real pipeline against a fake UDP DNS server */
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
#include "policy/dmarc.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "ts_dns.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

/* ---- records ---- */

static enum dmarc_parse parse(const char *txt, struct dmarc_record *r)
{
    return dmarc_record_parse(txt, strlen(txt), r);
}

/* test_record_tags - every tag read, spaces and case as RFC 7489 6.4 allows */
static void test_record_tags(void **state)
{
    struct dmarc_record r;

    assert_int_equal(parse("v=DMARC1; p=reject", &r), DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_REJECT);
    assert_int_equal(r.sp, DMARC_P_UNSET);
    assert_int_equal(r.np, DMARC_P_UNSET);
    assert_int_equal(r.pct, 100);
    assert_false(r.adkim_strict);
    assert_false(r.aspf_strict);
    assert_int_equal(parse("v=DMARC1;p=quarantine;sp=none;np=reject;pct=20;adkim=s;aspf=s;"
                           "rua=mailto:agg@example.test;ruf=mailto:f@example.test;fo=1",
                           &r),
                     DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_QUARANTINE);
    assert_int_equal(r.sp, DMARC_P_NONE);
    assert_int_equal(r.np, DMARC_P_REJECT);
    assert_int_equal(r.pct, 20);
    assert_true(r.adkim_strict);
    assert_true(r.aspf_strict);
    assert_false(r.p_from_rua);
    assert_int_equal(parse("  V = DMARC1 ;  P = Reject ; ADKIM = S ;", &r), DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_REJECT);
    assert_true(r.adkim_strict);
    assert_int_equal(parse("v=DMARC1; p=none; future=tag; junk; pct=0", &r), DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_NONE);
    assert_int_equal(r.pct, 0);
}

/* test_record_not_dmarc - v=DMARC1 first and exactly, or not a DMARC record */
static void test_record_not_dmarc(void **state)
{
    struct dmarc_record r;

    assert_int_equal(parse("p=reject; v=DMARC1", &r), DMARC_REC_NOT);
    assert_int_equal(parse("v=DMARC2; p=reject", &r), DMARC_REC_NOT);
    assert_int_equal(parse("v=dmarc1; p=reject", &r), DMARC_REC_NOT);
    assert_int_equal(parse("v=DMARC1x; p=reject", &r), DMARC_REC_NOT);
    assert_int_equal(parse("v=spf1 -all", &r), DMARC_REC_NOT);
    assert_int_equal(parse("", &r), DMARC_REC_NOT);
    assert_int_equal(dmarc_record_parse("v=DMARC1\0; p=reject", 19, &r), DMARC_REC_NOT);
}

/* test_record_bad_values - a bad p or sp makes the record unusable unless rua is
 * valid (then p=none, 6.6.3 step 6); other bad values fall back to defaults */
static void test_record_bad_values(void **state)
{
    struct dmarc_record r;

    assert_int_equal(parse("v=DMARC1", &r), DMARC_REC_INVALID);
    assert_int_equal(parse("v=DMARC1; p=bogus", &r), DMARC_REC_INVALID);
    assert_int_equal(parse("v=DMARC1; p=reject; sp=bogus", &r), DMARC_REC_INVALID);
    assert_int_equal(parse("v=DMARC1; p=bogus; rua=not a uri", &r), DMARC_REC_INVALID);
    assert_int_equal(dmarc_record_parse("v=DMARC1; p=re\0ject", 19, &r), DMARC_REC_INVALID);
    assert_int_equal(parse("v=DMARC1; p=bogus; rua=mailto:agg@example.test", &r), DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_NONE);
    assert_true(r.p_from_rua);
    assert_int_equal(parse("v=DMARC1; rua=junk,mailto:agg@example.test", &r), DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_NONE);
    assert_int_equal(parse("v=DMARC1; p=reject; pct=150; adkim=x; aspf=; np=maybe", &r),
                     DMARC_REC_OK);
    assert_int_equal(r.p, DMARC_P_REJECT);
    assert_int_equal(r.pct, 100);
    assert_false(r.adkim_strict);
    assert_false(r.aspf_strict);
    assert_int_equal(r.np, DMARC_P_UNSET);
    assert_int_equal(parse("v=DMARC1; p=reject; pct=-5", &r), DMARC_REC_OK);
    assert_int_equal(r.pct, 100);
}

/* ---- organisational domains and alignment ---- */

static psl_ctx_t *psl_file, *psl_builtin_list;

static int psl_setup(void **state)
{
    psl_file = dmarc_psl_load(PSL_FILE);
    psl_builtin_list = dmarc_psl_load("");
    return psl_file && psl_builtin_list ? 0 : -1;
}

static int psl_teardown(void **state)
{
    dmarc_psl_free(psl_file);
    dmarc_psl_free(psl_builtin_list);
    return 0;
}

static const char *org(const psl_ctx_t *psl, const char *d)
{
    static char out[256];

    dmarc_org_domain(psl, d, out, sizeof(out));
    return out;
}

/* test_org_domains - the PSL, not "the last two labels": co.uk is a suffix */
static void test_org_domains(void **state)
{
    const psl_ctx_t *lists[] = {psl_file, psl_builtin_list};

    for (int i = 0; i < 2; i++) {
        assert_string_equal(org(lists[i], "foo.example.co.uk"), "example.co.uk");
        assert_string_equal(org(lists[i], "a.b.foo.example.co.uk"), "example.co.uk");
        assert_string_equal(org(lists[i], "example.co.uk"), "example.co.uk");
        assert_string_equal(org(lists[i], "co.uk"), "co.uk");
        assert_string_equal(org(lists[i], "mail.example.com"), "example.com");
        assert_string_equal(org(lists[i], "a.b.example.test"), "example.test"); /* "*" rule */
    }
    assert_true(dmarc_aligned(psl_file, "foo.example.co.uk", "example.co.uk", 0));
    assert_false(dmarc_aligned(psl_file, "foo.example.co.uk", "example.co.uk", 1));
    assert_true(dmarc_aligned(psl_file, "example.co.uk", "example.co.uk", 1));
    assert_false(dmarc_aligned(psl_file, "example.co.uk", "other.co.uk", 0));
    assert_false(dmarc_aligned(psl_file, "", "example.co.uk", 0));
}

/* test_spf_alignment - SPF pass for the MAIL FROM domain, aspf relaxed or strict;
 * a HELO result only for the null sender */
static void test_spf_alignment(void **state)
{
    struct policy_auth a;

    memset(&a, 0, sizeof(a));
    strcpy(a.spf, "pass");
    strcpy(a.spf_domain, "bounce.example.co.uk");
    assert_true(dmarc_spf_aligned(psl_file, &a, 0, "example.co.uk", 0));
    assert_true(dmarc_spf_aligned(psl_file, &a, 0, "news.example.co.uk", 0));
    assert_false(dmarc_spf_aligned(psl_file, &a, 0, "example.co.uk", 1));
    assert_false(dmarc_spf_aligned(psl_file, &a, 0, "other.co.uk", 0));
    a.spf_helo = 1; /* the HELO name passed, MAIL FROM was not the decider */
    assert_false(dmarc_spf_aligned(psl_file, &a, 0, "example.co.uk", 0));
    assert_true(dmarc_spf_aligned(psl_file, &a, 1, "example.co.uk", 0)); /* postmaster@HELO */
    a.spf_helo = 0;
    strcpy(a.spf, "softfail");
    assert_false(dmarc_spf_aligned(psl_file, &a, 0, "example.co.uk", 0));
}

/* test_dkim_alignment - a passing signature whose d= aligns, adkim relaxed or strict */
static void test_dkim_alignment(void **state)
{
    struct policy_auth a;

    memset(&a, 0, sizeof(a));
    a.ndkim = 3;
    strcpy(a.dkim[0].result, "fail");
    strcpy(a.dkim[0].domain, "example.co.uk");
    strcpy(a.dkim[1].result, "pass");
    strcpy(a.dkim[1].domain, "esp.example");
    strcpy(a.dkim[2].result, "pass");
    strcpy(a.dkim[2].domain, "mail.example.co.uk");
    assert_int_equal(dmarc_dkim_aligned(psl_file, &a, "example.co.uk", 0), 2);
    assert_int_equal(dmarc_dkim_aligned(psl_file, &a, "example.co.uk", 1), -1);
    assert_int_equal(dmarc_dkim_aligned(psl_file, &a, "mail.example.co.uk", 1), 2);
    assert_int_equal(dmarc_dkim_aligned(psl_file, &a, "esp.example", 1), 1);
    assert_int_equal(dmarc_dkim_aligned(psl_file, &a, "other.co.uk", 0), -1);
    a.ndkim = 2; /* entries past ndkim do not count */
    assert_int_equal(dmarc_dkim_aligned(psl_file, &a, "example.co.uk", 0), -1);
}

/* ---- pct ---- */

static unsigned fixed_draw;
static unsigned draws;

static unsigned fixed_random(unsigned bound)
{
    draws++;
    return fixed_draw % bound;
}

/* test_pct_sampling - the policy applies when the draw (0..99) is below pct */
static void test_pct_sampling(void **state)
{
    dmarc_set_random(fixed_random);
    draws = 0;
    fixed_draw = 29;
    assert_true(dmarc_sampled(30));
    fixed_draw = 30;
    assert_false(dmarc_sampled(30));
    assert_int_equal(draws, 2);
    assert_true(dmarc_sampled(100)); /* no draw needed */
    assert_false(dmarc_sampled(0));
    assert_int_equal(draws, 2);
    dmarc_set_random(NULL);
}

/* ---- through the pipeline ---- */

static const struct ts_dns_entry table[] = {
    {"_dmarc.reject.test", 16, 0, 0, {{16, "v=DMARC1; p=reject; rua=mailto:agg@reject.test", 0}}},
    {"_dmarc.quar.test", 16, 0, 0, {{16, "v=DMARC1; p=quarantine", 0}}},
    {"_dmarc.none.test", 16, 0, 0, {{16, "v=DMARC1; p=none", 0}}},
    {"_dmarc.example.co.uk", 16, 0, 0, {{16, "v=DMARC1; p=reject; sp=quarantine", 0}}},
    {"_dmarc.strict.test", 16, 0, 0, {{16, "v=DMARC1; p=reject; adkim=s; aspf=s", 0}}},
    {"_dmarc.pct.test", 16, 0, 0, {{16, "v=DMARC1; p=reject; pct=50", 0}}},
    {"_dmarc.np.test", 16, 0, 0, {{16, "v=DMARC1; p=none; np=reject", 0}}},
    {"real.np.test", 1, 0, 0, {{1, "192.0.2.50", 0}}},
    {"_dmarc.two.test", 16, 0, 0, {{16, "v=DMARC1; p=reject", 0}, {16, "v=DMARC1; p=none", 0}}},
    {"_dmarc.mixed.test",
     16,
     0,
     0,
     {{16, "v=spf1 -all", 0}, {16, "v=DMARC1; p=reject", 0}, {16, "hello", 0}}},
    {"_dmarc.nop.test", 16, 0, 0, {{16, "v=DMARC1; p=junk", 0}}},
    {"_dmarc.rua.test", 16, 0, 0, {{16, "v=DMARC1; p=junk; rua=mailto:a@rua.test", 0}}},
    {"_dmarc.broken.test", 16, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"*.silent.test", 16, 0, 1, {{0, NULL, 0}}},
};

static struct ts_dns_world *C;

static int setup(void **state)
{
    static struct ts_dns_world c;

    C = &c;
    ts_dns_world_start(&c, "test_dmarc", table, sizeof(table) / sizeof(table[0]), 1);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ts_dns_world_stop(C);
    dmarc_set_random(NULL);
    return 0;
}

/* load - a listener running dmarc with this section; it must load */
static void load(const char *dmarc)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[1024], err[256] = "";

    env.dns = C->dns;
    snprintf(conf, sizeof(conf),
             "hostname = \"mx.example.test\"\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dmarc\"} }\n"
             "dmarc { %s }\n",
             dmarc);
    if (!ts_policy_load(&C->fx, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* message - the END stage of a message with header hdr; spf is the SPF result
 * for the MAIL FROM domain spf_domain ("" for none), dkim "result:d=" pairs */
static struct ts_outcome message(struct policy_client *cl, const char *hdr, const char *sender,
                                 const char *spf, const char *spf_domain, const char *dkim)
{
    ts_client(cl, "192.0.2.20");
    cl->helo = "client.example";
    cl->sender = sender;
    snprintf(cl->auth->spf, sizeof(cl->auth->spf), "%s", spf);
    snprintf(cl->auth->spf_domain, sizeof(cl->auth->spf_domain), "%s", spf_domain);
    if (dkim && dkim[0]) {
        const char *colon = strchr(dkim, ':');
        snprintf(cl->auth->dkim[0].result, sizeof(cl->auth->dkim[0].result), "%.*s",
                 (int)(colon - dkim), dkim);
        snprintf(cl->auth->dkim[0].domain, sizeof(cl->auth->dkim[0].domain), "%s", colon + 1);
        cl->auth->ndkim = 1;
    }
    cl->header = hdr;
    cl->header_len = strlen(hdr);
    return ts_stage(&C->fx, POLICY_END, cl, 5000);
}

/* from - a message from a@domain with nothing authenticated */
static struct ts_outcome from(struct policy_client *cl, const char *hdr)
{
    return message(cl, hdr, "bounce@elsewhere.example", "fail", "elsewhere.example", NULL);
}

/* test_reject_refuses_at_end - p=reject with SPF fail and no DKIM: 550 5.7.1
 * naming the domain; counted; the results are left for Authentication-Results */
static void test_reject_refuses_at_end(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "From: Alice <alice@reject.test>\r\nSubject: hi\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 550);
    assert_string_equal(o.v.status, "5.7.1");
    assert_string_equal(o.v.text, "DMARC policy of reject.test is reject: the From: domain is "
                                  "not authenticated by aligned SPF or DKIM");
    assert_string_equal(o.v.check, "dmarc");
    assert_non_null(strstr(o.v.reason, "result=fail domain=reject.test policy=reject"));
    assert_string_equal(cl.auth->dmarc, "fail");
    assert_string_equal(cl.auth->dmarc_policy, "reject");
    assert_string_equal(cl.auth->from_domain, "reject.test");
    assert_null(cl.add_headers);
    assert_int_equal(ts_stats_sum(&C->fx, "dmarc.reject"), 1);
}

/* test_quarantine_is_tagged - p=quarantine: accepted with X-Mxgate-DMARC */
static void test_quarantine_is_tagged(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "From: bob@quar.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "fail");
    assert_string_equal(cl.auth->dmarc_policy, "quarantine");
    assert_non_null(cl.add_headers);
    assert_string_equal(cl.add_headers, "X-Mxgate-DMARC: quarantine\r\n");
    free(cl.add_headers);
    assert_int_equal(ts_stats_sum(&C->fx, "dmarc.tag"), 1);
    load("quarantine = \"score\"  score = 9");
    o = from(&cl, "From: bob@quar.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO); /* a score goes on */
    assert_int_equal(cl.score, 9);
    assert_string_equal(cl.score_tests, "dmarc=9");
    assert_null(cl.add_headers);
    load("reject = \"tag\"");
    o = from(&cl, "From: bob@reject.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.add_headers, "X-Mxgate-DMARC: reject\r\n");
    free(cl.add_headers);
}

/* test_aligned_pass - SPF or DKIM aligned (relaxed by default) passes */
static void test_aligned_pass(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = message(&cl, "From: a@reject.test\r\n", "b@mail.reject.test", "pass", "mail.reject.test",
                NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "pass");
    assert_string_equal(cl.auth->dmarc_policy, "");
    o = message(&cl, "From: a@reject.test\r\n", "b@other.test", "pass", "other.test",
                "pass:news.reject.test");
    assert_string_equal(cl.auth->dmarc, "pass");
    o = message(&cl, "From: a@reject.test\r\n", "b@other.test", "pass", "other.test",
                "fail:reject.test"); /* a failing signature aligns nothing */
    assert_int_equal(o.v.action, POLICY_REJECT);
    /* strict: the same domains must be equal */
    o = message(&cl, "From: a@strict.test\r\n", "b@mail.strict.test", "pass", "mail.strict.test",
                "pass:dk.strict.test");
    assert_int_equal(o.v.action, POLICY_REJECT);
    o = message(&cl, "From: a@strict.test\r\n", "b@strict.test", "pass", "strict.test", NULL);
    assert_string_equal(cl.auth->dmarc, "pass");
    o = message(&cl, "From: a@strict.test\r\n", "b@x.test", "fail", "x.test", "pass:strict.test");
    assert_string_equal(cl.auth->dmarc, "pass");
}

/* test_org_domain_fallback - a subdomain without a record gets the organisational
 * domain's (sp), found through the PSL (example.co.uk, not co.uk) */
static void test_org_domain_fallback(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "From: a@foo.example.co.uk\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "fail");
    assert_string_equal(cl.auth->dmarc_policy, "quarantine"); /* sp */
    assert_string_equal(cl.auth->from_domain, "foo.example.co.uk");
    free(cl.add_headers);
    o = from(&cl, "From: a@example.co.uk\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT); /* p */
    o = message(&cl, "From: a@foo.example.co.uk\r\n", "b@bar.example.co.uk", "pass",
                "bar.example.co.uk", NULL); /* relaxed: one organisational domain */
    assert_string_equal(cl.auth->dmarc, "pass");
    o = from(&cl, "From: a@nothing.test\r\n"); /* no record anywhere */
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "none");
    assert_null(cl.add_headers);
}

/* test_np_for_non_existent_subdomains - np applies only when the subdomain has no
 * A, AAAA or MX (RFC 9091) */
static void test_np_for_non_existent_subdomains(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "From: a@ghost.np.test\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_non_null(strstr(o.v.text, "DMARC policy of ghost.np.test is reject"));
    o = from(&cl, "From: a@real.np.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc_policy, "none");
    o = from(&cl, "From: a@np.test\r\n"); /* the domain itself: p */
    assert_string_equal(cl.auth->dmarc_policy, "none");
}

/* test_pct_downgrades - a message pct leaves out gets the next less strict policy */
static void test_pct_downgrades(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    dmarc_set_random(fixed_random);
    fixed_draw = 49;
    o = from(&cl, "From: a@pct.test\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    fixed_draw = 50;
    o = from(&cl, "From: a@pct.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "fail");
    assert_string_equal(cl.auth->dmarc_policy, "quarantine");
    assert_string_equal(cl.add_headers, "X-Mxgate-DMARC: quarantine\r\n");
    free(cl.add_headers);
    dmarc_set_random(NULL);
}

/* test_unusable_records - several records, or one without a valid p: no DMARC
 * processing (permerror, nothing refused); rua makes a bad p count as p=none;
 * other TXT records beside a DMARC one are ignored */
static void test_unusable_records(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "From: a@two.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "permerror");
    o = from(&cl, "From: a@nop.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "permerror");
    o = from(&cl, "From: a@rua.test\r\n");
    assert_string_equal(cl.auth->dmarc, "fail");
    assert_string_equal(cl.auth->dmarc_policy, "none");
    o = from(&cl, "From: a@mixed.test\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
}

/* test_temperror - a DNS failure: no opinion by default, 451 4.7.1 when asked */
static void test_temperror(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "From: a@broken.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "temperror");
    load("temperror = \"tempfail\"");
    o = from(&cl, "From: a@broken.test\r\n");
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.7.1");
    assert_string_equal(o.v.text,
                        "DMARC policy of broken.test could not be looked up: try again later");
}

/* test_multiple_from - several author domains: each is checked and the strictest
 * failing policy applies (RFC 7489 6.6.1), or they are refused */
static void test_multiple_from(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    /* none.test passes by SPF; reject.test fails: the reject decides */
    o = message(&cl, "From: a@none.test, b@reject.test\r\n", "x@none.test", "pass", "none.test",
                NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_non_null(strstr(o.v.text, "reject.test"));
    assert_string_equal(cl.auth->from_domain, ""); /* header.from would name one of them */
    /* two From: fields (forbidden by RFC 5322) cannot hide the second one */
    o = from(&cl, "From: a@nothing.test\r\nSubject: x\r\nFrom: b@quar.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "fail");
    assert_string_equal(cl.auth->dmarc_policy, "quarantine");
    free(cl.add_headers);
    o = from(&cl, "From: a@quar.test\r\nFrom: b@reject.test\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    load("multiple_from = \"reject\"");
    o = from(&cl, "From: a@none.test, b@nothing.test\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 550);
    assert_string_equal(o.v.status, "5.7.1");
    assert_string_equal(o.v.text, "Several author domains in From: are not accepted");
    o = from(&cl, "From: a@none.test, b@none.test\r\n"); /* one domain: fine */
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "fail");
}

/* test_no_usable_author - no From:, or one without a domain: no DMARC (none,
 * permerror), or refused with bad_from = "reject" */
static void test_no_usable_author(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = from(&cl, "Subject: no from\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "none");
    o = from(&cl, "From: undisclosed\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_string_equal(cl.auth->dmarc, "permerror");
    load("bad_from = \"reject\"");
    o = from(&cl, "From: user@[192.0.2.1]\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text, "The From: header field cannot be read");
    o = from(&cl, "Subject: no from\r\n");
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text, "The message has no From: author domain");
}

/* test_cancel_mid_lookup - the session ends while DNS is silent: no verdict, no leak */
static void test_cancel_mid_lookup(void **state)
{
    struct policy_client cl;
    struct ts_outcome o = {0};
    struct policy_run *r;
    int never = 0;
    const char *hdr = "From: a@x.silent.test\r\n";

    load("");
    ts_client(&cl, "192.0.2.21");
    cl.sender = "";
    cl.header = hdr;
    cl.header_len = strlen(hdr);
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_END, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    assert_int_equal(o.calls, 0);
}

/* test_bad_config - every wrong value named; a list that cannot be loaded */
static void test_bad_config(void **state)
{
    struct policy_env env = ts_env(&C->fx);
    char err[512] = "";

    env.dns = C->dns;
    ts_policy_load(&C->fx,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dmarc\"} }\n"
                   "dmarc { quarantine = \"bounce\"  temperror = \"reject\" }\n",
                   &env, err, sizeof(err));
    assert_null(C->fx.cfg);
    assert_non_null(strstr(err, "dmarc: quarantine must be \"dunno\", \"tag\", \"score\" or "
                                "\"reject\", not \"bounce\""));
    ts_policy_load(&C->fx,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dmarc\"} }\n"
                   "dmarc { psl = \"/nonexistent/list.dat\" }\n",
                   &env, err, sizeof(err));
    assert_null(C->fx.pol);
    assert_non_null(strstr(err, "dmarc: psl: cannot load the Public Suffix List"));
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_record_tags),       cmocka_unit_test(test_record_not_dmarc),
        cmocka_unit_test(test_record_bad_values), cmocka_unit_test(test_org_domains),
        cmocka_unit_test(test_spf_alignment),     cmocka_unit_test(test_dkim_alignment),
        cmocka_unit_test(test_pct_sampling),
    };
    const struct CMUnitTest pipeline[] = {
        cmocka_unit_test(test_reject_refuses_at_end),
        cmocka_unit_test(test_quarantine_is_tagged),
        cmocka_unit_test(test_aligned_pass),
        cmocka_unit_test(test_org_domain_fallback),
        cmocka_unit_test(test_np_for_non_existent_subdomains),
        cmocka_unit_test(test_pct_downgrades),
        cmocka_unit_test(test_unusable_records),
        cmocka_unit_test(test_temperror),
        cmocka_unit_test(test_multiple_from),
        cmocka_unit_test(test_no_usable_author),
        cmocka_unit_test(test_cancel_mid_lookup),
        cmocka_unit_test(test_bad_config),
    };
    int rc = cmocka_run_group_tests(pure, psl_setup, psl_teardown);

    return rc | cmocka_run_group_tests(pipeline, setup, teardown);
}
