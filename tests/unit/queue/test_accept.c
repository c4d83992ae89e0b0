/* test_accept.c - the routes' acceptance tests (queue/accept.h): what EHLO
 * announces, RCPT and end-of-DATA refusals, with next-hop answers taught to
 * the cache directly and a real Maildir root */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "modules.h"
#include "mail/eightbit.h"
#include "queue/accept.h"
#include "relay/client.h"
#include "relay/nexthop.h"
#include "relay/routes.h"
#include "ts_fixture.h"
#include "ts_fs.h"

struct fx {
    struct ts_fixture f;
    struct config *cfg;
    struct routes *rt;
    struct nexthops *nh;
};

/* setup - routes: small.test (SIZE 5000, no SMTPUTF8), big.test (unknown),
 * md.test (a Maildir with mailbox bob), mdc.test (the same, create = true) */
static int setup(void **state)
{
    static struct fx x;
    struct nexthop_opts o = {.helo = "mx.test", .refresh = 300, .retry = 10, .forget = 3600};
    char conf[2048], path[256], box[256];

    memset(&x, 0, sizeof x);
    if (ts_fixture_init(&x.f, "test_accept") < 0)
        return -1;
    snprintf(conf, sizeof conf,
             "hostname = \"mx.test\"\nspool_dir = \"%s/spool\"\nstate_dir = \"%s/state\"\n"
             "domains = {\"small.test\", \"big.test\", \"md.test\", \"mdc.test\"}\n"
             "listen mx { address = \"127.0.0.1:2525\" }\n"
             "limits { max_message_size = 100000 }\n"
             "route \"small.test\" { to = \"smtp:[127.0.0.1]:1\" }\n"
             "route \"big.test\" { to = \"smtp:[127.0.0.1]:2\" }\n"
             "route \"md.test\" { to = \"maildir:%s/mail\" }\n"
             "route \"mdc.test\" { to = \"maildir:%s/mail\"  create = true }\n",
             x.f.dir, x.f.dir, x.f.dir, x.f.dir);
    ts_write_file(x.f.dir, "mxgate.conf", conf, path, sizeof path);
    x.cfg = modules_config_load(path, stderr);
    assert_non_null(x.cfg);
    snprintf(box, sizeof box, "%s/mail", x.f.dir);
    assert_int_equal(mkdir(box, 0700), 0);
    snprintf(box, sizeof box, "%s/mail/bob", x.f.dir);
    assert_int_equal(mkdir(box, 0700), 0);
    x.rt = routes_load(x.cfg);
    assert_non_null(x.rt);
    x.nh = nexthops_new(x.f.base, NULL, &o);
    for (size_t i = 0; i < routes_count(x.rt); i++)
        nexthops_add(x.nh, &routes_at(x.rt, i)->target);
    *state = &x;
    return 0;
}

/* teardown - cache, configuration, fixture */
static int teardown(void **state)
{
    struct fx *x = *state;

    nexthops_free(x->nh);
    routes_free(x->rt);
    config_free(x->cfg);
    ts_fixture_free(&x->f);
    return 0;
}

/* teach - the small.test next hop answered EHLO: SIZE 5000, 8BITMIME only */
static void teach(struct fx *x)
{
    struct smtp_client_result res = {
        .ehlo_ok = 1, .ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME, .size_max = 5000};

    nexthops_learn(x->nh, &routes_at(x->rt, 0)->target, &res);
}

/* test_offer - unknown routes take everything; the union is announced */
static void test_offer(void **state)
{
    struct fx *x = *state;
    struct accept_offer o;

    accept_offer(x->rt, x->nh, 100000, &o);
    assert_true(o.smtputf8 && o.eightbitmime);
    assert_int_equal(o.size, 100000);
    teach(x);
    accept_offer(x->rt, x->nh, 100000, &o); /* big.test is unknown, the Maildirs take all */
    assert_true(o.smtputf8 && o.eightbitmime);
    assert_int_equal(o.size, 100000);
}

/* test_rcpt - SMTPUTF8 and SIZE per route, unknown routes never refuse,
 * the Maildir's own test */
static void test_rcpt(void **state)
{
    struct fx *x = *state;
    struct accept_reply r;

    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "j\xc3\xb6rg@small.test", 0, &r), 0);
    teach(x);
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "j\xc3\xb6rg@small.test", 0, &r), -1);
    assert_int_equal(r.code, 553);
    assert_string_equal(r.status, "5.6.7");
    assert_int_equal(accept_rcpt(x->rt, x->nh, "j\xc3\xb6rg@b.test", "u@small.test", 0, &r), -1);
    assert_int_equal(r.code, 553);
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "u@small.test", 5000, &r), 0);
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "u@small.test", 5001, &r), -1);
    assert_int_equal(r.code, 552);
    assert_string_equal(r.status, "5.3.4");
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "j\xc3\xb6rg@big.test", 9000000, &r), 0);
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "BOB@md.test", 0, &r), 0);
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "eve@md.test", 0, &r), -1);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.status, "5.1.1");
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "eve@mdc.test", 0, &r), 0);
    assert_int_equal(accept_rcpt(x->rt, x->nh, "a@b.test", "a/b@mdc.test", 0, &r), -1);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.status, "5.1.3");
}

/* test_message - end of DATA: UTF-8 header, 8-bit text, size */
static void test_message(void **state)
{
    struct fx *x = *state;
    char *small[] = {"bob@md.test", "u@small.test"}, *big[] = {"u@big.test"};
    struct eightbit_scan sc;
    struct accept_reply r;
    static const char hdr[] = "Subject: Gr\xc3\xbc\xc3\x9f"
                              "e\r\n";

    teach(x);
    eightbit_scan_init(&sc);
    eightbit_scan_line(&sc, hdr, strlen(hdr));
    eightbit_scan_line(&sc, "\r\n", 2);
    eightbit_scan_line(&sc, "plain\r\n", 7);
    assert_int_equal(sc.header_8bit, 1);
    assert_int_equal(sc.body_8bit, 0);
    assert_int_equal(accept_message(x->rt, x->nh, small, 2, 1, &sc, 100, &r), -1);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.status, "5.6.9");
    /* without SMTPUTF8 the 8-bit header is 8-bit text: this route has 8BITMIME */
    assert_int_equal(accept_message(x->rt, x->nh, small, 2, 0, &sc, 100, &r), 0);
    assert_int_equal(accept_message(x->rt, x->nh, small, 2, 0, &sc, 5001, &r), -1);
    assert_int_equal(r.code, 552);
    assert_int_equal(accept_message(x->rt, x->nh, big, 1, 1, &sc, 99999, &r), 0);
    /* a next hop with neither extension */
    struct smtp_client_result bare = {.ehlo_ok = 1};
    nexthops_learn(x->nh, &routes_at(x->rt, 1)->target, &bare);
    eightbit_scan_init(&sc);
    eightbit_scan_line(&sc, "Subject: x\r\n", 12);
    eightbit_scan_line(&sc, "\r\n", 2);
    eightbit_scan_line(&sc, "\xc3\xbc\r\n", 4);
    assert_int_equal(accept_message(x->rt, x->nh, big, 1, 0, &sc, 100, &r), -1);
    assert_int_equal(r.code, 554);
    assert_string_equal(r.status, "5.6.3");
}

/* main - run the acceptance tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
