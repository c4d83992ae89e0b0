/* stats.c - hourly counters in the state store, and the report for mxgatectl */
#include "policy/stats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define STATS_PREFIX "stats:"
/* A shared store (Redis) also keeps each gateway's own counters, for the fleet's
 * table: "hstats:<host>:YYYYMMDDHH:counter". */
#define STATS_HOST_PREFIX "hstats:"
#define STATS_HOSTS_MAX 32
#define STATS_KEEP (400 * 86400) /* buckets live a little over a year */
#define STATS_MAX_COUNTERS 128
#define STATS_PENDING_MAX 64 /* distinct keys held between flushes */

struct stats_pending {
    char key[160];
    size_t keylen;
    int64_t delta;
};

struct stats {
    struct store *st;
    char host[128];         /* "" unless the store is shared */
    struct event *flush_ev; /* batching on (stats_batch): a one-shot timer */
    struct timeval interval;
    size_t npending;
    struct stats_pending pending[STATS_PENDING_MAX];
};

/* stats_new - counting into st */
struct stats *stats_new(struct store *st)
{
    struct stats *s = xcalloc(1, sizeof(*s));

    s->st = st;
    return s;
}

void stats_set_host(struct stats *s, const char *host)
{
    if (s && store_shared(s->st))
        snprintf(s->host, sizeof(s->host), "%s", host);
}

/* stats_write - add delta to the fleet's counter key, and to this gateway's own */
static void stats_write(struct stats *s, const char *key, size_t keylen, int64_t delta)
{
    char hkey[320];
    int n;

    store_incr(s->st, key, keylen, delta, STATS_KEEP, NULL, NULL);
    if (!s->host[0])
        return;
    n = snprintf(hkey, sizeof(hkey), STATS_HOST_PREFIX "%s:%.*s", s->host,
                 (int)(keylen - (sizeof(STATS_PREFIX) - 1)), key + sizeof(STATS_PREFIX) - 1);
    if (n > 0 && (size_t)n < sizeof(hkey))
        store_incr(s->st, hkey, (size_t)n, delta, STATS_KEEP, NULL, NULL);
}

/* stats_flush - one store increment per distinct counter held */
static void stats_flush(struct stats *s)
{
    for (size_t i = 0; i < s->npending; i++)
        stats_write(s, s->pending[i].key, s->pending[i].keylen, s->pending[i].delta);
    s->npending = 0;
}

/* stats_flush_cb - the batching interval is over */
static void stats_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stats_flush(arg);
}

/* stats_batch - hold increments for up to ms milliseconds on base, then write them together */
int stats_batch(struct stats *s, struct event_base *base, unsigned ms)
{
    if (!s || !s->st)
        return 0;
    s->flush_ev = evtimer_new(base, stats_flush_cb, s);
    s->interval.tv_sec = ms / 1000;
    s->interval.tv_usec = (ms % 1000) * 1000;
    return s->flush_ev ? 0 : -1;
}

/* stats_free - write what is held; the store is not ours */
void stats_free(struct stats *s)
{
    if (!s)
        return;
    if (s->flush_ev)
        event_free(s->flush_ev);
    if (s->st)
        stats_flush(s);
    free(s);
}

/* stats_hold - add to a held counter; 0, or -1 when it must be written now */
static int stats_hold(struct stats *s, const char *key, size_t keylen)
{
    size_t i;

    for (i = 0; i < s->npending; i++)
        if (s->pending[i].keylen == keylen && memcmp(s->pending[i].key, key, keylen) == 0)
            break;
    if (i == s->npending) {
        if (i == STATS_PENDING_MAX)
            return -1;
        memcpy(s->pending[i].key, key, keylen);
        s->pending[i].keylen = keylen;
        s->pending[i].delta = 0;
        s->npending++;
    }
    s->pending[i].delta++;
    if (!evtimer_pending(s->flush_ev, NULL))
        evtimer_add(s->flush_ev, &s->interval);
    return 0;
}

/* stats_key - "stats:YYYYMMDDHH:counter" for now */
static int stats_key(char *dst, size_t len, time_t t, const char *counter)
{
    struct tm tm;
    char hour[16];

    gmtime_r(&t, &tm);
    strftime(hour, sizeof(hour), "%Y%m%d%H", &tm);
    return snprintf(dst, len, STATS_PREFIX "%s:%s", hour, counter);
}

/* stats_count - fire and forget: a lost increment is not worth a reply */
void stats_count(struct stats *s, const char *counter)
{
    char key[160];
    int n;

    metrics_event(counter); /* since start, for /metrics */
    if (!s || !s->st)
        return;
    n = stats_key(key, sizeof(key), clock_now(), counter);
    if (n <= 0 || (size_t)n >= sizeof(key))
        return;
    /* Busy hours count the same few counters thousands of times: one store
     * write per counter and interval instead of one per event. */
    if (s->flush_ev && stats_hold(s, key, (size_t)n) == 0)
        return;
    stats_write(s, key, (size_t)n, 1);
}

struct stats_host {
    char name[128];
    int64_t conns, accepted, stopped;
};

struct stats_sum {
    char from[16], to[16]; /* hour bounds as YYYYMMDDHH */
    size_t nhosts;
    struct stats_host host[STATS_HOSTS_MAX];
    size_t n;
    char name[STATS_MAX_COUNTERS][80];
    int64_t value[STATS_MAX_COUNTERS];
};

/* stats_add - accumulate one counter */
static void stats_add(struct stats_sum *sum, const char *name, size_t nlen, int64_t v)
{
    size_t i;

    for (i = 0; i < sum->n; i++)
        if (strlen(sum->name[i]) == nlen && memcmp(sum->name[i], name, nlen) == 0)
            break;
    if (i == sum->n) {
        if (sum->n == STATS_MAX_COUNTERS || nlen >= sizeof(sum->name[0]))
            return;
        memcpy(sum->name[i], name, nlen);
        sum->name[i][nlen] = '\0';
        sum->n++;
    }
    sum->value[i] += v;
}

/* stats_scan_item - one bucket entry inside the period */
static int stats_scan_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct stats_sum *sum = arg;
    const char *k = key;
    size_t pl = sizeof(STATS_PREFIX) - 1;
    int64_t v;

    if (keylen < pl + 11 || k[pl + 10] != ':')
        return 0;
    if (memcmp(k + pl, sum->from, 10) < 0 || memcmp(k + pl, sum->to, 10) >= 0)
        return 0;
    if (store_counter_decode(val, vlen, &v) < 0)
        return 0;
    stats_add(sum, k + pl + 11, keylen - pl - 11, v);
    return 0;
}

/* stats_get - a summed counter by name */
static int64_t stats_get(const struct stats_sum *sum, const char *name)
{
    for (size_t i = 0; i < sum->n; i++)
        if (strcmp(sum->name[i], name) == 0)
            return sum->value[i];
    return 0;
}

/* stats_pct - share of connections */
static double stats_pct(int64_t part, int64_t whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

/* stats_print_auth - the sender-authentication mechanisms, each always listed: what it
 * refused (reject), deferred (tempfail) and scored, by its verdict counters */
static void stats_print_auth(const struct stats_sum *sum, FILE *out)
{
    static const char *const mech[] = {"spf", "sender", "dkim", "dmarc", "score"};
    static const char *const col[] = {"reject", "tempfail", "score"};
    char name[96];

    fprintf(out, "%-28s %12s %12s %12s\n", "sender authentication:", col[0], col[1], col[2]);
    for (size_t i = 0; i < sizeof(mech) / sizeof(mech[0]); i++) {
        fprintf(out, "  %-26s", mech[i]);
        for (size_t c = 0; c < sizeof(col) / sizeof(col[0]); c++) {
            snprintf(name, sizeof(name), "%s.%s", mech[i], col[c]);
            fprintf(out, " %12lld", (long long)stats_get(sum, name));
        }
        fprintf(out, "\n");
    }
}

/* stats_print_submission - the outbound side: what authenticated users sent and
 * what the submission listeners refused (session_auth.c counts them), quotas and
 * suspensions (quota.c, mxgatectl user) */
static void stats_print_submission(const struct stats_sum *sum, FILE *out)
{
    static const char *const rows[][2] = {
        {"submissions accepted", "submission.accepted"},
        {"submission auth failures", "submission.auth_failures"},
        {"submission lock-outs", "submission.lockouts"},
        {"submission sender mismatch", "submission.sender_mismatch"},
        {"quota refused messages", "quota.messages"},
        {"quota refused recipients", "quota.recipients"},
        {"suspended login refused", "quota.suspended"},
        {"logins suspended", "quota.suspend"},
        {"logins resumed", "quota.resume"},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        fprintf(out, "%-28s %12lld\n", rows[i][0], (long long)stats_get(sum, rows[i][1]));
}

/* stats_print - the Miyazaki table */
static void stats_print(const struct stats_sum *sum, FILE *out)
{
    int64_t conns = stats_get(sum, "connections"), stopped = stats_get(sum, "stopped");

    fprintf(out, "%-28s %12lld\n", "connections", (long long)conns);
    fprintf(out, "%-28s %12lld\n", "messages accepted", (long long)stats_get(sum, "accepted"));
    fprintf(out, "%-28s %12lld\n", "queue files corrupt",
            (long long)stats_get(sum, "queue_corrupt"));
    stats_print_submission(sum, out);
    fprintf(out, "%-28s %12lld %6.1f%%\n", "connections refused", (long long)stopped,
            stats_pct(stopped, conns));
    for (size_t i = 0; i < sum->n; i++)
        if (strncmp(sum->name[i], "stopped.", 8) == 0)
            fprintf(out, "  %-26s %12lld %6.1f%%\n", sum->name[i] + 8, (long long)sum->value[i],
                    stats_pct(sum->value[i], conns));
    stats_print_auth(sum, out);
    fprintf(out, "verdicts:\n");
    for (size_t i = 0; i < sum->n; i++)
        if (strchr(sum->name[i], '.') && strncmp(sum->name[i], "stopped.", 8) != 0 &&
            strncmp(sum->name[i], "submission.", 11) != 0)
            fprintf(out, "  %-26s %12lld\n", sum->name[i], (long long)sum->value[i]);
}

/* stats_host_item - one gateway's bucket entry: its connections, accepted, refused */
static int stats_host_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct stats_sum *sum = arg;
    const char *k = (const char *)key + sizeof(STATS_HOST_PREFIX) - 1, *end = k, *c;
    size_t rest = keylen - (sizeof(STATS_HOST_PREFIX) - 1), hl, i;
    int64_t v;

    /* "<host>:YYYYMMDDHH:counter": the host is all before the bucket */
    if (!(end = memchr(k, ':', rest)) || (hl = (size_t)(end - k)) == 0 || hl >= 128 ||
        rest < hl + 12 || end[11] != ':' || store_counter_decode(val, vlen, &v) < 0)
        return 0;
    if (memcmp(end + 1, sum->from, 10) < 0 || memcmp(end + 1, sum->to, 10) >= 0)
        return 0;
    for (i = 0; i < sum->nhosts; i++)
        if (strlen(sum->host[i].name) == hl && memcmp(sum->host[i].name, k, hl) == 0)
            break;
    if (i == sum->nhosts) {
        if (i == STATS_HOSTS_MAX)
            return 0;
        memcpy(sum->host[i].name, k, hl);
        sum->host[i].name[hl] = '\0';
        sum->nhosts++;
    }
    c = end + 12;
    rest = keylen - (size_t)(c - (const char *)key);
    if (rest == 11 && memcmp(c, "connections", 11) == 0)
        sum->host[i].conns += v;
    else if (rest == 8 && memcmp(c, "accepted", 8) == 0)
        sum->host[i].accepted += v;
    else if (rest == 7 && memcmp(c, "stopped", 7) == 0)
        sum->host[i].stopped += v;
    return 0;
}

/* stats_print_hosts - a shared store: the gateways and each one's share (the table
 * above is the fleet's: every gateway counts into the same records) */
static void stats_print_hosts(const struct stats_sum *sum, FILE *out)
{
    if (sum->nhosts == 0)
        return;
    fprintf(out, "gateways sharing the store: %zu (", sum->nhosts);
    for (size_t i = 0; i < sum->nhosts; i++)
        fprintf(out, "%s%s", i ? ", " : "", sum->host[i].name);
    fprintf(out, ")\n");
    fprintf(out, "  %-26s %12s %12s %12s\n", "gateway", "connections", "accepted", "refused");
    for (size_t i = 0; i < sum->nhosts; i++)
        fprintf(out, "  %-26s %12lld %12lld %12lld\n", sum->host[i].name,
                (long long)sum->host[i].conns, (long long)sum->host[i].accepted,
                (long long)sum->host[i].stopped);
}

/* stats_report - sum [from, to) by hour buckets and print */
int stats_report(struct store *ro, time_t from, time_t to, FILE *out)
{
    struct stats_sum *sum = xcalloc(1, sizeof(*sum));
    struct tm tm;
    int rc;

    gmtime_r(&from, &tm);
    strftime(sum->from, sizeof(sum->from), "%Y%m%d%H", &tm);
    gmtime_r(&to, &tm);
    strftime(sum->to, sizeof(sum->to), "%Y%m%d%H", &tm);
    rc = store_sync_scan_prefix(ro, STATS_PREFIX, sizeof(STATS_PREFIX) - 1, stats_scan_item, sum);
    if (rc == STORE_OK)
        rc = store_sync_scan_prefix(ro, STATS_HOST_PREFIX, sizeof(STATS_HOST_PREFIX) - 1,
                                    stats_host_item, sum);
    if (rc == STORE_OK) {
        stats_print(sum, out);
        stats_print_hosts(sum, out);
    }
    free(sum);
    return rc == STORE_OK ? 0 : -1;
}

/* stats_decode - see stats.h */
int stats_decode(const void *key, size_t keylen, const void *val, size_t vlen, time_t *hour,
                 char *name, size_t namelen, int64_t *value)
{
    const char *k = key;
    size_t pl = sizeof(STATS_PREFIX) - 1;
    struct tm tm = {0};
    char digits[11];

    if (keylen < pl + 12 || keylen - pl - 11 >= namelen || k[pl + 10] != ':' ||
        store_counter_decode(val, vlen, value) < 0)
        return -1;
    memcpy(digits, k + pl, 10);
    digits[10] = '\0';
    if (strspn(digits, "0123456789") != 10 || !strptime(digits, "%Y%m%d%H", &tm))
        return -1;
    *hour = timegm(&tm);
    memcpy(name, k + pl + 11, keylen - pl - 11);
    name[keylen - pl - 11] = '\0';
    return 0;
}
