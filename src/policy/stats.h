/*
 * stats.h - persistent counters per mechanism, in hourly buckets of the
 * state store, so that `mxgatectl stats` can print the table for any period.
 * Keys: "stats:<YYYYMMDDHH>:<counter>", values int64 counters.
 */
#ifndef MX_POLICY_STATS_H
#define MX_POLICY_STATS_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct store;
struct stats;

/* stats_new - count into st (NULL: counting is a no-op) */
struct stats *stats_new(struct store *st);
/* stats_free - writes what stats_batch still holds */
void stats_free(struct stats *s);

struct event_base;
/* stats_batch - hold increments up to ms milliseconds on base's loop and write
 * each counter once (the daemon; without it every count is written at once). 0 or -1 */
int stats_batch(struct stats *s, struct event_base *base, unsigned ms);

/* stats_count - one more of counter (e.g. "connections", "accepted", "dnsbl.reject") */
void stats_count(struct stats *s, const char *counter);

/*
 * stats_report - for mxgatectl: sum the buckets in [from, to) from a read-only
 * store and print the table (connections, accepted messages, queue files
 * found corrupt ("queue_corrupt", counted by main.c for the queue), stopped in
 * total and by each mechanism, with percentages of connections; then the
 * sender-authentication mechanisms (spf, sender, dkim, dmarc, score), each
 * with its reject, tempfail and score verdicts; then every verdict counter). 0 or -1.
 */
int stats_report(struct store *ro, time_t from, time_t to, FILE *out);

/* stats_set_host - a shared store (Redis): also count this gateway's own share under
 * host, for the fleet's table of stats_report (no effect on a store of its own) */
void stats_set_host(struct stats *s, const char *host);

/* The store records' key prefix, for a scan of every bucket. */
#define STATS_KEY_PREFIX "stats:"

/*
 * stats_decode - one record of a scan under STATS_KEY_PREFIX (the admin API and
 * mxgatectl --json sum them themselves): the start of its hour, its counter name
 * (NUL-terminated in name) and value. 0, or -1 when it is not a counter record.
 */
int stats_decode(const void *key, size_t keylen, const void *val, size_t vlen, time_t *hour,
                 char *name, size_t namelen, int64_t *value);

#endif
