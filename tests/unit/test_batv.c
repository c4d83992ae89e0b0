/*
 * test_batv.c - the batv check through the real pipeline: config file,
 * policy_new, policy_start on an event loop, with the check's clock fixed
 * on day 20000 (so tags are the vectors of test_prvs.c, computed apart
 * with Python: prvs=1007b103fe=user@example.test is key 1 "s3cret", day 007).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/prvs.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define DAY 20000L
#define TAG1 "prvs=1007b103fe=user@example.test" /* key 1 "s3cret", expires 20007 */
#define TAG2 "prvs=200709212f=user@example.test" /* key 2 "older" */
#define RELAY_IP "192.0.2.10"                    /* in relay_networks */
#define OUTSIDE_IP "198.51.100.7"                /* not */
#define BAD_TEXT "Invalid or missing bounce address tag (BATV)"
#define OLD_TEXT "Bounce address tag expired (BATV)"

/* fx_setup - a temp directory, an event base, the clock on DAY */
static int fx_setup(void **state)
{
    ts_now = (time_t)DAY * 86400 + 3600;
    clock_set(ts_clock);
    return ts_fixture_setup(state, "test_batv");
}

/* fx_teardown - policy, config, files, base, clock */
static int fx_teardown(void **state)
{
    clock_set(NULL);
    return ts_fixture_teardown(state);
}

/* fx_policy - mxgate.conf with the batv check and section text; 0 or -1 (f->err) */
static int fx_policy(struct ts_fixture *f, const char *section)
{
    char conf[2048];
    struct policy_env env = ts_env(f);

    snprintf(conf, sizeof(conf),
             "hostname = \"mx.test\"\nspool_dir = \"%s/spool\"\nstate_dir = \"%s/state\"\n"
             "domains = {\"example.test\"}\nrelay_networks = {\"192.0.2.0/24\"}\n"
             "route \"*\" { to = \"smtp:[127.0.0.1]:2526\" }\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"batv\"} }\n%s",
             f->dir, f->dir, section);
    ts_policy_load(f, conf, &env, f->err, sizeof(f->err));
    assert_non_null(f->cfg);
    return f->pol ? 0 : -1;
}

#define SECTION                                                                                    \
    "batv { domains = {\"example.test\", \".sub.example.test\"}  key = 1\n"                        \
    "       secrets = {\"1:s3cret\", \"2:older\"}  days = 7 }\n"

/* fx_std - the usual configuration */
static void fx_std(struct ts_fixture *f)
{
    assert_int_equal(fx_policy(f, SECTION), 0);
}

/* fx_run - one stage of the "mx" chain for cl, on the event loop */
static struct policy_verdict fx_run(struct ts_fixture *f, enum policy_stage stage,
                                    struct policy_client *cl)
{
    return ts_stage(f, stage, cl, 10000).v;
}

/* client - an IPv4 client of the mx listener */
static void client(struct policy_client *cl, const char *ip)
{
    ts_client(cl, ip);
    cl->rdns = RDNS_NONE;
    cl->helo = "client.test";
}

/* mail - MAIL stage for sender from ip; the caller frees cl->sender_rewrite */
static struct policy_verdict mail(struct ts_fixture *f, struct policy_client *cl, const char *ip,
                                  const char *sender)
{
    client(cl, ip);
    cl->sender = sender;
    return fx_run(f, POLICY_MAIL, cl);
}

/* rcpt - RCPT stage for sender -> rcpt from ip; the caller frees cl->rcpt_rewrite */
static struct policy_verdict rcpt(struct ts_fixture *f, struct policy_client *cl, const char *ip,
                                  const char *sender, const char *to)
{
    client(cl, ip);
    cl->sender = sender;
    cl->rcpt = to;
    return fx_run(f, POLICY_RCPT, cl);
}

/* assert_refused - REJECT 550 5.7.1 "<addr>: TEXT" from batv with reason */
static void assert_refused(const struct policy_verdict *v, const char *addr, const char *text,
                           const char *reason)
{
    char want[300];

    snprintf(want, sizeof(want), "<%s>: %s", addr, text);
    assert_int_equal(v->action, POLICY_REJECT);
    assert_int_equal(v->code, 550);
    assert_string_equal(v->status, "5.7.1");
    assert_string_equal(v->text, want);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "batv");
}

/* assert_stripped - DUNNO, delivered to addr, and later checks see addr */
static void assert_stripped(const struct policy_verdict *v, struct policy_client *cl,
                            const char *addr)
{
    assert_int_equal(v->action, POLICY_DUNNO);
    assert_non_null(cl->rcpt_rewrite);
    assert_string_equal(cl->rcpt_rewrite, addr);
    assert_ptr_equal(cl->rcpt, cl->rcpt_rewrite);
    free(cl->rcpt_rewrite);
    cl->rcpt_rewrite = NULL;
}

/* a relay client's sender of a BATV domain is signed: the day-20000 vector */
static void test_sign_relay(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct prvs_parts parts;
    struct prvs_secrets keys = {.secret = {[1] = "s3cret"}};
    struct policy_verdict v;

    fx_std(f);
    v = mail(f, &cl, RELAY_IP, "user@example.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_string_equal(cl.sender, "user@example.test"); /* the session switches it */
    assert_non_null(cl.sender_rewrite);
    assert_string_equal(cl.sender_rewrite, TAG1);
    assert_int_equal(prvs_parse(cl.sender_rewrite, &parts), 0);
    assert_int_equal(prvs_check(&parts, &keys, DAY, 7), PRVS_VALID);
    free(cl.sender_rewrite);
    /* a subdomain pattern */
    v = mail(f, &cl, RELAY_IP, "a@x.sub.example.test");
    assert_non_null(cl.sender_rewrite);
    assert_int_equal(strncmp(cl.sender_rewrite, "prvs=1007", 9), 0);
    assert_string_equal(cl.sender_rewrite + PRVS_TAG_LEN, "a@x.sub.example.test");
    free(cl.sender_rewrite);
}

/* who is not signed */
static void test_sign_not(void **state)
{
    static const struct {
        const char *ip, *sender;
    } cases[] = {
        {OUTSIDE_IP, "user@example.test"},   /* not a relay client */
        {RELAY_IP, "user@other.test"},       /* not a BATV domain */
        {RELAY_IP, "user@sub.example.test"}, /* ".sub.example.test" is strict subdomains */
        {RELAY_IP, ""},                      /* the null sender */
        {RELAY_IP, TAG1},                    /* already tagged */
        {RELAY_IP, "PRVS=1007b103fe=user@example.test"},
        {RELAY_IP, "\"a b\"@example.test"}, /* quoted: the tag would not be an address */
        /* 49 octets: tagged it would pass the 64 of RFC 5321 */
        {RELAY_IP, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.test"},
    };
    struct ts_fixture *f = *state;
    struct policy_client cl;

    fx_std(f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_verdict v = mail(f, &cl, cases[i].ip, cases[i].sender);
        assert_int_equal(v.action, POLICY_DUNNO);
        assert_null(cl.sender_rewrite);
    }
    /* 48 octets still fit */
    mail(f, &cl, RELAY_IP, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.test");
    assert_non_null(cl.sender_rewrite);
    assert_int_equal(strchr(cl.sender_rewrite, '@') - cl.sender_rewrite, 64);
    free(cl.sender_rewrite);
}

/* a bounce to a good tag is accepted and delivered to the plain address */
static void test_bounce_good_tag(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_std(f);
    v = rcpt(f, &cl, OUTSIDE_IP, "", TAG1);
    assert_stripped(&v, &cl, "user@example.test");
    v = rcpt(f, &cl, OUTSIDE_IP, "", "PRVS=1007B103FE=user@example.test");
    assert_stripped(&v, &cl, "user@example.test");
    /* on the expiry day itself */
    ts_now = (time_t)(DAY + 7) * 86400 + 86399;
    v = rcpt(f, &cl, OUTSIDE_IP, "", TAG1);
    assert_stripped(&v, &cl, "user@example.test");
}

/* a tag made with key 2 validates while key 2 has a secret */
static void test_bounce_key_rotation(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_std(f);
    v = rcpt(f, &cl, OUTSIDE_IP, "", TAG2);
    assert_stripped(&v, &cl, "user@example.test");
    v = rcpt(f, &cl, OUTSIDE_IP, "", "prvs=3007b103fe=user@example.test");
    assert_refused(&v, "prvs=3007b103fe=user@example.test", BAD_TEXT, "unknown key 3");
    assert_null(cl.rcpt_rewrite);
}

/* a bounce without a tag is refused; postmaster still takes it */
static void test_bounce_untagged(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_std(f);
    v = rcpt(f, &cl, OUTSIDE_IP, "", "user@example.test");
    assert_refused(&v, "user@example.test", BAD_TEXT, "missing tag");
    assert_null(cl.rcpt_rewrite);
    v = rcpt(f, &cl, OUTSIDE_IP, "", "postmaster@example.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_null(cl.rcpt_rewrite);
    /* not a BATV domain: not ours to judge */
    v = rcpt(f, &cl, OUTSIDE_IP, "", "user@other.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    /* our own servers' reports (relay_networks) are not judged */
    v = rcpt(f, &cl, RELAY_IP, "", "user@example.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_null(cl.rcpt_rewrite);
}

/* altered tags: signature, local part, day */
static void test_bounce_bad_tag(void **state)
{
    static const char *const bad[] = {
        "prvs=1007b103ff=user@example.test",
        "prvs=1007b103fe=usEr@example.test",
        "prvs=1008b103fe=user@example.test",
    };
    struct ts_fixture *f = *state;
    struct policy_client cl;

    fx_std(f);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct policy_verdict v = rcpt(f, &cl, OUTSIDE_IP, "", bad[i]);
        assert_refused(&v, bad[i], BAD_TEXT, "bad signature key=1");
        assert_null(cl.rcpt_rewrite);
    }
}

/* a good tag past its day gets the expired text */
static void test_bounce_expired(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_std(f);
    ts_now = (time_t)(DAY + 8) * 86400;
    v = rcpt(f, &cl, OUTSIDE_IP, "", TAG1);
    assert_refused(&v, TAG1, OLD_TEXT, "expired day=007");
    assert_null(cl.rcpt_rewrite);
}

/* mail with a sender: never judged, a tag of ours is stripped all the same */
static void test_non_null_sender(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_std(f);
    v = rcpt(f, &cl, OUTSIDE_IP, "someone@other.test", "user@example.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_null(cl.rcpt_rewrite);
    assert_string_equal(cl.rcpt, "user@example.test");
    v = rcpt(f, &cl, OUTSIDE_IP, "someone@other.test", TAG1);
    assert_stripped(&v, &cl, "user@example.test");
    v = rcpt(f, &cl, OUTSIDE_IP, "someone@other.test", "prvs=1007b103ff=user@example.test");
    assert_stripped(&v, &cl, "user@example.test");
    /* a tag of somebody else's domain is theirs: left alone */
    v = rcpt(f, &cl, RELAY_IP, "user@example.test", "prvs=1007abcdef=x@other.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_null(cl.rcpt_rewrite);
}

/* addresses in canonical form: needless quotes and U-labels do not dodge or break BATV */
static void test_canonical(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_std(f);
    v = mail(f, &cl, RELAY_IP, "\"user\"@example.test"); /* signed as user@example.test */
    assert_non_null(cl.sender_rewrite);
    assert_string_equal(cl.sender_rewrite, TAG1);
    free(cl.sender_rewrite);
    mail(f, &cl, RELAY_IP, "\"prvs=1007b103fe=user\"@example.test"); /* already a tag */
    assert_null(cl.sender_rewrite);
    v = rcpt(f, &cl, OUTSIDE_IP, "", "\"prvs=1007b103fe=user\"@example.test");
    assert_stripped(&v, &cl, "user@example.test");
    v = rcpt(f, &cl, OUTSIDE_IP, "", "\"postmaster\"@example.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    v = rcpt(f, &cl, OUTSIDE_IP, "", "\"user\"@EXAMPLE.test");
    assert_refused(&v, "\"user\"@EXAMPLE.test", BAD_TEXT, "missing tag");

    ts_fixture_unload(f);
    assert_int_equal(fx_policy(f, "batv { domains = {\"B\xc3\x9c\x43HER.example\"}  key = 1\n"
                                  "       secrets = {\"1:s3cret\"} }\n"),
                     0);
    mail(f, &cl, RELAY_IP, "u@b\xc3\xbc\x63her.example");
    assert_non_null(cl.sender_rewrite);
    assert_string_equal(cl.sender_rewrite + PRVS_TAG_LEN, "u@xn--bcher-kva.example");
    free(cl.sender_rewrite);
    v = rcpt(f, &cl, OUTSIDE_IP, "", "u@xn--bcher-kva.example");
    assert_refused(&v, "u@xn--bcher-kva.example", BAD_TEXT, "missing tag");
}

/* a long tagged address is shown cut in the reply, never overflowing it */
static void test_long_address(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;
    char to[300];

    fx_std(f);
    memset(to, 'a', 240);
    memcpy(to + 240, "@example.test", 14);
    v = rcpt(f, &cl, OUTSIDE_IP, "", to);
    assert_int_equal(v.action, POLICY_REJECT);
    assert_string_equal(v.reason, "missing tag");
    assert_non_null(strstr(v.text, ">: " BAD_TEXT));
    assert_true(strlen(v.text) < sizeof(v.text) - 1);
}

/* the check listed without a section: nothing to sign or check */
static void test_no_section(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    assert_int_equal(fx_policy(f, ""), 0);
    v = rcpt(f, &cl, OUTSIDE_IP, "", "user@example.test");
    assert_int_equal(v.action, POLICY_DUNNO);
    v = mail(f, &cl, RELAY_IP, "user@example.test");
    assert_null(cl.sender_rewrite);
}

/* bad configurations fail policy_new with the file, line and what is wrong */
static void test_config_errors(void **state)
{
    static const struct {
        const char *section, *msg;
    } cases[] = {
        {"batv { domains = {\"example.test\"} secrets = {\"x:s\"} }", "not \"N:secret\""},
        {"batv { domains = {\"example.test\"} secrets = {\"1s3cret\"} }", "not \"N:secret\""},
        {"batv { domains = {\"example.test\"} secrets = {\"1:\"} }", "1 to 64 octets"},
        {"batv { domains = {\"example.test\"} secrets = {\"1:a\", \"1:b\"} }", "given twice"},
        {"batv { domains = {\"example.test\"} secrets = {\"2:a\"} }", "key 1 has no secret"},
        {"batv { domains = {\"example.test\"} key = 10 secrets = {\"1:a\"} }", "digit 0..9"},
        {"batv { domains = {\"example.test\"} secrets = {\"1:a\"} days = 0 }", "between 1"},
        {"batv { domains = {\"example.test\"} secrets = {\"1:a\"} days = 366 }", "between 1"},
        {"batv { domains = {\"a@example.test\"} secrets = {\"1:a\"} }", "not a domain"},
        {"batv { domains = {\"\"} secrets = {\"1:a\"} }", "not a domain"},
        {"batv { domains = {\"example.test\"} secrets = "
         "{\"1:kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\"} }",
         "1 to 64 octets"},
    };
    struct ts_fixture *f = *state;
    char where[128];

    /* the batv section starts on line 8 of the file fx_policy writes */
    snprintf(where, sizeof(where), "%s/mxgate.conf:8: batv:", f->dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(fx_policy(f, cases[i].section), -1);
        assert_non_null(strstr(f->err, where));
        assert_non_null(strstr(f->err, cases[i].msg));
        config_free(f->cfg);
        f->cfg = NULL;
    }
    /* a 64-octet secret is Exim's longest and fine */
    assert_int_equal(
        fx_policy(f, "batv { domains = {\"example.test\"} secrets = "
                     "{\"1:kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\"} }"),
        0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sign_relay, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sign_not, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_good_tag, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_key_rotation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_untagged, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_bad_tag, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounce_expired, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_non_null_sender, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_canonical, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_long_address, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_no_section, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
