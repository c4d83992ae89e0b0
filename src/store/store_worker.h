/*
 * store_worker.h - one thread that runs a store's jobs in the order they were
 * posted, so that the event loop never waits for the engine (LMDB's commits
 * write copied pages and touch cold pages of the map: milliseconds, and
 * hundreds of them when the disk is busy).
 *
 * FIFO: a job posted after another runs after it has finished, so a read
 * posted after a write by the same thread sees the write. The queue is
 * bounded in jobs and in octets: a post beyond either bound is refused (the
 * caller completes the operation itself), so a store that cannot keep up does
 * not grow memory without bound.
 */
#ifndef MX_STORE_WORKER_H
#define MX_STORE_WORKER_H

#include <stddef.h>

/* struct store_job - the head of a backend's job; bytes counts toward the bound */
struct store_job {
    struct store_job *next;
    size_t bytes;
};

/* store_job_fn - run job on the worker thread; it owns and frees the job */
typedef void (*store_job_fn)(void *ud, struct store_job *job);
/* store_batch_fn - on the worker thread: the queue is empty, or STORE_WORKER_BATCH jobs
 * ran since the last call (hand their results over now) */
typedef void (*store_batch_fn)(void *ud);

/* The most jobs run before their results are handed over (a long queue still streams). */
#define STORE_WORKER_BATCH 32

struct store_worker;

/* store_worker_start - a thread running run(ud, job) for each job, then batch(ud);
 * NULL if none can start */
struct store_worker *store_worker_start(store_job_fn run, store_batch_fn batch, void *ud,
                                        unsigned max_jobs, size_t max_bytes);

/* store_worker_post - queue job (from any thread); 0, or -1 when the queue is full
 * (the job is not taken; one job alone is always taken, whatever its size). The
 * thread starts on it at the next store_worker_kick (or quiesce, stop): the loop
 * kicks once a turn, not once a job, each wake-up being a system call */
int store_worker_post(struct store_worker *w, struct store_job *job);

/* store_worker_kick - have the thread run what was posted */
void store_worker_kick(struct store_worker *w);

/* store_worker_quiesce - wait until every job posted so far has run (the worker is then
 * idle until the next post: the caller may use the engine itself meanwhile) */
void store_worker_quiesce(struct store_worker *w);

/* store_worker_stop - run the jobs still queued, end the thread, free; NULL is a no-op */
void store_worker_stop(struct store_worker *w);

#endif
