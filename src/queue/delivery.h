/*
 * delivery.h - one delivery attempt of one queued message: every pending
 * recipient is tried once through its route; the outcome is logged to the
 * spool, failures become a DSN, and a finished message leaves the queue.
 */
#ifndef MX_QUEUE_DELIVERY_H
#define MX_QUEUE_DELIVERY_H

#include "queue/queueconf.h"
#include "queue/spool.h"

struct event_base;
struct config;
struct pool;
struct bouncelimit;
struct conncache;
struct nexthops;
struct dns;
struct dests;
struct mxhosts;
struct routes;
struct dest;
typedef struct ssl_ctx_st SSL_CTX;

/*
 * delivery_admit_fn - the scheduler's say once the message is loaded: dest is
 * where its first pending recipient goes (route "mx": the domain's state; a
 * relay route: its next hop's; NULL for a maildir or no route). 1: go on; 0:
 * not now (the scheduler has filed the message under dest), the attempt ends
 * before any connection.
 */
typedef int (*delivery_admit_fn)(void *arg, struct dest *dest);

/* delivery_host_fn - a leg of the attempt took an MX host (route "mx"): the place the
 * scheduler kept for it there (dest->host_block) is no longer needed */
typedef void (*delivery_host_fn)(void *arg);

/* What every attempt needs; owned by the queue. */
struct delivery_ctx {
    struct event_base *base;
    const struct config *cfg;
    const struct routes *routes; /* where each recipient's domain goes */
    struct queueconf conf;       /* the queue and delivery sections */
    struct spool *spool;
    struct pool *pool;
    SSL_CTX *client_tls; /* NULL: no STARTTLS to next hops */
    struct bouncelimit *bounces;
    struct conncache *conn_cache; /* idle SMTP/LMTP connections to reuse, or NULL */
    struct nexthops *nexthops;    /* learns each next hop's EHLO, or NULL */
    struct dns *dns;              /* route "mx": MX, A and AAAA lookups; NULL: none */
    struct dests *dests;          /* flow control and reachability per destination, or NULL */
    struct mxhosts *mxhosts;      /* flow control per MX host, or NULL */
    delivery_admit_fn admit;      /* NULL: every attempt goes on */
    delivery_host_fn host_taken;  /* NULL: not told */
};

struct delivery_outcome {
    int finished;                  /* the message left the queue */
    unsigned attempts;             /* attempts made so far for the pending recipients */
    unsigned next_retry;           /* seconds until the next attempt, when not finished */
    char dsn_id[SPOOL_ID_LEN + 1]; /* a DSN was queued ("" if none) */
    /* the destination of the first pending recipient (as given to admit) and what the
     * attempt learned of it: no server answered a connection, or one did */
    struct dest *dest;
    int unreachable;
    int reached;
    /* the attempt never began (no log line, no connection): EAGAIN when admit said
     * not now (the scheduler files the message), EBADMSG when the queue file was
     * corrupt (moved to corrupt/), else an errno of a message that is gone */
    int not_started;
};

typedef void (*delivery_done_fn)(void *arg, const struct delivery_outcome *o);

struct delivery;

/*
 * delivery_start - begin an attempt: the message is loaded in the pool (so
 * that the loop never waits on a cold disk and several loads overlap), then
 * ctx->admit is asked and the routes start. done runs once, on the loop,
 * later; o->not_started says when the attempt ended before it began.
 * verify: check the queue file's checksum (a file found in the spool at
 * start, which a crash may have torn).
 */
struct delivery *delivery_start(const struct delivery_ctx *ctx, const char *id, int verify,
                                delivery_done_fn done, void *arg);

/* delivery_set_times - when the message arrived (its transaction began) and when it
 * was durable in the queue, clock_now_precise(), for delay= in the log lines; 0 when
 * not known (a message found in the spool at start): the envelope's arrival then */
void delivery_set_times(struct delivery *d, double arrived, double queued);

/* delivery_cancel - stop (shutdown); the message stays queued; done is not called */
void delivery_cancel(struct delivery *d);

#endif
