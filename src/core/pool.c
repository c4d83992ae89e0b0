/* pool.c - worker threads for blocking work, completions delivered on the event loop */
#include "core/pool.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#define POOL_MAX_THREADS 256

struct pool_job {
    pool_work_fn work;
    pool_done_fn done;
    void *arg;
    struct pool_job *next;
};

/* A singly linked FIFO with a tail pointer, for O(1) push and whole-list take. */
struct pool_list {
    struct pool_job *head;
    struct pool_job *tail;
};

struct pool {
    struct event_base *base;
    struct event *wake_ev; /* persistent EV_READ on efd */
    int efd;               /* eventfd: workers poke it when the done list fills */
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* jobs queued or stopping */
    pthread_cond_t done_cv; /* a job finished (pool_free waits on it) */
    struct pool_list todo;  /* submitted, not yet taken by a worker */
    struct pool_list done;  /* finished, done callback not run yet */
    int stopping;           /* workers exit once todo is empty */
    unsigned pending;       /* atomic: submitted minus done callbacks run */
};

/* list_push - append job at the tail */
static void list_push(struct pool_list *l, struct pool_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

/* list_pop - remove and return the head, or NULL */
static struct pool_job *list_pop(struct pool_list *l)
{
    struct pool_job *j = l->head;
    if (j) {
        l->head = j->next;
        if (!l->head)
            l->tail = NULL;
    }
    return j;
}

/* worker_next - block until a job is available; NULL when the pool stops */
static struct pool_job *worker_next(struct pool *p)
{
    struct pool_job *j;

    pthread_mutex_lock(&p->mu);
    while (!p->todo.head && !p->stopping)
        pthread_cond_wait(&p->work_cv, &p->mu);
    j = list_pop(&p->todo);
    pthread_mutex_unlock(&p->mu);
    return j;
}

/* worker_finish - hand a finished job to the loop thread and wake it */
static void worker_finish(struct pool *p, struct pool_job *j)
{
    int was_empty;
    uint64_t one = 1;

    pthread_mutex_lock(&p->mu);
    was_empty = p->done.head == NULL;
    list_push(&p->done, j);
    pthread_cond_signal(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
    /* Only the push onto an empty list needs a wake-up: the loop takes the
     * whole list at once. An eventfd counter cannot overflow here and the
     * write of 8 bytes to it cannot be short; EAGAIN would only mean the
     * counter is already non-zero, which is a wake-up too. */
    if (was_empty && write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        abort();
}

/* worker_main - thread body: run jobs until the pool stops */
static void *worker_main(void *arg)
{
    struct pool *p = arg;
    struct pool_job *j;

    while ((j = worker_next(p)) != NULL) {
        j->work(j->arg);
        worker_finish(p, j);
    }
    return NULL;
}

/* run_done_list - run the done callbacks of a taken list (loop thread) */
static void run_done_list(struct pool *p, struct pool_job *j)
{
    while (j) {
        struct pool_job *next = j->next;
        if (j->done)
            j->done(j->arg);
        free(j);
        __atomic_sub_fetch(&p->pending, 1, __ATOMIC_RELAXED);
        j = next;
    }
}

/* take_done - detach the whole done list under the mutex */
static struct pool_job *take_done(struct pool *p)
{
    struct pool_job *j;

    pthread_mutex_lock(&p->mu);
    j = p->done.head;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->mu);
    return j;
}

/* on_wake - eventfd readable: run every finished job's done callback in one batch */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    uint64_t n;

    /* Reset the counter first: a push after take_done() then wakes us again. */
    if (read(p->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        return;
    run_done_list(p, take_done(p));
}

/* pool_setup_wake - create the eventfd and its persistent event on base */
static int pool_setup_wake(struct pool *p)
{
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0)
        return -1;
    p->wake_ev = event_new(p->base, p->efd, EV_READ | EV_PERSIST, on_wake, p);
    if (!p->wake_ev || event_add(p->wake_ev, NULL) < 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* pool_stop_threads - tell the workers to exit once idle and join them */
static void pool_stop_threads(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

/* pool_destroy - release everything; the threads must already be joined */
static void pool_destroy(struct pool *p)
{
    if (p->wake_ev)
        event_free(p->wake_ev);
    if (p->efd >= 0)
        close(p->efd);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

/* pool_start_threads - create n workers; on failure the started ones stay counted */
static int pool_start_threads(struct pool *p, int n)
{
    p->threads = xcalloc((size_t)n, sizeof *p->threads);
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc != 0) {
            errno = rc;
            return -1;
        }
        p->nthreads++;
    }
    return 0;
}

/* pool_new - start nthreads workers whose completions are delivered on base */
struct pool *pool_new(struct event_base *base, int nthreads)
{
    struct pool *p;
    int saved;

    if (!base || nthreads < 1 || nthreads > POOL_MAX_THREADS) {
        errno = EINVAL;
        return NULL;
    }
    p = xcalloc(1, sizeof *p);
    p->base = base;
    p->efd = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (pool_setup_wake(p) == 0 && pool_start_threads(p, nthreads) == 0)
        return p;
    saved = errno;
    pool_stop_threads(p);
    pool_destroy(p);
    errno = saved;
    return NULL;
}

/* pool_submit - queue work; done (may be NULL) is called on the loop when it finished */
void pool_submit(struct pool *p, pool_work_fn work, pool_done_fn done, void *arg)
{
    /* The interface has no error path and a lost job would leave its caller
     * waiting forever (an SMTP session never answered): xmalloc never fails. */
    struct pool_job *j = xmalloc(sizeof *j);

    j->work = work;
    j->done = done;
    j->arg = arg;
    __atomic_add_fetch(&p->pending, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->mu);
    list_push(&p->todo, j);
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

/* pool_pending - jobs submitted whose done callback has not run yet */
unsigned pool_pending(const struct pool *p)
{
    return __atomic_load_n(&p->pending, __ATOMIC_RELAXED);
}

/* pool_drain - wait for every job (including ones submitted by done callbacks) */
static void pool_drain(struct pool *p)
{
    while (pool_pending(p) > 0) {
        struct pool_job *j;

        pthread_mutex_lock(&p->mu);
        while (!p->done.head)
            pthread_cond_wait(&p->done_cv, &p->mu);
        j = p->done.head;
        p->done.head = p->done.tail = NULL;
        pthread_mutex_unlock(&p->mu);
        run_done_list(p, j);
    }
}

/* pool_free - finish every queued job (running done callbacks), then stop the workers */
void pool_free(struct pool *p)
{
    if (!p)
        return;
    pool_drain(p);
    pool_stop_threads(p);
    pool_destroy(p);
}
