/*
 * flow.h - the flow control that a destination domain (dest.h) and an MX host
 * (mxhost.h) share: how many deliveries run at once, how many start per time
 * window, and the feedback of Postfix's scheduler: a 421 or a 4xx "too many
 * connections"/"try later" halves the concurrency allowed now (the window) and
 * backs off (10 s, doubling up to 10 minutes); a window's worth of successes
 * grows the window by one again, up to the limit.
 */
#ifndef MX_RELAY_FLOW_H
#define MX_RELAY_FLOW_H

#include <stddef.h>

typedef struct cfg_t cfg_t;
typedef struct cfg_opt_t cfg_opt_t;

enum flow_outcome { FLOW_OK, FLOW_THROTTLED, FLOW_OTHER };

struct flow {
    unsigned concurrency; /* the limit: at once, >= 1 */
    unsigned rate_n;      /* at most rate_n starts ... */
    unsigned rate_secs;   /* ... per rate_secs seconds; 0: no rate limit */
    unsigned active;      /* running now */
    unsigned window;      /* the concurrency the feedback allows now, 1..concurrency */
    unsigned successes;   /* since the window last grew */
    unsigned throttles;   /* in a row: the back-off doubles */
    double backoff_until; /* no new start before (clock_now_precise) */
    double *starts;       /* ring of the last rate_n start times */
    size_t nstarts, head;
};

/* flow_set_limits - new limits (a section, a reload): the state stays, the window is
 * kept within the new concurrency, a changed rate starts with an empty ring */
void flow_set_limits(struct flow *f, unsigned concurrency, unsigned rate_n, unsigned rate_secs);
/* flow_free - the ring (f itself is the caller's) */
void flow_free(struct flow *f);

/* flow_may_start - 1 when one more may start at now; else 0 and *wait (seconds) says
 * when to ask again (a back-off or the rate window; 0: when a running one ends).
 * charge 0: a start that does not count for the rate (a reused connection). */
int flow_may_start(const struct flow *f, double now, int charge, double *wait);
void flow_started(struct flow *f, double now, int charge);
/* flow_finished - one ended; o is the feedback */
void flow_finished(struct flow *f, double now, enum flow_outcome o);

/* flow_parse_rate - "N/SECONDS" (1..100000 per 1..86400 s); 0, or -1 */
int flow_parse_rate(const char *s, unsigned *n, unsigned *secs);
/* flow_valid_rate - the libconfuse validator of a "rate" option */
int flow_valid_rate(cfg_t *cfg, cfg_opt_t *opt);

#endif
