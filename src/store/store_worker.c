/* store_worker.c - a store's jobs on a thread of their own, in order (store_worker.h) */
#include "store/store_worker.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/xmalloc.h"

struct store_worker {
    store_job_fn run;
    store_batch_fn batch;
    void *ud;
    unsigned max_jobs;
    size_t max_bytes;
    pthread_t thread;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t wake;  /* a job was posted, or stop */
    pthread_cond_t idle;  /* the queue is empty and no job runs */
    struct store_job *head, *tail;
    unsigned njobs;
    size_t bytes;
    int busy; /* a job runs now */
    int stop;
};

/* worker_main - run jobs in order until told to stop and the queue is empty */
static void *worker_main(void *arg)
{
    struct store_worker *w = arg;
    struct store_job *job;
    unsigned ran = 0;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!(job = w->head))
            break;
        if (!(w->head = job->next))
            w->tail = NULL;
        w->njobs--;
        w->bytes -= job->bytes;
        w->busy = 1;
        pthread_mutex_unlock(&w->lock);
        w->run(w->ud, job);
        pthread_mutex_lock(&w->lock);
        if (!w->head || ++ran == STORE_WORKER_BATCH) {
            pthread_mutex_unlock(&w->lock);
            w->batch(w->ud);
            ran = 0;
            pthread_mutex_lock(&w->lock);
        }
        w->busy = 0;
        if (!w->head)
            pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct store_worker *store_worker_start(store_job_fn run, store_batch_fn batch, void *ud,
                                        unsigned max_jobs, size_t max_bytes)
{
    struct store_worker *w = xcalloc(1, sizeof(*w));

    w->run = run;
    w->batch = batch;
    w->ud = ud;
    w->max_jobs = max_jobs ? max_jobs : 1;
    w->max_bytes = max_bytes;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->idle, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->idle);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

int store_worker_post(struct store_worker *w, struct store_job *job)
{
    pthread_mutex_lock(&w->lock);
    if (w->njobs && (w->njobs >= w->max_jobs || job->bytes > w->max_bytes ||
                     w->bytes > w->max_bytes - job->bytes)) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    job->next = NULL;
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    w->njobs++;
    w->bytes += job->bytes;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void store_worker_kick(struct store_worker *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->head)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void store_worker_quiesce(struct store_worker *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->head)
        pthread_cond_signal(&w->wake);
    while (w->head || w->busy)
        pthread_cond_wait(&w->idle, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

void store_worker_stop(struct store_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
