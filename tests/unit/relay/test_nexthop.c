/* test_nexthop.c - the next-hop capability cache: EHLO parsing, probe at
 * start, stale answers refreshed in the background, deliveries' EHLO
 * learned, old answers forgotten; against a fake server on the loop */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/clock.h"
#include "relay/client.h"
#include "relay/nexthop.h"
#include "ts_fixture.h"
#include "ts_smtp.h"

struct fx {
    struct event_base *base;
    struct ts_smtp srv;
    const char *ehlo; /* the fake's EHLO reply */
    int nehlo;        /* EHLOs it answered */
    struct route_target t;
    struct nexthops *nh;
};

static time_t now_value = 1000000;

/* fake_now - the cache's clock */
static time_t fake_now(void)
{
    return now_value;
}

/* answer - EHLO gets the configured reply, QUIT 221; nothing else comes */
static const char *answer(struct ts_smtp_conn *c, const char *line)
{
    struct fx *f = c->s->arg;

    if (strncmp(line, "EHLO ", 5) == 0) {
        f->nehlo++;
        return f->ehlo;
    }
    if (strcmp(line, "QUIT") == 0) {
        c->hangup = 1;
        return "221 bye\r\n";
    }
    return "500 unexpected\r\n";
}

/* setup - a fake next hop and a cache that knows it */
static int setup(void **state)
{
    static struct fx f;
    struct nexthop_opts o = {.helo = "mx.test",
                             .connect_timeout = 5,
                             .command_timeout = 5,
                             .refresh = 300,
                             .retry = 10,
                             .forget = 3600};

    memset(&f, 0, sizeof f);
    f.base = event_base_new();
    ts_smtp_start(&f.srv, f.base, answer, &f);
    f.srv.greeting = "220 fake\r\n";
    f.ehlo = "250-fake\r\n250-PIPELINING\r\n250-SIZE 12345\r\n250 8BITMIME\r\n";
    f.t.kind = ROUTE_SMTP;
    f.t.literal = 1;
    snprintf(f.t.host, sizeof f.t.host, "127.0.0.1");
    f.t.port = f.srv.port;
    clock_set(fake_now);
    f.nh = nexthops_new(f.base, NULL, &o);
    assert_non_null(f.nh);
    nexthops_add(f.nh, &f.t);
    nexthops_add(f.nh, &f.t); /* the same target: one entry */
    *state = &f;
    return 0;
}

/* teardown - cache, fake, loop */
static int teardown(void **state)
{
    struct fx *f = *state;

    nexthops_free(f->nh);
    ts_smtp_stop(&f->srv);
    event_base_free(f->base);
    clock_set(NULL);
    return 0;
}

/* wait_ehlo - run the loop until the fake answered n EHLOs and the probe ended */
static void wait_ehlo(struct fx *f, int n)
{
    ts_run_until(f->base, &f->nehlo, n, 3000);
    assert_int_equal(f->nehlo, n);
    for (int i = 0; i < 20; i++) /* the QUIT, and the client's end */
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    ts_run_until(f->base, &f->nehlo, n + 1, 100);
}

/* test_probe_and_parse - unknown before the start-up probe, then SIZE and
 * 8BITMIME as announced, no SMTPUTF8 */
static void test_probe_and_parse(void **state)
{
    struct fx *f = *state;
    struct nexthop_caps c;

    nexthops_get(f->nh, &f->t, &c);
    assert_int_equal(c.known, 0);
    nexthops_start(f->nh);
    wait_ehlo(f, 1);
    nexthops_get(f->nh, &f->t, &c);
    assert_int_equal(c.known, 1);
    assert_int_equal(c.smtputf8, 0);
    assert_int_equal(c.eightbitmime, 1);
    assert_int_equal(c.size, 12345);
}

/* test_refresh - a stale answer is given while a new probe runs; the new
 * one replaces it; a fresh answer asks nothing */
static void test_refresh(void **state)
{
    struct fx *f = *state;
    struct nexthop_caps c;

    nexthops_start(f->nh);
    wait_ehlo(f, 1);
    now_value += 100;
    nexthops_get(f->nh, &f->t, &c); /* fresh: no probe */
    wait_ehlo(f, 1);
    f->ehlo = "250-fake\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n";
    now_value += 300;
    nexthops_get(f->nh, &f->t, &c); /* stale: the old answer, and a probe */
    assert_int_equal(c.smtputf8, 0);
    assert_int_equal(c.size, 12345);
    wait_ehlo(f, 2);
    nexthops_get(f->nh, &f->t, &c);
    assert_int_equal(c.known, 1);
    assert_int_equal(c.smtputf8, 1);
    assert_int_equal(c.size, 0); /* no SIZE announced: no limit */
}

/* test_learn_and_forget - a delivery's EHLO is learned; an answer older
 * than forget (the next hop down since) is no longer known */
static void test_learn_and_forget(void **state)
{
    struct fx *f = *state;
    struct nexthop_caps c;
    struct smtp_client_result res = {
        .ehlo_ok = 1, .ext = SMTP_EXT_SMTPUTF8 | SMTP_EXT_SIZE, .size_max = 999};
    struct route_target same = f->t; /* an equal target elsewhere in the configuration */

    nexthops_learn(f->nh, &same, &res);
    nexthops_get(f->nh, &f->t, &c);
    assert_int_equal(c.known, 1);
    assert_int_equal(c.smtputf8, 1);
    assert_int_equal(c.eightbitmime, 0);
    assert_int_equal(c.size, 999);
    res.ehlo_ok = 0; /* a delivery without an EHLO answer teaches nothing */
    res.ext = 0;
    nexthops_learn(f->nh, &f->t, &res);
    nexthops_get(f->nh, &f->t, &c);
    assert_int_equal(c.smtputf8, 1);
    ts_smtp_stop(&f->srv);
    now_value += 3600;
    nexthops_get(f->nh, &f->t, &c);
    assert_int_equal(c.known, 0);
    for (int i = 0; i < 50; i++) /* the probe fails to connect */
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    ts_smtp_start(&f->srv, f->base, answer, f); /* for teardown */
}

/* test_maildir_and_unknown - a Maildir takes everything; a target never
 * added is unknown; a NULL cache is unknown */
static void test_maildir_and_unknown(void **state)
{
    struct fx *f = *state;
    struct route_target md = {.kind = ROUTE_MAILDIR}, other = f->t;
    struct nexthop_caps c;

    nexthops_get(f->nh, &md, &c);
    assert_int_equal(c.known, 1);
    assert_int_equal(c.smtputf8, 1);
    assert_int_equal(c.eightbitmime, 1);
    assert_int_equal(c.size, 0);
    other.port = 1;
    nexthops_get(f->nh, &other, &c);
    assert_int_equal(c.known, 0);
    nexthops_get(NULL, &f->t, &c);
    assert_int_equal(c.known, 0);
}

/* main - run the next-hop tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_and_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learn_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildir_and_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
