/* dns.h - asynchronous DNS resolver on the event loop (c-ares + libevent)
 *
 * One struct dns per event loop. Queries never block and never call back
 * synchronously: every callback runs later, from the event loop, exactly once,
 * unless the query is cancelled first (then never). A query handle is valid
 * from its start until its callback begins or dns_cancel() is called on it;
 * clear your copy of the handle at the top of the callback.
 *
 * Results are valid only during the callback. Names are returned lower-cased,
 * without the trailing dot. At most DNS_MAX_RECORDS records of an answer are
 * used; the rest are ignored.
 */
#ifndef MXGATE_DNS_H
#define MXGATE_DNS_H

#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_query;

#define DNS_MAX_RECORDS 32      /* records used per answer */
#define DNS_MAX_SERVERS 16      /* entries accepted by dns_new() */
#define DNS_FCRDNS_MAX_NAMES 10 /* PTR names forward-checked by dns_fcrdns() */
#define DNS_NAME_SIZE 256       /* buffer size that holds any query name + NUL */

enum dns_status {
    DNS_OK,       /* answer with at least one usable record */
    DNS_NXDOMAIN, /* the name does not exist */
    DNS_NODATA,   /* the name exists, no record of that type */
    DNS_SERVFAIL, /* every server failed: SERVFAIL, REFUSED or unreachable */
    DNS_TIMEOUT,  /* no answer within timeout x tries */
    DNS_ERROR     /* malformed name or answer, out of memory */
};

/* Record types, by their RR type number. */
enum dns_type { DNS_T_A = 1, DNS_T_PTR = 12, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28 };

struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
};

struct dns_result {
    enum dns_status status;
    enum dns_type type;
    const char *qname;                     /* the name queried, as given */
    size_t count;                          /* records below; 0 unless DNS_OK */
    char *str[DNS_MAX_RECORDS];            /* PTR: names; MX: exchanges; TXT: text */
    size_t len[DNS_MAX_RECORDS];           /* byte length of str[i] (TXT may hold NUL) */
    unsigned short pref[DNS_MAX_RECORDS];  /* MX: preference, ascending */
    struct dns_addr addr[DNS_MAX_RECORDS]; /* A / AAAA */
};

/* Called once per query with its result. */
typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* Called once per dns_fcrdns(): status DNS_OK with the confirmed name;
 * DNS_NXDOMAIN: no PTR; DNS_NODATA: PTR names found, none forward-confirmed;
 * DNS_TIMEOUT / DNS_SERVFAIL / DNS_ERROR: could not decide. ptr is the first
 * PTR name (or NULL) so that logs can say "PTR x not confirmed". */
typedef void (*dns_fcrdns_cb)(enum dns_status status, const char *name, const char *ptr, void *arg);

/* Create a resolver on base. servers: "IP", "IP:PORT" or "[IPv6]:PORT"
 * strings (port 53 by default); nservers == 0 uses /etc/resolv.conf. Each
 * try waits timeout_sec (c-ares doubles it on later rounds); tries >= 1.
 * NULL on failure with a message in err. */
struct dns *dns_new(struct event_base *base, const char *const *servers, size_t nservers,
                    unsigned timeout_sec, unsigned tries, char *err, size_t errlen);

/* Cancel every outstanding query without calling its callback, free all.
 * Safe with queries pending and from inside a dns callback. */
void dns_free(struct dns *dns);

/* Look up name (absolute, no search list) for A, AAAA, MX, TXT or PTR
 * records; A is also the DNSBL lookup of a dns_dnsbl_name() name. MX results
 * are sorted by preference; TXT results hold each record's strings
 * concatenated (RFC 7208 3.3). NULL only if an argument is NULL (errno
 * EINVAL): then cb will not run. */
struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_cb cb,
                             void *arg);

/* PTR lookup of an address (in-addr.arpa, or ip6.arpa nibbles; an IPv4-
 * mapped IPv6 address counts as IPv4). NULL with errno EAFNOSUPPORT for
 * another family: then cb will not run. */
struct dns_query *dns_ptr(struct dns *dns, const struct sockaddr *sa, dns_cb cb, void *arg);

/* Forward-confirmed reverse DNS of sa: PTR, then A (IPv4) or AAAA (IPv6) of
 * up to DNS_FCRDNS_MAX_NAMES PTR names; confirmed if one of them has sa's
 * address. NULL as for dns_ptr(). */
struct dns_query *dns_fcrdns(struct dns *dns, const struct sockaddr *sa, dns_fcrdns_cb cb,
                             void *arg);

/* Stop a query (any kind) whose callback has not begun: it will not run.
 * NULL is ignored. */
void dns_cancel(struct dns_query *q);

/* Build the DNSBL name of sa under zone: "4.3.2.1.zone" for 1.2.3.4 (also
 * when IPv4-mapped), 32 reversed nibbles then zone for IPv6. A trailing dot
 * on zone is dropped. 0, or -1 with errno EAFNOSUPPORT, EINVAL (empty zone)
 * or ENAMETOOLONG (does not fit in outlen or exceeds 253 characters). */
int dns_dnsbl_name(const struct sockaddr *sa, const char *zone, char *out, size_t outlen);

/* A constant name for a status, for logs: "ok", "nxdomain", ... */
const char *dns_status_str(enum dns_status status);

#endif
