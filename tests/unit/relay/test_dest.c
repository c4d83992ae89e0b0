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
    struct dest d = {.conf = {2, 0, 0, 0, DEST_TLS_MAY}, .flow = {.concurrency = 2, .window = 2}};
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
    struct dest d = {
        .conf = {100, 3, 10, 0, DEST_TLS_MAY},
        .flow = {
            .concurrency = 100, .rate_n = 3, .rate_secs = 10, .window = 100, .starts = starts}};
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
    struct dest d = {.conf = {8, 0, 0, 0, DEST_TLS_MAY}, .flow = {.concurrency = 8, .window = 8}};
    double wait;
    (void)state;

    dest_started(&d, 0);
    dest_finished(&d, 0, DEST_THROTTLED);
    assert_int_equal(d.flow.window, 4);
    assert_false(dest_may_start(&d, 5, &wait));
    assert_true(wait > 4.99 && wait < 5.01);
    assert_true(dest_may_start(&d, 10, &wait));
    dest_started(&d, 10);
    dest_finished(&d, 10, DEST_THROTTLED);
    assert_int_equal(d.flow.window, 2);
    assert_false(dest_may_start(&d, 29, &wait)); /* 20 s this time */
    assert_true(dest_may_start(&d, 30, &wait));
    dest_started(&d, 30);
    dest_finished(&d, 30, DEST_THROTTLED);
    dest_started(&d, 70);
    dest_finished(&d, 70, DEST_THROTTLED);
    assert_int_equal(d.flow.window, 1); /* never below one */
    for (int i = 0; i < 100; i++) {
        dest_started(&d, 1000 + i);
        dest_finished(&d, 1000 + i, DEST_OK);
    }
    assert_int_equal(d.flow.window, 8); /* grown back, and no further */
    assert_int_equal(d.flow.throttles, 0);
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
/* test_reachability - the first failure is news (one log line), later ones are not
 * and double the probe interval up to the cap; an answer is news once */
static void test_reachability(void **state)
{
    struct dest d = {.conf = {2, 0, 0, 0, DEST_TLS_MAY}, .flow = {.concurrency = 2, .window = 2}};
    (void)state;

    assert_true(dest_unreachable(&d, 100, 5, 30));
    assert_true(d.unreachable_since == 100 && d.probe_due == 105);
    assert_false(dest_unreachable(&d, 105, 5, 30)); /* the probe failed */
    assert_true(d.unreachable_since == 100 && d.probe_due == 115);
    assert_false(dest_unreachable(&d, 115, 5, 30));
    assert_false(dest_unreachable(&d, 135, 5, 30));
    assert_true(d.probe_due == 165); /* 40 capped at 30 */
    assert_true(dest_reachable(&d));
    assert_true(d.unreachable_since == 0 && d.probe_due == 0 && d.reached);
    assert_false(dest_reachable(&d));
    assert_true(dest_unreachable(&d, 200, 5, 30)); /* down again: news, from retry_min */
    assert_true(d.probe_due == 205);
}

/* test_nexthop - a relay next hop has no limits of its own and is not a domain's state;
 * a reload keeps the states (their feedback) and applies the new limits */
static void test_nexthop(void **state)
{
    struct dests *t = dests_load(NULL);
    struct dest *hop = dests_get_nexthop(t, "smtp:[127.0.0.1]:25");
    struct dest *dom = dests_get(t, "Example.ORG");
    double wait;
    (void)state;

    assert_ptr_equal(dests_get_nexthop(t, "smtp:[127.0.0.1]:25"), hop);
    assert_ptr_equal(dests_get(t, "example.org"), dom);
    assert_ptr_not_equal(hop, dom);
    assert_string_equal(dom->name, "example.org");
    assert_true(hop->nexthop && hop->conf.concurrency >= 1000 && hop->conf.rate_secs == 0);
    for (int i = 0; i < 100; i++)
        dest_started(hop, 1);
    assert_true(dest_may_start(hop, 1, &wait));
    dest_finished(dom, 10, DEST_THROTTLED);
    dests_reconfigure(t, NULL);
    assert_true(dom->flow.backoff_until > 10 && dom->conf.concurrency == 20);
    assert_int_equal(dests_count(t), 2);
    dests_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_and_defaults),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_reachability),
        cmocka_unit_test(test_nexthop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
