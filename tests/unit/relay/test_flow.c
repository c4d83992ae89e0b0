/* test_flow.c - the flow control a destination and an MX host share (relay/flow.c):
 * a start that is not charged (a reused connection) counts for the concurrency but not
 * for the rate, new limits keep the state (a reload), and the rate's syntax */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay/flow.h"

/* test_uncharged - 2 per 10 s: reuses do not fill the window, yet hold a slot */
static void test_uncharged(void **state)
{
    struct flow f = {0};
    double wait;
    (void)state;

    flow_set_limits(&f, 2, 2, 10);
    assert_int_equal(f.window, 2);
    flow_started(&f, 100, 1);
    flow_finished(&f, 100, FLOW_OK);
    flow_started(&f, 101, 1);
    flow_finished(&f, 101, FLOW_OK);
    assert_false(flow_may_start(&f, 102, 1, &wait)); /* a new connection: the window is full */
    assert_true(wait > 7.99 && wait < 8.01);
    assert_true(flow_may_start(&f, 102, 0, &wait)); /* a reused one is no new start */
    flow_started(&f, 102, 0);
    flow_started(&f, 102, 0);
    assert_false(flow_may_start(&f, 102, 0, &wait)); /* but it counts while in use */
    assert_true(wait == 0);
    flow_finished(&f, 103, FLOW_OK);
    flow_finished(&f, 103, FLOW_OK);
    assert_false(flow_may_start(&f, 109.5, 1, &wait));
    assert_true(flow_may_start(&f, 110, 1, &wait)); /* 100 left the window */
    flow_free(&f);
}

/* test_new_limits - a reload: the window shrinks to a smaller limit, the back-off and
 * the running count stay; an unchanged rate keeps its window, a new one starts empty */
static void test_new_limits(void **state)
{
    struct flow f = {0};
    double wait;
    (void)state;

    flow_set_limits(&f, 8, 1, 60);
    flow_started(&f, 0, 1);
    flow_finished(&f, 0, FLOW_THROTTLED); /* window 4, back-off to 10 */
    flow_started(&f, 10, 1);
    flow_set_limits(&f, 3, 1, 60);
    assert_int_equal(f.window, 3);
    assert_int_equal(f.active, 1);
    assert_true(f.backoff_until == 10);
    assert_false(flow_may_start(&f, 20, 1, &wait)); /* the same rate: 10 is still in it */
    flow_set_limits(&f, 3, 2, 60);
    assert_true(flow_may_start(&f, 20, 1, &wait)); /* a new rate: an empty window */
    flow_set_limits(&f, 3, 0, 0);
    assert_null(f.starts);
    flow_free(&f);
}

/* test_parse_rate - "N/SECONDS" and nothing else */
static void test_parse_rate(void **state)
{
    unsigned n = 0, s = 0;
    (void)state;

    assert_int_equal(flow_parse_rate("30/60", &n, &s), 0);
    assert_true(n == 30 && s == 60);
    assert_int_equal(flow_parse_rate("0/60", &n, &s), -1);
    assert_int_equal(flow_parse_rate("30/0", &n, &s), -1);
    assert_int_equal(flow_parse_rate("30", &n, &s), -1);
    assert_int_equal(flow_parse_rate("30/60s", &n, &s), -1);
    assert_int_equal(flow_parse_rate("/60", &n, &s), -1);
    assert_int_equal(flow_parse_rate("100001/60", &n, &s), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncharged),
        cmocka_unit_test(test_new_limits),
        cmocka_unit_test(test_parse_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
