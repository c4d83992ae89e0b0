/*
 * store_lmdb.h - the LMDB backend's insides, shared by its files:
 * store_lmdb.c (engine, synchronous calls, open and close), store_lmdb_ops.c
 * (the asynchronous operations, as jobs of the store's worker thread) and
 * store_lmdb_expire.c (the expiry batch).
 *
 * Threads: the worker (store_worker.h) runs every asynchronous operation and
 * expiry batch, one at a time; the loop's thread uses the environment only
 * for the synchronous calls, after store_worker_quiesce (the worker is then
 * idle until the loop posts again, and the mutex of that hand-over orders the
 * memory). So one thread at a time holds a transaction, the kept read
 * transaction (rtxn, MDB_NOTLS) included, and mdb_env_set_mapsize (map
 * growth, MDB_MAP_RESIZED adoption) runs when no transaction of this process
 * is active. The sync thread (store_lmdb_sync.h) only calls mdb_env_sync,
 * which is safe beside transactions.
 */
#ifndef MX_STORE_LMDB_H
#define MX_STORE_LMDB_H

#include <lmdb.h>
#include <stdint.h>
#include <time.h>

#include "store/store_backend.h"

#define LMDB_HDR 8 /* the expiry in front of every payload */

struct event;
struct event_base;
struct lmdb_syncer;
struct store_worker;

struct lmdb_store {
    struct store *st; /* the front end: clock and completion queue */
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *rtxn; /* read transaction kept reset between uses (cheap renew) */
    size_t map_max;
    int readonly;
    int dirty;   /* committed writes not yet forced to disk (atomic: worker and loop) */
    int reading; /* a synchronous scan holds pointers into the map: do not move it */
    int full;    /* the last write found the map full (logged once per episode) */
    time_t now;  /* the store's clock for the operation that runs (taken when it was issued) */
    struct event *sync_ev;
    struct lmdb_syncer *syncer;  /* the timer's syncs, off the loop (NULL: on it) */
    struct store_worker *worker; /* runs the asynchronous operations (NULL: the loop) */
    struct event *kick_ev;       /* once a loop turn: the worker runs what was posted */
    int kick_pending;
    unsigned queue_max;                  /* the worker's bound in operations */
    int refusing;                        /* the worker's queue is full (logged once) */
    unsigned char resume[STORE_KEY_MAX]; /* where the next expiry batch starts */
    size_t resume_len;                   /* 0: at the first key */
};

/* a write transaction body: returns an LMDB code; on 0 *status decides commit (STORE_OK) */
typedef int (*lmdb_txn_fn)(struct lmdb_store *l, MDB_txn *txn, void *ctx, int *status);
/* a visitor of live records: non-zero stops the walk */
typedef int (*lmdb_visit_fn)(void *ctx, const MDB_val *key, const MDB_val *payload);

/* lmdb_put_i64 - encode v little-endian into 8 octets */
void lmdb_put_i64(unsigned char *p, int64_t v);
/* lmdb_get_i64 - decode 8 little-endian octets */
int64_t lmdb_get_i64(const void *p);
/* lmdb_expiry_for - the stored expiry of a record written at l->now with ttl (0 = none) */
int64_t lmdb_expiry_for(const struct lmdb_store *l, unsigned ttl);
/* lmdb_rec_live - split a stored value into payload if it is alive at now; 0 when not */
int lmdb_rec_live(const MDB_val *v, time_t now, MDB_val *payload, int64_t *exp);
/* lmdb_rec_find - the live payload of key: 0, MDB_NOTFOUND (missing, expired), or an error */
int lmdb_rec_find(struct lmdb_store *l, MDB_txn *txn, MDB_val *k, MDB_val *payload, int64_t *exp);
/* lmdb_fail - map an unrecoverable LMDB code to a status, logging it */
int lmdb_fail(struct lmdb_store *l, const char *what, int rc);
/* lmdb_write - run fn in a write transaction, growing the map and retrying as needed */
int lmdb_write(struct lmdb_store *l, const char *what, lmdb_txn_fn fn, void *ctx);
/* lmdb_read_begin - a read snapshot in l->rtxn: 0 or an LMDB code for lmdb_fail */
int lmdb_read_begin(struct lmdb_store *l);
/* lmdb_read_end - release the snapshot, keeping the transaction for the next read */
void lmdb_read_end(struct lmdb_store *l);
/* lmdb_read_status - a store status for an LMDB lookup code */
int lmdb_read_status(struct lmdb_store *l, int rc);
/* lmdb_walk - visit every live record under prefix in txn; 0 or an LMDB code */
int lmdb_walk(struct lmdb_store *l, MDB_txn *txn, const void *prefix, size_t plen,
              lmdb_visit_fn visit, void *ctx);

/* lmdb_expire_batch - one bounded expiry batch at now, on the calling thread */
long lmdb_expire_batch(struct lmdb_store *l, time_t now, unsigned usec, int *more);

/* lmdb_ops_start - the worker of a writable store (a warning and the loop without one) */
void lmdb_ops_start(struct lmdb_store *l, struct event_base *base, const struct store_options *opt);
/* lmdb_ops_quiesce - wait for the operations issued so far; the clock for a synchronous call */
void lmdb_ops_quiesce(struct lmdb_store *l);
/* lmdb_ops_stop - run the queued operations, end the worker */
void lmdb_ops_stop(struct lmdb_store *l);

/* The asynchronous operations (store_backend.h), in store_lmdb_ops.c */
int lmdb_get(void *h, const void *key, size_t keylen, store_get_cb cb, void *arg);
int lmdb_set(void *h, const void *key, size_t keylen, const void *val, size_t vlen, unsigned ttl,
             store_done_cb cb, void *arg);
int lmdb_incr(void *h, const void *key, size_t keylen, int64_t delta, unsigned ttl,
              store_incr_cb cb, void *arg);
int lmdb_del(void *h, const void *key, size_t keylen, store_done_cb cb, void *arg);
int lmdb_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item,
                     store_done_cb done, void *arg);
int lmdb_lease(void *h, const void *key, size_t keylen, const char *owner, unsigned ttl_ms,
               store_done_cb cb, void *arg);
int lmdb_expire_start(void *h, time_t now, unsigned usec, struct store_op *op);

#endif
