/*
 * adm_dests.c - the scheduler's destinations as the operator sees them: each
 * one's state (deliveries now and its limit, rate, back-off, unreachable
 * since, next probe) and its waiting mail. The state lives in mxgated's
 * memory: the control socket carries it to mxgatectl as one line per
 * destination (the name percent-encoded), the HTTP API as JSON.
 */
#include "admin/adm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "queue/queue.h"

/* adm_time_or_null - a unix time as ISO 8601, or null for 0 */
static void adm_time_or_null(struct json *j, const char *k, double t)
{
    char when[32];

    json_key(j, k);
    if (t > 0)
        json_str(j, adm_time((time_t)t, when, sizeof(when)));
    else
        json_null(j);
}

/* adm_dest_state - one word for the destination's state */
const char *adm_dest_state(const struct queue_dest_info *in, time_t now)
{
    if (in->unreachable_since > 0)
        return "unreachable";
    if (in->backoff_until > (double)now)
        return "backoff";
    if (in->concurrency && in->active >= in->window)
        return "busy";
    return "ready";
}

void adm_dest_json(const struct queue_dest_info *in, struct json *j)
{
    char rate[32];

    json_obj_begin(j);
    json_kstr(j, "destination", in->name);
    json_kstr(j, "kind", in->mxhost ? "mx_host" : in->nexthop ? "nexthop" : "domain");
    json_kstr(j, "state", adm_dest_state(in, clock_now()));
    json_kint(j, "active", in->active);
    json_key(j, "window");
    in->concurrency ? json_int(j, in->window) : json_null(j);
    json_key(j, "concurrency");
    in->concurrency ? json_int(j, in->concurrency) : json_null(j);
    snprintf(rate, sizeof(rate), "%u/%u", in->rate_n, in->rate_secs);
    json_kstr(j, "rate", in->rate_secs ? rate : NULL);
    json_kint(j, "per_connection", in->per_connection);
    adm_time_or_null(j, "backoff_until", in->backoff_until);
    adm_time_or_null(j, "unreachable_since", in->unreachable_since);
    adm_time_or_null(j, "next_probe", in->probe_due);
    json_kint(j, "messages", in->messages);
    json_kint(j, "ready", in->ready);
    json_kint(j, "deferred", in->deferred);
    json_kint(j, "parked", in->parked);
    json_kint(j, "delivering", in->delivering);
    json_obj_end(j);
}

static void dest_json_cb(const struct queue_dest_info *in, void *arg)
{
    adm_dest_json(in, arg);
}

void adm_dests_json(const struct adm_env *env, struct json *j)
{
    json_arr_begin(j);
    if (env->queue)
        queue_dests(env->queue, dest_json_cb, j);
    json_arr_end(j);
}

/* dest_line_cb - "dest NAME KIND(0 domain, 1 next hop, 2 MX host) active window concurrency rate_n
 * rate_secs per_connection backoff_until unreachable_since probe_due messages ready deferred parked
 * delivering" */
static void dest_line_cb(const struct queue_dest_info *in, void *arg)
{
    FILE *f = arg;

    fputs("dest ", f);
    for (const unsigned char *p = (const unsigned char *)in->name; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr(".-_:[]", *p))
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    fprintf(f, " %d %u %u %u %u %u %u %lld %lld %lld %u %u %u %u %u\n",
            in->mxhost ? 2 : in->nexthop, in->active, in->window, in->concurrency, in->rate_n,
            in->rate_secs, in->per_connection, (long long)in->backoff_until,
            (long long)in->unreachable_since, (long long)in->probe_due, in->messages, in->ready,
            in->deferred, in->parked, in->delivering);
}

void adm_dests_lines(const struct adm_env *env, FILE *f)
{
    if (env->queue)
        queue_dests(env->queue, dest_line_cb, f);
}

int adm_dest_parse(const char *line, struct queue_dest_info *in, char *name, size_t namelen)
{
    char enc[1024];
    long long b, u, p;

    memset(in, 0, sizeof(*in));
    if (sscanf(line, "dest %1023s %d %u %u %u %u %u %u %lld %lld %lld %u %u %u %u %u", enc,
               &in->nexthop, &in->active, &in->window, &in->concurrency, &in->rate_n,
               &in->rate_secs, &in->per_connection, &b, &u, &p, &in->messages, &in->ready,
               &in->deferred, &in->parked, &in->delivering) != 16 ||
        adm_login_decode(enc, name, namelen) < 0)
        return -1;
    in->mxhost = in->nexthop == 2;
    in->nexthop = in->nexthop == 1;
    in->backoff_until = (double)b;
    in->unreachable_since = (double)u;
    in->probe_due = (double)p;
    in->name = name;
    return 0;
}
