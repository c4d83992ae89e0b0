/* test_s25r.c - the s25r check through the real pipeline, config and rule files */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_fs.h"
#include "ts_policy.h"

/* fx_write - a rule or list file in the fixture directory */
static void fx_write(const struct ts_fixture *f, const char *name, const char *text)
{
    ts_write_file(f->dir, name, text, NULL, 0);
}

/* fx_setup - a temp directory and an event base */
static int fx_setup(void **state)
{
    return ts_fixture_setup(state, "test_s25r");
}

/* fx_s25r - a policy with only s25r and that section body */
static void fx_s25r(struct ts_fixture *f, const char *body)
{
    char sections[512];

    snprintf(sections, sizeof(sections), "s25r { %s }\n", body);
    if (ts_policy_checks(f, "\"s25r\"", sections) < 0)
        fail_msg("policy_new: %s", f->err);
}

/* fx_run - the CONNECT stage of the "mx" chain for cl, on the event loop */
static struct policy_verdict fx_run(struct ts_fixture *f, struct policy_client *cl)
{
    struct ts_outcome o = ts_stage(f, POLICY_CONNECT, cl, 10000);

    assert_int_equal(o.sync, 0); /* never from inside policy_start */
    return o.v;
}

/* judge - CONNECT verdict for a client at ip named name (confirmed) */
static struct policy_verdict judge(struct ts_fixture *f, const char *ip, const char *name)
{
    struct policy_client cl;

    ts_client_rdns(&cl, ip, name ? RDNS_CONFIRMED : RDNS_NONE, name);
    return fx_run(f, &cl);
}

/* assert_rejected - REJECT 550 5.7.1 by s25r naming rule, reason naming rule and name */
static void assert_rejected(const struct policy_verdict *v, const char *what, const char *rule,
                            const char *name)
{
    char text[256], reason[192];

    snprintf(text, sizeof(text), "Client host rejected: %s (S25R rule=%s)", what, rule);
    snprintf(reason, sizeof(reason), "rule=%s name=%s", rule, name);
    assert_int_equal(v->action, POLICY_REJECT);
    assert_int_equal(v->code, 550);
    assert_string_equal(v->status, "5.7.1");
    assert_string_equal(v->text, text);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "s25r");
}

#define DYNAMIC "looks like a dynamic/end-user address"

/* names and the rule that must fire first (NULL: none) */
static const struct {
    const char *name, *rule;
} examples[] = {
    /* rule1: lowest label, digit runs split by non-digits */
    {"p4242-ipbf1505funabasi.chiba.example.jp", "rule1"},
    {"ntt12x34.example.net", "rule1"},
    {"p1234-ipbf.tokyo.example.jp", NULL}, /* one digit run only */
    {"ab1c2", NULL},                       /* rule1 wants a dot after the label */
    /* rule2: five digits in a row */
    {"ip12345.example.net", "rule2"},
    {"host2130706433.example.com", "rule2"},
    {"ip1234.example.net", NULL},
    /* rule3: lowest or second-lowest label (below the top three) starts with a digit */
    {"3a.user.isp.example.net", "rule3"},
    {"user.3a.isp.example.ne.jp", "rule3"},
    {"3a.example.net", NULL}, /* only the top three levels */
    /* rule4: ends with a digit, then digit-hyphen-digit */
    {"host1.19-22.example.net", "rule4"},
    {"host.19-22.example.net", NULL},
    /* rule5: five levels, the lowest two ending with digits */
    {"ab1.cd2.isp.example.net", "rule5"},
    {"a1.b2.example.net", NULL}, /* four levels */
    /* rule6: dhcp, dialup, ppp, xDSL with a digit */
    {"dhcp42.example.org", "rule6"},
    {"adsl-pool7.example.net", "rule6"},
    {"ppp-a1.example.com", "rule6"},
    {"dialup-x9.example.com", "rule6"},
    {"DHCP42.Example.ORG", "rule6"}, /* case-insensitive, as Postfix regexp tables */
    {"dhcp.example.org", NULL},
    {"mydsl1.example.net", NULL},
    /* well-configured servers */
    {"mail.example.com", NULL},
    {"mx1.example.jp", NULL},
    {"smtp-out2.example.net", NULL},
    {"mail2.example.co.jp", NULL},
    {"mta7.mail.example.com", NULL},
};

/* check_examples - every example name gives its rule, or nothing */
static void check_examples(struct ts_fixture *f)
{
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        struct policy_verdict v = judge(f, "198.51.100.10", examples[i].name);
        if (!examples[i].rule) {
            if (v.action != POLICY_DUNNO)
                fail_msg("%s: unexpected %s (%s)", examples[i].name, policy_action_name(v.action),
                         v.reason);
            continue;
        }
        if (v.action != POLICY_REJECT || !strstr(v.reason, examples[i].rule))
            fail_msg("%s: want %s, got %s (%s)", examples[i].name, examples[i].rule,
                     policy_action_name(v.action), v.reason);
        assert_rejected(&v, DYNAMIC, examples[i].rule, examples[i].name);
    }
}

static void test_each_rule(void **state)
{
    struct ts_fixture *f = *state;

    fx_s25r(f, "action = \"reject\"");
    check_examples(f);
}

/* shipped_rules - conf/s25r.rules of this source tree, or NULL when not found */
static const char *shipped_rules(char *dst, size_t len)
{
    char src[512];

    snprintf(src, sizeof(src), "%s", __FILE__);
    snprintf(dst, len, "%s/../../../conf/s25r.rules", dirname(src));
    return access(dst, R_OK) == 0 ? dst : NULL;
}

static void test_shipped_rules_file(void **state)
{
    struct ts_fixture *f = *state;
    char path[600], body[700];

    if (!shipped_rules(path, sizeof(path)))
        fail_msg("conf/s25r.rules not found next to %s", __FILE__);
    /* the file names rule1..rule6: its rules replace the built-in copies */
    snprintf(body, sizeof(body), "action = \"reject\" rules = \"%s\"", path);
    fx_s25r(f, body);
    check_examples(f);
}

static void test_no_ptr(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_verdict v;

    fx_s25r(f, "action = \"reject\"");
    v = judge(f, "198.51.100.11", NULL);
    assert_rejected(&v, "cannot find your hostname", "no-ptr", "unknown");
    ts_fixture_unload(f);
    fx_s25r(f, "action = \"reject\" no_ptr = false");
    v = judge(f, "198.51.100.11", NULL);
    assert_int_equal(v.action, POLICY_DUNNO);
}

static void test_unconfirmed(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_s25r(f, "action = \"reject\"");
    ts_client_rdns(&cl, "198.51.100.12", RDNS_UNCONFIRMED, "mail.example.com");
    v = fx_run(f, &cl);
    assert_rejected(&v, "cannot confirm your hostname", "unconfirmed", "mail.example.com");
    ts_client_rdns(&cl, "198.51.100.12", RDNS_UNCONFIRMED, NULL);
    v = fx_run(f, &cl);
    assert_rejected(&v, "cannot confirm your hostname", "unconfirmed", "unknown");
    ts_fixture_unload(f);
    /* off: and the rules never look at a name that is not confirmed */
    fx_s25r(f, "action = \"reject\" unconfirmed = false");
    ts_client_rdns(&cl, "198.51.100.12", RDNS_UNCONFIRMED, "dhcp42.example.org");
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

static void test_dns_trouble(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_s25r(f, "action = \"reject\"");
    ts_client_rdns(&cl, "198.51.100.13", RDNS_TEMPFAIL, NULL);
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    assert_int_equal(v.code, 451);
    assert_string_equal(v.status, "4.4.3");
    assert_string_equal(v.text, "Client host name lookup failed; try again later");
    assert_string_equal(v.reason, "dns-tempfail");
    assert_string_equal(v.check, "s25r");
    ts_client_rdns(&cl, "198.51.100.13", RDNS_UNCHECKED, NULL); /* no resolver */
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    ts_fixture_unload(f);
    assert_int_equal(
        ts_policy_checks(f, "\"s25r\"",
                         "dns { on_timeout = \"pass\" }\ns25r { action = \"reject\" }\n"),
        0);
    ts_client_rdns(&cl, "198.51.100.13", RDNS_TEMPFAIL, NULL);
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

static void test_exceptions(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_write(f, "exceptions",
             "# big providers\n"
             "192.0.2.0/24\n"
             "   2001:db8::/32\n"
             "198.51.100.77\n"
             "/^mail-[0-9-]+\\.bigisp\\.example$/\n");
    fx_s25r(f, "action = \"reject\" exceptions = \"@/exceptions\"");

    v = judge(f, "192.0.2.7", "dhcp42.example.org"); /* by network */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "192.0.2.8", NULL); /* an address exception covers no-ptr too */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "198.51.100.77", "ip12345.example.net"); /* single address */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "198.51.100.78", "ip12345.example.net");
    assert_rejected(&v, DYNAMIC, "rule2", "ip12345.example.net");
    v = judge(f, "2001:db8::5", NULL);
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "2001:db9::5", NULL);
    assert_rejected(&v, "cannot find your hostname", "no-ptr", "unknown");
    v = judge(f, "198.51.100.14", "MAIL-12-34.bigisp.example"); /* by name, any case */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "198.51.100.14", "home-12-34.bigisp.example");
    assert_rejected(&v, DYNAMIC, "rule1", "home-12-34.bigisp.example");
    /* a PTR that is not forward-confirmed is forgeable: it never exempts */
    ts_client_rdns(&cl, "198.51.100.15", RDNS_UNCONFIRMED, "mail-12-34.bigisp.example");
    v = fx_run(f, &cl);
    assert_rejected(&v, "cannot confirm your hostname", "unconfirmed", "mail-12-34.bigisp.example");
    /* DNS trouble: an exempt address is not made to wait */
    ts_client_rdns(&cl, "192.0.2.9", RDNS_TEMPFAIL, NULL);
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
}

static void test_action_greylist(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    f->store = ts_store_open(f, "db", NULL, NULL);
    assert_non_null(f->stats = stats_new(f->store));
    fx_s25r(f, ""); /* greylist is the default */

    ts_client_rdns(&cl, "198.51.100.16", RDNS_CONFIRMED, "dhcp42.example.org");
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO); /* no refusal here: greylist refuses */
    assert_int_equal(cl.suspicious, 1);
    assert_string_equal(cl.suspicious_why, "s25r:rule6");
    assert_int_equal(cl.score, 0);
    ts_client_rdns(&cl, "198.51.100.17", RDNS_NONE, NULL);
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_string_equal(cl.suspicious_why, "s25r:no-ptr");
    ts_client_rdns(&cl, "198.51.100.18", RDNS_CONFIRMED, "mail.example.com");
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO);
    assert_int_equal(cl.suspicious, 0);
    assert_string_equal(cl.suspicious_why, "");
    /* each flagged client counts once as s25r.score, the good one not at all */
    assert_int_equal(ts_stats_sum(f, "s25r.score"), 2);
    assert_int_equal(ts_stats_sum(f, "s25r.reject"), 0);
}

static void test_action_tempfail(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_s25r(f, "action = \"tempfail\"");
    v = judge(f, "198.51.100.19", "ip12345.example.net");
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    assert_int_equal(v.code, 450);
    assert_string_equal(v.status, "4.7.1");
    assert_string_equal(v.text, "Client host rejected: looks like a dynamic/end-user address, "
                                "try again later (S25R rule=rule2)");
    assert_string_equal(v.reason, "rule=rule2 name=ip12345.example.net");
    assert_string_equal(v.check, "s25r");
    v = judge(f, "198.51.100.19", NULL);
    assert_string_equal(v.text, "Client host rejected: cannot find your hostname, try again later "
                                "(S25R rule=no-ptr)");
    ts_client_rdns(&cl, "198.51.100.19", RDNS_UNCONFIRMED, "x.example");
    v = fx_run(f, &cl);
    assert_int_equal(v.code, 450);
    assert_string_equal(v.text,
                        "Client host rejected: cannot confirm your hostname, try again later "
                        "(S25R rule=unconfirmed)");
    assert_int_equal(cl.suspicious, 0);
}

static void test_action_score(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_client cl;
    struct policy_verdict v;

    fx_s25r(f, "action = \"score\" score = 7");
    ts_client_rdns(&cl, "198.51.100.20", RDNS_CONFIRMED, "host1.19-22.example.net");
    v = fx_run(f, &cl);
    assert_int_equal(v.action, POLICY_DUNNO); /* a score decides nothing by itself */
    assert_int_equal(cl.score, 7);
    assert_int_equal(cl.suspicious, 0);
    ts_client_rdns(&cl, "198.51.100.21", RDNS_CONFIRMED, "mx1.example.jp");
    v = fx_run(f, &cl);
    assert_int_equal(cl.score, 0);
}

static void test_operator_rules(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_verdict v;

    fx_write(f, "rules",
             "# ours\n"
             "myisp      ^cust[0-9]+\\.myisp\\.example$\n"
             "rule6      /^nevermatches$/\n"
             "\n"
             "pool.v2    \\.pool\\.\n");
    fx_s25r(f, "action = \"reject\" rules = \"@/rules\"");
    v = judge(f, "198.51.100.22", "cust7.myisp.example");
    assert_rejected(&v, DYNAMIC, "myisp", "cust7.myisp.example");
    v = judge(f, "198.51.100.22", "a.pool.example");
    assert_rejected(&v, DYNAMIC, "pool.v2", "a.pool.example");
    v = judge(f, "198.51.100.22", "dhcp42.example.org"); /* rule6 replaced */
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "198.51.100.22", "ip12345.example.net"); /* the other built-ins stay */
    assert_rejected(&v, DYNAMIC, "rule2", "ip12345.example.net");
}

/* expect_init_error - the s25r section body fails init with msg (in "FILE:LINE: msg" form
 * when file is given: then text is written to it first) */
static void expect_init_error(const char *body, const char *file, const char *text, int line,
                              const char *msg)
{
    struct ts_fixture *f;
    char sections[512], want[256];

    assert_int_equal(fx_setup((void **)&f), 0);
    if (file)
        fx_write(f, file, text);
    snprintf(sections, sizeof(sections), "s25r { %s }\n", body);
    assert_int_equal(ts_policy_checks(f, "\"s25r\"", sections), -1);
    if (file)
        snprintf(want, sizeof(want), "%s/%s:%d: %s", f->dir, file, line, msg);
    else
        snprintf(want, sizeof(want), "%s", msg);
    if (!strstr(f->err, want))
        fail_msg("error \"%s\" lacks \"%s\"", f->err, want);
    assert_int_equal(ts_fixture_teardown((void **)&f), 0);
}

static void test_bad_config(void **state)
{
    const char *r = "rules = \"@/rules\"", *x = "exceptions = \"@/exc\"";

    expect_init_error("action = \"drop\"", NULL, NULL, 0,
                      "s25r: action must be greylist, tempfail, reject or score");
    expect_init_error(r, "rules", "ok ^x$\nbad!name ^x\n", 2, "bad rule name \"bad!name\"");
    expect_init_error(r, "rules", "no-ptr ^x\n", 1, "bad rule name \"no-ptr\"");
    expect_init_error(r, "rules", "# c\nr1\n", 2, "rule r1: missing regular expression");
    expect_init_error(r, "rules", "r1 ^(x\n", 1, "bad regular expression at offset");
    expect_init_error(r, "rules", "r1 ^x\nr1 ^y\n", 2, "rule \"r1\" already defined on line 1");
    expect_init_error(x, "exc", "300.1.1.1\n", 1, "bad entry \"300.1.1.1\"");
    expect_init_error(x, "exc", "/unclosed\n", 1, "a name pattern is written /regex/");
    expect_init_error(x, "exc", "192.0.2.1 mail.example\n", 1,
                      "one entry per line: unexpected text after \"192.0.2.1\"");
    expect_init_error(x, "exc", "/[/\n", 1, "bad regular expression");
    expect_init_error(x, NULL, NULL, 0, "/exc:0: cannot open");
}

static void test_reload(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_verdict v;

    fx_write(f, "rules", "mine ^first\\.\n");
    fx_write(f, "exc", "192.0.2.1\n");
    fx_s25r(f, "action = \"reject\" rules = \"@/rules\" exceptions = \"@/exc\"");
    v = judge(f, "198.51.100.23", "first.example");
    assert_rejected(&v, DYNAMIC, "mine", "first.example");
    v = judge(f, "192.0.2.1", NULL);
    assert_int_equal(v.action, POLICY_DUNNO);

    fx_write(f, "rules", "mine ^second\\.\n");
    fx_write(f, "exc", "192.0.2.2\n");
    policy_reload(f->pol);
    v = judge(f, "198.51.100.23", "first.example");
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "198.51.100.23", "second.example");
    assert_rejected(&v, DYNAMIC, "mine", "second.example");
    v = judge(f, "192.0.2.1", NULL);
    assert_rejected(&v, "cannot find your hostname", "no-ptr", "unknown");
    v = judge(f, "192.0.2.2", NULL);
    assert_int_equal(v.action, POLICY_DUNNO);

    /* a broken exceptions file: the rules and exceptions of the last good load stay */
    fx_write(f, "rules", "mine ^third\\.\n");
    fx_write(f, "exc", "not-an-address\n");
    policy_reload(f->pol);
    v = judge(f, "198.51.100.23", "second.example");
    assert_rejected(&v, DYNAMIC, "mine", "second.example");
    v = judge(f, "198.51.100.23", "third.example");
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "192.0.2.2", NULL);
    assert_int_equal(v.action, POLICY_DUNNO);
    v = judge(f, "198.51.100.24", "dhcp42.example.org"); /* built-ins survive too */
    assert_rejected(&v, DYNAMIC, "rule6", "dhcp42.example.org");
}

static void test_odd_names(void **state)
{
    struct ts_fixture *f = *state;
    struct policy_verdict v;
    char longname[300];

    fx_s25r(f, "action = \"reject\"");
    /* the log reason shows a bounded, quoted-safe name */
    v = judge(f, "198.51.100.25", "dhcp1 \"x\".example");
    assert_int_equal(v.action, POLICY_REJECT);
    assert_string_equal(v.reason, "rule=rule6 name=dhcp1??x?.example");
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memcpy(longname, "ip12345.", 8);
    v = judge(f, "198.51.100.25", longname);
    assert_int_equal(v.action, POLICY_REJECT);
    assert_int_equal(strlen(v.reason), strlen("rule=rule2 name=") + 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_rule, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_shipped_rules_file, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_no_ptr, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unconfirmed, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_dns_trouble, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_exceptions, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_action_greylist, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_action_tempfail, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_action_score, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_operator_rules, fx_setup, ts_fixture_teardown),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test_setup_teardown(test_reload, fx_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_odd_names, fx_setup, ts_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
