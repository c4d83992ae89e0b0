/*
 * store_backend.h - what a store backend implements, and the completion
 * queue the front end (store.c) offers it.
 *
 * A backend is a struct of function pointers listed in the registry of
 * store.c. The front end has already checked every argument (key and value
 * lengths, callbacks, read-only handles) before a backend function runs.
 * Asynchronous functions return 0 when their callback will run, -1 with
 * errno when it will not (see store.h). A backend whose engine answers
 * synchronously (LMDB) does the work at once and hands the result to the
 * completion queue, which delivers it from the loop; one whose engine
 * answers on the loop (Redis) calls the callbacks itself. A backend with a
 * worker thread (LMDB, threaded = 1) does the work there and queues the
 * completions from that thread: the completion queue may be used from any
 * thread (store_op_*), everything else in store.h only from the loop's.
 */
#ifndef MX_STORE_BACKEND_H
#define MX_STORE_BACKEND_H

#include "store/store.h"

struct event_base;
struct store_op;

struct store_backend {
    const char *scheme; /* the URI scheme before ':' */
    /* open - location is the URI after "scheme:"; base is NULL when readonly */
    void *(*open)(struct store *st, struct event_base *base, const char *location,
                  const struct store_options *opt, int readonly, char *err, size_t errlen);
    int (*get)(void *h, const void *key, size_t keylen, store_get_cb cb, void *arg);
    int (*set)(void *h, const void *key, size_t keylen, const void *val, size_t vlen, unsigned ttl,
               store_done_cb cb, void *arg);
    int (*incr)(void *h, const void *key, size_t keylen, int64_t delta, unsigned ttl,
                store_incr_cb cb, void *arg);
    int (*del)(void *h, const void *key, size_t keylen, store_done_cb cb, void *arg);
    int (*scan_prefix)(void *h, const void *prefix, size_t plen, store_scan_cb item,
                       store_done_cb done, void *arg);
    /* expire - one batch bounded by counts and by usec of time; *more set when records
     * remain to be looked at */
    long (*expire)(void *h, time_t now, unsigned usec, int *more);
    /* expire_start - the same batch later (on the backend's worker), its result queued
     * with store_op_queue_expired on op; 0, or -1 (op not used) when it cannot be queued.
     * NULL: the front end runs expire now and queues the result itself */
    int (*expire_start)(void *h, time_t now, unsigned usec, struct store_op *op);
    int (*flush)(void *h);
    int (*sync_get)(void *h, const void *key, size_t keylen, void **val, size_t *vlen);
    int (*sync_scan_prefix)(void *h, const void *prefix, size_t plen, store_scan_cb item,
                            void *arg);
    void (*close)(void *h);
    /* lease - see store_lease; NULL: the front end does it with sync_get and set */
    int (*lease)(void *h, const void *key, size_t keylen, const char *owner, unsigned ttl_ms,
                 store_done_cb cb, void *arg);
    /* check - is location one open would take (mxgated -n)? 0, or -1 with err; may be NULL */
    int (*check)(const char *location, char *err, size_t errlen);
    int shared;   /* other gateways may use the same store */
    int threaded; /* completions come from a thread of the backend's (the loop needs an eventfd) */
};

extern const struct store_backend store_backend_lmdb;
extern const struct store_backend store_backend_redis;
extern const struct store_backend store_backend_redis_unix;

/* store_now - the store's clock */
time_t store_now(const struct store *st);

/*
 * The completion queue. A backend allocates a completion, fills in the
 * result, then queues it. A NULL callback gives a NULL completion, and
 * queueing NULL does nothing.
 */
/* store_op_get - a completion for store_get with room for a vlen-octet value */
struct store_op *store_op_get(struct store *st, store_get_cb cb, void *arg, size_t vlen);
/* store_op_get_value - where to copy the value of a get completion */
void *store_op_get_value(struct store_op *op);
struct store_op *store_op_done(struct store *st, store_done_cb cb, void *arg);
struct store_op *store_op_incr(struct store *st, store_incr_cb cb, void *arg);
struct store_op *store_op_scan(struct store *st, store_scan_cb item, store_done_cb done, void *arg);
/* store_op_scan_add - append a record to a scan: STORE_OK or STORE_ELIMIT */
int store_op_scan_add(struct store_op *op, const void *key, size_t keylen, const void *val,
                      size_t vlen);
/* store_op_expire - a completion for an expiry batch */
struct store_op *store_op_expire(struct store *st, store_expire_cb cb, void *arg);
/* store_op_queue - deliver op with status (and value, for incr) from the loop; may be
 * called from any thread: off the loop's, store_op_wake must follow */
void store_op_queue(struct store *st, struct store_op *op, int status, int64_t value);
/* store_op_wake - from a backend's thread: wake the loop for what it queued (batch the
 * completions of several jobs behind one call: each wake-up costs the loop a turn) */
void store_op_wake(struct store *st);
/* store_op_queue_expired - deliver an expiry batch's result (deleted, -1 on failure) */
void store_op_queue_expired(struct store *st, struct store_op *op, long deleted, int more);
/* store_op_discard - give back a completion that will not be queued (any thread) */
void store_op_discard(struct store *st, struct store_op *op);

#endif
