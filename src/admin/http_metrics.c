/* http_metrics.c - /metrics in the Prometheus text exposition format (version 0.0.4) */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http_internal.h"
#include "core/clock.h"
#include "core/looptime.h"
#include "core/metrics.h"
#include "queue/queue.h"

struct mbuf {
    struct evbuffer *b;
    int refusals; /* pass 0: the stopped.* events; pass 1: the other verdicts */
};

/* m_family - HELP and TYPE lines */
static void m_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* m_label - a label value escaped as the format says (backslash, quote, newline) */
static void m_label(struct evbuffer *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

/* m_event - one named event as a sample of the refusal or the verdict family */
static void m_event(const char *name, uint64_t n, void *arg)
{
    struct mbuf *m = arg;
    const char *dot = strrchr(name, '.');
    char mech[64];

    if (!dot)
        return;
    if (m->refusals != (strncmp(name, "stopped.", 8) == 0) || strcmp(name, "stopped.") == 0)
        return;
    if (m->refusals) {
        evbuffer_add(m->b, "mxgate_refusals_total{mechanism=\"", 33);
        m_label(m->b, name + 8);
    } else {
        snprintf(mech, sizeof(mech), "%.*s", (int)(dot - name), name);
        evbuffer_add(m->b, "mxgate_verdicts_total{mechanism=\"", 33);
        m_label(m->b, mech);
        evbuffer_add(m->b, "\",verdict=\"", 11);
        m_label(m->b, dot + 1);
    }
    evbuffer_add_printf(m->b, "\"} %llu\n", (unsigned long long)n);
}

struct m_single {
    const char *event;
    uint64_t n;
};

/* m_find - the count of one named event */
static void m_find(const char *name, uint64_t n, void *arg)
{
    struct m_single *s = arg;

    if (strcmp(name, s->event) == 0)
        s->n = n;
}

/* m_counter - a counter family of one sample from a named event */
static void m_event_counter(struct evbuffer *b, const char *metric, const char *event,
                            const char *help)
{
    struct m_single s = {event, 0};

    metrics_events(m_find, &s);
    m_family(b, metric, "counter", help);
    evbuffer_add_printf(b, "%s %llu\n", metric, (unsigned long long)s.n);
}

/* m_counter - a counter family of one sample */
static void m_counter(struct evbuffer *b, const char *metric, enum metrics_counter c,
                      const char *help)
{
    m_family(b, metric, "counter", help);
    evbuffer_add_printf(b, "%s %llu\n", metric, (unsigned long long)metrics_get(c));
}

/* m_gauge - a gauge family of one sample */
static void m_gauge(struct evbuffer *b, const char *metric, long long v, const char *help)
{
    m_family(b, metric, "gauge", help);
    evbuffer_add_printf(b, "%s %lld\n", metric, v);
}

/* m_hist - a histogram family */
static void m_hist(struct evbuffer *b, const char *metric, enum metrics_hist h, const char *help)
{
    struct metrics_hist_snap s;

    metrics_hist_get(h, &s);
    m_family(b, metric, "histogram", help);
    for (size_t i = 0; i < METRICS_BUCKETS; i++)
        evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", metric, s.bounds[i],
                            (unsigned long long)s.cumulative[i]);
    evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", metric,
                        (unsigned long long)s.count, metric, s.sum, metric,
                        (unsigned long long)s.count);
}

/* m_smtp - connections, refusals and verdicts (the statistics' events since start) */
static void m_smtp(struct evbuffer *b)
{
    struct mbuf m = {b, 1};

    m_event_counter(b, "mxgate_connections_total", "connections", "SMTP connections.");
    m_event_counter(b, "mxgate_messages_accepted_total", "accepted",
                    "Messages accepted (250 to the final dot).");
    m_event_counter(b, "mxgate_connections_refused_total", "stopped",
                    "Connections that ended without a message, refused by a mechanism.");
    m_family(b, "mxgate_refusals_total", "counter",
             "Connections refused, by the mechanism that stopped them.");
    metrics_events(m_event, &m);
    m_family(b, "mxgate_verdicts_total", "counter", "Verdicts other than no opinion, by check.");
    m.refusals = 0;
    metrics_events(m_event, &m);
    m_event_counter(b, "mxgate_queue_corrupt_total", "queue_corrupt", "Queue files found corrupt.");
}

/* m_queue - delivery counters and the queue now */
static void m_queue(struct evbuffer *b, const struct adm_env *env)
{
    struct queue_info qi;
    long long now = (long long)clock_now();

    m_counter(b, "mxgate_recipients_delivered_total", METRICS_DELIVERED,
              "Recipients delivered to the next hop.");
    m_counter(b, "mxgate_recipients_deferred_total", METRICS_DEFERRED,
              "Delivery attempts deferred, per recipient.");
    m_counter(b, "mxgate_recipients_bounced_total", METRICS_BOUNCED, "Recipients bounced.");
    queue_info(env->queue, &qi);
    m_gauge(b, "mxgate_queue_messages", qi.messages, "Messages in the queue.");
    m_gauge(b, "mxgate_queue_held_messages", qi.held, "Messages held by the operator.");
    m_gauge(b, "mxgate_queue_active_messages", qi.active, "Messages being delivered now.");
    m_gauge(b, "mxgate_queue_oldest_age_seconds", qi.oldest ? now - qi.oldest : 0,
            "Age of the oldest message in the queue.");
    m_hist(b, "mxgate_delivery_latency_seconds", METRICS_DELIVERY_SECONDS,
           "From arrival to the next hop's acceptance, per recipient.");
}

void http_metrics(struct http_req *r)
{
    struct evbuffer *b = evbuffer_new();
    const struct adm_env *env = &r->a->env;
    size_t len;
    char *text;

    if (!b) {
        http_error(r, 500, "out of memory");
        return;
    }
    m_gauge(b, "mxgate_start_time_seconds", (long long)env->started,
            "When mxgated started (unix time).");
    m_gauge(b, "mxgate_sessions", env->sessions ? *env->sessions : 0, "Open SMTP sessions.");
    m_smtp(b);
    m_hist(b, "mxgate_smtp_session_duration_seconds", METRICS_SESSION_SECONDS,
           "SMTP session duration, connect to close.");
    m_queue(b, env);
    m_family(b, "mxgate_loop_turn_max_seconds", "gauge",
             "The longest event loop turn since start (work between two waits).");
    evbuffer_add_printf(b, "mxgate_loop_turn_max_seconds %.6f\n",
                        (double)looptime_max_usec() / 1e6);
    m_family(b, "mxgate_loop_turn_max_cpu_seconds", "gauge",
             "The most CPU time one event loop turn used since start.");
    evbuffer_add_printf(b, "mxgate_loop_turn_max_cpu_seconds %.6f\n",
                        (double)looptime_max_cpu_usec() / 1e6);
    m_hist(b, "mxgate_loop_turn_seconds", METRICS_LOOP_TURN_SECONDS,
           "Event loop turns: the work between two waits for events.");
    m_counter(b, "mxgate_dns_lookups_total", METRICS_DNS_LOOKUPS, "DNS queries sent.");
    m_counter(b, "mxgate_dns_timeouts_total", METRICS_DNS_TIMEOUTS, "DNS queries timed out.");
    m_counter(b, "mxgate_store_errors_total", METRICS_STORE_ERRORS,
              "State store operations that failed.");
    len = evbuffer_get_length(b);
    text = (char *)evbuffer_pullup(b, -1);
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    evbuffer_free(b);
}
