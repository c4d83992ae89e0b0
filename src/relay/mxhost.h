/*
 * mxhost.h - flow control per MX host. Many recipient domains share one mail
 * server (a carrier's or a hosting provider's mx1.provider.test serves hundreds
 * of them): a limit per destination domain alone lets mxgate open concurrency
 * x domains connections to it. An mx_host section limits the connections to
 * one host, whatever domain they carry mail for:
 *
 * mx_host "mx1.provider.test" { concurrency = 4  rate = "60/60"  per_connection = 20 }
 * mx_host "*.provider.test"   { concurrency = 8 }
 *
 * The title is the MX host NAME (as the MX record gives it; lower case, no
 * trailing dot): an exact name, "*.SUFFIX" for every host under SUFFIX (the
 * longest suffix wins, an exact name over any), or "*" for every host. Each
 * host gets its own state (a wildcard gives each host its limits, not one
 * pool). concurrency counts the connections delivering to the host at once
 * (a reused connection counts while it carries a message; an idle cached one
 * does not); rate counts the messages (deliveries) started per window, over new
 * or reused connections alike; per_connection closes a connection to the host
 * after that many messages (the stricter of it and the domain's applies). A 421 or "too many
 * connections" from the host halves the concurrency allowed now and backs off (relay/flow.h), as
 * for a domain. There are no presets: the carriers' MX host names are theirs to change.
 */
#ifndef MX_RELAY_MXHOST_H
#define MX_RELAY_MXHOST_H

#include <stddef.h>

#include "relay/flow.h"

struct config;
struct config_section;

/* One MX host's state. */
struct mxhost {
    char name[256];          /* the host name, canonical (lower case, no trailing dot) */
    char section[256];       /* the title of the section that gives its limits, "" if none now */
    struct flow flow;        /* connections delivering now, window, rate, back-off */
    unsigned per_connection; /* messages over one connection; 0: no limit */
    unsigned reserved;       /* deliveries the scheduler started for it, not connected yet */
};

/* The mx_host sections. */
extern const struct config_section mxhosts_section;

struct mxhosts;

/* mxhosts_load - the table of cfg's mx_host sections (cfg NULL: none) */
struct mxhosts *mxhosts_load(const struct config *cfg);
void mxhosts_free(struct mxhosts *t);

/* mxhosts_reconfigure - a reload: cfg's sections replace the running ones; each host's
 * limits are looked up again, its state (connections, window, back-off) stays; a host
 * no section names any more has no limit (mxhosts_get returns NULL for it) */
void mxhosts_reconfigure(struct mxhosts *t, const struct config *cfg);

/* mxhosts_get - the state of host (any case, a trailing dot ignored), made on first use
 * with its section's limits; NULL when no section names it (no limit) or t is NULL */
struct mxhost *mxhosts_get(struct mxhosts *t, const char *host);

/* mxhosts_count, mxhosts_at - every host with state, for the listings */
size_t mxhosts_count(const struct mxhosts *t);
const struct mxhost *mxhosts_at(const struct mxhosts *t, size_t i);

/* mxhost_canon - name in canonical form into dst (lower case, one trailing dot
 * dropped): 0, or -1 when it is not a host name (LDH labels of 1..63, at most 253 in
 * all; an underscore is tolerated as DNS names carry it) */
int mxhost_canon(const char *name, char *dst, size_t dstlen);

/* mxhost_match - how well pattern (a section title, canonical) names host (canonical):
 * 0 not at all, 1 for "*", 2 + the suffix's length for "*.SUFFIX", INT_MAX for the
 * exact name */
int mxhost_match(const char *pattern, const char *host);

#endif
