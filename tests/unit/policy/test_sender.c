/* test_sender.c - the sender check through the real pipeline against a fake UDP DNS
 * server: MAIL FROM, HELO and header From: domains, our own domain from outside */
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

/* Every name absent from the table is NXDOMAIN; a name with records of other types
 * only answers NODATA for the rest (ts_dns.h). */
static const struct ts_dns_entry table[] = {
    {"mx.test", 15, 0, 0, {{15, "mail.mx.test", 10}}},
    {"a.test", 1, 0, 0, {{1, "192.0.2.1", 0}}},
    {"aaaa.test", 28, 0, 0, {{28, "2001:db8::1", 0}}},
    /* RFC 7505: a single MX "." says the domain takes no mail, whatever its A says */
    {"nullmx.test", 15, 0, 0, {{15, "", 0}}},
    {"nullmx.test", 1, 0, 0, {{1, "192.0.2.2", 0}}},
    {"norecords.test", 16, 0, 0, {{16, "v=spf1 -all", 0}}},
    {"broken.test", 15, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"broken.test", 1, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"broken.test", 28, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    /* MX fails, but an address proves the domain exists */
    {"halfbroken.test", 15, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"halfbroken.test", 1, 0, 0, {{1, "192.0.2.3", 0}}},
    {"*.silent.test", 15, 0, 1, {{0, NULL, 0}}},
    {"*.silent.test", 1, 0, 1, {{0, NULL, 0}}},
    {"*.silent.test", 28, 0, 1, {{0, NULL, 0}}},
    {"host.helo.test", 1, 0, 0, {{1, "192.0.2.50", 0}}},
    /* our own domain: SPF allows 192.0.2.0/24 only */
    {"example.test", 15, 0, 0, {{15, "mx.example.test", 10}}},
    {"example.test", 16, 0, 0, {{16, "v=spf1 ip4:192.0.2.0/24 -all", 0}}},
    {"nospf.example", 15, 0, 0, {{15, "mx.nospf.example", 10}}},
    {"tempspf.example", 15, 0, 0, {{15, "mx.tempspf.example", 10}}},
    {"tempspf.example", 16, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
};

static struct ts_dns_world *C;

/* setup - loop, fake server, resolver (1 s per try), a store for the statistics */
static int setup(void **state)
{
    static struct ts_dns_world c;

    C = &c;
    ts_dns_world_start(&c, "test_sender", table, sizeof(table) / sizeof(table[0]), 1);
    *state = &c;
    return 0;
}

/* teardown - the resolver and the server before their loop */
static int teardown(void **state)
{
    ts_dns_world_stop(C);
    return 0;
}

/* load - a listener running checks, with this sender section; it must load */
static void load_checks(const char *checks, const char *sections)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[2048], err[256] = "";

    env.dns = C->dns;
    snprintf(conf, sizeof(conf),
             "hostname = \"mx.example.test\"\n"
             "domains = {\"example.test\", \"nospf.example\", \"tempspf.example\"}\n"
             "relay_networks = {\"203.0.113.0/24\"}\n"
             "listen mx { address = \"127.0.0.1:2525\"  checks = {%s} }\n"
             "route \"*\" { to = \"smtp:[127.0.0.1]:2626\" }\n%s",
             checks, sections);
    if (!ts_policy_load(&C->fx, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

static void load(const char *sender)
{
    char sec[512];

    snprintf(sec, sizeof(sec), "sender { %s }\n", sender);
    load_checks("\"sender\"", sec);
}

/* mail - the MAIL stage of a client at ip */
static struct ts_outcome mail(struct policy_client *cl, const char *ip, const char *sender)
{
    ts_client(cl, ip);
    cl->helo = "[192.0.2.99]";
    cl->sender = sender;
    return ts_stage(&C->fx, POLICY_MAIL, cl, 5000);
}

/* mail_from - the MAIL stage's verdict for sender from 192.0.2.7 */
static struct policy_verdict mail_from(const char *sender)
{
    struct policy_client cl;

    return mail(&cl, "192.0.2.7", sender).v;
}

/* assert_refused - action, code, status and the whole reply text */
static void assert_refused(const struct policy_verdict *v, enum policy_action a, int code,
                           const char *status, const char *text)
{
    assert_int_equal(v->action, a);
    assert_int_equal(v->code, code);
    assert_string_equal(v->status, status);
    assert_string_equal(v->text, text);
    assert_string_equal(v->check, "sender");
}

/* test_mail_from_domains - MX, A or AAAA is enough; null MX, no records and
 * NXDOMAIN are refused with the domain named; the null sender is not checked */
static void test_mail_from_domains(void **state)
{
    struct policy_verdict v;

    load("");
    assert_int_equal(mail_from("a@mx.test").action, POLICY_DUNNO);
    assert_int_equal(mail_from("a@a.test").action, POLICY_DUNNO);
    assert_int_equal(mail_from("a@aaaa.test").action, POLICY_DUNNO);
    assert_int_equal(mail_from("a@HalfBroken.TEST").action, POLICY_DUNNO);
    assert_int_equal(mail_from("").action, POLICY_DUNNO);
    assert_int_equal(mail_from("a@[192.0.2.1]").action, POLICY_DUNNO);
    v = mail_from("a@nx.test");
    assert_refused(&v, POLICY_REJECT, 550, "5.1.8",
                   "Sender address rejected: domain nx.test does not exist");
    assert_string_equal(v.reason, "part=mailfrom domain=nx.test result=nxdomain");
    v = mail_from("a@norecords.test");
    assert_refused(&v, POLICY_REJECT, 550, "5.1.8",
                   "Sender address rejected: domain norecords.test has no MX, A or AAAA record");
    v = mail_from("a@nullmx.test");
    assert_refused(&v, POLICY_REJECT, 550, "5.7.27",
                   "Sender address rejected: domain nullmx.test accepts no mail (null MX, RFC "
                   "7505)");
    assert_string_equal(v.reason, "part=mailfrom domain=nullmx.test result=null-mx");
    /* a name no DNS lookup can find is not quoted back */
    v = mail_from("a@bad..test");
    assert_refused(&v, POLICY_REJECT, 550, "5.1.8",
                   "Sender address rejected: domain is not a valid domain name");
    assert_string_equal(v.reason, "part=mailfrom result=invalid");
}

/* test_dns_errors - SERVFAIL and a silent server give 451 4.1.8, or nothing with
 * temperror = "dunno"; a scoring part gives no points for our DNS trouble */
static void test_dns_errors(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("");
    o = mail(&cl, "192.0.2.7", "a@broken.test");
    assert_refused(&o.v, POLICY_TEMPFAIL, 451, "4.1.8",
                   "Sender address rejected: domain broken.test: cannot look it up (servfail); "
                   "try again later");
    o = mail(&cl, "192.0.2.7", "a@x.silent.test");
    assert_refused(&o.v, POLICY_TEMPFAIL, 451, "4.1.8",
                   "Sender address rejected: domain x.silent.test: cannot look it up (timeout); "
                   "try again later");
    assert_true(o.secs > 0.5 && o.secs < 3.0); /* the three lookups wait together */
    load("temperror = \"dunno\"");
    assert_int_equal(mail_from("a@broken.test").action, POLICY_DUNNO);
    load("domain_exists = \"score\"");
    o = mail(&cl, "192.0.2.7", "a@broken.test");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(cl.score, 0);
}

/* test_actions - score adds points (named in the reason and the tests), tempfail 451 */
static void test_actions(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("domain_exists = \"score\"  score = 4");
    o = mail(&cl, "192.0.2.7", "a@nx.test");
    assert_int_equal(o.v.action, POLICY_DUNNO); /* SCORE goes on; the total is kept */
    assert_int_equal(cl.score, 4);
    assert_string_equal(cl.score_tests, "sender=4");
    load("domain_exists = \"tempfail\"");
    o = mail(&cl, "192.0.2.7", "a@nx.test");
    assert_refused(&o.v, POLICY_TEMPFAIL, 451, "4.1.8",
                   "Sender address rejected: domain nx.test does not exist; try again later");
    load("domain_exists = \"dunno\"");
    assert_int_equal(mail_from("a@nx.test").action, POLICY_DUNNO);
}

/* settle - let the questions of lookups cancelled earlier reach the fake server */
static void settle(void)
{
    int never = 0;

    ts_run_until(C->fx.base, &never, 1, 100);
}

/* test_no_lookup_when_off - a part that is off asks nothing */
static void test_no_lookup_when_off(void **state)
{
    int before;

    load("domain_exists = \"dunno\"  own_domains = \"dunno\"");
    settle();
    before = C->fake.queries;
    assert_int_equal(mail_from("a@nx.test").action, POLICY_DUNNO);
    assert_int_equal(C->fake.queries, before);
}

/* helo - the HELO stage of a client */
static struct ts_outcome helo(struct policy_client *cl, const char *name)
{
    ts_client(cl, "192.0.2.8");
    cl->helo = name;
    return ts_stage(&C->fx, POLICY_HELO, cl, 5000);
}

/* test_helo - the HELO name: an address suffices, literals are not checked, the
 * action is configurable (default: off) */
static void test_helo(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    int before;

    load("");
    settle();
    before = C->fake.queries;
    assert_int_equal(helo(&cl, "nx.helo.test").v.action, POLICY_DUNNO);
    assert_int_equal(C->fake.queries, before);
    load("helo_exists = \"reject\"");
    assert_int_equal(helo(&cl, "host.helo.test").v.action, POLICY_DUNNO);
    assert_int_equal(helo(&cl, "[192.0.2.8]").v.action, POLICY_DUNNO);
    o = helo(&cl, "nx.helo.test");
    assert_refused(&o.v, POLICY_REJECT, 550, "5.1.8",
                   "Helo command rejected: host name nx.helo.test does not exist");
    o = helo(&cl, "norecords.test");
    assert_refused(&o.v, POLICY_REJECT, 550, "5.1.8",
                   "Helo command rejected: host name norecords.test has no A, AAAA or MX "
                   "record");
    /* a null MX host with an address may send: it only takes no mail */
    assert_int_equal(helo(&cl, "nullmx.test").v.action, POLICY_DUNNO);
    o = helo(&cl, "broken.test");
    assert_refused(&o.v, POLICY_TEMPFAIL, 451, "4.1.8",
                   "Helo command rejected: host name broken.test: cannot look it up "
                   "(servfail); try again later");
    load("helo_exists = \"score\"  score = 3");
    o = helo(&cl, "nx.helo.test");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(cl.score, 3);
    assert_string_equal(cl.score_tests, "sender=3");
}

/* rcpt - MAIL (with the chain's checks) then RCPT for a client at ip */
static struct ts_outcome rcpt(struct policy_client *cl, const char *ip, const char *sender)
{
    struct ts_outcome o = mail(cl, ip, sender);

    assert_int_equal(o.v.action, POLICY_DUNNO);
    cl->rcpt = "bob@example.test";
    o = ts_stage(&C->fx, POLICY_RCPT, cl, 5000);
    free(cl->add_headers);
    cl->add_headers = NULL;
    return o;
}

/* test_own_domain - our domain as MAIL FROM from outside: only with SPF pass (the
 * spf check listed after sender: its MAIL result is judged at RCPT) */
static void test_own_domain(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load_checks("\"sender\", \"spf\"",
                "spf { fail = \"dunno\"  temperror = \"dunno\"  helo = false }\n");
    o = rcpt(&cl, "192.0.2.20", "alice@example.test");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    o = rcpt(&cl, "198.51.100.20", "alice@Example.TEST");
    assert_refused(&o.v, POLICY_REJECT, 550, "5.7.1",
                   "Sender address rejected: example.test is our own domain and SPF does not "
                   "authorise this client for it (SPF fail)");
    o = rcpt(&cl, "198.51.100.20", "alice@nospf.example");
    assert_refused(&o.v, POLICY_REJECT, 550, "5.7.1",
                   "Sender address rejected: nospf.example is our own domain and SPF does not "
                   "authorise this client for it (SPF none)");
    o = rcpt(&cl, "198.51.100.20", "alice@tempspf.example");
    assert_refused(&o.v, POLICY_TEMPFAIL, 451, "4.7.1",
                   "Sender address rejected: cannot verify SPF for our domain tempspf.example; "
                   "try again later");
    /* relay_networks are our own servers; other domains are not ours to judge */
    assert_int_equal(rcpt(&cl, "203.0.113.5", "alice@nospf.example").v.action, POLICY_DUNNO);
    assert_int_equal(rcpt(&cl, "198.51.100.20", "x@mx.test").v.action, POLICY_DUNNO);
}

/* test_own_domain_modes - "reject" refuses even with SPF pass; "dunno" is off; a
 * result of the HELO identity is not one for the sender's domain */
static void test_own_domain_modes(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load_checks("\"sender\"", "sender { own_domains = \"reject\" }\n");
    ts_client(&cl, "192.0.2.20");
    cl.sender = "alice@example.test";
    cl.rcpt = "bob@example.test";
    snprintf(cl.auth->spf, sizeof(cl.auth->spf), "pass");
    snprintf(cl.auth->spf_domain, sizeof(cl.auth->spf_domain), "example.test");
    o = ts_stage(&C->fx, POLICY_RCPT, &cl, 0);
    assert_refused(&o.v, POLICY_REJECT, 550, "5.7.1",
                   "Sender address rejected: example.test is our own domain; its mail does not "
                   "come from outside");
    load_checks("\"sender\"", "sender { own_domains = \"spf\" }\n");
    cl.auth->spf_helo = 1;
    o = ts_stage(&C->fx, POLICY_RCPT, &cl, 0);
    assert_int_equal(o.v.action, POLICY_REJECT);
    cl.auth->spf_helo = 0;
    assert_int_equal(ts_stage(&C->fx, POLICY_RCPT, &cl, 0).v.action, POLICY_DUNNO);
    load_checks("\"sender\"", "sender { own_domains = \"dunno\" }\n");
    cl.auth->spf[0] = '\0';
    assert_int_equal(ts_stage(&C->fx, POLICY_RCPT, &cl, 0).v.action, POLICY_DUNNO);
}

/* end - the END stage with a header section */
static struct ts_outcome end(struct policy_client *cl, const char *sender, const char *hdr)
{
    ts_client(cl, "192.0.2.9");
    cl->sender = sender;
    cl->header = hdr;
    cl->header_len = strlen(hdr);
    return ts_stage(&C->fx, POLICY_END, cl, 5000);
}

/* test_header_from - the From: domain at the end of DATA, same replies */
static void test_header_from(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    int before;

    load("");
    assert_int_equal(end(&cl, "a@mx.test", "From: A <a@a.test>\r\nSubject: x\r\n").v.action,
                     POLICY_DUNNO);
    o = end(&cl, "a@mx.test", "Subject: x\r\nFrom: \"Bank\" <service@nx.test>\r\n");
    assert_refused(&o.v, POLICY_REJECT, 550, "5.1.8",
                   "Message rejected: From: header domain nx.test does not exist");
    o = end(&cl, "", "From: <x@nullmx.test>\r\n");
    assert_refused(&o.v, POLICY_REJECT, 550, "5.7.27",
                   "Message rejected: From: header domain nullmx.test accepts no mail (null MX, "
                   "RFC 7505)");
    o = end(&cl, "a@mx.test", "From: x@broken.test\r\n");
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_string_equal(o.v.status, "4.1.8");
    /* no From:, or several domains: not this check's business */
    assert_int_equal(end(&cl, "a@mx.test", "Subject: x\r\n").v.action, POLICY_DUNNO);
    assert_int_equal(end(&cl, "a@mx.test", "From: a@nx.test, b@mx.test\r\n").v.action,
                     POLICY_DUNNO);
    /* the MAIL FROM domain was judged at MAIL: not asked again */
    settle();
    before = C->fake.queries;
    o = end(&cl, "a@nx.test", "From: b@NX.test\r\n");
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(C->fake.queries, before);
    load("from_exists = \"dunno\"");
    assert_int_equal(end(&cl, "a@mx.test", "From: x@nx.test\r\n").v.action, POLICY_DUNNO);
}

/* test_cancel_mid_lookup - the session ends while DNS is silent: no verdict, no leak */
static void test_cancel_mid_lookup(void **state)
{
    struct policy_client cl;
    struct ts_outcome o = {0};
    struct policy_run *r;
    int never = 0;

    load("");
    ts_client(&cl, "192.0.2.11");
    cl.sender = "x@y.silent.test";
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_MAIL, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    ts_run_until(C->fx.base, &never, 1, 200);
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1, 1500);
    assert_int_equal(o.calls, 0);
}

/* test_bad_options - every option's value is checked, each reported */
static void test_bad_options(void **state)
{
    struct policy_env env = ts_env(&C->fx);
    char err[1024] = "";

    env.dns = C->dns;
    ts_policy_load(&C->fx,
                   "listen mx { address = \"127.0.0.1:2525\"  checks = {\"sender\"} }\n"
                   "sender { domain_exists = \"bounce\"  own_domains = \"maybe\"\n"
                   "         temperror = \"reject\" }\n",
                   &env, err, sizeof(err));
    assert_null(C->fx.cfg);
    assert_non_null(strstr(err, "sender: domain_exists must be"));
    assert_non_null(strstr(err, "sender: own_domains must be"));
    assert_non_null(strstr(err, "sender: temperror must be"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail_from_domains),
        cmocka_unit_test(test_dns_errors),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_no_lookup_when_off),
        cmocka_unit_test(test_helo),
        cmocka_unit_test(test_own_domain),
        cmocka_unit_test(test_own_domain_modes),
        cmocka_unit_test(test_header_from),
        cmocka_unit_test(test_cancel_mid_lookup),
        cmocka_unit_test(test_bad_options),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
