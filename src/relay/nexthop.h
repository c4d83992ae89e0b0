/*
 * nexthop.h - what each route's next hop can take: SMTPUTF8, 8BITMIME and
 * its SIZE limit, learned from its EHLO/LHLO. A cache per route target:
 * probed at start (greeting, EHLO, STARTTLS and EHLO again as delivery
 * would, QUIT), refreshed in the background when a lookup finds it old,
 * and refreshed by every delivery's EHLO. Everything runs on the event
 * loop (names are resolved in the thread pool): a lookup never waits.
 *
 * Unknown (the next hop never answered, or not for a long time) means
 * "do not refuse": mail is queued as a temporary condition would be, and
 * a permanent failure after 250 becomes a DSN under the bounce limits.
 */
#ifndef MX_RELAY_NEXTHOP_H
#define MX_RELAY_NEXTHOP_H

#include <stdint.h>
#include <time.h>

#include "relay/route.h"

struct event_base;
struct pool;
struct smtp_client_result;
typedef struct ssl_ctx_st SSL_CTX;

struct nexthop_caps {
    int known;        /* an EHLO answer is at hand; else nothing below holds */
    int smtputf8;     /* SMTPUTF8 (RFC 6531) */
    int eightbitmime; /* 8BITMIME (RFC 6152) */
    uint64_t size;    /* SIZE limit (RFC 1870); 0: none announced */
};

struct nexthop_opts {
    const char *helo;
    SSL_CTX *tls; /* STARTTLS as delivery does, or NULL */
    unsigned connect_timeout, command_timeout;
    unsigned refresh; /* seconds after which a known answer is asked again */
    unsigned retry;   /* seconds between attempts while unknown */
    unsigned forget;  /* seconds without a fresh answer after which it is unknown */
};

struct nexthops;

/* nexthops_new - an empty cache; pool resolves host names. NULL: no memory */
struct nexthops *nexthops_new(struct event_base *base, struct pool *pool,
                              const struct nexthop_opts *o);

/* nexthops_add - know target t (it must outlive the cache); the same target
 * twice is one entry */
void nexthops_add(struct nexthops *nh, const struct route_target *t);

/* nexthops_start - probe every SMTP/LMTP target now (asynchronous) */
void nexthops_start(struct nexthops *nh);

/* nexthops_get - what t takes. Maildir: everything, no limit. A target not
 * added, or not answered yet: unknown. A stale answer is returned as it is
 * while a fresh probe starts in the background. nh may be NULL (unknown). */
void nexthops_get(struct nexthops *nh, const struct route_target *t, struct nexthop_caps *caps);

/* nexthops_learn - a delivery's EHLO answered (res->ehlo_ok): keep it */
void nexthops_learn(struct nexthops *nh, const struct route_target *t,
                    const struct smtp_client_result *res);

/* nexthops_free - cancel the probes under way and free; NULL ok */
void nexthops_free(struct nexthops *nh);

#endif
