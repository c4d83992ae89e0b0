/*
 * store_lmdb.c - the LMDB backend: one named database in an environment
 * directory, shared with read-only tools in other processes.
 *
 * Record value: [8 octets expiry, little-endian unix time, 0 = none][payload].
 * Counters are 8-octet little-endian int64 payloads.
 *
 * Durability: the environment runs with MDB_NOSYNC and a timer forces the
 * data to disk every few seconds, on a thread of its own (store_lmdb_sync.h),
 * and at close. State is not mail: after a
 * power cut the last seconds of greylist records and counters may be lost,
 * which only means a few senders are greylisted once more. LMDB keeps its
 * atomicity without the fsync only on file systems that preserve write
 * order; elsewhere a power cut can damage the file, and the remedy is to
 * remove the state directory (the daemon recreates it empty).
 *
 * LMDB quirks handled here (Postfix's slmdb.c describes the same): a full
 * map is grown by doubling up to a limit and the transaction repeated; a map
 * grown by another process (MDB_MAP_RESIZED) is adopted; reader slots left
 * by dead processes are cleared at open and when the table fills.
 *
 * The asynchronous operations run on a worker thread of the store's
 * (store_lmdb_ops.c; which thread holds which transaction: store_lmdb.h).
 */
#include "store/store_lmdb.h"
#include "store/store_lmdb_sync.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>
#include <lmdb.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

#define LMDB_DB_NAME "mxgate"
#define LMDB_DEFAULT_MAP ((size_t)256 * 1024 * 1024)
#define LMDB_DEFAULT_GROWTH 16 /* default map_max is this many times map_size */
#define LMDB_DEFAULT_SYNC 5    /* seconds between forced syncs */
#define LMDB_TRIES 40          /* attempts per transaction: map doublings and recoveries */
#define LMDB_FILE_MODE 0600

/* lmdb_put_i64 - encode v little-endian into 8 octets */
void lmdb_put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;

    for (int i = 0; i < 8; i++, u >>= 8)
        p[i] = (unsigned char)(u & 0xff);
}

/* lmdb_get_i64 - decode 8 little-endian octets */
int64_t lmdb_get_i64(const void *p)
{
    int64_t v = 0;

    store_counter_decode(p, 8, &v);
    return v;
}

/* lmdb_expiry_for - the stored expiry of a record written now with ttl (0 = none) */
int64_t lmdb_expiry_for(const struct lmdb_store *l, unsigned ttl)
{
    int64_t exp;

    if (!ttl)
        return 0;
    exp = (int64_t)l->now + ttl;
    return exp > 0 ? exp : 1; /* 0 means "never"; a clock before 1970 must not say that */
}

/* lmdb_rec_live - split a stored value into payload if it is alive at now; 0 when not */
int lmdb_rec_live(const MDB_val *v, time_t now, MDB_val *payload, int64_t *exp)
{
    int64_t e;

    /* A value shorter than the header is not ours: treat it as missing. */
    if (v->mv_size < LMDB_HDR)
        return 0;
    e = lmdb_get_i64(v->mv_data);
    if (e != 0 && e <= (int64_t)now)
        return 0;
    payload->mv_data = (unsigned char *)v->mv_data + LMDB_HDR;
    payload->mv_size = v->mv_size - LMDB_HDR;
    if (exp)
        *exp = e;
    return 1;
}

/* lmdb_rec_find - the live payload of key: 0, MDB_NOTFOUND (missing or expired), or an error */
int lmdb_rec_find(struct lmdb_store *l, MDB_txn *txn, MDB_val *k, MDB_val *payload, int64_t *exp)
{
    MDB_val v;
    int rc = mdb_get(txn, l->dbi, k, &v);

    if (rc)
        return rc;
    return lmdb_rec_live(&v, l->now, payload, exp) ? 0 : MDB_NOTFOUND;
}

/* lmdb_recover - clear a recoverable condition; 1 when the caller should retry */
static int lmdb_recover(struct lmdb_store *l, int rc)
{
    int dead = 0;

    if (rc == MDB_MAP_RESIZED && !l->reading)
        return mdb_env_set_mapsize(l->env, 0) == 0; /* adopt the other process's size */
    if (rc == MDB_READERS_FULL && mdb_reader_check(l->env, &dead) == 0 && dead > 0) {
        log_warn("event=store_readers_cleared stale=%d", dead);
        return 1;
    }
    return 0;
}

/* lmdb_grow - double the map (up to map_max); 0 when the caller should retry */
static int lmdb_grow(struct lmdb_store *l)
{
    MDB_envinfo info;
    size_t next;
    int rc;

    if (l->reading || mdb_env_info(l->env, &info) != 0 || info.me_mapsize >= l->map_max)
        return -1;
    next = info.me_mapsize > l->map_max / 2 ? l->map_max : info.me_mapsize * 2;
    if ((rc = mdb_env_set_mapsize(l->env, next)) != 0) {
        log_warn("event=store_grow_failed size=%zu error=%s", next, log_q(mdb_strerror(rc)));
        return -1;
    }
    log_info("event=store_grow map_size=%zu", next);
    return 0;
}

/* lmdb_fail - map an unrecoverable LMDB code to a status, logging it */
int lmdb_fail(struct lmdb_store *l, const char *what, int rc)
{
    MDB_envinfo info;

    metrics_inc(METRICS_STORE_ERRORS);
    if (rc == MDB_MAP_FULL) {
        if (!l->full && mdb_env_info(l->env, &info) == 0)
            log_warn("event=store_full map_size=%zu map_max=%zu", info.me_mapsize, l->map_max);
        l->full = 1;
        return STORE_EFULL;
    }
    log_warn("event=store_error op=%s error=%s", what, log_q(mdb_strerror(rc)));
    return rc == ENOMEM ? STORE_ENOMEM : STORE_EIO;
}

/* lmdb_write_once - run fn in one write transaction; an LMDB code, *status from fn */
static int lmdb_write_once(struct lmdb_store *l, lmdb_txn_fn fn, void *ctx, int *status)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(l->env, NULL, 0, &txn);

    if (rc)
        return rc;
    *status = STORE_OK;
    rc = fn(l, txn, ctx, status);
    if (rc == 0 && *status == STORE_OK)
        return mdb_txn_commit(txn); /* frees txn whatever the outcome */
    mdb_txn_abort(txn);
    return rc;
}

/* lmdb_write - run fn in a write transaction, growing the map and retrying as needed */
int lmdb_write(struct lmdb_store *l, const char *what, lmdb_txn_fn fn, void *ctx)
{
    int status = STORE_OK, rc = 0;

    for (int i = 0; i < LMDB_TRIES; i++) {
        rc = lmdb_write_once(l, fn, ctx, &status);
        if (rc == 0) {
            if (status == STORE_OK) {
                __atomic_store_n(&l->dirty, 1, __ATOMIC_RELAXED);
                l->full = 0;
            }
            return status;
        }
        /* The transaction is gone, so the map may be resized now. */
        if (rc == MDB_MAP_FULL ? lmdb_grow(l) != 0 : !lmdb_recover(l, rc))
            break;
    }
    return lmdb_fail(l, what, rc);
}

/* read_try - one attempt to renew (or create) the kept read transaction */
static int read_try(struct lmdb_store *l)
{
    MDB_txn *txn = NULL;
    int rc;

    if (l->rtxn) {
        if ((rc = mdb_txn_renew(l->rtxn)) == 0)
            return 0;
        mdb_txn_abort(l->rtxn); /* start afresh after any failure */
        l->rtxn = NULL;
        return rc;
    }
    if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) == 0)
        l->rtxn = txn;
    return rc;
}

/* lmdb_read_begin - a read snapshot in l->rtxn: 0 or an LMDB code for lmdb_fail */
int lmdb_read_begin(struct lmdb_store *l)
{
    int rc = 0;

    for (int i = 0; i < LMDB_TRIES; i++) {
        if ((rc = read_try(l)) == 0 || !lmdb_recover(l, rc))
            break;
    }
    return rc;
}

/* lmdb_read_end - release the snapshot, keeping the transaction for the next read */
void lmdb_read_end(struct lmdb_store *l)
{
    mdb_txn_reset(l->rtxn);
}

/* lmdb_read_status - a store status for an LMDB lookup code */
int lmdb_read_status(struct lmdb_store *l, int rc)
{
    if (rc == 0)
        return STORE_OK;
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    return lmdb_fail(l, "get", rc);
}

/* has_prefix - does key start with prefix? */
static int has_prefix(const MDB_val *key, const void *prefix, size_t plen)
{
    return key->mv_size >= plen && (plen == 0 || memcmp(key->mv_data, prefix, plen) == 0);
}

/* lmdb_walk - visit every live record under prefix in txn; 0 or an LMDB code */
int lmdb_walk(struct lmdb_store *l, MDB_txn *txn, const void *prefix, size_t plen,
              lmdb_visit_fn visit, void *ctx)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v = {0, NULL}, pay = {0, NULL};
    time_t now = l->now;
    int rc = mdb_cursor_open(txn, l->dbi, &cur);

    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && has_prefix(&k, prefix, plen)) {
        if (lmdb_rec_live(&v, now, &pay, NULL) && visit(ctx, &k, &pay) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* lmdb_expire - store_expire: one batch on the calling thread, after the queued operations */
static long lmdb_expire(void *h, time_t now, unsigned usec, int *more)
{
    struct lmdb_store *l = h;

    lmdb_ops_quiesce(l);
    return lmdb_expire_batch(l, now, usec, more);
}

/* lmdb_flush - force committed writes to disk */
static int lmdb_flush(void *h)
{
    struct lmdb_store *l = h;
    int rc;

    if (l->readonly)
        return STORE_OK;
    lmdb_ops_quiesce(l); /* what was issued before is written, then synced */
    if ((rc = mdb_env_sync(l->env, 1)) != 0)
        return lmdb_fail(l, "sync", rc);
    __atomic_store_n(&l->dirty, 0, __ATOMIC_RELAXED);
    return STORE_OK;
}

/* lmdb_sync_get - synchronous lookup returning a malloc'd copy */
static int lmdb_sync_get(void *h, const void *key, size_t keylen, void **val, size_t *vlen)
{
    struct lmdb_store *l = h;
    MDB_val k = {keylen, (void *)key}, pay = {0, NULL};
    int rc, status;

    lmdb_ops_quiesce(l);
    if ((rc = lmdb_read_begin(l)) != 0)
        return lmdb_fail(l, "get", rc);
    status = lmdb_read_status(l, lmdb_rec_find(l, l->rtxn, &k, &pay, NULL));
    if (status == STORE_OK) {
        *val = xmalloc(pay.mv_size);
        memcpy(*val, pay.mv_data, pay.mv_size);
        *vlen = pay.mv_size;
    }
    lmdb_read_end(l);
    return status;
}

struct sync_scan_ctx {
    store_scan_cb item;
    void *arg;
};

/* sync_visit - visitor for the synchronous scan: hand the record over directly */
static int sync_visit(void *ctx, const MDB_val *key, const MDB_val *pay)
{
    struct sync_scan_ctx *c = ctx;

    return c->item(c->arg, key->mv_data, key->mv_size, pay->mv_data, pay->mv_size);
}

/* lmdb_sync_scan_prefix - walk the records under prefix on one snapshot, now */
static int lmdb_sync_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item,
                                 void *arg)
{
    struct lmdb_store *l = h;
    struct sync_scan_ctx c = {item, arg};
    int rc;

    lmdb_ops_quiesce(l);
    if ((rc = lmdb_read_begin(l)) != 0)
        return lmdb_fail(l, "scan", rc);
    l->reading = 1;
    rc = lmdb_walk(l, l->rtxn, prefix, plen, sync_visit, &c);
    l->reading = 0;
    lmdb_read_end(l);
    return rc ? lmdb_fail(l, "scan", rc) : STORE_OK;
}

/* on_sync - timer: force the writes of the last seconds to disk (by the syncer
 * thread: what is committed from now on is dirty again for the next round) */
static void on_sync(evutil_socket_t fd, short what, void *arg)
{
    struct lmdb_store *l = arg;

    int rc;

    /* The worker sets dirty with each commit; what it commits after this is
     * dirty again for the next round. */
    if (!__atomic_exchange_n(&l->dirty, 0, __ATOMIC_RELAXED))
        return;
    if (l->syncer) {
        lmdb_syncer_kick(l->syncer);
    } else if ((rc = mdb_env_sync(l->env, 1)) != 0) { /* beside the worker's transactions */
        metrics_inc(METRICS_STORE_ERRORS);
        log_warn("event=store_error op=sync error=%s", log_q(mdb_strerror(rc)));
    }
}

/* lmdb_close - flush, then release everything (also after a failed open) */
static void lmdb_close(void *h)
{
    struct lmdb_store *l = h;

    if (!l)
        return;
    lmdb_ops_stop(l); /* the operations still queued run first */
    if (l->sync_ev)
        event_free(l->sync_ev);
    lmdb_syncer_stop(l->syncer);
    if (l->rtxn)
        mdb_txn_abort(l->rtxn);
    if (l->env) {
        if (l->dirty)
            lmdb_flush(l);
        mdb_env_close(l->env);
    }
    free(l);
}

/* map_sizes - the initial map size and the growth limit from the options */
static size_t map_sizes(const struct store_options *opt, size_t *max)
{
    size_t map = opt && opt->map_size ? opt->map_size : LMDB_DEFAULT_MAP;

    if (opt && opt->map_max)
        *max = opt->map_max;
    else
        *max = map > SIZE_MAX / LMDB_DEFAULT_GROWTH ? SIZE_MAX : map * LMDB_DEFAULT_GROWTH;
    if (*max < map)
        *max = map;
    return map;
}

/* env_open - create and open the environment; -1 with err filled */
static int env_open(struct lmdb_store *l, const char *path, const struct store_options *opt,
                    char *err, size_t errlen)
{
    unsigned flags = MDB_NOTLS | (l->readonly ? MDB_RDONLY : MDB_NOSYNC);
    size_t map = map_sizes(opt, &l->map_max);
    int rc, dead = 0;

    if ((rc = mdb_env_create(&l->env)) != 0) {
        l->env = NULL;
    } else if ((rc = mdb_env_set_maxdbs(l->env, 1)) == 0 &&
               (l->readonly || (rc = mdb_env_set_mapsize(l->env, map)) == 0)) {
        rc = mdb_env_open(l->env, path, flags, LMDB_FILE_MODE);
    }
    if (rc) {
        snprintf(err, errlen, "lmdb %s: %s", path, mdb_strerror(rc));
        return -1;
    }
    /* Reader slots of processes that died holding them would fill the table. */
    if (mdb_reader_check(l->env, &dead) == 0 && dead > 0)
        log_info("event=store_readers_cleared stale=%d", dead);
    return 0;
}

/* dbi_open - open (creating when writable) the named database; -1 with err filled */
static int dbi_open(struct lmdb_store *l, const char *path, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(l->env, NULL, l->readonly ? MDB_RDONLY : 0, &txn);

    if (rc == 0) {
        rc = mdb_dbi_open(txn, LMDB_DB_NAME, l->readonly ? 0 : MDB_CREATE, &l->dbi);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc == MDB_NOTFOUND)
        snprintf(err, errlen, "lmdb %s: no mxgate state in it yet", path);
    else if (rc)
        snprintf(err, errlen, "lmdb %s: %s", path, mdb_strerror(rc));
    return rc ? -1 : 0;
}

/* sync_timer - the periodic forced sync of a writable store; -1 with err filled */
static int sync_timer(struct lmdb_store *l, struct event_base *base,
                      const struct store_options *opt, char *err, size_t errlen)
{
    struct timeval tv = {opt && opt->sync_interval ? (long)opt->sync_interval : LMDB_DEFAULT_SYNC,
                         0};

    l->sync_ev = event_new(base, -1, EV_PERSIST, on_sync, l);
    if (!l->sync_ev || event_add(l->sync_ev, &tv) < 0) {
        snprintf(err, errlen, "lmdb: cannot create the sync timer");
        return -1;
    }
    if (!(l->syncer = lmdb_syncer_start(l->env)))
        log_warn("event=store_sync_thread error=%s what=\"syncing on the event loop\"",
                 log_q("pthread_create failed"));
    return 0;
}

/* lmdb_open - open the environment directory at path (created when writable) */
static void *lmdb_open(struct store *st, struct event_base *base, const char *path,
                       const struct store_options *opt, int readonly, char *err, size_t errlen)
{
    struct lmdb_store *l;

    if (!*path) {
        snprintf(err, errlen, "lmdb: empty path");
        return NULL;
    }
    if (!readonly && mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "lmdb %s: %s", path, strerror(errno));
        return NULL;
    }
    l = xcalloc(1, sizeof *l);
    l->st = st;
    l->readonly = readonly;
    if (env_open(l, path, opt, err, errlen) < 0 || dbi_open(l, path, err, errlen) < 0 ||
        (!readonly && sync_timer(l, base, opt, err, errlen) < 0)) {
        lmdb_close(l);
        return NULL;
    }
    if (!readonly)
        lmdb_ops_start(l, base, opt);
    return l;
}

const struct store_backend store_backend_lmdb = {
    .scheme = "lmdb",
    .open = lmdb_open,
    .get = lmdb_get,
    .set = lmdb_set,
    .incr = lmdb_incr,
    .del = lmdb_del,
    .scan_prefix = lmdb_scan_prefix,
    .expire = lmdb_expire,
    .expire_start = lmdb_expire_start,
    .flush = lmdb_flush,
    .sync_get = lmdb_sync_get,
    .sync_scan_prefix = lmdb_sync_scan_prefix,
    .close = lmdb_close,
    .lease = lmdb_lease,
    .threaded = 1,
};
