/* flow.c - concurrency, rate window and throttle feedback (flow.h) */
#include "relay/flow.h"

#include <confuse.h>
#include <stdlib.h>

#include "core/xmalloc.h"

#define FLOW_BACKOFF_FIRST 10.0 /* seconds after the first throttle; doubles */
#define FLOW_BACKOFF_MAX 600.0
#define FLOW_RATE_MAX 100000

/* flow_set_limits - see flow.h */
void flow_set_limits(struct flow *f, unsigned concurrency, unsigned rate_n, unsigned rate_secs)
{
    int same_rate = f->rate_n == rate_n && f->rate_secs == rate_secs;

    f->concurrency = concurrency ? concurrency : 1;
    if (f->window == 0 || f->window > f->concurrency)
        f->window = f->concurrency;
    if (same_rate && (f->starts || !rate_secs))
        return;
    f->rate_n = rate_n;
    f->rate_secs = rate_secs;
    free(f->starts); /* a new rate starts with an empty window */
    f->starts = rate_secs ? xcalloc(rate_n, sizeof(*f->starts)) : NULL;
    f->nstarts = f->head = 0;
}

/* flow_free - see flow.h */
void flow_free(struct flow *f)
{
    free(f->starts);
    f->starts = NULL;
    f->nstarts = f->head = 0;
}

/* flow_may_start - see flow.h */
int flow_may_start(const struct flow *f, double now, int charge, double *wait)
{
    *wait = 0;
    if (now < f->backoff_until) {
        *wait = f->backoff_until - now;
        return 0;
    }
    if (f->active >= f->window)
        return 0;
    if (charge && f->rate_secs && f->starts && f->nstarts == f->rate_n) {
        double oldest = f->starts[f->head]; /* the ring is full: head is the oldest */
        if (now - oldest < f->rate_secs) {
            *wait = f->rate_secs - (now - oldest);
            return 0;
        }
    }
    return 1;
}

/* flow_started - see flow.h */
void flow_started(struct flow *f, double now, int charge)
{
    f->active++;
    if (!charge || !f->rate_secs || !f->starts)
        return;
    f->starts[f->head] = now;
    f->head = (f->head + 1) % f->rate_n;
    if (f->nstarts < f->rate_n)
        f->nstarts++;
}

/* flow_finished - see flow.h: halve on a throttle and back off (doubling), grow by
 * one after a window's worth of successes */
void flow_finished(struct flow *f, double now, enum flow_outcome o)
{
    double b;

    if (f->active)
        f->active--;
    if (o == FLOW_THROTTLED) {
        f->window = f->window > 1 ? f->window / 2 : 1;
        f->successes = 0;
        b = FLOW_BACKOFF_FIRST;
        for (unsigned i = 0; i < f->throttles && b < FLOW_BACKOFF_MAX; i++)
            b *= 2;
        f->throttles++;
        f->backoff_until = now + (b < FLOW_BACKOFF_MAX ? b : FLOW_BACKOFF_MAX);
    } else if (o == FLOW_OK) {
        f->throttles = 0;
        if (++f->successes >= f->window && f->window < f->concurrency) {
            f->window++;
            f->successes = 0;
        }
    }
}

/* flow_parse_rate - see flow.h */
int flow_parse_rate(const char *s, unsigned *n, unsigned *secs)
{
    char *end;
    unsigned long a = strtoul(s, &end, 10), b;

    if (end == s || *end != '/' || a < 1 || a > FLOW_RATE_MAX)
        return -1;
    s = end + 1;
    b = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || b < 1 || b > 86400)
        return -1;
    *n = (unsigned)a;
    *secs = (unsigned)b;
    return 0;
}

/* flow_valid_rate - see flow.h */
int flow_valid_rate(cfg_t *cfg, cfg_opt_t *opt)
{
    unsigned n, s;

    if (flow_parse_rate(cfg_opt_getnstr(opt, 0), &n, &s) < 0)
        cfg_error(cfg, "rate: want \"MESSAGES/SECONDS\" (e.g. \"30/60\"), not \"%s\"",
                  cfg_opt_getnstr(opt, 0));
    return 0;
}
