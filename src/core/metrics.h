/*
 * metrics.h - the daemon's counters and histograms since it started, for the
 * admin listener's /metrics (Prometheus). Process-wide and thread-safe, so
 * that any module counts with one call and no handle: the statistics of
 * policy/stats.c (persistent, per hour) and these (in memory, since start)
 * are fed by the same events.
 */
#ifndef MX_CORE_METRICS_H
#define MX_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_counter {
    METRICS_DELIVERED,    /* recipients delivered to the next hop */
    METRICS_DEFERRED,     /* recipient attempts deferred */
    METRICS_BOUNCED,      /* recipients bounced */
    METRICS_DNS_LOOKUPS,  /* DNS queries sent */
    METRICS_DNS_TIMEOUTS, /* DNS queries that timed out */
    METRICS_STORE_ERRORS, /* state store operations that failed */
    METRICS_NCOUNTERS
};

enum metrics_hist {
    METRICS_DELIVERY_SECONDS,  /* arrival to the next hop's 250, per recipient */
    METRICS_SESSION_SECONDS,   /* an SMTP session, connect to close */
    METRICS_LOOP_TURN_SECONDS, /* event loop work between two waits (core/looptime.h) */
    METRICS_NHISTS
};

#define METRICS_BUCKETS 14     /* upper bounds; +Inf is the count */
#define METRICS_EVENTS_MAX 256 /* distinct named events kept */

void metrics_inc(enum metrics_counter c);
uint64_t metrics_get(enum metrics_counter c);

/* metrics_observe - one observation of h, in seconds */
void metrics_observe(enum metrics_hist h, double seconds);

struct metrics_hist_snap {
    const double *bounds;                 /* METRICS_BUCKETS upper bounds */
    uint64_t cumulative[METRICS_BUCKETS]; /* observations <= bounds[i] */
    uint64_t count;
    double sum;
};
void metrics_hist_get(enum metrics_hist h, struct metrics_hist_snap *out);

/* metrics_event - one more of a named event: the statistics' counter names
 * ("connections", "accepted", "stopped.dnsbl", "greylist.tempfail") */
void metrics_event(const char *name);
/* metrics_events - call fn for every named event seen (name, count); NUL-terminated names */
void metrics_events(void (*fn)(const char *name, uint64_t n, void *arg), void *arg);

#endif
