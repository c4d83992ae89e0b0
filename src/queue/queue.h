/* queue.h - the scheduler: which queued message is delivered when */
#ifndef MX_QUEUE_QUEUE_H
#define MX_QUEUE_QUEUE_H

struct event_base;
struct config;
struct spool;
struct pool;
struct routes;
struct queue;
struct nexthops;
struct store;
typedef struct ssl_ctx_st SSL_CTX;

/* queue_new - the queue and delivery settings come from cfg; routes (kept by the
 * caller) say where each domain goes; client_tls may be NULL (no STARTTLS to next
 * hops); st holds the bounce limiter's counters (NULL: no bounce limit, for tests) */
struct queue *queue_new(struct event_base *base, const struct config *cfg,
                        const struct routes *routes, struct spool *sp, struct pool *pool,
                        SSL_CTX *client_tls, struct store *st);

/*
 * queue_reconfigure - a reload: attempts started from now on deliver with cfg's
 * queue and delivery settings and through routes (those that need a restart,
 * fsync_threads, sync, recycle and the bounce limits, stay as at start). Each
 * attempt holds token while it runs: hold(token, +1) when it starts and
 * hold(token, -1) when it ends, so that the caller keeps cfg and routes alive
 * until the last attempt that uses them is over. hold may be NULL.
 */
typedef void (*queue_hold_fn)(void *token, int delta);
void queue_reconfigure(struct queue *q, const struct config *cfg, const struct routes *routes,
                       queue_hold_fn hold, void *token);

/* queue_set_nexthops - deliveries refresh what each next hop takes (relay/nexthop.h) */
void queue_set_nexthops(struct queue *q, struct nexthops *nh);

/* queue_set_dns - the resolver of route "mx" (dns/dns.h); without one MX delivery defers */
struct dns;
void queue_set_dns(struct queue *q, struct dns *dns);

/* queue_start - pick up every message in the spool (after a restart), listed in slices
 * from the loop (event=queue_loaded when done); 0, or -1 when queue/ cannot be read */
int queue_start(struct queue *q);

/* queue_add - a message just committed: deliver it at once */
void queue_add(struct queue *q, const char *id);

/* queue_flush - every waiting message becomes due now; returns how many */
/* queue_add_arrived - queue_add for a message just received: arrived is when its
 * transaction began (clock_now_precise()), for delay= in the delivery log lines */
void queue_add_arrived(struct queue *q, const char *id, double arrived);

unsigned queue_flush(struct queue *q);

/* queue_delete - remove a message (after its running attempt, if any). 0, or -1 if unknown */
int queue_delete(struct queue *q, const char *id);

/* queue_hold - keep id from delivery until queue_release (after its running attempt, if any);
 * the hold is on disk (queue/hold.h). 0, or -1 (ENOENT: unknown id; or the marker failed) */
int queue_hold(struct queue *q, const char *id);
/* queue_release - deliver a held message again (at once). 0, or -1 (ENOENT) */
int queue_release(struct queue *q, const char *id);

struct queue_info {
    unsigned messages; /* known to the scheduler */
    unsigned active;   /* being delivered now */
    unsigned deferred; /* waiting for their retry time */
    unsigned held;
    long long oldest; /* arrival of the oldest (unix time), 0 when empty */
};
/* queue_info - the queue's size and age, counted now (for status and metrics) */
void queue_info(const struct queue *q, struct queue_info *in);

/* What the scheduler knows of one destination: a recipient domain of route "mx"
 * (relay/dest.h: its limits and feedback) or a relay route's next hop. */
struct queue_dest_info {
    const char *name; /* the domain, the next hop's target ("smtp:[192.0.2.1]:25"), or
                       * the MX host's name */
    int nexthop;
    int mxhost;           /* an MX host with limits (mx_host): no mail of its own, only its state */
    unsigned active;      /* deliveries running to it now */
    unsigned window;      /* concurrency allowed now by the feedback (0: no limit) */
    unsigned concurrency; /* its limit (0: no limit but max_deliveries) */
    unsigned rate_n, rate_secs, per_connection;
    double backoff_until;     /* unix time; 0: not backing off */
    double unreachable_since; /* unix time; 0: reachable */
    double probe_due;         /* when an unreachable destination is tried next; 0 */
    unsigned messages;        /* queued for it: ready + deferred + parked + delivering */
    unsigned ready, deferred, parked, delivering;
};
typedef void (*queue_dest_fn)(const struct queue_dest_info *in, void *arg);
/* queue_dests - fn for every destination the scheduler has met since the start, then
 * for every MX host with limits that a delivery has met */
void queue_dests(const struct queue *q, queue_dest_fn fn, void *arg);

/* queue_free - cancel running deliveries (messages stay in the spool) and free */
void queue_free(struct queue *q);

#endif
