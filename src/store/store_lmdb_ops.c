/*
 * store_lmdb_ops.c - the LMDB store's asynchronous operations, as jobs of its
 * worker thread (store_worker.h).
 *
 * The loop copies the key and value into a job and posts it; the worker runs
 * the jobs in the order they were posted (so a get issued after a set sees
 * it) and queues each result on the front end's completion queue, which
 * delivers it from the loop. The clock is read when the operation is issued,
 * on the loop, and travels in the job (tests move it with clock_set).
 *
 * A full queue (STORE_QUEUE_MAX jobs or STORE_QUEUE_BYTES octets: the disk or
 * the CPU cannot keep up) refuses the operation: it completes with
 * STORE_EDOWN from the loop, counted as a store error and logged once per
 * episode, and the checks do what store { on_error } says. Without a worker
 * (pthread_create failed) the jobs run on the loop, as before the worker.
 */
#include "store/store_lmdb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "store/store_worker.h"

enum lmdb_job_kind { JOB_GET, JOB_SET, JOB_INCR, JOB_DEL, JOB_SCAN, JOB_LEASE, JOB_EXPIRE };

struct lmdb_job {
    struct store_job base; /* first: the worker's link and the octets it counts */
    enum lmdb_job_kind kind;
    time_t now; /* the store's clock when the operation was issued */
    void *arg;
    store_get_cb get_cb;
    store_done_cb done_cb;
    store_incr_cb incr_cb;
    store_scan_cb item_cb;
    struct store_op *op; /* expire: the front end's completion */
    int64_t delta;
    unsigned ttl; /* seconds; expire: the batch's microseconds */
    size_t keylen;
    size_t vlen;
    unsigned char data[]; /* the key (scan: the prefix), then the value (lease: the owner) */
};

/* job_new - a job with copies of key and val */
static struct lmdb_job *job_new(enum lmdb_job_kind kind, const void *key, size_t keylen,
                                const void *val, size_t vlen, void *arg)
{
    struct lmdb_job *j = xmalloc(sizeof(*j) + keylen + vlen);

    memset(j, 0, sizeof(*j));
    j->base.bytes = sizeof(*j) + keylen + vlen;
    j->kind = kind;
    j->arg = arg;
    j->keylen = keylen;
    j->vlen = vlen;
    if (keylen)
        memcpy(j->data, key, keylen);
    if (vlen)
        memcpy(j->data + keylen, val, vlen);
    return j;
}

/* do_get - look the key up; deliver a copy of the value */
static void do_get(struct lmdb_store *l, struct lmdb_job *j)
{
    MDB_val k = {j->keylen, j->data}, pay = {0, NULL};
    struct store_op *op;
    int rc = lmdb_read_begin(l), status;

    if (rc) {
        status = lmdb_fail(l, "get", rc);
    } else {
        status = lmdb_read_status(l, lmdb_rec_find(l, l->rtxn, &k, &pay, NULL));
        if (status != STORE_OK)
            pay.mv_size = 0;
    }
    op = store_op_get(l->st, j->get_cb, j->arg, pay.mv_size);
    if (pay.mv_size)
        memcpy(store_op_get_value(op), pay.mv_data, pay.mv_size);
    if (!rc)
        lmdb_read_end(l);
    store_op_queue(l->st, op, status, 0);
}

struct set_ctx {
    MDB_val key;
    const void *val;
    size_t vlen;
    unsigned ttl;
};

/* set_txn - write [expiry][value] under key */
static int set_txn(struct lmdb_store *l, MDB_txn *txn, void *ctx, int *status)
{
    struct set_ctx *c = ctx;
    MDB_val v = {LMDB_HDR + c->vlen, NULL};
    int rc = mdb_put(txn, l->dbi, &c->key, &v, MDB_RESERVE);

    if (rc)
        return rc;
    lmdb_put_i64(v.mv_data, lmdb_expiry_for(l, c->ttl));
    if (c->vlen)
        memcpy((unsigned char *)v.mv_data + LMDB_HDR, c->val, c->vlen);
    return 0;
}

/* do_set - replace the key's record */
static void do_set(struct lmdb_store *l, struct lmdb_job *j)
{
    struct set_ctx c = {{j->keylen, j->data}, j->data + j->keylen, j->vlen, j->ttl};
    struct store_op *op = store_op_done(l->st, j->done_cb, j->arg);

    store_op_queue(l->st, op, lmdb_write(l, "set", set_txn, &c), 0);
}

struct incr_ctx {
    MDB_val key;
    int64_t delta;
    unsigned ttl;
    int64_t value; /* out */
};

/* incr_next - the counter after the increment; a status other than STORE_OK on refusal */
static int incr_next(struct lmdb_store *l, struct incr_ctx *c, const MDB_val *pay, int64_t *exp)
{
    if (pay->mv_size != 8)
        return STORE_ETYPE;
    if (__builtin_add_overflow(lmdb_get_i64(pay->mv_data), c->delta, &c->value))
        return STORE_ERANGE;
    if (*exp == 0) /* EXPIRE NX: only a counter without expiry gets one */
        *exp = lmdb_expiry_for(l, c->ttl);
    return STORE_OK;
}

/* incr_txn - read, add and write the counter in one transaction */
static int incr_txn(struct lmdb_store *l, MDB_txn *txn, void *ctx, int *status)
{
    struct incr_ctx *c = ctx;
    unsigned char buf[LMDB_HDR + 8];
    MDB_val pay = {0, NULL}, v = {sizeof buf, buf};
    int64_t exp = 0;
    int rc = lmdb_rec_find(l, txn, &c->key, &pay, &exp);

    if (rc == MDB_NOTFOUND) {
        c->value = c->delta;
        exp = lmdb_expiry_for(l, c->ttl);
    } else if (rc) {
        return rc;
    } else if ((*status = incr_next(l, c, &pay, &exp)) != STORE_OK) {
        return 0;
    }
    lmdb_put_i64(buf, exp);
    lmdb_put_i64(buf + LMDB_HDR, c->value);
    return mdb_put(txn, l->dbi, &c->key, &v, 0);
}

/* do_incr - add to a counter; report the new value */
static void do_incr(struct lmdb_store *l, struct lmdb_job *j)
{
    struct incr_ctx c = {{j->keylen, j->data}, j->delta, j->ttl, 0};
    struct store_op *op = store_op_incr(l->st, j->incr_cb, j->arg);
    int status = lmdb_write(l, "incr", incr_txn, &c);

    store_op_queue(l->st, op, status, c.value);
}

/* del_txn - delete a live record; STORE_NOTFOUND (nothing to commit) when there is none */
static int del_txn(struct lmdb_store *l, MDB_txn *txn, void *ctx, int *status)
{
    MDB_val *k = ctx, pay = {0, NULL};
    int rc = lmdb_rec_find(l, txn, k, &pay, NULL);

    if (rc == MDB_NOTFOUND) {
        *status = STORE_NOTFOUND; /* an expired record is left to the expiry timer */
        return 0;
    }
    return rc ? rc : mdb_del(txn, l->dbi, k, NULL);
}

/* do_del - delete the key */
static void do_del(struct lmdb_store *l, struct lmdb_job *j)
{
    MDB_val k = {j->keylen, j->data};
    struct store_op *op = store_op_done(l->st, j->done_cb, j->arg);

    store_op_queue(l->st, op, lmdb_write(l, "del", del_txn, &k), 0);
}

struct scan_ctx {
    struct store_op *op;
    int status;
};

/* scan_copy - visitor for the asynchronous scan: copy the record for later delivery */
static int scan_copy(void *ctx, const MDB_val *key, const MDB_val *pay)
{
    struct scan_ctx *c = ctx;

    c->status = store_op_scan_add(c->op, key->mv_data, key->mv_size, pay->mv_data, pay->mv_size);
    return c->status != STORE_OK;
}

/* do_scan - collect the records under the prefix (the key) for delivery */
static void do_scan(struct lmdb_store *l, struct lmdb_job *j)
{
    struct scan_ctx c = {store_op_scan(l->st, j->item_cb, j->done_cb, j->arg), STORE_OK};
    int rc;

    if ((rc = lmdb_read_begin(l)) == 0) {
        rc = lmdb_walk(l, l->rtxn, j->data, j->keylen, scan_copy, &c);
        lmdb_read_end(l);
    }
    store_op_queue(l->st, c.op, rc ? lmdb_fail(l, "scan", rc) : c.status, 0);
}

/* lease_txn - the owner's lease: taken when free or renewed by its holder, in one
 * transaction (atomic for this process, the only writer of the store) */
static int lease_txn(struct lmdb_store *l, MDB_txn *txn, void *ctx, int *status)
{
    struct set_ctx *c = ctx;
    MDB_val pay = {0, NULL};
    int rc = lmdb_rec_find(l, txn, &c->key, &pay, NULL);

    if (rc == 0 && (pay.mv_size != c->vlen || memcmp(pay.mv_data, c->val, c->vlen) != 0)) {
        *status = STORE_EBUSY;
        return 0;
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    return set_txn(l, txn, c, status);
}

/* do_lease - take or renew the lease (the value is the owner) */
static void do_lease(struct lmdb_store *l, struct lmdb_job *j)
{
    struct set_ctx c = {{j->keylen, j->data}, j->data + j->keylen, j->vlen, j->ttl};
    struct store_op *op = store_op_done(l->st, j->done_cb, j->arg);

    store_op_queue(l->st, op, lmdb_write(l, "lease", lease_txn, &c), 0);
}

/* do_expire - one expiry batch for the front end's timer */
static void do_expire(struct lmdb_store *l, struct lmdb_job *j)
{
    int more = 0;
    long n = lmdb_expire_batch(l, j->now, j->ttl, &more);

    store_op_queue_expired(l->st, j->op, n, more);
}

/* job_run - run one job (on the worker; on the loop without one) and free it */
static void job_run(void *ud, struct store_job *sj)
{
    struct lmdb_store *l = ud;
    struct lmdb_job *j = (struct lmdb_job *)sj;

    l->now = j->now;
    switch (j->kind) {
    case JOB_GET:
        do_get(l, j);
        break;
    case JOB_SET:
        do_set(l, j);
        break;
    case JOB_INCR:
        do_incr(l, j);
        break;
    case JOB_DEL:
        do_del(l, j);
        break;
    case JOB_SCAN:
        do_scan(l, j);
        break;
    case JOB_LEASE:
        do_lease(l, j);
        break;
    case JOB_EXPIRE:
        do_expire(l, j);
        break;
    }
    free(j);
}

/* job_refuse - the queue is full: complete with STORE_EDOWN from the loop (an expiry
 * batch: -1, the timer tries again later) */
static int job_refuse(struct lmdb_store *l, struct lmdb_job *j)
{
    struct store *st = l->st;
    int kind = j->kind;

    metrics_inc(METRICS_STORE_ERRORS);
    if (!l->refusing)
        log_warn("event=store_queue_full queued=%u what=%s", l->queue_max,
                 log_q("operations fail with STORE_EDOWN"));
    l->refusing = 1;
    if (kind == JOB_GET)
        store_op_queue(st, store_op_get(st, j->get_cb, j->arg, 0), STORE_EDOWN, 0);
    else if (kind == JOB_INCR)
        store_op_queue(st, store_op_incr(st, j->incr_cb, j->arg), STORE_EDOWN, 0);
    else if (kind == JOB_SCAN)
        store_op_queue(st, store_op_scan(st, j->item_cb, j->done_cb, j->arg), STORE_EDOWN, 0);
    else if (kind != JOB_EXPIRE)
        store_op_queue(st, store_op_done(st, j->done_cb, j->arg), STORE_EDOWN, 0);
    free(j);
    if (kind != JOB_EXPIRE)
        return 0;
    errno = EAGAIN;
    return -1;
}

/* job_submit - hand the job to the worker, issued at now; 0, or -1 (an expiry refused) */
static int job_submit(struct lmdb_store *l, struct lmdb_job *j, time_t now)
{
    j->now = now;
    if (!l->worker) {
        job_run(l, &j->base);
        return 0;
    }
    if (store_worker_post(l->worker, &j->base) < 0)
        return job_refuse(l, j);
    if (!l->kick_pending) { /* after this turn's callbacks: one wake-up for all they posted */
        l->kick_pending = 1;
        event_active(l->kick_ev, EV_TIMEOUT, 1);
    }
    if (l->refusing) {
        l->refusing = 0;
        log_info("event=store_queue_ok");
    }
    return 0;
}

int lmdb_get(void *h, const void *key, size_t keylen, store_get_cb cb, void *arg)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_GET, key, keylen, NULL, 0, arg);

    j->get_cb = cb;
    return job_submit(l, j, store_now(l->st));
}

int lmdb_set(void *h, const void *key, size_t keylen, const void *val, size_t vlen, unsigned ttl,
             store_done_cb cb, void *arg)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_SET, key, keylen, val, vlen, arg);

    j->done_cb = cb;
    j->ttl = ttl;
    return job_submit(l, j, store_now(l->st));
}

int lmdb_incr(void *h, const void *key, size_t keylen, int64_t delta, unsigned ttl,
              store_incr_cb cb, void *arg)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_INCR, key, keylen, NULL, 0, arg);

    j->incr_cb = cb;
    j->delta = delta;
    j->ttl = ttl;
    return job_submit(l, j, store_now(l->st));
}

int lmdb_del(void *h, const void *key, size_t keylen, store_done_cb cb, void *arg)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_DEL, key, keylen, NULL, 0, arg);

    j->done_cb = cb;
    return job_submit(l, j, store_now(l->st));
}

int lmdb_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item,
                     store_done_cb done, void *arg)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_SCAN, prefix, plen, NULL, 0, arg);

    j->item_cb = item;
    j->done_cb = done;
    return job_submit(l, j, store_now(l->st));
}

int lmdb_lease(void *h, const void *key, size_t keylen, const char *owner, unsigned ttl_ms,
               store_done_cb cb, void *arg)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_LEASE, key, keylen, owner, strlen(owner), arg);

    j->done_cb = cb;
    j->ttl = (ttl_ms + 999) / 1000;
    return job_submit(l, j, store_now(l->st));
}

int lmdb_expire_start(void *h, time_t now, unsigned usec, struct store_op *op)
{
    struct lmdb_store *l = h;
    struct lmdb_job *j = job_new(JOB_EXPIRE, NULL, 0, NULL, 0, NULL);

    j->op = op;
    j->ttl = usec;
    return job_submit(l, j, now);
}

/* job_batch - on the worker: the results of the jobs just run go to the loop */
static void job_batch(void *ud)
{
    struct lmdb_store *l = ud;

    store_op_wake(l->st);
}

/* on_kick - the loop's turn ends: the worker runs what the turn posted */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct lmdb_store *l = arg;

    l->kick_pending = 0;
    store_worker_kick(l->worker);
}

void lmdb_ops_start(struct lmdb_store *l, struct event_base *base, const struct store_options *opt)
{
    l->queue_max = opt && opt->queue_max ? opt->queue_max : STORE_QUEUE_MAX;
    if (!(l->kick_ev = event_new(base, -1, 0, on_kick, l)))
        return; /* no worker: the operations run on the loop */
    l->worker = store_worker_start(job_run, job_batch, l, l->queue_max, STORE_QUEUE_BYTES);
    if (!l->worker)
        log_warn("event=store_worker_thread error=%s what=%s", log_q("pthread_create failed"),
                 log_q("operations on the event loop"));
}

void lmdb_ops_quiesce(struct lmdb_store *l)
{
    if (l->worker)
        store_worker_quiesce(l->worker);
    l->now = store_now(l->st);
}

void lmdb_ops_stop(struct lmdb_store *l)
{
    store_worker_stop(l->worker);
    l->worker = NULL;
    if (l->kick_ev)
        event_free(l->kick_ev);
    l->kick_ev = NULL;
}
