/* dns_internal.h - what the files of the dns module share (not for other modules) */
#ifndef MX_DNS_INTERNAL_H
#define MX_DNS_INTERNAL_H

#include "dns/dns.h"

#include <ares.h>
#include <event2/event.h>
#include <sys/queue.h>

#define DNS_CLASS_IN 1

/* c-ares 1.28 deprecates ares_query() and the ares_parse_*_reply() family for
 * ares_query_dnsrec() and the parsed-record API: with 1.28 or newer we use those
 * (no deprecated call, no warning); with older ones, the calls they replace. */
#if ARES_VERSION >= 0x011c00
#define DNS_ARES_DNSREC 1
#else
#define DNS_ARES_DNSREC 0
#endif
#define DNS_SERVER_TEXT (INET6_ADDRSTRLEN + 10) /* "[addr]:port," */

/* A c-ares socket and the event that watches it. */
struct dns_sock {
    struct dns_sock *next;
    ares_socket_t fd;
    struct event *ev;
};

struct dns {
    struct event_base *base;
    ares_channel channel;
    struct event *timer;   /* fires at ares_timeout() */
    struct event *deliver; /* runs finished queries' callbacks */
    struct dns_sock *socks;
    TAILQ_HEAD(, dns_query) all;   /* every live query, for dns_free() */
    TAILQ_HEAD(, dns_query) ready; /* finished, callback not yet run */
    int *freed_flag;               /* set when dns_free() runs inside delivery */
    int closing;
};

/* Where a query is: nowhere (an fcrdns parent), waiting in c-ares (which
 * still holds a pointer to it), finished and queued, or in its callback. */
enum dns_qstate { Q_IDLE, Q_ARES, Q_READY, Q_CALLING };

/* State of a forward-confirmed reverse lookup, owned by its parent query. */
struct dns_fcrdns {
    dns_fcrdns_cb cb;
    void *arg;
    struct dns_addr client;
    struct dns_query *ptrq;                        /* PTR lookup while pending */
    struct dns_query *child[DNS_FCRDNS_MAX_NAMES]; /* forward lookups pending */
    char *names[DNS_FCRDNS_MAX_NAMES];
    size_t nnames;
    size_t pending;
    enum dns_status fail; /* worst temporary failure of a forward lookup */
};

struct dns_query {
    struct dns *dns;
    TAILQ_ENTRY(dns_query) all_link;
    TAILQ_ENTRY(dns_query) ready_link;
    enum dns_qstate state;
    int linked;    /* on dns->all */
    int cancelled; /* waiting in c-ares, but nobody wants the answer */
    void (*done)(struct dns_query *q);
    dns_cb cb;
    void *arg;
    struct dns_result res;
    struct dns_fcrdns *fc;    /* set on an fcrdns parent */
    struct dns_query *parent; /* set on an fcrdns step */
    size_t slot;              /* index of a forward step in parent->fc->child */
};

/* dns_name.c: addresses and names */
int dns_addr_from_sa(const struct sockaddr *sa, struct dns_addr *a);
int dns_reverse_name(const struct dns_addr *a, const char *zone, char *out, size_t outlen);
char *dns_name_dup(const char *s, size_t *lenp);

/* dns.c: query lifetime */
struct dns_query *dns_query_new(struct dns *dns);
void dns_query_unlink(struct dns_query *q);
void dns_query_destroy(struct dns_query *q);
void dns_query_free(struct dns_query *q);
void dns_result_clear(struct dns_result *r);
struct dns_query *dns_query_start(struct dns *dns, enum dns_type type, const char *name,
                                  void (*done)(struct dns_query *));

/* dns_parse.c: answers */
enum dns_status dns_map_status(int st);
#if DNS_ARES_DNSREC
enum dns_status dns_parse_record(struct dns_query *q, const ares_dns_record_t *rec);
#else
enum dns_status dns_parse_answer(struct dns_query *q, const unsigned char *abuf, int alen);
#endif

/* dns_fcrdns.c: forward-confirmed reverse DNS */
void dns_fcrdns_cancel_steps(struct dns_fcrdns *fc);

#endif
