/* test_dest.c - flow control per destination (relay/dest.c): the limits from
 * sections and presets, concurrency, the rate window, and the feedback (a
 * throttle halves the window and backs off, doubling; successes grow it back),
 * all on times the test gives */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "relay/dest.h"

/* test_presets_and_defaults - a carrier without a section gets the carrier preset,
 * an unknown domain the default concurrency */
static void test_presets_and_defaults(void **state)
{
    struct dest_conf c;
    (void)state;

    dest_conf_for(NULL, "docomo.ne.jp", &c);
    assert_int_equal(c.concurrency, 2);
    assert_int_equal(c.rate_n, 30);
    assert_int_equal(c.rate_secs, 60);
    dest_conf_for(NULL, "GMAIL.com", &c);
    assert_int_equal(c.concurrency, 10);
    dest_conf_for(NULL, "example.org", &c);
    assert_int_equal(c.concurrency, 20);
    assert_int_equal(c.rate_secs, 0);
}

/* test_concurrency - no more than the limit at once; one ending frees a slot */
static void test_concurrency(void **state)
{
    struct dest d = {.conf = {2, 0, 0, 0, DEST_TLS_MAY}, .window = 2};
    double wait;
    (void)state;

    assert_true(dest_may_start(&d, 100, &wait));
    dest_started(&d, 100);
    dest_started(&d, 100);
    assert_false(dest_may_start(&d, 100, &wait));
    assert_true(wait == 0); /* wait for one to end, not for a time */
    dest_finished(&d, 101, DEST_OK);
    assert_true(dest_may_start(&d, 101, &wait));
}

/* test_rate - 3 per 10 s: the fourth waits until the first leaves the window */
static void test_rate(void **state)
{
    double starts[3];
    struct dest d = {.conf = {100, 3, 10, 0, DEST_TLS_MAY}, .window = 100, .starts = starts};
    double wait;
    (void)state;

    for (int i = 0; i < 3; i++) {
        assert_true(dest_may_start(&d, 100 + i, &wait));
        dest_started(&d, 100 + i);
        dest_finished(&d, 100 + i, DEST_OK);
    }
    assert_false(dest_may_start(&d, 105, &wait));
    assert_true(wait > 4.99 && wait < 5.01);
    assert_true(dest_may_start(&d, 110, &wait));
    dest_started(&d, 110);
    assert_false(dest_may_start(&d, 110.5, &wait)); /* 101, 102, 110 in the window */
    assert_true(dest_may_start(&d, 111, &wait));
}

/* test_feedback - throttles halve the window and back off 10, 20, 40 s; a window's
 * worth of successes grows it by one, up to the limit */
static void test_feedback(void **state)
{
    struct dest d = {.conf = {8, 0, 0, 0, DEST_TLS_MAY}, .window = 8};
    double wait;
    (void)state;

    dest_started(&d, 0);
    dest_finished(&d, 0, DEST_THROTTLED);
    assert_int_equal(d.window, 4);
    assert_false(dest_may_start(&d, 5, &wait));
    assert_true(wait > 4.99 && wait < 5.01);
    assert_true(dest_may_start(&d, 10, &wait));
    dest_started(&d, 10);
    dest_finished(&d, 10, DEST_THROTTLED);
    assert_int_equal(d.window, 2);
    assert_false(dest_may_start(&d, 29, &wait)); /* 20 s this time */
    assert_true(dest_may_start(&d, 30, &wait));
    dest_started(&d, 30);
    dest_finished(&d, 30, DEST_THROTTLED);
    dest_started(&d, 70);
    dest_finished(&d, 70, DEST_THROTTLED);
    assert_int_equal(d.window, 1); /* never below one */
    for (int i = 0; i < 100; i++) {
        dest_started(&d, 1000 + i);
        dest_finished(&d, 1000 + i, DEST_OK);
    }
    assert_int_equal(d.window, 8); /* grown back, and no further */
    assert_int_equal(d.throttles, 0);
}

/* test_classify - what counts as "slow down" */
static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(dest_classify(250, "2.0.0 ok"), DEST_OK);
    assert_int_equal(dest_classify(421, "4.7.0 closing"), DEST_THROTTLED);
    assert_int_equal(dest_classify(450, "4.7.1 Too many connections from your IP"), DEST_THROTTLED);
    assert_int_equal(dest_classify(451, "4.3.0 please try later"), DEST_THROTTLED);
    assert_int_equal(dest_classify(450, "4.2.0 mailbox unavailable"), DEST_OTHER);
    assert_int_equal(dest_classify(550, "5.7.1 too many recipients"), DEST_OTHER);
    assert_int_equal(dest_classify(0, "connection refused"), DEST_OTHER);
}

/* main - run the destination tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_and_defaults),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
