/*
 * dest.h - flow control per destination (the recipient domain of route "mx"):
 * how many deliveries run at once, how many start per time window, and the
 * feedback of Postfix's scheduler: a destination that answers 421 or a 4xx
 * "too many connections"/"try later" gets a smaller concurrency and a
 * back-off; successes raise the concurrency again up to its limit.
 *
 * destination "docomo.ne.jp" { concurrency = 2  rate = "30/60" }
 * destination "ezweb.ne.jp"  { preset = "carrier" }
 * destination "*"            { concurrency = 20 }
 *
 * The presets (dest_presets) name the Japanese mobile carriers and the large
 * mailbox providers; a destination section overrides them.
 */
#ifndef MX_RELAY_DEST_H
#define MX_RELAY_DEST_H

#include <stddef.h>

#include "relay/flow.h"

struct config;
struct config_section;
typedef struct ssl_ctx_st SSL_CTX;

/* TLS policy: opportunistic; required; required with the certificate naming the MX host. */
enum dest_tls { DEST_TLS_MAY, DEST_TLS_ENCRYPT, DEST_TLS_VERIFY };

/* A destination's limits. */
struct dest_conf {
    unsigned concurrency;    /* deliveries at once, >= 1 */
    unsigned rate_n;         /* at most rate_n deliveries start ... */
    unsigned rate_secs;      /* ... per rate_secs seconds; 0: no rate limit */
    unsigned per_connection; /* messages per connection; 0: no limit */
    enum dest_tls tls;       /* "may" (default), "encrypt", "verify" */
};

#define DEST_HOST_BLOCK 4 /* the busy MX hosts a destination remembers */

struct mxhost;

/* A destination's state. */
struct dest {
    char name[256]; /* the domain (lower case) */
    struct dest_conf conf;
    struct flow flow; /* deliveries running, window, rate, back-off (relay/flow.h) */
    SSL_CTX *verify;  /* tls "verify": the context with its CAs (owned by the table) */
    /* reachability (Postfix's dead destination): since when no server of it answered a
     * connection (0: it answers, or nothing is known yet); a dead destination gets one
     * probe at a time, at probe_due, and no other delivery */
    double unreachable_since;
    double probe_due;
    unsigned probe_wait;   /* seconds between probes: doubles up to the queue's retry_max */
    int reached;           /* a server answered once since the start (slow start until then) */
    int nexthop;           /* a relay route's next hop, not a domain: no limits of its own */
    unsigned host_waiting; /* its deliveries waiting for an MX host (mxhost.h) to take one */
    /* the MX hosts its last delivery found at their limits (it went back to the queue
     * rather than wait holding a delivery slot): the scheduler starts none of its mail
     * until one of them takes one more; cleared when a delivery takes a host */
    struct mxhost *host_block[DEST_HOST_BLOCK];
    unsigned nhost_block;
    void *sched; /* the scheduler's waiting mail for it (queue/), NULL: none yet */
};

enum dest_outcome { DEST_OK = FLOW_OK, DEST_THROTTLED = FLOW_THROTTLED, DEST_OTHER = FLOW_OTHER };

/* The destination sections. */
extern const struct config_section dests_section;

struct dests;

/* dests_load - the table of cfg's destination sections over the presets */
struct dests *dests_load(const struct config *cfg);
void dests_free(struct dests *t);

/* dests_get - the state of domain (made on first use with its limits) */
struct dest *dests_get(struct dests *t, const char *domain);

/* dests_get_nexthop - the state of a relay route's next hop (name: its target, e.g.
 * "smtp:[127.0.0.1]:25"): reachability only, no concurrency or rate limit */
struct dest *dests_get_nexthop(struct dests *t, const char *name);

/* dests_reconfigure - a reload: cfg's destination sections replace the running ones; each
 * destination's limits are looked up again, its state (deliveries running, feedback,
 * back-off, reachability) stays. TLS contexts of the old sections live until dests_free
 * (a running delivery may still use one). */
void dests_reconfigure(struct dests *t, const struct config *cfg);

/* dest_unreachable - no server of d answered: 1 when this is news (d was reachable) */
int dest_unreachable(struct dest *d, double now, unsigned first_wait, unsigned max_wait);
/* dest_reachable - a server of d answered: 1 when this is news (d was unreachable) */
int dest_reachable(struct dest *d);

/* dests_count, dests_at - every destination with state, for queue listings */
size_t dests_count(const struct dests *t);
const struct dest *dests_at(const struct dests *t, size_t i);

/* dest_conf_for - the limits of domain: its section, else a preset, else "*", else defaults */
void dest_conf_for(const struct dests *t, const char *domain, struct dest_conf *c);

/* dest_may_start - 1 when a delivery may start at now; else 0 and *wait (seconds)
 * says when to ask again (a back-off or the rate window; 0: when one ends) */
int dest_may_start(const struct dest *d, double now, double *wait);
void dest_started(struct dest *d, double now);
void dest_finished(struct dest *d, double now, enum dest_outcome o);

/* dest_classify - a reply code and text as feedback: 421, or a 4xx that says
 * "too many", "try later", "rate" or "throttl", is DEST_THROTTLED */
enum dest_outcome dest_classify(int code, const char *text);

#endif
