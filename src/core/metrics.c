/* metrics.c - counters and histograms since start, behind one mutex for the named ones */
#include "core/metrics.h"

#include <pthread.h>
#include <string.h>

static uint64_t metrics_counters[METRICS_NCOUNTERS];

/* Delivery waits in the queue for minutes or days; sessions last seconds. */
static const double metrics_bounds[METRICS_NHISTS][METRICS_BUCKETS] = {
    [METRICS_DELIVERY_SECONDS] = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400,
                                  432000},
    [METRICS_SESSION_SECONDS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                                 300},
    /* A turn should take microseconds; 50 ms is already a stall every client feels. */
    [METRICS_LOOP_TURN_SECONDS] = {0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25, 0.5, 1, 2.5, 10},
};

struct metrics_hist_state {
    uint64_t bucket[METRICS_BUCKETS]; /* not cumulative: observations in (bounds[i-1], bounds[i]] */
    uint64_t count;
    double sum;
};

struct metrics_event_state {
    char name[64];
    uint64_t n;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_hist_state metrics_hists[METRICS_NHISTS];
static struct metrics_event_state metrics_ev[METRICS_EVENTS_MAX];
static size_t metrics_nev;

void metrics_inc(enum metrics_counter c)
{
    if ((unsigned)c < METRICS_NCOUNTERS)
        __atomic_fetch_add(&metrics_counters[c], 1, __ATOMIC_RELAXED);
}

uint64_t metrics_get(enum metrics_counter c)
{
    return (unsigned)c < METRICS_NCOUNTERS ? __atomic_load_n(&metrics_counters[c], __ATOMIC_RELAXED)
                                           : 0;
}

void metrics_observe(enum metrics_hist h, double seconds)
{
    struct metrics_hist_state *s;
    size_t i;

    if ((unsigned)h >= METRICS_NHISTS || !(seconds >= 0))
        return;
    s = &metrics_hists[h];
    for (i = 0; i < METRICS_BUCKETS && seconds > metrics_bounds[h][i]; i++)
        ;
    pthread_mutex_lock(&metrics_lock);
    if (i < METRICS_BUCKETS)
        s->bucket[i]++;
    s->count++;
    s->sum += seconds;
    pthread_mutex_unlock(&metrics_lock);
}

void metrics_hist_get(enum metrics_hist h, struct metrics_hist_snap *out)
{
    uint64_t run = 0;

    memset(out, 0, sizeof(*out));
    if ((unsigned)h >= METRICS_NHISTS)
        return;
    out->bounds = metrics_bounds[h];
    pthread_mutex_lock(&metrics_lock);
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        run += metrics_hists[h].bucket[i];
        out->cumulative[i] = run;
    }
    out->count = metrics_hists[h].count;
    out->sum = metrics_hists[h].sum;
    pthread_mutex_unlock(&metrics_lock);
}

void metrics_event(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len >= sizeof(metrics_ev[0].name))
        return;
    pthread_mutex_lock(&metrics_lock);
    for (i = 0; i < metrics_nev; i++)
        if (strcmp(metrics_ev[i].name, name) == 0)
            break;
    if (i == metrics_nev && metrics_nev < METRICS_EVENTS_MAX)
        memcpy(metrics_ev[metrics_nev++].name, name, len + 1);
    if (i < metrics_nev)
        metrics_ev[i].n++;
    pthread_mutex_unlock(&metrics_lock);
}

void metrics_events(void (*fn)(const char *name, uint64_t n, void *arg), void *arg)
{
    struct metrics_event_state copy[METRICS_EVENTS_MAX];
    size_t n;

    /* A copy: fn runs without the lock (it may take its time formatting). */
    pthread_mutex_lock(&metrics_lock);
    n = metrics_nev;
    memcpy(copy, metrics_ev, n * sizeof(copy[0]));
    pthread_mutex_unlock(&metrics_lock);
    for (size_t i = 0; i < n; i++)
        fn(copy[i].name, copy[i].n, arg);
}
