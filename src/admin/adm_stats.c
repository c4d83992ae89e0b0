/* adm_stats.c - the statistics table and its hourly series, from the store */
#include "admin/adm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "policy/stats.h"
#include "store/store.h"

#define ADM_SERIES_HOURS_MAX (24 * 400) /* a period longer than the buckets live is cut */

const char *adm_time(time_t t, char *dst, size_t len)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(dst, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return dst;
}

int adm_parse_time(const char *s, int is_end, time_t *t)
{
    struct tm tm = {0};
    const char *end;
    char *num_end;
    time_t now = clock_now();
    long long secs;

    if (strcmp(s, "all") == 0) {
        *t = is_end ? now + 86400 * 366 : 0;
        return 0;
    }
    if (strcmp(s, "today") == 0) {
        gmtime_r(&now, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *t = timegm(&tm) + (is_end ? 86400 : 0);
        return 0;
    }
    secs = strtoll(s, &num_end, 10);
    if (*s >= '0' && *s <= '9' && *num_end == '\0' && strlen(s) > 8) {
        *t = (time_t)secs; /* unix seconds (the dashboard's own periods) */
        return 0;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T')
        end = strptime(end + 1, "%H", &tm);
    if (!end || *end != '\0')
        return -1;
    *t = timegm(&tm);
    return 0;
}

/* table_item - one bucket record: summed when its hour is inside the period */
static int table_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct adm_table *t = arg;
    char name[80];
    time_t hour;
    int64_t v;
    size_t i;

    if (stats_decode(key, keylen, val, vlen, &hour, name, sizeof(name), &v) < 0 ||
        hour < t->from - 3599 || hour >= t->to)
        return 0;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0)
            break;
    if (i == t->n) {
        if (t->n == ADM_TABLE_MAX)
            return 0;
        snprintf(t->name[t->n++], sizeof(t->name[0]), "%s", name);
    }
    t->value[i] += v;
    return 0;
}

int adm_table_read(struct store *st, time_t from, time_t to, struct adm_table *t)
{
    memset(t, 0, sizeof(*t));
    t->from = from; /* the bucket holding from is in, as in mxgatectl stats */
    t->to = to;
    return store_sync_scan_prefix(st, STATS_KEY_PREFIX, sizeof(STATS_KEY_PREFIX) - 1, table_item,
                                  t) == STORE_OK
               ? 0
               : -1;
}

int64_t adm_table_get(const struct adm_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0)
            return t->value[i];
    return 0;
}

/* table_pct - a share of connections, one decimal */
static double table_pct(int64_t part, int64_t whole)
{
    return whole > 0 ? (double)(int64_t)(1000.0 * (double)part / (double)whole + 0.5) / 10.0 : 0.0;
}

void adm_table_json(const struct adm_table *t, struct json *j)
{
    int64_t conns = adm_table_get(t, "connections");
    char when[32];

    json_obj_begin(j);
    json_kstr(j, "from", adm_time(t->from, when, sizeof(when)));
    json_kstr(j, "to", adm_time(t->to, when, sizeof(when)));
    json_kint(j, "connections", conns);
    json_kint(j, "accepted", adm_table_get(t, "accepted"));
    json_kint(j, "queue_corrupt", adm_table_get(t, "queue_corrupt"));
    json_kint(j, "refused", adm_table_get(t, "stopped"));
    json_key(j, "refused_percent");
    json_double(j, table_pct(adm_table_get(t, "stopped"), conns));
    json_key(j, "mechanisms");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++) {
        if (strncmp(t->name[i], "stopped.", 8) != 0)
            continue;
        json_obj_begin(j);
        json_kstr(j, "name", t->name[i] + 8);
        json_kint(j, "stopped", t->value[i]);
        json_key(j, "percent");
        json_double(j, table_pct(t->value[i], conns));
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "verdicts");
    json_arr_begin(j);
    for (size_t i = 0; i < t->n; i++) {
        if (!strchr(t->name[i], '.') || strncmp(t->name[i], "stopped.", 8) == 0)
            continue;
        json_obj_begin(j);
        json_kstr(j, "name", t->name[i]);
        json_kint(j, "count", t->value[i]);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

struct series {
    struct json *j;
    time_t from, to, hour; /* hour: the bucket whose object is open, 0: none */
    int stopped_open;      /* its "stopped" object is open */
    size_t hours;
};

/* series_close - end the open hour's object */
static void series_close(struct series *s)
{
    if (!s->hour)
        return;
    if (s->stopped_open)
        json_obj_end(s->j);
    json_obj_end(s->j);
    s->hour = 0;
    s->stopped_open = 0;
}

/* series_item - records come in key order: one hour's counters together, and within
 * it "connections" before "stopped.*" */
static int series_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct series *s = arg;
    char name[80];
    time_t hour;
    int64_t v;

    if (stats_decode(key, keylen, val, vlen, &hour, name, sizeof(name), &v) < 0 ||
        hour < s->from - 3599 || hour >= s->to ||
        (strcmp(name, "connections") != 0 && strncmp(name, "stopped.", 8) != 0))
        return 0;
    if (hour != s->hour) {
        series_close(s);
        if (++s->hours > ADM_SERIES_HOURS_MAX)
            return 1;
        s->hour = hour;
        json_obj_begin(s->j);
        json_kint(s->j, "t", (long long)hour);
    }
    if (strcmp(name, "connections") == 0) {
        if (!s->stopped_open)
            json_kint(s->j, "connections", v);
        return 0;
    }
    if (!s->stopped_open) {
        json_key(s->j, "stopped");
        json_obj_begin(s->j);
        s->stopped_open = 1;
    }
    json_kint(s->j, name + 8, v);
    return 0;
}

int adm_series_json(struct store *st, time_t from, time_t to, struct json *j)
{
    struct series s = {.j = j, .from = from, .to = to};
    char when[32];
    int rc;

    json_obj_begin(j);
    json_kstr(j, "from", adm_time(from, when, sizeof(when)));
    json_kstr(j, "to", adm_time(to, when, sizeof(when)));
    json_key(j, "hours");
    json_arr_begin(j);
    rc =
        store_sync_scan_prefix(st, STATS_KEY_PREFIX, sizeof(STATS_KEY_PREFIX) - 1, series_item, &s);
    series_close(&s);
    json_arr_end(j);
    json_obj_end(j);
    return rc == STORE_OK ? 0 : -1;
}
