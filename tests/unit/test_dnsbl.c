/* test_dnsbl.c - the dnsbl check through the real pipeline against a fake UDP DNS server */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "dns/dns.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"

/* ---------------------------------------------------------------------- */
/* the fake server (after test_dns.c): answers from a table, built by hand */

#define RCODE_NXDOMAIN 3
#define MAXANS 4

struct frr {
    uint16_t type;
    const char *data; /* A: address; TXT: strings split by '|' */
};

struct fentry {
    const char *qname; /* "*.zone" matches every name under zone */
    uint16_t qtype;
    int drop; /* never answer */
    struct frr ans[MAXANS];
};

#define LONG_TXT                                                                                   \
    "  bad\tchars\001here \200 "                                                                   \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const struct fentry table[] = {
    {"2.2.0.192.bl.test", 1, 0, {{1, "127.0.0.2"}}},
    {"2.2.0.192.bl.test", 16, 0, {{16, "Listed by bl.test|, see http://bl.test/q?192.0.2.2"}}},
    {"4.2.0.192.refuse.test", 1, 0, {{1, "127.255.255.254"}}},
    {"4.2.0.192.open.test", 1, 0, {{1, "10.0.0.1"}}},
    {"5.2.0.192.bl.test", 1, 0, {{1, "127.0.0.2"}}},
    {"5.2.0.192.wl.test", 1, 0, {{1, "127.0.0.5"}}},
    {"6.2.0.192.codes.test", 1, 0, {{1, "127.0.0.4"}}},
    {"7.2.0.192.codes.test", 1, 0, {{1, "127.0.0.4"}, {1, "127.0.0.3"}}},
    {"8.2.0.192.a.test", 1, 0, {{1, "127.0.0.2"}}},
    {"8.2.0.192.b.test", 1, 0, {{1, "127.0.0.9"}}},
    {"8.2.0.192.b.test", 16, 0, {{16, "b says no"}}},
    {"10.2.0.192.a.test", 1, 0, {{1, "127.0.0.2"}}},
    {"9.2.0.192.bl.test", 1, 0, {{1, "127.0.0.2"}}},
    {"9.2.0.192.bl.test", 16, 0, {{16, LONG_TXT}}},
    {"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test",
     1,
     0,
     {{1, "127.0.0.2"}}},
    /* listed, but the TXT query is never answered */
    {"11.2.0.192.bl.test", 1, 0, {{1, "127.0.0.2"}}},
    {"11.2.0.192.bl.test", 16, 1, {{0, NULL}}},
    {"*.silent.test", 1, 1, {{0, NULL}}},
};

struct fake {
    evutil_socket_t fd;
    struct event *ev;
    int queries; /* questions received */
};

/* put16 - big-endian 16 bits */
static size_t put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

/* put_txt - one TXT record: '|' separates its character-strings */
static size_t put_txt(unsigned char *p, const char *s)
{
    size_t n = 0, l;

    for (;;) {
        l = strcspn(s, "|");
        assert_true(l < 256);
        p[n++] = (unsigned char)l;
        memcpy(p + n, s, l);
        n += l;
        if (s[l] == '\0')
            return n;
        s += l + 1;
    }
}

/* put_rdata - the rdata of one record */
static size_t put_rdata(unsigned char *p, const struct frr *rr)
{
    if (rr->type == 1) {
        assert_int_equal(inet_pton(AF_INET, rr->data, p), 1);
        return 4;
    }
    return put_txt(p, rr->data);
}

/* get_qname - the question name, dotted, and the offset past it */
static size_t get_qname(const unsigned char *q, size_t len, char *out, size_t outlen)
{
    size_t i = 12, o = 0;

    while (i < len && q[i] != 0) {
        size_t l = q[i++];
        assert_true(i + l <= len && o + l + 1 < outlen);
        if (o > 0)
            out[o++] = '.';
        memcpy(out + o, q + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return i + 1;
}

/* name_match - exact, or "*.zone" for any name under zone */
static int name_match(const char *pat, const char *qname)
{
    size_t pl, ql = strlen(qname);

    if (strncmp(pat, "*.", 2) != 0)
        return strcasecmp(pat, qname) == 0;
    pl = strlen(pat + 1);
    return ql > pl && strcasecmp(qname + ql - pl, pat + 1) == 0;
}

/* find - the table entry for a question; *exists if the name has any */
static const struct fentry *find(const char *qname, unsigned qtype, int *exists)
{
    *exists = 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (!name_match(table[i].qname, qname))
            continue;
        *exists = 1;
        if (table[i].qtype == qtype)
            return &table[i];
    }
    return NULL;
}

/* answer - build the reply to query q in r; 0 means do not answer */
static size_t answer(const unsigned char *q, size_t qlen, unsigned char *r)
{
    char qname[256];
    size_t qend = get_qname(q, qlen, qname, sizeof(qname)) + 4, n, an = 0, i;
    unsigned qtype = (unsigned)(q[qend - 4] << 8 | q[qend - 3]);
    int exists, rcode;
    const struct fentry *e = find(qname, qtype, &exists);

    if (e != NULL && e->drop)
        return 0;
    rcode = e != NULL || exists ? 0 : RCODE_NXDOMAIN;
    memcpy(r, q, qend);
    r[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR AA, RD copied */
    r[3] = (unsigned char)(0x80 | rcode);         /* RA */
    n = qend;
    for (i = 0; e != NULL && i < MAXANS && e->ans[i].data != NULL; i++, an++) {
        n += put16(r + n, 0xc00c); /* the question's name */
        n += put16(r + n, e->ans[i].type);
        n += put16(r + n, 1);
        n += put16(r + n, 0);
        n += put16(r + n, 300);
        n += 2;
        put16(r + n - 2, (unsigned)put_rdata(r + n, &e->ans[i]));
        n += (size_t)(r[n - 2] << 8 | r[n - 1]);
    }
    put16(r + 6, (unsigned)an);
    put16(r + 8, 0);
    put16(r + 10, 0);
    return n;
}

/* fake_read - one datagram in, at most one out */
static void fake_read(evutil_socket_t fd, short what, void *arg)
{
    struct fake *f = arg;
    unsigned char q[512], r[1024];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t len = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    size_t rlen;

    if (len < 17)
        return;
    f->queries++;
    rlen = answer(q, (size_t)len, r);
    if (rlen > 0)
        assert_int_equal(sendto(fd, r, rlen, 0, (struct sockaddr *)&from, fl), (ssize_t)rlen);
}

/* udp_socket - a UDP socket on 127.0.0.1 with a kernel-chosen port */
static evutil_socket_t udp_socket(int *port)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    evutil_socket_t fd = socket(AF_INET, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* ---------------------------------------------------------------------- */
/* the pipeline around the check                                            */

struct ctx {
    struct event_base *base;
    struct fake fake;
    char server[32];
    char dir[64];
    struct store *store;
    struct stats *stats;
    struct dns *dns;
    struct config *cfg;
    struct policy *pol;
};

static struct ctx *C;

struct outcome {
    int calls;
    struct policy_verdict v;
    double secs; /* from policy_start to the verdict */
};

/* setup - loop, fake server, resolver, a store for the statistics */
static int setup(void **state)
{
    static struct ctx c;
    const char *servers[1];
    char uri[96], err[256];
    int port;

    memset(&c, 0, sizeof(c));
    C = &c;
    c.base = event_base_new();
    assert_non_null(c.base);
    c.fake.fd = udp_socket(&port);
    snprintf(c.server, sizeof(c.server), "127.0.0.1:%d", port);
    c.fake.ev = event_new(c.base, c.fake.fd, EV_READ | EV_PERSIST, fake_read, &c.fake);
    assert_int_equal(event_add(c.fake.ev, NULL), 0);
    servers[0] = c.server;
    /* The resolver's own timeout is longer than any zone's budget in these tests. */
    c.dns = dns_new(c.base, servers, 1, 8, 1, err, sizeof(err));
    assert_non_null(c.dns);
    snprintf(c.dir, sizeof(c.dir), "/tmp/test_dnsbl.XXXXXX");
    assert_non_null(mkdtemp(c.dir));
    snprintf(uri, sizeof(uri), "lmdb:%s/db", c.dir);
    c.store = store_open(c.base, uri, err, sizeof(err));
    assert_non_null(c.store);
    c.stats = stats_new(c.store);
    assert_non_null(c.stats);
    *state = &c;
    return 0;
}

/* rm_entry - nftw helper removing one entry */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* unload - the policy and configuration of one test */
static void unload(void)
{
    policy_free(C->pol);
    config_free(C->cfg);
    C->pol = NULL;
    C->cfg = NULL;
}

/* teardown - free everything */
static int teardown(void **state)
{
    unload();
    stats_free(C->stats);
    store_close(C->store);
    dns_free(C->dns);
    event_free(C->fake.ev);
    close(C->fake.fd);
    event_base_free(C->base);
    nftw(C->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* try_load - write a configuration with this dnsbl section; the policy or NULL with err */
static struct policy *try_load(const char *on_timeout, const char *dnsbl, int with_dns, char *err,
                               size_t errlen)
{
    struct policy_env env = {C->base, NULL, with_dns ? C->dns : NULL, C->store, C->stats};
    char path[128];
    FILE *f;

    unload();
    snprintf(path, sizeof(path), "%s/mxgate.conf", C->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "listen mx { address = \"127.0.0.1:2525\"  checks = {\"dnsbl\"} }\n"
            "dns { servers = {\"%s\"}  timeout = 8  on_timeout = \"%s\" }\n"
            "dnsbl {\n%s\n}\n",
            C->server, on_timeout, dnsbl);
    assert_int_equal(fclose(f), 0);
    C->cfg = config_load(path, stderr);
    assert_non_null(C->cfg);
    env.cfg = C->cfg;
    C->pol = policy_new(&env, err, errlen);
    return C->pol;
}

/* load - as try_load, and it must work */
static void load(const char *on_timeout, const char *dnsbl)
{
    char err[256] = "";

    if (!try_load(on_timeout, dnsbl, 1, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* on_done - the pipeline's verdict */
static void on_done(void *arg, const struct policy_verdict *v)
{
    struct outcome *o = arg;

    o->calls++;
    o->v = *v;
}

/* on_deadline - a safety net so that a broken check fails instead of hanging */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    *(int *)arg = 1;
}

/* run_loop - run the loop until *flag is set or ms passed */
static void run_loop(const int *flag, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    int expired = 0;
    struct event *t = evtimer_new(C->base, on_deadline, &expired);

    assert_non_null(t);
    evtimer_add(t, &tv);
    while (!*flag && !expired)
        event_base_loop(C->base, EVLOOP_ONCE);
    event_free(t);
}

/* client - a policy_client for ip (IPv4 or IPv6) */
static void client(struct policy_client *cl, const char *ip)
{
    memset(cl, 0, sizeof(*cl));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&cl->addr;
        s->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&cl->addr;
        s->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    }
    snprintf(cl->ip, sizeof(cl->ip), "%s", ip);
    cl->listener = "mx";
    cl->rdns = RDNS_UNCHECKED;
}

/* judge - the CONNECT stage for ip; the verdict, its time and the client's score */
static struct outcome judge(const char *ip, int *score)
{
    struct policy_client cl;
    struct outcome o;
    struct timespec t0, t1;
    const struct policy_chain *chain = policy_chain_for(C->pol, "mx");

    memset(&o, 0, sizeof(o));
    client(&cl, ip);
    assert_non_null(chain);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_non_null(policy_start(chain, POLICY_CONNECT, &cl, on_done, &o));
    run_loop(&o.calls, 10000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(o.calls, 1);
    o.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (score)
        *score = cl.score;
    return o;
}

struct got {
    int done;
    int status;
    int64_t value;
};

/* on_get - a counter read back */
static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct got *g = arg;

    g->done = 1;
    g->status = status;
    if (status == STORE_OK)
        assert_int_equal(store_counter_decode(val, vlen, &g->value), 0);
}

/* counter - this hour's statistics counter name (0 when missing) */
static int64_t counter(const char *name)
{
    char key[160], hour[16];
    time_t now = time(NULL);
    struct tm tm;
    struct got g = {0, 0, 0};

    gmtime_r(&now, &tm);
    strftime(hour, sizeof(hour), "%Y%m%d%H", &tm);
    snprintf(key, sizeof(key), "stats:%s:%s", hour, name);
    assert_int_equal(store_get(C->store, key, strlen(key), on_get, &g), 0);
    run_loop(&g.done, 2000);
    assert_int_equal(g.done, 1);
    return g.status == STORE_OK ? g.value : 0;
}

/* ---------------------------------------------------------------------- */
/* the tests                                                                */

/* test_listed_with_txt - 554 naming the zone and its TXT reason; counted */
static void test_listed_with_txt(void **state)
{
    int64_t before = counter("dnsbl.reject");
    struct outcome o;

    load("tempfail", "threshold = 1  zone \"bl.test\" { weight = 1 }");
    o = judge("192.0.2.2", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_int_equal(o.v.code, 554);
    assert_string_equal(o.v.status, "5.7.1");
    assert_string_equal(o.v.text, "Service unavailable; client [192.0.2.2] blocked using bl.test; "
                                  "Listed by bl.test, see http://bl.test/q?192.0.2.2");
    assert_string_equal(o.v.reason, "zone=bl.test answer=127.0.0.2 weight=1 total=1");
    assert_string_equal(o.v.check, "dnsbl");
    assert_int_equal(counter("dnsbl.reject"), before + 1);
}

/* test_not_listed - NXDOMAIN everywhere: no opinion, quickly */
static void test_not_listed(void **state)
{
    struct outcome o;

    load("tempfail", "zone \"bl.test\" { }  zone \"a.test\" { }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_true(o.secs < 0.9);
}

/* test_ipv6_listed - an IPv6 client is looked up by its nibbles */
static void test_ipv6_listed(void **state)
{
    struct outcome o;

    load("tempfail", "zone \"bl.test\" { }");
    o = judge("2001:db8::5", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text,
                        "Service unavailable; client [2001:db8::5] blocked using bl.test");
}

/* test_unusable_ignored - 127.255.255.254 and 10.0.0.1 list nobody; warned and counted */
static void test_unusable_ignored(void **state)
{
    int64_t before = counter("dnsbl.unusable");
    struct outcome o;

    load("tempfail", "zone \"refuse.test\" { }  zone \"open.test\" { }  zone \"bl.test\" { }");
    o = judge("192.0.2.4", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_int_equal(counter("dnsbl.unusable"), before + 2);
    /* the same answers are refused as configured codes */
    assert_null(try_load("tempfail", "zone \"refuse.test\" { codes = {\"127.255.255.254\"} }", 1,
                         (char[256]){0}, 256));
}

/* test_silent_zone_costs_its_budget - a silent zone while another answers: budget, not more */
static void test_silent_zone_costs_its_budget(void **state)
{
    struct outcome o;

    load("tempfail", "zone \"bl.test\" { timeout = 3 }  zone \"a.silent.test\" { timeout = 1 }");
    o = judge("192.0.2.2", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "zone=bl.test answer=127.0.0.2 weight=1 total=1");
    assert_true(o.secs > 0.9 && o.secs < 1.6);
}

/* test_parallel_budgets - two silent zones of 1 s and 2 s cost 2 s, not 3 */
static void test_parallel_budgets(void **state)
{
    struct outcome o;

    load("pass", "zone \"a.silent.test\" { timeout = 2 }  zone \"b.silent.test\" { timeout = 1 }"
                 "  zone \"bl.test\" { }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_true(o.secs > 1.9 && o.secs < 2.6);
}

/* test_all_timeout_tempfail - every zone silent and on_timeout tempfail: 451 4.4.3 */
static void test_all_timeout_tempfail(void **state)
{
    struct outcome o;

    load("tempfail",
         "zone \"a.silent.test\" { timeout = 1 }  zone \"b.silent.test\" { timeout = 1 }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 451);
    assert_string_equal(o.v.status, "4.4.3");
    assert_string_equal(o.v.text, "DNS blocklist lookup failed; try again later");
    assert_string_equal(o.v.reason, "dns-timeout");
    assert_true(o.secs > 0.9 && o.secs < 1.6);
}

/* test_all_timeout_pass - the same with on_timeout pass: no opinion */
static void test_all_timeout_pass(void **state)
{
    struct outcome o;

    load("pass", "zone \"a.silent.test\" { timeout = 1 }  zone \"b.silent.test\" { timeout = 1 }");
    o = judge("192.0.2.3", NULL);
    assert_int_equal(o.v.action, POLICY_DUNNO);
}

/* test_txt_never_answers - the hit stands without its reason once the budget is spent */
static void test_txt_never_answers(void **state)
{
    struct outcome o;

    load("tempfail", "zone \"bl.test\" { timeout = 1 }");
    o = judge("192.0.2.11", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text, "Service unavailable; client [192.0.2.11] blocked using bl.test");
    assert_true(o.secs > 0.9 && o.secs < 1.6);
}

/* test_txt_sanitized - control and 8-bit octets replaced, length bounded */
static void test_txt_sanitized(void **state)
{
    const char *want = "Service unavailable; client [192.0.2.9] blocked using bl.test; "
                       "bad?chars?here ? xxx";
    struct outcome o;

    load("tempfail", "zone \"bl.test\" { }");
    o = judge("192.0.2.9", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_memory_equal(o.v.text, want, strlen(want));
    assert_true(strlen(o.v.text) < sizeof(o.v.text));
    for (const char *p = o.v.text; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

/* test_threshold_and_weights - two zones needed; the heavier one names the reply */
static void test_threshold_and_weights(void **state)
{
    struct outcome o;

    load("tempfail",
         "threshold = 3  zone \"a.test\" { weight = 1 }  zone \"b.test\" { weight = 2 }");
    o = judge("192.0.2.8", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.text,
                        "Service unavailable; client [192.0.2.8] blocked using b.test; b says no");
    assert_string_equal(o.v.reason, "zone=b.test answer=127.0.0.9 weight=2 total=3");
    o = judge("192.0.2.10", NULL); /* only a.test: 1 < 3 */
    assert_int_equal(o.v.action, POLICY_DUNNO);
}

/* test_tempfail_and_score_actions - 450 4.7.1 with the same text; score adds up */
static void test_tempfail_and_score_actions(void **state)
{
    struct outcome o;
    int score = -1;

    load("tempfail", "action = \"tempfail\"  zone \"bl.test\" { }");
    o = judge("192.0.2.2", NULL);
    assert_int_equal(o.v.action, POLICY_TEMPFAIL);
    assert_int_equal(o.v.code, 450);
    assert_string_equal(o.v.status, "4.7.1");
    assert_non_null(strstr(o.v.text, "client [192.0.2.2] blocked using bl.test"));
    load("tempfail", "action = \"score\"  threshold = 2  zone \"a.test\" { weight = 1 }"
                     "  zone \"b.test\" { weight = 4 }");
    o = judge("192.0.2.8", &score);
    assert_int_equal(o.v.action, POLICY_DUNNO); /* a score decides nothing by itself */
    assert_int_equal(score, 5);
}

/* test_dnswl_negative_weight - an allow zone not outweighed: OK, trusted */
static void test_dnswl_negative_weight(void **state)
{
    struct outcome o;

    load("tempfail", "zone \"bl.test\" { weight = 1 }  zone \"wl.test\" { weight = -5 }");
    o = judge("192.0.2.5", NULL);
    assert_int_equal(o.v.action, POLICY_OK);
    assert_string_equal(o.v.reason, "dnswl wl.test");
    /* outweighed by a heavy blocklist */
    load("tempfail", "zone \"bl.test\" { weight = 10 }  zone \"wl.test\" { weight = -5 }");
    o = judge("192.0.2.5", NULL);
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "zone=bl.test answer=127.0.0.2 weight=10 total=5");
}

/* test_codes_filter - only the configured answers list */
static void test_codes_filter(void **state)
{
    struct outcome o;

    load("tempfail", "zone \"codes.test\" { codes = {\"127.0.0.2\", \"127.0.0.3\"} }");
    o = judge("192.0.2.6", NULL); /* 127.0.0.4 only */
    assert_int_equal(o.v.action, POLICY_DUNNO);
    o = judge("192.0.2.7", NULL); /* 127.0.0.4 and 127.0.0.3 */
    assert_int_equal(o.v.action, POLICY_REJECT);
    assert_string_equal(o.v.reason, "zone=codes.test answer=127.0.0.3 weight=1 total=1");
    load("tempfail", "zone \"codes.test\" { }");
    o = judge("192.0.2.6", NULL); /* no codes: any 127/8 answer lists */
    assert_int_equal(o.v.action, POLICY_REJECT);
}

/* on_never - a cancelled run must not report */
static void on_never(void *arg, const struct policy_verdict *v)
{
    fail_msg("verdict after policy_cancel");
}

/* test_cancel_pending - the session ends while zones are pending: nothing runs later */
static void test_cancel_pending(void **state)
{
    struct policy_client cl;
    struct policy_run *r;
    int never = 0;

    load("tempfail", "zone \"a.silent.test\" { timeout = 1 }  zone \"bl.test\" { }");
    client(&cl, "192.0.2.2");
    r = policy_start(policy_chain_for(C->pol, "mx"), POLICY_CONNECT, &cl, on_never, NULL);
    assert_non_null(r);
    event_base_loop(C->base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* the check starts its queries */
    policy_cancel(r);
    run_loop(&never, 1500); /* the zone timer and the bl.test answer would fire here */
}

/* test_init_errors - no resolver, bad code, no zone, bad action, bad on_timeout */
static void test_init_errors(void **state)
{
    char err[256];

    assert_null(try_load("tempfail", "zone \"bl.test\" { }", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "dnsbl needs a dns section"));
    assert_null(
        try_load("tempfail", "zone \"bl.test\" { codes = {\"10.0.0.2\"} }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "mxgate.conf:"));
    assert_non_null(strstr(err, "10.0.0.2"));
    assert_null(try_load("tempfail", "threshold = 1", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "zone"));
    assert_null(
        try_load("tempfail", "action = \"drop\"  zone \"bl.test\" { }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "action"));
    assert_null(try_load("maybe", "zone \"bl.test\" { }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "on_timeout"));
    assert_null(try_load("tempfail", "zone \"bl.test\" { weight = 0 }", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "weight"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_with_txt),
        cmocka_unit_test(test_not_listed),
        cmocka_unit_test(test_ipv6_listed),
        cmocka_unit_test(test_unusable_ignored),
        cmocka_unit_test(test_silent_zone_costs_its_budget),
        cmocka_unit_test(test_parallel_budgets),
        cmocka_unit_test(test_all_timeout_tempfail),
        cmocka_unit_test(test_all_timeout_pass),
        cmocka_unit_test(test_txt_never_answers),
        cmocka_unit_test(test_txt_sanitized),
        cmocka_unit_test(test_threshold_and_weights),
        cmocka_unit_test(test_tempfail_and_score_actions),
        cmocka_unit_test(test_dnswl_negative_weight),
        cmocka_unit_test(test_codes_filter),
        cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_init_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
