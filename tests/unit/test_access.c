/* test_access.c - the access check through the real pipeline, config and list files */
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

#include "core/config.h"
#include "policy/policy.h"
#include "ts_fixture.h"
#include "ts_fs.h"
#include "ts_policy.h"

/* fx_write - a list file in the fixture directory */
static void fx_write(const struct ts_fixture *f, const char *name, const char *text)
{
    ts_write_file(f->dir, name, text, NULL, 0);
}

/* fx_setup - a temp directory and an event base */
static int fx_setup(void **state)
{
    return ts_fixture_setup(state, "test_access");
}

/* fx_run - one stage of the "mx" chain for cl, on the event loop */
static struct policy_verdict fx_run(struct ts_fixture *f, enum policy_stage stage,
                                    struct policy_client *cl)
{
    struct ts_outcome o = ts_stage(f, stage, cl, 10000);

    assert_int_equal(o.sync, 0); /* never from inside policy_start */
    return o.v;
}

/* assert_reject - REJECT 554 5.7.1 text, from access, for reason */
static void assert_reject(const struct policy_verdict *v, const char *text, const char *reason)
{
    assert_int_equal(v->action, POLICY_REJECT);
    assert_int_equal(v->code, 554);
    assert_string_equal(v->status, "5.7.1");
    assert_string_equal(v->text, text);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "access");
}

/* assert_ok - OK from access for reason */
static void assert_ok(const struct policy_verdict *v, const char *reason)
{
    assert_int_equal(v->action, POLICY_OK);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "access");
}

/* connect_ip - CONNECT verdict for a client without rDNS */
static struct policy_verdict connect_ip(struct ts_fixture *f, const char *ip,
                                        struct policy_client *cl)
{
    ts_client_rdns(cl, ip, RDNS_NONE, NULL);
    return fx_run(f, POLICY_CONNECT, cl);
}

static void test_client_longest_prefix(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "client",
             "# networks\n"
             "192.0.2.0/24   deny   Go away, network\n"
             "192.0.2.0/28   allow\n"
             "\n"
             "192.0.2.5      deny   Single host  \n"
             "2001:db8::/32  deny\n"
             "2001:db8:1::/48 allow\r\n"
             "10.0.0.0/8     deny\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"", "access { client = \"@/client\" }\n"), 0);

    v = connect_ip(f, "192.0.2.5", &cl);
    assert_reject(&v, "Single host", "client 192.0.2.5");
    assert_int_equal(cl.allowlisted, 0);
    v = connect_ip(f, "192.0.2.6", &cl);
    assert_ok(&v, "client 192.0.2.0/28");
    assert_int_equal(cl.allowlisted, 1);
    v = connect_ip(f, "192.0.2.77", &cl);
    assert_reject(&v, "Go away, network", "client 192.0.2.0/24");
    v = connect_ip(f, "198.51.100.1", &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_int_equal(cl.allowlisted, 0);
    v = connect_ip(f, "2001:db8::1", &cl);
    assert_reject(&v, "Access denied", "client 2001:db8::/32");
    v = connect_ip(f, "2001:db8:1::9", &cl);
    assert_ok(&v, "client 2001:db8:1::/48");
    assert_int_equal(cl.allowlisted, 1);
    v = connect_ip(f, "::ffff:10.1.2.3", &cl); /* v4-mapped counts as IPv4 */
    assert_reject(&v, "Access denied", "client 10.0.0.0/8");
    v = connect_ip(f, "2001:db9::1", &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

static void test_rdns_regex(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "client", "192.0.2.1 deny Listed address\n");
    fx_write(f, "rdns",
             "^mail\\.good\\.example$      allow\n"
             "/\\.dyn\\.example\\.net$/   deny   Dynamic\n"
             "^unknown$                 deny   No rDNS\n"
             "dyn                       allow  never reached for .dyn.example.net\n");
    assert_int_equal(
        ts_policy_checks(f, "\"access\"", "access { client = \"@/client\" rdns = \"@/rdns\" }\n"),
        0);

    ts_client_rdns(&cl, "198.51.100.2", RDNS_CONFIRMED, "MAIL.Good.Example");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_ok(&v, "rdns /^mail\\.good\\.example$/");
    assert_int_equal(cl.allowlisted, 1);

    ts_client_rdns(&cl, "198.51.100.3", RDNS_CONFIRMED, "host1.DYN.example.net");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_reject(&v, "Dynamic", "rdns /\\.dyn\\.example\\.net$/");

    ts_client_rdns(&cl, "198.51.100.4", RDNS_NONE, NULL);
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_reject(&v, "No rDNS", "rdns /^unknown$/");

    /* a name that is not forward-confirmed is matched as "unknown", never by its PTR */
    ts_client_rdns(&cl, "198.51.100.5", RDNS_UNCONFIRMED, "mail.good.example");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_reject(&v, "No rDNS", "rdns /^unknown$/");
    assert_int_equal(cl.allowlisted, 0);

    ts_client_rdns(&cl, "198.51.100.6", RDNS_CONFIRMED, "other.example");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);

    /* the client list is consulted first */
    ts_client_rdns(&cl, "192.0.2.1", RDNS_CONFIRMED, "mail.good.example");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_reject(&v, "Listed address", "client 192.0.2.1");
    assert_int_equal(cl.allowlisted, 0);
}

static void test_helo(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "helo", "^localhost$ deny You are not localhost\n^friend\\.example$ allow\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"", "access { helo = \"@/helo\" }\n"), 0);

    ts_client_rdns(&cl, "198.51.100.7", RDNS_NONE, NULL);
    v = fx_run(f, POLICY_CONNECT, &cl); /* no client or rdns list: no opinion */
    assert_int_equal(v.action, POLICY_DUNNO);
    cl.helo = "LOCALHOST";
    v = fx_run(f, POLICY_HELO, &cl);
    assert_reject(&v, "You are not localhost", "helo /^localhost$/");
    cl.helo = "friend.example";
    v = fx_run(f, POLICY_HELO, &cl);
    assert_ok(&v, "helo /^friend\\.example$/");
    assert_int_equal(cl.allowlisted, 0); /* HELO is the client's word: no session trust */
    cl.helo = "localhost.example";
    v = fx_run(f, POLICY_HELO, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

/* mail_from - the MAIL verdict for sender */
static struct policy_verdict mail_from(struct ts_fixture *f, struct policy_client *cl,
                                       const char *sender)
{
    cl->sender = sender;
    return fx_run(f, POLICY_MAIL, cl);
}

static void test_sender(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "sender",
             "spam.example          deny  Domain tree\n"
             ".sub.spam.example     allow\n"
             "@exact.example        deny  Exact domain\n"
             "boss@spam.example     allow\n"
             "<>                    deny  No bounces\n"
             "Mixed@Case.Example    deny  Address\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"", "access { sender = \"@/sender\" }\n"), 0);
    ts_client_rdns(&cl, "198.51.100.8", RDNS_NONE, NULL);

    v = mail_from(f, &cl, "boss@SPAM.example"); /* exact address beats the domain */
    assert_ok(&v, "sender boss@spam.example");
    assert_int_equal(cl.allowlisted, 0);
    v = mail_from(f, &cl, "x@spam.example");
    assert_reject(&v, "Domain tree", "sender spam.example");
    v = mail_from(f, &cl, "x@deep.er.spam.example");
    assert_reject(&v, "Domain tree", "sender spam.example");
    v = mail_from(f, &cl, "x@a.sub.spam.example"); /* the longer domain wins */
    assert_ok(&v, "sender .sub.spam.example");
    v = mail_from(f, &cl, "x@sub.spam.example"); /* .sub covers subdomains only */
    assert_reject(&v, "Domain tree", "sender spam.example");
    v = mail_from(f, &cl, "x@EXACT.example");
    assert_reject(&v, "Exact domain", "sender @exact.example");
    v = mail_from(f, &cl, "x@a.exact.example"); /* @domain: not its subdomains */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = mail_from(f, &cl, "");
    assert_reject(&v, "No bounces", "sender <>");
    v = mail_from(f, &cl, "mixed@case.example");
    assert_reject(&v, "Address", "sender Mixed@Case.Example");
    v = mail_from(f, &cl, "x@notspam.example"); /* a suffix, not a subdomain */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = mail_from(f, &cl, "postmaster");
    assert_int_equal(v.action, POLICY_DUNNO);
}

static void test_rcpt(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "rcpt", "ours.example deny Closed\nabuse@ours.example allow\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"", "access { rcpt = \"@/rcpt\" }\n"), 0);
    ts_client_rdns(&cl, "198.51.100.9", RDNS_NONE, NULL);
    cl.sender = "someone@spam.example";
    v = fx_run(f, POLICY_MAIL, &cl); /* no sender list */
    assert_int_equal(v.action, POLICY_DUNNO);
    cl.rcpt = "Abuse@ours.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_ok(&v, "rcpt abuse@ours.example");
    cl.rcpt = "sales@ours.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_reject(&v, "Closed", "rcpt ours.example");
    cl.rcpt = "sales@theirs.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

/* test_canonical - quoting, IDNA and case variants of a listed address or domain
 * are the listed address or domain: none of them dodges a deny */
static void test_canonical(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "sender",
             "ceo@example.test            deny  No CEO fraud\n"
             "\"a\\\"b\"@example.test         deny  Quote\n"
             "@b\xc3\xbc\x63her.example      deny  Books\n"
             "xn--mnchen-3ya.example      deny  Munich\n"
             "\"boss\"@spam.example         allow\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"", "access { sender = \"@/sender\" }\n"), 0);
    ts_client_rdns(&cl, "198.51.100.8", RDNS_NONE, NULL);
    v = mail_from(f, &cl, "\"ceo\"@example.test");
    assert_reject(&v, "No CEO fraud", "sender ceo@example.test");
    v = mail_from(f, &cl, "\"c\\eo\"@EXAMPLE.test");
    assert_reject(&v, "No CEO fraud", "sender ceo@example.test");
    v = mail_from(f, &cl, "CEO@example.test");
    assert_reject(&v, "No CEO fraud", "sender ceo@example.test");
    v = mail_from(f, &cl, "ceo@\xef\xbd\x85xample.test"); /* full-width e */
    assert_reject(&v, "No CEO fraud", "sender ceo@example.test");
    v = mail_from(f, &cl, "\"\\a\\\"b\"@example.test");
    assert_reject(&v, "Quote", "sender \"a\\\"b\"@example.test");
    v = mail_from(f, &cl, "x@xn--bcher-kva.example");
    assert_reject(&v, "Books", "sender @b\xc3\xbc\x63her.example");
    v = mail_from(f, &cl, "x@B\xc3\x9c\x43HER.example");
    assert_reject(&v, "Books", "sender @b\xc3\xbc\x63her.example");
    v = mail_from(f, &cl, "x@mail.m\xc3\xbcnchen.example");
    assert_reject(&v, "Munich", "sender xn--mnchen-3ya.example");
    v = mail_from(f, &cl, "boss@spam.example");
    assert_ok(&v, "sender \"boss\"@spam.example");
    v = mail_from(f, &cl, "\"ce o\"@example.test"); /* another address */
    assert_int_equal(v.action, POLICY_DUNNO);
}

/* expect_init_error - the list file named key with text fails init with "FILE:LINE: msg" */
static void expect_init_error(const char *key, const char *text, int line, const char *msg)
{
    struct ts_fixture *f;
    char sections[128], want[256];

    assert_int_equal(fx_setup((void **)&f), 0);
    fx_write(f, "list", text);
    snprintf(sections, sizeof(sections), "access { %s = \"@/list\" }\n", key);
    assert_int_equal(ts_policy_checks(f, "\"access\"", sections), -1);
    snprintf(want, sizeof(want), "%s/list:%d: %s", f->dir, line, msg);
    if (!strstr(f->err, want))
        fail_msg("error \"%s\" lacks \"%s\"", f->err, want);
    assert_int_equal(ts_fixture_teardown((void **)&f), 0);
}

static void test_malformed(void **state)
{
    expect_init_error("client", "# c\n\n192.0.2.300 deny\n", 3, "bad address or network");
    expect_init_error("client", "192.0.2.0/33 deny\n", 1, "bad address or network");
    expect_init_error("client", "192.0.2.1\n", 1, "missing action");
    expect_init_error("client", "192.0.2.1 maybe\n", 1, "action must be allow or deny");
    expect_init_error("client", "192.0.2.1 deny bad\x01text\n", 1,
                      "reply text must be printable ASCII");
    expect_init_error("rdns", "ok allow\n^(unclosed deny\n", 2, "bad regular expression");
    expect_init_error("helo", "// deny\n", 1, "empty regular expression");
    expect_init_error("sender", "@ deny\n", 1, "bad address or domain");
    expect_init_error("rcpt", "x@ deny\n", 1, "bad address or domain");
    expect_init_error("sender", "..example deny\n", 1, "bad address or domain");
    expect_init_error("rcpt", "a@b@ deny\n", 1, "bad address or domain");
    expect_init_error("rcpt", "a..b@example.test deny\n", 1, "bad address or domain");
}

static void test_missing_file(void **state)
{
    struct ts_fixture *f = *state;

    assert_int_equal(ts_policy_checks(f, "\"access\"", "access { client = \"@/nonexistent\" }\n"),
                     -1);
    assert_non_null(strstr(f->err, "/nonexistent:0: cannot open"));
}

static void test_long_line(void **state)
{
    struct ts_fixture *f = *state;
    char *text = malloc(5000);

    assert_non_null(text);
    memset(text, 'a', 4000);
    strcpy(text + 4000, " deny\n");
    fx_write(f, "helo", "^ok$ allow\n");
    fx_write(f, "rdns", text);
    free(text);
    assert_int_equal(
        ts_policy_checks(f, "\"access\"", "access { helo = \"@/helo\" rdns = \"@/rdns\" }\n"), -1);
    assert_non_null(strstr(f->err, "/rdns:1: line longer than"));
}

static void test_reload(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "client", "192.0.2.1 deny First\n");
    fx_write(f, "sender", "spam.example deny\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"",
                                      "access { client = \"@/client\" sender = \"@/sender\" }\n"),
                     0);
    v = connect_ip(f, "192.0.2.1", &cl);
    assert_reject(&v, "First", "client 192.0.2.1");

    fx_write(f, "client", "192.0.2.1 allow\n192.0.2.2 deny Second\n");
    policy_reload(f->pol);
    v = connect_ip(f, "192.0.2.1", &cl);
    assert_ok(&v, "client 192.0.2.1");
    v = connect_ip(f, "192.0.2.2", &cl);
    assert_reject(&v, "Second", "client 192.0.2.2");

    /* a broken file: the lists of the last good load stay, all of them */
    fx_write(f, "client", "192.0.2.1 deny Third\n192.0.2.2 allow\n");
    fx_write(f, "sender", "bad@ deny\n");
    policy_reload(f->pol);
    v = connect_ip(f, "192.0.2.2", &cl);
    assert_reject(&v, "Second", "client 192.0.2.2");
    cl.sender = "x@spam.example";
    v = fx_run(f, POLICY_MAIL, &cl);
    assert_reject(&v, "Access denied", "sender spam.example");

    /* a file that disappeared: same */
    fx_write(f, "sender", "spam.example deny\n");
    {
        char path[128];
        snprintf(path, sizeof(path), "%s/client", f->dir);
        assert_int_equal(unlink(path), 0);
    }
    policy_reload(f->pol);
    v = connect_ip(f, "192.0.2.1", &cl);
    assert_ok(&v, "client 192.0.2.1");
}

static void test_allowlisted_skips_others(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "client", "192.0.2.1 allow\n");
    assert_int_equal(ts_policy_checks(f, "\"access\", \"s25r\"",
                                      "access { client = \"@/client\" }\n"
                                      "s25r { action = \"reject\" }\n"),
                     0);
    /* not listed: s25r refuses the dynamic-looking name */
    ts_client_rdns(&cl, "192.0.2.9", RDNS_CONFIRMED, "dhcp42.example.org");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_int_equal(v.action, POLICY_REJECT);
    assert_string_equal(v.check, "s25r");

    /* listed: access trusts it and s25r never judges it */
    ts_client_rdns(&cl, "192.0.2.1", RDNS_CONFIRMED, "dhcp42.example.org");
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_ok(&v, "client 192.0.2.1");
    assert_int_equal(cl.allowlisted, 1);

    /* the mark holds for the session: a later run skips s25r, access still runs */
    cl.rdns = RDNS_NONE;
    cl.rdns_name = NULL;
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_ok(&v, "client 192.0.2.1");
    ts_client_rdns(&cl, "192.0.2.9", RDNS_NONE, NULL);
    cl.allowlisted = 1;
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_int_equal(cl.suspicious, 0);
}

/* A connect refusal held until RCPT: answered for every recipient but
 * postmaster@ of our domains and the recipients the rcpt list allows. */
static void test_held_refusal(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict held, v;

    fx_write(f, "rcpt", "abuse@ours.example allow\nblocked@ours.example deny Closed\n");
    assert_int_equal(ts_policy_checks(f, "\"access\"",
                                      "access { rcpt = \"@/rcpt\" }\n"
                                      "domains = {\"ours.example\"}\n"
                                      "route \"ours.example\" { to = \"smtp:[127.0.0.1]:25\" }\n"),
                     0);
    policy_verdict_set(&held, POLICY_REJECT, 554, "5.7.1", "zone=bl.example", "Listed");
    held.check = "dnsbl";
    ts_client_rdns(&cl, "198.51.100.9", RDNS_NONE, NULL);
    cl.held = &held;
    cl.rcpt = "sales@ours.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_int_equal(v.action, POLICY_REJECT);
    assert_string_equal(v.check, "dnsbl");
    assert_string_equal(v.text, "Listed");
    cl.rcpt = "blocked@ours.example"; /* the held refusal comes first */
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_string_equal(v.check, "dnsbl");
    cl.rcpt = "abuse@ours.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_ok(&v, "rcpt abuse@ours.example");
    cl.rcpt = "PostMaster@Ours.Example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    cl.rcpt = "postmaster@theirs.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_string_equal(v.check, "dnsbl");
    cl.held = NULL; /* nothing held: the lists alone */
    cl.rcpt = "blocked@ours.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_reject(&v, "Closed", "rcpt blocked@ours.example");
}

static void test_no_lists(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    assert_int_equal(ts_policy_checks(f, "\"access\"", ""), 0);
    ts_client_rdns(&cl, "192.0.2.1", RDNS_NONE, NULL);
    v = fx_run(f, POLICY_CONNECT, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    cl.helo = "x";
    v = fx_run(f, POLICY_HELO, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    cl.sender = "";
    v = fx_run(f, POLICY_MAIL, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    cl.rcpt = "a@b.example";
    v = fx_run(f, POLICY_RCPT, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_longest_prefix, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rdns_regex, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_helo, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sender, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rcpt, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_canonical, fx_setup, ts_fixture_teardown),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test_setup_teardown(test_missing_file, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_long_line, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reload, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_allowlisted_skips_others, fx_setup,
                                        ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_held_refusal, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_no_lists, fx_setup, ts_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
