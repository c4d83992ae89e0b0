/* test_dns.c - the c-ares resolver on a real event loop against a fake UDP DNS server */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "ts_dns.h"
#include "ts_fixture.h"

/* ----------------------------------------------------------------------
 * the fake server's table (see ts_dns.h)                                  */

static const struct ts_dns_entry table[] = {
    {"2.0.0.127.in-addr.arpa", 12, 0, 0, {{12, "Host2.Example.TEST.", 0}}},
    {"host2.example.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
    {"3.0.0.127.in-addr.arpa", 12, 0, 0, {{12, "host3.example.test", 0}}},
    {"host3.example.test", 1, 0, 0, {{1, "127.0.0.99", 0}}},
    /* two PTR names; only the second is confirmed */
    {"5.0.0.127.in-addr.arpa",
     12,
     0,
     0,
     {{12, "bad.example.test", 0}, {12, "good.example.test", 0}}},
    {"bad.example.test", 1, 0, 0, {{1, "10.9.9.9", 0}}},
    {"good.example.test", 1, 0, 0, {{1, "10.1.1.1", 0}, {1, "127.0.0.5", 0}}},
    /* PTR fine, forward lookup never answered */
    {"6.0.0.127.in-addr.arpa", 12, 0, 0, {{12, "slow.example.test", 0}}},
    {"slow.example.test", 1, 0, 1, {{0, NULL, 0}}},
    /* PTR fine, forward lookup fails */
    {"7.0.0.127.in-addr.arpa", 12, 0, 0, {{12, "broken.example.test", 0}}},
    {"broken.example.test", 1, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
     12,
     0,
     0,
     {{12, "v6.example.test", 0}}},
    {"v6.example.test", 28, 0, 0, {{28, "2001:db8::5", 0}}},
    {"v6.example.test", 1, 0, 0, {{1, "127.0.0.1", 0}}},
    {"mail.example.test",
     15,
     0,
     0,
     {{15, "mx-b.example.test", 20},
      {15, "mx-a.example.test", 10},
      {15, "mx-c.example.test", 30},
      {15, "MX-A2.example.test", 10}}},
    {"mail.example.test", 16, 0, 0, {{16, "v=spf1 |ip4:127.0.0.0/8 |-all", 0}, {16, "hello", 0}}},
    {"fail.example.test", 1, TS_RCODE_SERVFAIL, 0, {{0, NULL, 0}}},
    {"never.example.test", 1, 0, 1, {{0, NULL, 0}}},
    {"2.0.0.127.bl.test", 1, 0, 0, {{1, "127.0.0.2", 0}}},
};

/* ---------------------------------------------------------------------- */
/* test context and callback records                                        */

struct ctx {
    struct event_base *base;
    struct ts_dns_fake fake;
    evutil_socket_t silent_fd; /* a server that never reads its socket */
    char silent[32];
    struct dns *dns;
    int in_call; /* set while a dns_* call runs: callbacks must not see it */
    int done;    /* callbacks seen */
};

static struct ctx *C;

struct rec {
    int calls;
    int sync; /* called from inside the starting call */
    enum dns_status st;
    char qname[256];
    size_t count;
    char str[DNS_MAX_RECORDS][128];
    unsigned short pref[DNS_MAX_RECORDS];
    struct dns_addr addr[DNS_MAX_RECORDS];
    char name[128], ptr[128]; /* fcrdns; "" for NULL */
};

/* on_result - copy a result: it is valid only during the callback */
static void on_result(const struct dns_result *res, void *arg)
{
    struct rec *r = arg;
    size_t i;

    r->calls++;
    r->sync |= C->in_call;
    r->st = res->status;
    snprintf(r->qname, sizeof(r->qname), "%s", res->qname);
    r->count = res->count;
    for (i = 0; i < res->count; i++) {
        if (res->type == DNS_T_A || res->type == DNS_T_AAAA)
            r->addr[i] = res->addr[i];
        else
            snprintf(r->str[i], sizeof(r->str[i]), "%s", res->str[i]);
        r->pref[i] = res->pref[i];
    }
    C->done++;
}

/* on_fcrdns - copy an fcrdns verdict */
static void on_fcrdns(enum dns_status st, const char *name, const char *ptr, void *arg)
{
    struct rec *r = arg;

    r->calls++;
    r->sync |= C->in_call;
    r->st = st;
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    snprintf(r->ptr, sizeof(r->ptr), "%s", ptr ? ptr : "");
    C->done++;
}

/* run_until - run the loop until `want` callbacks arrived or ms passed */
static void run_until(int want, int ms)
{
    ts_run_until(C->base, &C->done, want, ms);
}

/* lookup - start a query with the in_call guard */
static struct dns_query *lookup(enum dns_type type, const char *name, struct rec *r)
{
    struct dns_query *q;

    memset(r, 0, sizeof(*r));
    C->in_call = 1;
    q = dns_lookup(C->dns, type, name, on_result, r);
    C->in_call = 0;
    assert_non_null(q);
    return q;
}

/* sa4 - an IPv4 socket address */
static struct sockaddr_storage sa4(const char *ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    return ss;
}

/* sa6 - an IPv6 socket address */
static struct sockaddr_storage sa6(const char *ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
    return ss;
}

/* fcrdns - start an FCrDNS check with the in_call guard */
static struct dns_query *fcrdns(struct sockaddr_storage ss, struct rec *r)
{
    struct dns_query *q;

    memset(r, 0, sizeof(*r));
    C->in_call = 1;
    q = dns_fcrdns(C->dns, (struct sockaddr *)&ss, on_fcrdns, r);
    C->in_call = 0;
    assert_non_null(q);
    return q;
}

/* new_dns - a resolver on the fake server (or the silent one) */
static struct dns *new_dns(const char *server)
{
    char err[256] = "";
    const char *servers[] = {server};
    struct dns *d = dns_new(C->base, servers, 1, 1, 1, err, sizeof(err));

    assert_non_null(d);
    return d;
}

/* setup - loop, fake servers, resolver */
static int setup(void **state)
{
    static struct ctx c;
    int port;

    memset(&c, 0, sizeof(c));
    C = &c;
    c.base = event_base_new();
    assert_non_null(c.base);
    ts_dns_fake_start(&c.fake, c.base, table, sizeof(table) / sizeof(table[0]));
    c.silent_fd = ts_udp_socket(&port);
    snprintf(c.silent, sizeof(c.silent), "127.0.0.1:%d", port);
    c.dns = new_dns(c.fake.server);
    *state = &c;
    return 0;
}

/* teardown - free everything */
static int teardown(void **state)
{
    dns_free(C->dns);
    ts_dns_fake_stop(&C->fake);
    close(C->silent_fd);
    event_base_free(C->base);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* dns_dnsbl_name                                                           */

/* test_dnsbl_name_v4 - reversed octets; trailing dot on the zone dropped */
static void test_dnsbl_name_v4(void **state)
{
    struct sockaddr_storage ss = sa4("192.0.2.10");
    char out[DNS_NAME_SIZE];

    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, "bl.test", out, sizeof(out)), 0);
    assert_string_equal(out, "10.2.0.192.bl.test");
    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, "zen.example.", out, sizeof(out)), 0);
    assert_string_equal(out, "10.2.0.192.zen.example");
}

/* test_dnsbl_name_v6 - 32 reversed nibbles */
static void test_dnsbl_name_v6(void **state)
{
    struct sockaddr_storage ss = sa6("2001:db8:1:2::abcd");
    char out[DNS_NAME_SIZE];

    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, "bl.test", out, sizeof(out)), 0);
    assert_string_equal(out,
                        "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test");
}

/* test_dnsbl_name_mapped - an IPv4-mapped IPv6 client is listed as IPv4 */
static void test_dnsbl_name_mapped(void **state)
{
    struct sockaddr_storage ss = sa6("::ffff:198.51.100.7");
    char out[DNS_NAME_SIZE];

    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, "bl.test", out, sizeof(out)), 0);
    assert_string_equal(out, "7.100.51.198.bl.test");
}

/* test_dnsbl_name_errors - short buffer, long zone, empty zone, wrong family */
static void test_dnsbl_name_errors(void **state)
{
    struct sockaddr_storage ss = sa4("192.0.2.10"), v6 = sa6("2001:db8::1");
    struct sockaddr_un un;
    char out[DNS_NAME_SIZE], zone[300];

    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, "bl.test", out, 18), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, "bl.test", out, 19), 0);
    memset(zone, 'a', sizeof(zone));
    zone[200] = '\0'; /* 64 nibble characters + 200 > 253 */
    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&v6, zone, out, sizeof(out)), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&ss, ".", out, sizeof(out)), -1);
    assert_int_equal(errno, EINVAL);
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_int_equal(dns_dnsbl_name((struct sockaddr *)&un, "bl.test", out, sizeof(out)), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
}

/* test_status_str - log names */
static void test_status_str(void **state)
{
    assert_string_equal(dns_status_str(DNS_OK), "ok");
    assert_string_equal(dns_status_str(DNS_NXDOMAIN), "nxdomain");
    assert_string_equal(dns_status_str(DNS_TIMEOUT), "timeout");
    assert_string_equal(dns_status_str((enum dns_status)99), "error");
}

/* test_new_servers - accepted and refused server strings */
static void test_new_servers(void **state)
{
    static const char *good[] = {"127.0.0.1", "127.0.0.1:5300", "[::1]:53", "::1", "[::1]"};
    static const char *bad[] = {"localhost",       "127.0.0.1:0", "127.0.0.1:70000", "[::1",
                                "1.2.3.4,5.6.7.8", "127.0.0.1:",  "[::1]x",          "1.2.3.4:+53"};
    char err[256];
    struct dns *d;
    size_t i;

    d = dns_new(C->base, good, 5, 3, 2, err, sizeof(err));
    assert_non_null(d);
    dns_free(d);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(dns_new(C->base, &bad[i], 1, 3, 2, err, sizeof(err)));
        assert_non_null(strstr(err, bad[i]));
    }
    assert_null(dns_new(C->base, good, 1, 0, 2, err, sizeof(err)));
    assert_null(dns_new(C->base, good, 1, 3, 0, err, sizeof(err)));
    d = dns_new(C->base, NULL, 0, 3, 2, err, sizeof(err)); /* resolv.conf */
    assert_non_null(d);
    dns_free(d);
}

/* ---------------------------------------------------------------------- */
/* queries on the loop                                                      */

/* test_ptr - IPv4 and IPv6 PTR; names lower-cased without the trailing dot */
static void test_ptr(void **state)
{
    struct sockaddr_storage v4 = sa4("127.0.0.2"), v6 = sa6("2001:db8::5");
    struct rec r4, r6;

    memset(&r4, 0, sizeof(r4));
    memset(&r6, 0, sizeof(r6));
    C->done = 0;
    C->in_call = 1;
    assert_non_null(dns_ptr(C->dns, (struct sockaddr *)&v4, on_result, &r4));
    assert_non_null(dns_ptr(C->dns, (struct sockaddr *)&v6, on_result, &r6));
    C->in_call = 0;
    run_until(2, 3000);
    assert_int_equal(r4.calls, 1);
    assert_int_equal(r4.sync, 0);
    assert_int_equal(r4.st, DNS_OK);
    assert_string_equal(r4.qname, "2.0.0.127.in-addr.arpa");
    assert_int_equal(r4.count, 1);
    assert_string_equal(r4.str[0], "host2.example.test");
    assert_int_equal(r6.calls, 1);
    assert_int_equal(r6.st, DNS_OK);
    assert_string_equal(r6.str[0], "v6.example.test");
}

/* test_a_aaaa - addresses, several per answer */
static void test_a_aaaa(void **state)
{
    struct rec a, aaaa;
    char buf[INET6_ADDRSTRLEN];

    C->done = 0;
    lookup(DNS_T_A, "good.example.test", &a);
    lookup(DNS_T_AAAA, "v6.example.test", &aaaa);
    run_until(2, 3000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.sync, 0);
    assert_int_equal(a.st, DNS_OK);
    assert_int_equal(a.count, 2);
    assert_int_equal(a.addr[0].family, AF_INET);
    assert_string_equal(inet_ntop(AF_INET, &a.addr[0].u.v4, buf, sizeof(buf)), "10.1.1.1");
    assert_string_equal(inet_ntop(AF_INET, &a.addr[1].u.v4, buf, sizeof(buf)), "127.0.0.5");
    assert_int_equal(aaaa.st, DNS_OK);
    assert_int_equal(aaaa.count, 1);
    assert_int_equal(aaaa.addr[0].family, AF_INET6);
    assert_string_equal(inet_ntop(AF_INET6, &aaaa.addr[0].u.v6, buf, sizeof(buf)), "2001:db8::5");
}

/* test_mx_order - sorted by preference, ties in answer order, lower-cased */
static void test_mx_order(void **state)
{
    struct rec r;

    C->done = 0;
    lookup(DNS_T_MX, "mail.example.test", &r);
    run_until(1, 3000);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.count, 4);
    assert_string_equal(r.str[0], "mx-a.example.test");
    assert_int_equal(r.pref[0], 10);
    assert_string_equal(r.str[1], "mx-a2.example.test");
    assert_int_equal(r.pref[1], 10);
    assert_string_equal(r.str[2], "mx-b.example.test");
    assert_int_equal(r.pref[2], 20);
    assert_string_equal(r.str[3], "mx-c.example.test");
    assert_int_equal(r.pref[3], 30);
}

/* test_txt_concat - strings of one record joined, records kept apart */
static void test_txt_concat(void **state)
{
    struct rec r;

    C->done = 0;
    lookup(DNS_T_TXT, "mail.example.test", &r);
    run_until(1, 3000);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.str[0], "v=spf1 ip4:127.0.0.0/8 -all");
    assert_string_equal(r.str[1], "hello");
}

/* test_failures - NXDOMAIN, NODATA, SERVFAIL and the DNSBL-style A lookup */
static void test_failures(void **state)
{
    struct rec nx, nodata, servfail, listed;

    C->done = 0;
    lookup(DNS_T_A, "nowhere.example.test", &nx);
    lookup(DNS_T_MX, "host2.example.test", &nodata);
    lookup(DNS_T_A, "fail.example.test", &servfail);
    lookup(DNS_T_A, "2.0.0.127.bl.test", &listed);
    run_until(4, 3000);
    assert_int_equal(nx.calls, 1);
    assert_int_equal(nx.st, DNS_NXDOMAIN);
    assert_int_equal(nx.count, 0);
    assert_int_equal(nodata.st, DNS_NODATA);
    assert_int_equal(servfail.calls, 1);
    assert_int_equal(servfail.st, DNS_SERVFAIL);
    assert_int_equal(listed.st, DNS_OK);
    assert_int_equal(listed.addr[0].u.v4.s_addr, htonl(0x7f000002));
}

/* test_bad_name_deferred - c-ares fails a bad name at once; we still call back later */
static void test_bad_name_deferred(void **state)
{
    char name[100];
    struct rec r;

    memset(name, 'x', sizeof(name));
    name[99] = '\0'; /* one 99-byte label: longer than 63 */
    C->done = 0;
    lookup(DNS_T_A, name, &r);
    assert_int_equal(r.calls, 0);
    run_until(1, 3000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.sync, 0);
    assert_int_equal(r.st, DNS_ERROR);
}

/* test_timeout - a server that never answers: DNS_TIMEOUT after timeout x tries */
static void test_timeout(void **state)
{
    struct dns *saved = C->dns;
    struct timespec t0, t1;
    struct rec r;
    double s;

    C->dns = new_dns(C->silent);
    C->done = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lookup(DNS_T_A, "host2.example.test", &r);
    run_until(1, 5000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, DNS_TIMEOUT);
    assert_true(s > 0.9 && s < 2.5);
    dns_free(C->dns);
    C->dns = saved;
}

/* test_fcrdns - confirmed, confirmed by a second name, not confirmed, no PTR, IPv6 */
static void test_fcrdns(void **state)
{
    struct rec ok, second, notconf, noptr, v6;

    C->done = 0;
    fcrdns(sa4("127.0.0.2"), &ok);
    fcrdns(sa4("127.0.0.5"), &second);
    fcrdns(sa4("127.0.0.3"), &notconf);
    fcrdns(sa4("127.0.0.4"), &noptr);
    fcrdns(sa6("2001:db8::5"), &v6);
    run_until(5, 3000);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.sync, 0);
    assert_int_equal(ok.st, DNS_OK);
    assert_string_equal(ok.name, "host2.example.test");
    assert_string_equal(ok.ptr, "host2.example.test");
    assert_int_equal(second.st, DNS_OK);
    assert_string_equal(second.name, "good.example.test");
    assert_string_equal(second.ptr, "bad.example.test");
    assert_int_equal(notconf.calls, 1);
    assert_int_equal(notconf.st, DNS_NODATA);
    assert_string_equal(notconf.name, "");
    assert_string_equal(notconf.ptr, "host3.example.test");
    assert_int_equal(noptr.st, DNS_NXDOMAIN);
    assert_string_equal(noptr.ptr, "");
    assert_int_equal(v6.st, DNS_OK);
    assert_string_equal(v6.name, "v6.example.test");
}

/* test_fcrdns_undecided - a failing forward lookup is not "not confirmed" */
static void test_fcrdns_undecided(void **state)
{
    struct rec slow, broken;

    C->done = 0;
    fcrdns(sa4("127.0.0.6"), &slow);
    fcrdns(sa4("127.0.0.7"), &broken);
    run_until(2, 5000);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.st, DNS_TIMEOUT);
    assert_string_equal(slow.ptr, "slow.example.test");
    assert_int_equal(broken.calls, 1);
    assert_int_equal(broken.st, DNS_SERVFAIL);
    assert_string_equal(broken.ptr, "broken.example.test");
}

/* test_cancel - cancelled queries never call back, in every state */
static void test_cancel(void **state)
{
    struct rec a, b, c, keep;
    char name[100];
    int seen;

    memset(name, 'x', sizeof(name));
    name[99] = '\0';
    C->done = 0;
    seen = C->fake.queries;
    dns_cancel(lookup(DNS_T_A, "host2.example.test", &a)); /* waiting in c-ares */
    dns_cancel(lookup(DNS_T_A, name, &b));                 /* already failed, queued */
    dns_cancel(fcrdns(sa4("127.0.0.2"), &c));              /* composite */
    lookup(DNS_T_A, "host3.example.test", &keep);
    run_until(1, 3000);
    run_until(99, 300);                       /* give any stray callback the chance to run */
    assert_true(C->fake.queries >= seen + 3); /* the server did answer them */
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(keep.calls, 1);
    assert_int_equal(keep.st, DNS_OK);
    dns_cancel(NULL);
}

/* cancel_other - a callback that cancels another query of the same batch */
static struct dns_query *victim;
static void cancel_other(const struct dns_result *res, void *arg)
{
    on_result(res, arg);
    dns_cancel(victim);
    victim = NULL;
}

/* test_cancel_from_callback - cancelling a finished-but-queued query from a callback */
static void test_cancel_from_callback(void **state)
{
    struct rec first, second;
    char name[100];

    memset(name, 'x', sizeof(name));
    name[99] = '\0';
    memset(&first, 0, sizeof(first));
    C->done = 0;
    /* both fail inside ares_query(): they are delivered in the same loop pass */
    assert_non_null(dns_lookup(C->dns, DNS_T_A, name, cancel_other, &first));
    victim = lookup(DNS_T_A, name, &second);
    run_until(1, 3000);
    run_until(99, 200);
    assert_int_equal(first.calls, 1);
    assert_int_equal(second.calls, 0);
}

/* test_free_pending - dns_free with queries in c-ares, queued and composite */
static void test_free_pending(void **state)
{
    struct dns *d = new_dns(C->fake.server), *saved = C->dns;
    struct rec a, b, c, e;
    char name[100];

    memset(name, 'x', sizeof(name));
    name[99] = '\0';
    C->dns = d;
    C->done = 0;
    lookup(DNS_T_A, "host2.example.test", &a);
    lookup(DNS_T_A, "never.example.test", &b);
    fcrdns(sa4("127.0.0.5"), &c);
    lookup(DNS_T_A, name, &e);
    run_until(99, 50); /* some answers in flight, some delivered */
    C->done = 0;
    lookup(DNS_T_A, "host2.example.test", &a);
    lookup(DNS_T_A, "never.example.test", &b);
    fcrdns(sa4("127.0.0.5"), &c);
    lookup(DNS_T_A, name, &e);
    dns_free(d);
    C->dns = saved;
    run_until(99, 300);
    assert_int_equal(C->done, 0);
}

struct freebox {
    struct rec r;
    struct dns *d;
};

/* free_in_callback - a callback that frees its resolver */
static void free_in_callback(const struct dns_result *res, void *arg)
{
    struct freebox *b = arg;

    on_result(res, &b->r);
    dns_free(b->d);
}

/* free_in_fcrdns - an fcrdns callback that frees its resolver */
static void free_in_fcrdns(enum dns_status st, const char *name, const char *ptr, void *arg)
{
    struct freebox *b = arg;

    on_fcrdns(st, name, ptr, &b->r);
    dns_free(b->d);
}

/* pending_batch - queries that must all be dropped silently by dns_free */
static void pending_batch(struct dns *d, struct rec *queued, struct rec *other, struct rec *fc)
{
    char name[100];
    struct sockaddr_storage ss = sa4("127.0.0.6"); /* forward step never answered */

    memset(name, 'x', sizeof(name));
    name[99] = '\0';
    memset(queued, 0, sizeof(*queued));
    memset(other, 0, sizeof(*other));
    memset(fc, 0, sizeof(*fc));
    assert_non_null(dns_lookup(d, DNS_T_A, name, on_result, queued));
    assert_non_null(dns_lookup(d, DNS_T_A, "never.example.test", on_result, other));
    assert_non_null(dns_fcrdns(d, (struct sockaddr *)&ss, on_fcrdns, fc));
}

/* test_free_in_callback - dns_free from a plain callback, others queued or in flight */
static void test_free_in_callback(void **state)
{
    struct freebox box;
    struct rec queued, other, fc;
    char name[100];

    memset(name, 'x', sizeof(name));
    name[99] = '\0';
    memset(&box, 0, sizeof(box));
    box.d = new_dns(C->fake.server);
    C->done = 0;
    assert_non_null(dns_lookup(box.d, DNS_T_A, name, free_in_callback, &box));
    pending_batch(box.d, &queued, &other, &fc);
    run_until(99, 300);
    assert_int_equal(box.r.calls, 1);
    assert_int_equal(box.r.st, DNS_ERROR);
    assert_int_equal(queued.calls + other.calls + fc.calls, 0);
}

/* test_free_in_fcrdns_callback - dns_free from an fcrdns verdict */
static void test_free_in_fcrdns_callback(void **state)
{
    struct sockaddr_storage ss = sa4("127.0.0.2");
    struct freebox box;
    struct rec queued, other, fc;

    memset(&box, 0, sizeof(box));
    box.d = new_dns(C->fake.server);
    C->done = 0;
    assert_non_null(dns_fcrdns(box.d, (struct sockaddr *)&ss, free_in_fcrdns, &box));
    pending_batch(box.d, &queued, &other, &fc);
    run_until(99, 500);
    assert_int_equal(box.r.calls, 1);
    assert_int_equal(box.r.st, DNS_OK);
    assert_string_equal(box.r.name, "host2.example.test");
    assert_int_equal(other.calls + fc.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsbl_name_v4),
        cmocka_unit_test(test_dnsbl_name_v6),
        cmocka_unit_test(test_dnsbl_name_mapped),
        cmocka_unit_test(test_dnsbl_name_errors),
        cmocka_unit_test(test_status_str),
        cmocka_unit_test(test_new_servers),
        cmocka_unit_test(test_ptr),
        cmocka_unit_test(test_a_aaaa),
        cmocka_unit_test(test_mx_order),
        cmocka_unit_test(test_txt_concat),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_bad_name_deferred),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_fcrdns),
        cmocka_unit_test(test_fcrdns_undecided),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_from_callback),
        cmocka_unit_test(test_free_pending),
        cmocka_unit_test(test_free_in_callback),
        cmocka_unit_test(test_free_in_fcrdns_callback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
