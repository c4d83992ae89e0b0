/* test_mx.c - a domain's mail servers (relay/mx.c): preference order, equal
 * preferences shuffled (a fixed and a real random source), implicit MX, null
 * MX, non-existent domains and DNS errors; against a fake DNS server */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "relay/mx.h"
#include "ts_dns.h"

/* rnd_last - always the last index: the shuffle becomes a fixed rotation */
static size_t rnd_last(size_t n)
{
    return n - 1;
}

/* rnd_first - always 0 */
static size_t rnd_first(size_t n)
{
    (void)n;
    return 0;
}

/* test_order_by_preference - lower preference first; runs of equal preference stay together */
static void test_order_by_preference(void **state)
{
    struct mx_host h[] = {{"c", 30}, {"a1", 10}, {"b", 20}, {"a2", 10}, {"d", 5}};
    (void)state;

    mx_order(h, 5, rnd_last);
    assert_string_equal(h[0].name, "d");
    assert_true(h[1].pref == 10 && h[2].pref == 10);
    assert_string_equal(h[3].name, "b");
    assert_string_equal(h[4].name, "c");
}

/* test_equal_shuffled - the random source decides the order inside a run */
static void test_equal_shuffled(void **state)
{
    struct mx_host a[] = {{"x", 10}, {"y", 10}, {"z", 10}};
    struct mx_host b[] = {{"x", 10}, {"y", 10}, {"z", 10}};
    (void)state;

    mx_order(a, 3, rnd_last);
    mx_order(b, 3, rnd_first);
    assert_string_equal(a[0].name, "x"); /* swaps with itself at each step */
    assert_string_equal(b[0].name, "y"); /* z<->x, then y<->z: y z x */
    assert_string_equal(b[1].name, "z");
    assert_string_equal(b[2].name, "x");
}

static size_t rnd_real(size_t n)
{
    return (size_t)arc4random_uniform((uint32_t)n);
}

/* test_equal_all_first - with a real random source each of three equal hosts comes
 * first about a third of the time, and the preference-20 host never does */
static void test_equal_all_first(void **state)
{
    int first[3] = {0};
    (void)state;

    for (int i = 0; i < 3000; i++) {
        struct mx_host h[] = {{"late", 20}, {"a", 10}, {"b", 10}, {"c", 10}};
        mx_order(h, 4, rnd_real);
        assert_string_equal(h[3].name, "late");
        first[h[0].name[0] - 'a']++;
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(first[i], 800, 1200);
}

/* test_is_null - "MX 0 ." alone is a null MX; among other hosts it is not */
static void test_is_null(void **state)
{
    const char *one[] = {""}, *dot[] = {"."}, *two[] = {"", "mx.example"}, *host[] = {"mx"};
    (void)state;

    assert_true(mx_is_null(one, 1));
    assert_true(mx_is_null(dot, 1));
    assert_false(mx_is_null(two, 2));
    assert_false(mx_is_null(host, 1));
}

/* ---- lookups against a fake DNS server ---- */

static const struct ts_dns_entry table[] = {
    {"two.test", 15, 0, 0, {{15, "mx2.two.test", 20}, {15, "mx1.two.test", 10}}},
    {"mx1.two.test", 1, 0, 0, {{1, "192.0.2.1", 0}}},
    {"mx1.two.test", 28, 0, 0, {{28, "2001:db8::1", 0}}},
    {"mx2.two.test", 1, 0, 0, {{1, "192.0.2.2", 0}}},
    {"mx2.two.test", 28, 0, 0, {{0, NULL, 0}}},
    {"plain.test", 15, 0, 0, {{0, NULL, 0}}},
    {"plain.test", 1, 0, 0, {{1, "192.0.2.9", 0}}},
    {"plain.test", 28, 0, 0, {{0, NULL, 0}}},
    {"null.test", 15, 0, 0, {{15, ".", 0}}},
    {"gone.test", 15, TS_RCODE_NXDOMAIN, 0, {{0, NULL, 0}}},
    {"broken.test", 15, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
};

struct got {
    int done;
    struct mx_result res;
};

static void on_mx(void *arg, const struct mx_result *res)
{
    struct got *g = arg;

    g->done++;
    g->res = *res;
}

/* lookup - one mx_lookup of domain, run to its answer */
static void lookup(const char *domain, struct got *g)
{
    struct event_base *base = event_base_new();
    struct ts_dns_fake f;
    struct dns *dns;

    ts_dns_fake_start(&f, base, table, sizeof(table) / sizeof(table[0]));
    dns = ts_dns_resolver(&f, base, 2);
    memset(g, 0, sizeof(*g));
    assert_non_null(mx_lookup(dns, domain, 2525, on_mx, g));
    assert_int_equal(g->done, 0); /* never synchronous */
    while (!g->done && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    assert_int_equal(g->done, 1);
    dns_free(dns);
    ts_dns_fake_stop(&f);
    event_base_free(base);
}

/* addr_is - addr i is ip on port 2525 of host */
static void addr_is(const struct mx_result *r, size_t i, const char *ip, const char *host)
{
    char buf[64];
    const struct sockaddr_storage *ss = &r->addr[i].addr;

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
        assert_int_equal(ntohs(s6->sin6_port), 2525);
    } else {
        const struct sockaddr_in *s4 = (const void *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
        assert_int_equal(ntohs(s4->sin_port), 2525);
    }
    assert_string_equal(buf, ip);
    assert_string_equal(r->addr[i].host, host);
}

/* test_lookup_order - hosts by preference, IPv6 before IPv4 of each */
static void test_lookup_order(void **state)
{
    struct got g;
    (void)state;

    lookup("two.test", &g);
    assert_int_equal(g.res.status, MX_OK);
    assert_int_equal(g.res.naddr, 3);
    addr_is(&g.res, 0, "2001:db8::1", "mx1.two.test");
    addr_is(&g.res, 1, "192.0.2.1", "mx1.two.test");
    addr_is(&g.res, 2, "192.0.2.2", "mx2.two.test");
}

/* test_lookup_implicit - no MX: the domain's own address */
static void test_lookup_implicit(void **state)
{
    struct got g;
    (void)state;

    lookup("plain.test", &g);
    assert_int_equal(g.res.status, MX_OK);
    assert_int_equal(g.res.naddr, 1);
    addr_is(&g.res, 0, "192.0.2.9", "plain.test");
}

/* test_lookup_failures - null MX and NXDOMAIN permanent, SERVFAIL temporary */
static void test_lookup_failures(void **state)
{
    struct got g;
    (void)state;

    lookup("null.test", &g);
    assert_int_equal(g.res.status, MX_NULLMX);
    assert_string_equal(g.res.text, "5.1.10 domain null.test accepts no mail (null MX)");
    lookup("gone.test", &g);
    assert_int_equal(g.res.status, MX_NODOMAIN);
    assert_string_equal(g.res.text, "5.1.10 domain gone.test does not exist");
    lookup("broken.test", &g);
    assert_int_equal(g.res.status, MX_TEMP);
    assert_string_equal(g.res.text, "4.4.3 MX lookup of broken.test failed: servfail");
    assert_int_equal(g.res.naddr, 0);
}

/* main - run the MX tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_by_preference), cmocka_unit_test(test_equal_shuffled),
        cmocka_unit_test(test_equal_all_first),     cmocka_unit_test(test_is_null),
        cmocka_unit_test(test_lookup_order),        cmocka_unit_test(test_lookup_implicit),
        cmocka_unit_test(test_lookup_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
