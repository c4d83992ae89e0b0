/* test_pool.c - worker pool: work off the loop, done callbacks on the loop */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/pool.h"

#define NJOBS 1000

struct pool_test {
    struct event_base *base;
    struct pool *pool;
    pthread_t loop_thread;
    unsigned work_runs;    /* atomic */
    unsigned work_on_loop; /* atomic: work that ran on the loop thread (must stay 0) */
    unsigned done_runs;
    unsigned done_off_loop;    /* done callbacks that ran elsewhere (must stay 0) */
    unsigned done_before_work; /* done called before its own work finished */
    unsigned chained;          /* jobs submitted from done callbacks */
    unsigned target;           /* break the loop after this many done callbacks */
    int timed_out;
};

struct job {
    struct pool_test *t;
    int worked; /* set by work, checked by done */
    int chain;  /* done submits one more job when set */
};

/* on_timeout - a safety net so that a broken pool fails the test instead of hanging */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pool_test *t = arg;
    t->timed_out = 1;
    event_base_loopbreak(t->base);
}

/* job_work - runs on a worker: record where, take a little time */
static void job_work(void *arg)
{
    struct job *j = arg;

    __atomic_add_fetch(&j->t->work_runs, 1, __ATOMIC_RELAXED);
    if (pthread_equal(pthread_self(), j->t->loop_thread))
        __atomic_add_fetch(&j->t->work_on_loop, 1, __ATOMIC_RELAXED);
    usleep(50);
    __atomic_store_n(&j->worked, 1, __ATOMIC_RELEASE);
}

/* job_done - runs on the loop: check the thread, count, maybe chain another job */
static void job_done(void *arg)
{
    struct job *j = arg;
    struct pool_test *t = j->t;

    if (!pthread_equal(pthread_self(), t->loop_thread))
        t->done_off_loop++;
    if (!__atomic_load_n(&j->worked, __ATOMIC_ACQUIRE))
        t->done_before_work++;
    if (j->chain) {
        j->chain = 0;
        j->worked = 0;
        t->chained++;
        pool_submit(t->pool, job_work, job_done, j);
        return;
    }
    t->done_runs++;
    if (t->target && t->done_runs == t->target)
        event_base_loopbreak(t->base);
}

/* setup - a base, a 4-thread pool and the loop thread's identity */
static int setup(void **state)
{
    static struct pool_test t;

    memset(&t, 0, sizeof t);
    t.base = event_base_new();
    if (!t.base)
        return -1;
    t.pool = pool_new(t.base, 4);
    if (!t.pool)
        return -1;
    t.loop_thread = pthread_self();
    *state = &t;
    return 0;
}

/* teardown - free what setup made (pool first: it owns an event on base) */
static int teardown(void **state)
{
    struct pool_test *t = *state;

    pool_free(t->pool);
    event_base_free(t->base);
    return 0;
}

/* run_loop - dispatch until target done callbacks ran, at most 20 s */
static void run_loop(struct pool_test *t, unsigned target)
{
    struct timeval tv = {20, 0};
    struct event *timer = evtimer_new(t->base, on_timeout, t);

    assert_non_null(timer);
    t->target = target;
    assert_int_equal(evtimer_add(timer, &tv), 0);
    assert_int_equal(event_base_dispatch(t->base), 0);
    event_free(timer);
    assert_false(t->timed_out);
}

/* test_thousand_jobs - 1000 jobs over 4 workers, every done on the loop thread */
static void test_thousand_jobs(void **state)
{
    struct pool_test *t = *state;
    static struct job jobs[NJOBS];

    for (int i = 0; i < NJOBS; i++) {
        jobs[i] = (struct job){.t = t};
        pool_submit(t->pool, job_work, job_done, &jobs[i]);
    }
    assert_int_equal(pool_pending(t->pool), NJOBS);
    run_loop(t, NJOBS);
    assert_int_equal(t->work_runs, NJOBS);
    assert_int_equal(t->done_runs, NJOBS);
    assert_int_equal(t->work_on_loop, 0);
    assert_int_equal(t->done_off_loop, 0);
    assert_int_equal(t->done_before_work, 0);
    assert_int_equal(pool_pending(t->pool), 0);
}

/* test_chained_submit - a done callback may submit more work */
static void test_chained_submit(void **state)
{
    struct pool_test *t = *state;
    static struct job jobs[10];

    for (int i = 0; i < 10; i++) {
        jobs[i] = (struct job){.t = t, .chain = 1};
        pool_submit(t->pool, job_work, job_done, &jobs[i]);
    }
    run_loop(t, 10);
    assert_int_equal(t->chained, 10);
    assert_int_equal(t->work_runs, 20);
    assert_int_equal(t->done_off_loop, 0);
    assert_int_equal(pool_pending(t->pool), 0);
}

/* count_work - work for a job without a done callback */
static void count_work(void *arg)
{
    __atomic_add_fetch((unsigned *)arg, 1, __ATOMIC_RELAXED);
}

/* test_null_done - done may be NULL; the job still counts as pending until collected */
static void test_null_done(void **state)
{
    struct pool_test *t = *state;
    struct timeval tv = {20, 0};
    struct event *timer = evtimer_new(t->base, on_timeout, t);
    unsigned ran = 0;

    assert_non_null(timer);
    assert_int_equal(evtimer_add(timer, &tv), 0);
    for (int i = 0; i < 50; i++)
        pool_submit(t->pool, count_work, NULL, &ran);
    assert_true(pool_pending(t->pool) > 0);
    while (pool_pending(t->pool) > 0 && !t->timed_out)
        assert_int_equal(event_base_loop(t->base, EVLOOP_ONCE), 0);
    event_free(timer);
    assert_false(t->timed_out);
    assert_int_equal(__atomic_load_n(&ran, __ATOMIC_RELAXED), 50);
}

/* test_free_runs_pending - pool_free without running the loop still calls every done */
static void test_free_runs_pending(void **state)
{
    struct pool_test *t = *state;
    static struct job jobs[200];

    for (int i = 0; i < 200; i++) {
        jobs[i] = (struct job){.t = t, .chain = i % 10 == 0};
        pool_submit(t->pool, job_work, job_done, &jobs[i]);
    }
    assert_true(pool_pending(t->pool) > 0);
    pool_free(t->pool);
    t->pool = pool_new(t->base, 4); /* for teardown */
    assert_non_null(t->pool);
    assert_int_equal(t->done_runs, 200);
    assert_int_equal(t->chained, 20);
    assert_int_equal(t->work_runs, 220);
    assert_int_equal(t->done_off_loop, 0);
    assert_int_equal(t->done_before_work, 0);
}

/* test_new_rejects_bad_args - no threads is not a pool */
static void test_new_rejects_bad_args(void **state)
{
    struct pool_test *t = *state;

    assert_null(pool_new(t->base, 0));
    assert_null(pool_new(NULL, 4));
}

/* main - run the pool tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thousand_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chained_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_runs_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_rejects_bad_args, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
