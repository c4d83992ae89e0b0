/* test_harvest.c - the harvest check with the recipients check that feeds it,
 * through the real pipeline on a real LMDB store: counting, the tarpit (timed),
 * the block and its survival across a restart */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_fs.h"
#include "ts_policy.h"

#define T0 1700000000
#define BLOCK_TEXT "Too many unknown recipients from your address, try later"
#define HARVESTER "192.0.2.66"

struct ctx {
    struct ts_fixture fx;
    char list[128];
};

static struct ctx *C;

/* open_store - (re)open the LMDB store of the test */
static void open_store(void)
{
    C->fx.store = ts_store_open(&C->fx, "db", NULL, ts_clock);
}

/* setup - loop, scratch directory, a recipients file, a store */
static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_harvest"), 0);
    ts_write_file(c.fx.dir, "rcpts", "alice@example.test\n", c.list, sizeof(c.list));
    ts_now = T0;
    open_store();
    *state = &c;
    return 0;
}

/* unload - policy, configuration and the statistics made with them */
static void unload(void)
{
    ts_fixture_unload(&C->fx);
    stats_free(C->fx.stats);
    C->fx.stats = NULL;
}

/* teardown - free everything */
static int teardown(void **state)
{
    ts_fixture_free(&C->fx);
    return 0;
}

/* try_load - checks {"harvest", "recipients"} with this harvest section */
static struct policy *try_load(const char *harvest, struct store *st, char *err, size_t errlen)
{
    struct policy_env env;
    char conf[4096];

    unload();
    C->fx.stats = stats_new(st);
    assert_non_null(C->fx.stats);
    env = ts_env(&C->fx);
    env.store = st;
    snprintf(conf, sizeof(conf),
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"harvest\", \"recipients\"} }\n"
             "recipients \"example.test\" { file = \"%s\" }\n%s\n",
             C->list, harvest);
    ts_policy_load(&C->fx, conf, &env, err, errlen);
    return C->fx.pol; /* NULL also when the file does not load: bounds are config_load's */
}

/* load - try_load with the store, and it must work */
static void load(const char *harvest)
{
    char err[256];

    if (!try_load(harvest, C->fx.store, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* client - a session's client struct for ip */
static void client(struct policy_client *cl, const char *ip)
{
    ts_client(cl, ip);
    cl->sender = "s@x.test";
}

/* stage - run one stage for cl; the verdict and how long it took */
static struct ts_outcome stage(struct policy_client *cl, enum policy_stage st)
{
    return ts_stage(&C->fx, st, cl, 10000);
}

/* rcpt - the RCPT stage for addr */
static struct ts_outcome rcpt(struct policy_client *cl, const char *addr)
{
    cl->rcpt = addr;
    return stage(cl, POLICY_RCPT);
}

/* assert_unknown - the recipients check refused (after how long: fast or tarpitted) */
static void assert_unknown(const struct ts_outcome *o)
{
    assert_int_equal(o->v.action, POLICY_REJECT);
    assert_int_equal(o->v.code, 550);
    assert_string_equal(o->v.check, "recipients");
}

/* refused - RCPT of addr is refused as unknown */
static void refused(struct policy_client *cl, const char *addr)
{
    struct ts_outcome o = rcpt(cl, addr);

    assert_unknown(&o);
}

/* assert_blocked - harvest's 421 with this reason */
static void assert_blocked(const struct ts_outcome *o, const char *reason)
{
    assert_int_equal(o->v.action, POLICY_TEMPFAIL);
    assert_int_equal(o->v.code, 421);
    assert_string_equal(o->v.status, "4.7.0");
    assert_string_equal(o->v.text, BLOCK_TEXT);
    assert_string_equal(o->v.reason, reason);
    assert_string_equal(o->v.check, "harvest");
}

/* assert_fast / assert_tarpitted - how long a reply took, with slack for slow machines */
static void assert_fast(const struct ts_outcome *o)
{
    if (o->secs > 0.5)
        fail_msg("reply took %.2f s, expected no delay", o->secs);
}

static void assert_tarpitted(const struct ts_outcome *o)
{
    if (o->secs < 0.95 || o->secs > 2.5)
        fail_msg("reply took %.2f s, expected the 1 s tarpit", o->secs);
}

/* ---------------------------------------------------------------------- */

/* test_tarpit_then_block - below the threshold nothing; from it on every reply
 * is tarpitted (known recipients too); at twice it 421 and the block */
static void test_tarpit_then_block(void **state)
{
    struct policy_client cl, other;
    struct ts_outcome o;

    load("harvest { threshold = 3  window = 600  tarpit = 1  block = 600 }");
    client(&cl, HARVESTER);
    client(&other, "192.0.2.7");
    assert_int_equal(stage(&cl, POLICY_CONNECT).v.action, POLICY_DUNNO);
    for (int i = 0; i < 3; i++) { /* counts 0, 1, 2 before: no tarpit */
        o = rcpt(&cl, "nobody@example.test");
        assert_unknown(&o);
        assert_fast(&o);
    }
    o = rcpt(&cl, "alice@example.test"); /* count 3: tarpitted, then known */
    assert_int_equal(o.v.action, POLICY_DUNNO);
    assert_tarpitted(&o);
    for (int i = 0; i < 3; i++) { /* counts 3, 4, 5 */
        o = rcpt(&cl, "nobody@example.test");
        assert_unknown(&o);
        assert_tarpitted(&o);
    }
    o = rcpt(&other, "nobody@example.test"); /* another client is not slowed */
    assert_unknown(&o);
    assert_fast(&o);
    o = rcpt(&cl, "alice@example.test"); /* count 6 = 2 x 3 */
    assert_blocked(&o, "count 6/3 blocked");
    assert_fast(&o);
    /* a new connection of the harvester is refused at once; others are not */
    o = stage(&cl, POLICY_CONNECT);
    assert_blocked(&o, "blocked");
    assert_fast(&o);
    assert_int_equal(stage(&other, POLICY_CONNECT).v.action, POLICY_DUNNO);
}

/* test_variants_not_counted - spellings of a known recipient ("alice"@, ALICE@) are
 * that recipient (canonical form): they are neither refused nor counted */
static void test_variants_not_counted(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    static const char *known[] = {"\"alice\"@example.test", "ALICE@Example.Test",
                                  "\"a\\lice\"@EXAMPLE.test", "alice@example.test"};

    load("harvest { threshold = 1  tarpit = 0  block = 600 }");
    client(&cl, HARVESTER);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            o = rcpt(&cl, known[i]);
            assert_int_equal(o.v.action, POLICY_DUNNO);
        }
    }
    refused(&cl, "nobody@example.test"); /* count 0 before: the first unknown */
    refused(&cl, "nobody2@example.test");
    o = rcpt(&cl, "alice@example.test");
    assert_blocked(&o, "count 2/1 blocked");
}

/* test_block_covers_ipv6_network - a blocked IPv6 harvester cannot come back from
 * another address of its /64 (limits.ipv6_prefix); other networks are not blocked */
static void test_block_covers_ipv6_network(void **state)
{
    struct policy_client cl, sibling, stranger;
    struct ts_outcome o;

    load("harvest { threshold = 1  window = 600  tarpit = 0  block = 600 }");
    client(&cl, "2001:db8:1:2::1");
    client(&sibling, "2001:db8:1:2:ffff::7");
    client(&stranger, "2001:db8:1:3::1");
    refused(&cl, "x@example.test");
    refused(&cl, "y@example.test");
    o = rcpt(&cl, "z@example.test");
    assert_blocked(&o, "count 2/1 blocked");
    o = stage(&sibling, POLICY_CONNECT);
    assert_blocked(&o, "blocked");
    assert_int_equal(stage(&stranger, POLICY_CONNECT).v.action, POLICY_DUNNO);
}

/* block_client - drive HARVESTER to the block with threshold 1 and no tarpit */
static void block_client(void)
{
    struct policy_client cl;
    struct ts_outcome o;

    client(&cl, HARVESTER);
    refused(&cl, "x@example.test");
    refused(&cl, "y@example.test");
    o = rcpt(&cl, "z@example.test");
    assert_blocked(&o, "count 2/1 blocked");
}

/* test_block_persists - the block is in the store: a restart (new store
 * handle, new policy) keeps it until `block` seconds have passed */
static void test_block_persists(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("harvest { threshold = 1  tarpit = 0  block = 300  window = 60 }");
    block_client();
    unload();
    store_close(C->fx.store);
    open_store();
    load("harvest { threshold = 1  tarpit = 0  block = 300  window = 60 }");
    client(&cl, HARVESTER);
    o = stage(&cl, POLICY_CONNECT);
    assert_blocked(&o, "blocked");
    ts_now = T0 + 299;
    o = stage(&cl, POLICY_CONNECT);
    assert_blocked(&o, "blocked");
    ts_now = T0 + 300; /* the block and the window are over */
    assert_int_equal(stage(&cl, POLICY_CONNECT).v.action, POLICY_DUNNO);
    o = rcpt(&cl, "x@example.test");
    assert_unknown(&o);
}

/* test_window - the count forgets after `window` seconds */
static void test_window(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;

    load("harvest { threshold = 2  tarpit = 0  window = 100 }");
    client(&cl, HARVESTER);
    for (int i = 0; i < 3; i++)
        refused(&cl, "x@example.test");
    ts_now = T0 + 100;
    for (int i = 0; i < 4; i++)
        refused(&cl, "x@example.test");
    o = rcpt(&cl, "x@example.test");
    assert_blocked(&o, "count 4/2 blocked");
}

/* on_break - stop the loop after this callback: the events activated meanwhile wait */
static void on_break(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(C->fx.base);
}

/* test_cancel - the session ends during the tarpit or during the store read */
static void test_cancel(void **state)
{
    struct policy_client cl;
    struct ts_outcome o;
    struct policy_run *r;
    struct event *brk;
    int never = 0;

    load("harvest { threshold = 1  tarpit = 1 }");
    client(&cl, HARVESTER);
    refused(&cl, "x@example.test");
    memset(&o, 0, sizeof(o));
    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_RCPT, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    ts_run_until(C->fx.base, &never, 1, 300); /* now in the tarpit */
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1, 1200);
    assert_int_equal(o.calls, 0);

    r = policy_start(policy_chain_for(C->fx.pol, "mx"), POLICY_CONNECT, &cl, ts_on_verdict, &o);
    assert_non_null(r);
    brk = event_new(C->fx.base, -1, 0, on_break, NULL);
    assert_non_null(brk);
    event_active(brk, EV_TIMEOUT, 0); /* after the pipeline's start: the store read is pending */
    event_base_loop(C->fx.base, 0);
    event_free(brk);
    policy_cancel(r);
    ts_run_until(C->fx.base, &never, 1, 100);
    assert_int_equal(o.calls, 0);
}

/* test_config - bad values (the configuration's line) and a missing store stop the start */
static void test_config(void **state)
{
    char err[512];

    assert_null(try_load("harvest { threshold = 0 }", C->fx.store, err, sizeof(err)));
    assert_null(C->fx.cfg);
    assert_non_null(
        strstr(err, "/mxgate.conf:3: harvest: threshold must be between 1 and 1000000"));
    assert_null(try_load("harvest { tarpit = 61 }", C->fx.store, err, sizeof(err)));
    assert_non_null(strstr(err, "/mxgate.conf:3: harvest: tarpit must be between 0 and 60"));
    assert_null(try_load("\nharvest { block = 0 }", C->fx.store, err, sizeof(err)));
    assert_non_null(strstr(err, "/mxgate.conf:4: harvest: block must be between 1 and 31536000"));
    assert_null(try_load("", NULL, err, sizeof(err)));
    assert_string_equal(err, "listen mx: harvest: needs the state store");
    assert_non_null(try_load("", C->fx.store, err, sizeof(err))); /* the defaults */
}

/* main - run the harvest tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tarpit_then_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variants_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_covers_ipv6_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
