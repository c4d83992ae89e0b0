/* commitq.c - group commit: the loop batches commits, one pool job syncs a batch */
#include "queue/commitq.h"
#include "core/pool.h"
#include "core/xmalloc.h"
#include "queue/spool.h"

#include <errno.h>
#include <stdlib.h>

struct commit_req {
    struct spool_writer *w;
    commit_done_fn done;
    void *arg;
    int rc, err;
    struct commit_req *next;
};

struct commit_batch {
    struct commitq *cq;
    struct commit_req *head;
    size_t n;
};

struct commitq {
    struct pool *pool;
    int batch;
    struct commit_req *head, *tail; /* waiting for the next batch */
    size_t n;
    int inflight; /* a batch job is in the pool */
};

/* commitq_new - an empty commit queue on pool */
struct commitq *commitq_new(struct pool *pool, int batch)
{
    struct commitq *cq = xcalloc(1, sizeof(*cq));

    cq->pool = pool;
    cq->batch = batch;
    return cq;
}

/* batch_work - in the pool: every writer of the batch, one sync */
static void batch_work(void *arg)
{
    struct commit_batch *b = arg;
    struct spool_writer **ws = xmalloc(b->n * sizeof(*ws));
    struct commit_req *r;
    size_t i = 0;

    for (r = b->head; r; r = r->next)
        ws[i++] = r->w;
    spool_commit_batch(ws, b->n);
    for (r = b->head; r; r = r->next)
        r->rc = spool_writer_status(r->w, &r->err);
    free(ws);
}

static void batch_start(struct commitq *cq);

/* batch_done - on the loop: answer every commit, then start the next batch */
static void batch_done(void *arg)
{
    struct commit_batch *b = arg;
    struct commitq *cq = b->cq;
    struct commit_req *r = b->head, *next;

    free(b);
    cq->inflight = 0;
    /* The next batch first: its sync overlaps with these answers. */
    batch_start(cq);
    for (; r; r = next) {
        next = r->next;
        r->done(r->arg, r->rc, r->err);
        free(r);
    }
}

/* batch_start - hand everything waiting to the pool unless a batch is running */
static void batch_start(struct commitq *cq)
{
    struct commit_batch *b;

    if (cq->inflight || !cq->head)
        return;
    b = xmalloc(sizeof(*b));
    b->cq = cq;
    b->head = cq->head;
    b->n = cq->n;
    cq->head = cq->tail = NULL;
    cq->n = 0;
    cq->inflight = 1;
    pool_submit(cq->pool, batch_work, batch_done, b);
}

/* one_work - in the pool: a commit of its own */
static void one_work(void *arg)
{
    struct commit_req *r = arg;

    r->rc = spool_writer_commit(r->w);
    r->err = errno;
}

/* one_done - on the loop */
static void one_done(void *arg)
{
    struct commit_req *r = arg;

    r->done(r->arg, r->rc, r->err);
    free(r);
}

/* commitq_submit - commit w; done runs on the loop afterwards */
void commitq_submit(struct commitq *cq, struct spool_writer *w, commit_done_fn done, void *arg)
{
    struct commit_req *r = xmalloc(sizeof(*r));

    *r = (struct commit_req){.w = w, .done = done, .arg = arg};
    if (!cq->batch) {
        pool_submit(cq->pool, one_work, one_done, r);
        return;
    }
    if (cq->tail)
        cq->tail->next = r;
    else
        cq->head = r;
    cq->tail = r;
    cq->n++;
    batch_start(cq);
}

/* commitq_free - release the queue (nothing can be waiting once the pool drained) */
void commitq_free(struct commitq *cq)
{
    free(cq);
}
