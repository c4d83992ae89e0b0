/*
 * looptime.c - loop turns measured at the wait itself.
 *
 * libevent 2.1 has no hook around its dispatch (2.2's evwatch), and a timer
 * that measures its own lateness sees only stalls longer than its period.
 * The wait is epoll_wait() (libevent's epoll backend, the one main.c
 * configures), called by libevent through the dynamic linker: a definition
 * in the executable comes first in the lookup and so wraps the C library's.
 * It calls epoll_pwait() with no signal mask, which is what epoll_wait() is
 * (and, on some architectures, how the C library implements it). A program
 * that never calls looptime_watch() never links this file in, and on a
 * thread that did not call it the wrapper only passes through.
 */
#include "core/looptime.h"

#include <sys/epoll.h>
#include <time.h>

#include "core/metrics.h"

static _Thread_local int looptime_on;      /* this thread runs the watched loop */
static _Thread_local uint64_t looptime_t0; /* when the last wait returned; 0 = none yet */
static _Thread_local uint64_t looptime_c0; /* this thread's CPU time then */
static uint64_t looptime_max;
static uint64_t looptime_cpu_max;
static uint64_t looptime_n;

/* usec - clock id in microseconds */
static uint64_t usec(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* max_store - *m = v if v is larger (one writer: the loop's thread) */
static void max_store(uint64_t *m, uint64_t v)
{
    if (v > __atomic_load_n(m, __ATOMIC_RELAXED))
        __atomic_store_n(m, v, __ATOMIC_RELAXED);
}

/* turn_end - account for the turn that ends now */
static void turn_end(uint64_t now)
{
    uint64_t d = now - looptime_t0;

    max_store(&looptime_max, d);
    max_store(&looptime_cpu_max, usec(CLOCK_THREAD_CPUTIME_ID) - looptime_c0);
    __atomic_fetch_add(&looptime_n, 1, __ATOMIC_RELAXED);
    metrics_observe(METRICS_LOOP_TURN_SECONDS, (double)d / 1e6);
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    int rc;

    if (!looptime_on)
        return epoll_pwait(epfd, events, maxevents, timeout, NULL);
    if (looptime_t0)
        turn_end(usec(CLOCK_MONOTONIC));
    rc = epoll_pwait(epfd, events, maxevents, timeout, NULL);
    looptime_t0 = usec(CLOCK_MONOTONIC);
    looptime_c0 = usec(CLOCK_THREAD_CPUTIME_ID);
    return rc;
}

void looptime_watch(void)
{
    looptime_on = 1;
    looptime_t0 = 0;
}

uint64_t looptime_max_usec(void)
{
    return __atomic_load_n(&looptime_max, __ATOMIC_RELAXED);
}

uint64_t looptime_max_cpu_usec(void)
{
    return __atomic_load_n(&looptime_cpu_max, __ATOMIC_RELAXED);
}

uint64_t looptime_turns(void)
{
    return __atomic_load_n(&looptime_n, __ATOMIC_RELAXED);
}

void looptime_reset_max(void)
{
    __atomic_store_n(&looptime_max, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&looptime_cpu_max, 0, __ATOMIC_RELAXED);
}
