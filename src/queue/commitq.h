/* commitq.h - making received messages durable off the loop, many per sync (group commit) */
#ifndef MX_QUEUE_COMMITQ_H
#define MX_QUEUE_COMMITQ_H

struct pool;
struct spool;
struct spool_writer;
struct commitq;

/* commit_done_fn - on the loop: rc 0 means durable in queue/, else err says why */
typedef void (*commit_done_fn)(void *arg, int rc, int err);

/*
 * commitq_new - commits run in pool. With batch set (queue.sync =
 * "filesystem") one pool job at a time takes every commit waiting and makes
 * them durable with one sync; otherwise each commit is its own job (per-file
 * fsync, concurrent jobs share the directory fsync).
 */
struct commitq *commitq_new(struct pool *pool, int batch);

/* commitq_submit - commit w; done runs on the loop afterwards (w is not freed) */
void commitq_submit(struct commitq *cq, struct spool_writer *w, commit_done_fn done, void *arg);

/* commitq_free - call after pool_free (which finishes every batch) */
void commitq_free(struct commitq *cq);

#endif
