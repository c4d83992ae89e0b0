/* test_spf_dns.c - SPF checks through spf_dns.c and the real c-ares resolver
 * (dns.h) against the fake UDP DNS server: joined TXT strings, MX, include,
 * NXDOMAIN, NODATA, SERVFAIL and a timeout as the user sees them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "policy/spf_dns.h"
#include "policy/spf_eval.h"
#include "ts_dns.h"

static const struct ts_dns_entry table[] = {
    /* two strings joined into one record; a second, unrelated TXT record */
    {"example.test",
     16,
     0,
     0,
     {{16, "v=spf1 mx include:inc.example.test |a:v6.example.test -all", 0},
      {16, "google-site-verification=xyz", 0}}},
    {"example.test", 15, 0, 0, {{15, "mx1.example.test", 10}}},
    {"mx1.example.test", 1, 0, 0, {{1, "192.0.2.10", 0}}},
    {"inc.example.test", 16, 0, 0, {{16, "v=spf1 ip4:192.0.2.20 -all", 0}}},
    {"v6.example.test", 28, 0, 0, {{28, "2001:db8::5", 0}}},
    {"slow.example.test", 16, 0, 1, {{0, NULL, 0}}},
    {"broken.example.test", 16, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"nodata.example.test", 1, 0, 0, {{1, "192.0.2.1", 0}}},
};

struct ctx {
    struct event_base *base;
    struct ts_dns_fake fake;
    struct dns *dns;
    struct spf_resolver res;
};

static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof c);
    c.base = event_base_new();
    assert_non_null(c.base);
    ts_dns_fake_start(&c.fake, c.base, table, sizeof table / sizeof table[0]);
    c.dns = ts_dns_resolver(&c.fake, c.base, 1);
    spf_dns_resolver(&c.res, c.dns);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    dns_free(c->dns);
    ts_dns_fake_stop(&c->fake);
    event_base_free(c->base);
    return 0;
}

static void on_done(struct spf_check *sc, void *arg)
{
    struct event_base *base = arg;
    (void)sc;
    event_base_loopbreak(base);
}

/* One check to its end on the event loop; the caller frees it */
static struct spf_check *run(struct ctx *c, const char *ip, const char *mailfrom)
{
    struct sockaddr_storage ss;
    struct spf_request req = {0};
    struct spf_check *sc;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        ss.ss_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    }
    req.client = (struct sockaddr *)&ss;
    req.helo = "client.example.net";
    req.mailfrom = mailfrom;
    req.receiver = "mx.example.org";
    sc = spf_new(&c->res, &req);
    assert_non_null(sc);
    if (spf_start(sc, on_done, c->base) == 0)
        assert_int_equal(event_base_dispatch(c->base), 0);
    return sc;
}

static void expect(struct ctx *c, const char *ip, const char *from, enum spf_result r,
                   const char *mech)
{
    struct spf_check *sc = run(c, ip, from);
    const struct spf_outcome *o = spf_outcome(sc);

    if (o->result != r || strcmp(o->mechanism, mech) != 0)
        fail_msg("%s from %s: %s \"%s\" (%s), want %s \"%s\"", from, ip, spf_result_name(o->result),
                 o->mechanism, o->problem, spf_result_name(r), mech);
    spf_free(sc);
}

static void test_through_cares(void **state)
{
    struct ctx *c = *state;

    expect(c, "192.0.2.10", "a@example.test", SPF_PASS, "mx");
    expect(c, "192.0.2.20", "a@example.test", SPF_PASS, "include:inc.example.test");
    expect(c, "2001:db8::5", "a@example.test", SPF_PASS, "a:v6.example.test");
    expect(c, "::ffff:192.0.2.10", "a@example.test", SPF_PASS, "mx");
    expect(c, "192.0.2.99", "a@example.test", SPF_FAIL, "-all");
    expect(c, "192.0.2.99", "a@nowhere.example.test", SPF_NONE, "");
    expect(c, "192.0.2.99", "a@nodata.example.test", SPF_NONE, "");
    expect(c, "192.0.2.99", "a@broken.example.test", SPF_TEMPERROR, "");
    expect(c, "192.0.2.99", "a@slow.example.test", SPF_TEMPERROR, "");
}

/* Freed with a lookup out: c-ares forgets it, nothing calls back */
static void test_free_while_waiting(void **state)
{
    struct ctx *c = *state;
    struct sockaddr_in sin = {0};
    struct spf_request req = {0};
    struct spf_check *sc;
    struct timeval tv = {0, 200000};

    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);
    req.client = (struct sockaddr *)&sin;
    req.mailfrom = "a@slow.example.test";
    sc = spf_new(&c->res, &req);
    assert_int_equal(spf_start(sc, on_done, NULL), 0); /* on_done(NULL) would crash */
    spf_free(sc);
    event_base_loopexit(c->base, &tv);
    assert_int_equal(event_base_dispatch(c->base), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_through_cares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_waiting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
