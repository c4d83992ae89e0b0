/* ts_dns.h - a fake DNS server on UDP 127.0.0.1, answering from a table built by
 * the test, on the test's event loop (so resolver tests need no network) */
#ifndef TS_DNS_H
#define TS_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#define TS_RCODE_SERVFAIL 2
#define TS_RCODE_NXDOMAIN 3
#define TS_DNS_MAXANS 4

struct ts_dns_rr {
    uint16_t type;    /* 1 A, 28 AAAA, 15 MX, 16 TXT; any other: a name (PTR, CNAME...) */
    const char *data; /* A/AAAA: address; MX and names: name; TXT: strings split by '|' */
    uint16_t pref;    /* MX */
};

struct ts_dns_entry {
    const char *qname; /* "*.zone" matches every name under zone */
    uint16_t qtype;
    int rcode; /* 0, TS_RCODE_SERVFAIL, TS_RCODE_NXDOMAIN */
    int drop;  /* never answer */
    struct ts_dns_rr ans[TS_DNS_MAXANS];
};

struct ts_dns_fake {
    const struct ts_dns_entry *table;
    size_t n;
    evutil_socket_t fd;
    struct event *ev;
    int queries;     /* questions received */
    char server[32]; /* "127.0.0.1:<port>", for dns_new */
};

/* ts_dns_fake_start - serve table (n entries) on a kernel-chosen port of 127.0.0.1 */
void ts_dns_fake_start(struct ts_dns_fake *f, struct event_base *base,
                       const struct ts_dns_entry *table, size_t n);
/* ts_dns_fake_stop - stop serving; before the loop is freed */
void ts_dns_fake_stop(struct ts_dns_fake *f);
struct dns;
/* ts_dns_resolver - the daemon's resolver (dns/dns.h) asking only f, with timeout
 * seconds per try and one try; fails the test when it cannot be made */
struct dns *ts_dns_resolver(const struct ts_dns_fake *f, struct event_base *base, unsigned timeout);

/* ts_udp_socket - a bound UDP socket on 127.0.0.1 and its port: alone, a server that
 * never answers */
evutil_socket_t ts_udp_socket(int *port);

#endif
