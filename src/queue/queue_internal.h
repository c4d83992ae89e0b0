/*
 * queue_internal.h - the scheduler's state, shared by queue.c (messages, the
 * retry heap, the operator's actions) and queue_dest.c (destinations: a ready
 * list each, round-robin among them, dead destinations and their probes).
 */
#ifndef MX_QUEUE_QUEUE_INTERNAL_H
#define MX_QUEUE_QUEUE_INTERNAL_H

#include <stddef.h>
#include <sys/queue.h>
#include <time.h>

#include "queue/delivery.h"
#include "queue/idset.h"
#include "queue/queue.h"
#include "queue/spool.h"

struct event;
struct dest;
struct qdest;

/* Where a message is: the retry heap, a ready list, a delivery, held, or parked
 * behind an unreachable destination (no timer of its own). */
enum qstate { Q_WAIT, Q_READY, Q_ACTIVE, Q_HELD, Q_PARKED };

struct qentry {
    char id[SPOOL_ID_LEN + 1];
    enum qstate st;
    time_t due;
    size_t heap_idx;
    unsigned delete_req : 1; /* mxgatectl asked while an attempt ran */
    unsigned flush_req : 1;  /* flushed while an attempt ran: go again at once */
    unsigned hold_req : 1;   /* held while an attempt ran: hold after it */
    unsigned unchecked : 1;  /* found in the spool at start: checksum not checked yet */
    unsigned global : 1;     /* on the queue's own ready list (destination unknown or bypassed) */
    unsigned probe : 1;      /* the one attempt that probes its unreachable destination */
    unsigned admitted : 1;   /* dispatch started it for counted: its load needs no admit */
    struct delivery *d;
    void *token;            /* the configuration the running attempt holds (queue_reconfigure) */
    double arrived, queued; /* for delay= (queue_add_arrived); 0: unknown */
    struct queue *q;
    struct qdest *qd;         /* its destination, known after its first load; NULL before */
    struct qdest *counted;    /* while active: the destination whose nactive counts it */
    struct mxhost *resv;      /* while active: the busy MX host it was started for, until
                               * its delivery takes a host (qd_host_taken) */
    TAILQ_ENTRY(qentry) link; /* ready, parked, active or held list */
};

TAILQ_HEAD(qlist, qentry);

/* A destination's waiting mail (its limits and feedback are relay/dest.h's). */
struct qdest {
    struct dest *dest;
    struct qlist ready;  /* due, waiting for a slot of the destination */
    struct qlist parked; /* waiting for an unreachable destination to answer */
    unsigned nready, nparked, nwait, nactive;
    int in_ring, probing;
    TAILQ_ENTRY(qdest) ring; /* destinations with ready mail, served in turn */
    TAILQ_ENTRY(qdest) all;
};

TAILQ_HEAD(qdlist, qdest);

struct queue {
    struct delivery_ctx ctx;
    struct qentry **heap;
    size_t nheap;
    size_t heap_cap;
    struct qlist ready; /* due, destination not known yet (not loaded since the start) */
    struct qlist active;
    struct qlist held; /* mxgatectl queue hold: not delivered until released */
    unsigned nactive;
    struct event *timer; /* the heap's earliest due time */
    struct event *kick;  /* run dispatch from the loop, not from the caller */
    struct event *gate;  /* the earliest end of a destination's back-off, rate window, probe */
    double gate_at;      /* when gate fires (clock_now_precise), 0: not armed */
    queue_hold_fn hold;  /* keeps the configuration of running attempts (queue_reconfigure) */
    void *token;
    struct qdlist ring; /* destinations with ready mail */
    struct qdlist dests;
    size_t nring;
    struct spool_scan *scan;  /* the start's listing of the spool, in slices */
    struct idset *scan_added; /* while it runs: ids scheduled otherwise (accepted mail) */
    struct event *scan_ev;
    unsigned scanned;
    double scan_started;
};

/* queue.c */
time_t queue_id_time(const char *id);
void queue_kick(struct queue *q);
int queue_heap_push(struct queue *q, struct qentry *e);
void queue_arm(struct queue *q);
int queue_start_entry(struct queue *q, struct qentry *e, int admitted);

/* queue_dest.c */
void qd_make_ready(struct queue *q, struct qentry *e);
void qd_unready(struct queue *q, struct qentry *e);
void qd_unpark(struct queue *q, struct qentry *e);
void qd_count(struct qentry *e, struct qdest *qd);
void qd_dispatch(struct queue *q);
int qd_admit(void *arg, struct dest *dest);
void qd_host_taken(void *arg);
void qd_unreserve(struct qentry *e);
int qd_outcome(struct queue *q, struct qentry *e, const struct delivery_outcome *o);
unsigned qd_flush(struct queue *q);
void qd_free_all(struct queue *q);
struct qentry *qd_find(const struct queue *q, const char *id);
void qd_info(const struct queue *q, struct queue_info *in,
             void (*one)(struct queue_info *, const struct qentry *));

#endif
