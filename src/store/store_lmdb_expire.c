/*
 * store_lmdb_expire.c - the LMDB store's expiry batch: a walk from where the
 * previous batch stopped, deleting dead records, bounded in records deleted,
 * records looked at and time (store.h). The store's timer runs it on the
 * store's worker thread (store_lmdb_ops.c), store_expire on the caller's.
 */
#include "store/store_lmdb.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

struct expire_ctx {
    time_t now;
    unsigned usec;        /* the batch's time */
    uint64_t deadline;    /* monotonic microseconds: the batch stops here */
    const MDB_val *start; /* NULL: the first key */
    long deleted;
    int more;
    unsigned char next[STORE_KEY_MAX];
    size_t next_len;
};

/* expired - is the stored value v dead at now (or not a record of ours)? */
static int expired(const MDB_val *v, time_t now)
{
    MDB_val pay;

    return !lmdb_rec_live(v, now, &pay, NULL);
}

/* mono_usec - the monotonic clock in microseconds (a CPU budget, not the store's time) */
static uint64_t mono_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* expire_full - the batch has done its share: a count reached or its time spent
 * (the clock is read every 64 records: a read costs about as much as a record) */
static int expire_full(const struct expire_ctx *c, long visited)
{
    if (visited == STORE_EXPIRE_VISIT || c->deleted == STORE_EXPIRE_BATCH)
        return 1;
    return visited % 64 == 63 && mono_usec() >= c->deadline;
}

/* expire_stop - remember where the next batch starts */
static void expire_stop(struct expire_ctx *c, const MDB_val *k)
{
    c->more = k->mv_size <= sizeof c->next;
    c->next_len = c->more ? k->mv_size : 0;
    if (c->more)
        memcpy(c->next, k->mv_data, k->mv_size);
}

/* expire_cursor - walk from start deleting dead records, within the batch bounds */
static int expire_cursor(struct expire_ctx *c, MDB_cursor *cur)
{
    MDB_val k = {0, NULL}, v;
    long visited = 0;
    int rc;

    if (c->start)
        k = *c->start;
    rc = mdb_cursor_get(cur, &k, &v, c->start ? MDB_SET_RANGE : MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (expire_full(c, visited)) {
            expire_stop(c, &k);
            return 0;
        }
        visited++;
        /* After a delete the cursor stands on the following record, and
         * MDB_NEXT then returns that record rather than skipping it. */
        if (expired(&v, c->now)) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                return rc;
            c->deleted++;
        }
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* expire_txn - one batch; nothing deleted means nothing to commit */
static int expire_txn(struct lmdb_store *l, MDB_txn *txn, void *ctx, int *status)
{
    struct expire_ctx *c = ctx;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, l->dbi, &cur);

    /* A retried transaction starts over: forget the previous attempt. */
    c->deadline = mono_usec() + c->usec;
    c->deleted = 0;
    c->more = 0;
    c->next_len = 0;
    if (rc)
        return rc;
    rc = expire_cursor(c, cur);
    mdb_cursor_close(cur);
    if (rc == 0 && c->deleted == 0)
        *status = STORE_NOTFOUND;
    return rc;
}

/* lmdb_expire_batch - delete one bounded batch of expired records */
long lmdb_expire_batch(struct lmdb_store *l, time_t now, unsigned usec, int *more)
{
    MDB_val start = {l->resume_len, l->resume};
    struct expire_ctx c = {.now = now, .usec = usec, .start = l->resume_len ? &start : NULL};
    int status = lmdb_write(l, "expire", expire_txn, &c);

    *more = 0;
    if (status != STORE_OK && status != STORE_NOTFOUND) {
        errno = EIO;
        return -1;
    }
    memcpy(l->resume, c.next, c.next_len);
    l->resume_len = c.next_len;
    *more = c.more;
    return c.deleted;
}
