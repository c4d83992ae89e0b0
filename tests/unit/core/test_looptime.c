/* test_looptime.c - loop turns measured at the wait: wall time and CPU time of a turn */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/looptime.h"

struct turn_test {
    struct event_base *base;
    int spin; /* the callback burns CPU instead of sleeping */
};

static uint64_t thread_cpu_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* on_work - 30 ms of work in one turn: asleep (waiting, like a blocking call) or busy */
static void on_work(evutil_socket_t fd, short what, void *arg)
{
    struct turn_test *t = arg;
    struct timespec ms30 = {0, 30000000};

    if (t->spin) {
        uint64_t end = thread_cpu_usec() + 30000;
        while (thread_cpu_usec() < end)
            ;
    } else {
        nanosleep(&ms30, NULL);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* run_turns - one working turn, then a later one that stops the loop */
static void run_turns(int spin)
{
    struct turn_test t = {event_base_new(), spin};
    struct timeval at10 = {0, 10000}, at80 = {0, 80000};

    assert_non_null(t.base);
    if (strcmp(event_base_get_method(t.base), "epoll") != 0) {
        event_base_free(t.base);
        skip(); /* the measurement wraps epoll_wait, the backend mxgated uses */
    }
    looptime_watch();
    looptime_reset_max();
    event_base_once(t.base, -1, EV_TIMEOUT, on_work, &t, &at10);
    event_base_once(t.base, -1, EV_TIMEOUT, on_stop, t.base, &at80);
    event_base_dispatch(t.base);
    event_base_free(t.base);
}

/* test_sleeping_turn - a turn that waits 30 ms is 30 ms long, but used little CPU */
static void test_sleeping_turn(void **state)
{
    uint64_t turns = looptime_turns();

    run_turns(0);
    assert_true(looptime_max_usec() >= 30000);
    assert_true(looptime_max_cpu_usec() < 30000);
    assert_true(looptime_turns() > turns);
}

/* test_busy_turn - a turn that computes for 30 ms of CPU shows it in both figures */
static void test_busy_turn(void **state)
{
    run_turns(1);
    assert_true(looptime_max_usec() >= 30000);
    assert_true(looptime_max_cpu_usec() >= 30000);
}

/* test_reset - reset_max starts the longest-turn figures over */
static void test_reset(void **state)
{
    run_turns(1);
    looptime_reset_max();
    assert_int_equal(looptime_max_usec(), 0);
    assert_int_equal(looptime_max_cpu_usec(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleeping_turn),
        cmocka_unit_test(test_busy_turn),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
