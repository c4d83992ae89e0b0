/* test_bouncelimit.c - the bounce limiter on a real LMDB store with the injected
 * clock: variants of an address are one address, a domain has its own bound,
 * the window passes, the counts survive a restart, a shutdown mid-question */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue/bouncelimit.h"
#include "store/store.h"
#include "ts_fixture.h"

#define T0 1700000000

struct answer {
    int done;
    enum bouncelimit_verdict v;
};

static struct ts_fixture *F;
static struct bouncelimit *BL;

/* on_answer - keep the limiter's verdict */
static void on_answer(void *arg, enum bouncelimit_verdict v)
{
    struct answer *a = arg;

    a->done++;
    a->v = v;
}

/* open_all - (re)open the store and a limiter: 2 per address, 3 per domain, 1 hour */
static void open_all(void)
{
    F->store = ts_store_open(F, "db", NULL, ts_clock);
    BL = bouncelimit_new(F->store, 2, 3, 3600);
    assert_non_null(BL);
}

/* setup - loop, directory, store, limiter */
static int setup(void **state)
{
    static struct ts_fixture fx;

    F = &fx;
    assert_int_equal(ts_fixture_init(&fx, "test_bouncelimit"), 0);
    ts_now = T0;
    open_all();
    return 0;
}

/* teardown - limiter, then everything else */
static int teardown(void **state)
{
    bouncelimit_free(BL);
    BL = NULL;
    return ts_fixture_free(F);
}

/* ask - the verdict for one DSN to addr (counted) */
static enum bouncelimit_verdict ask(const char *addr)
{
    struct answer a = {0, BOUNCELIMIT_ALLOW};

    assert_int_equal(bouncelimit_check(BL, addr, on_answer, &a), 0);
    assert_int_equal(a.done, 0); /* never from inside the call */
    ts_settle(F->base, &a.done);
    assert_int_equal(a.done, 1);
    return a.v;
}

/* test_variants_are_one - quoting, case and IDNA spellings count for one address */
static void test_variants_are_one(void **state)
{
    assert_int_equal(ask("victim@b\xc3\xbc\x63her.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("\"Victim\"@XN--BCHER-KVA.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("VICTIM@xn--bcher-kva.example"), BOUNCELIMIT_ADDRESS);
    assert_int_equal(ask("\"vict\\im\"@B\xc3\x9c\x43HER.example"), BOUNCELIMIT_ADDRESS);
    assert_int_equal(ask("other@elsewhere.example"), BOUNCELIMIT_ALLOW);
    struct ts_got g = ts_store_get(F->base, F->store, "bl:a:victim@xn--bcher-kva.example");
    int64_t n = 0;
    assert_int_equal(g.status, STORE_OK);
    assert_int_equal(store_counter_decode(g.val, g.vlen, &n), 0);
    assert_int_equal(n, 4); /* refused ones are counted: they were asked for */
}

/* test_domain_bound - many forged addresses of one domain get at most 3 DSNs an
 * hour; other domains are not affected; the window passes */
static void test_domain_bound(void **state)
{
    assert_int_equal(ask("a@flood.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("b@flood.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("c@FLOOD.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("d@flood.example"), BOUNCELIMIT_DOMAIN);
    assert_int_equal(ask("e@flood.example"), BOUNCELIMIT_DOMAIN);
    assert_int_equal(ask("a@calm.example"), BOUNCELIMIT_ALLOW);
    /* an address refused for itself is not counted for its domain */
    assert_int_equal(ask("x@calm.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("x@calm.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("x@calm.example"), BOUNCELIMIT_ADDRESS);
    assert_int_equal(ask("y@calm.example"), BOUNCELIMIT_DOMAIN); /* 4th counted for calm */
    ts_now = T0 + 3599;
    assert_int_equal(ask("f@flood.example"), BOUNCELIMIT_DOMAIN);
    ts_now = T0 + 3600;
    assert_int_equal(ask("f@flood.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("postmaster"), BOUNCELIMIT_ALLOW); /* no domain: the address only */
}

/* test_restart_keeps_counts - a new store handle and limiter see the old counts */
static void test_restart_keeps_counts(void **state)
{
    assert_int_equal(ask("v@x.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("v@x.example"), BOUNCELIMIT_ALLOW);
    bouncelimit_free(BL);
    store_close(F->store);
    open_all();
    assert_int_equal(ask("V@x.example"), BOUNCELIMIT_ADDRESS);
    assert_int_equal(ask("w@x.example"), BOUNCELIMIT_ALLOW);
    assert_int_equal(ask("z@x.example"), BOUNCELIMIT_DOMAIN);
}

/* test_free_while_pending - the question outlives the limiter (shutdown order:
 * the queue goes first, the store's close runs the pending callback) */
static void test_free_while_pending(void **state)
{
    struct answer a = {0, BOUNCELIMIT_ADDRESS};

    assert_int_equal(bouncelimit_check(BL, "p@x.example", on_answer, &a), 0);
    bouncelimit_free(BL);
    BL = NULL;
    store_close(F->store);
    F->store = NULL;
    assert_int_equal(a.done, 1);
    assert_int_equal(a.v, BOUNCELIMIT_ALLOW); /* the domain question failed: fail open */
}

/* test_no_store - without a store everything is allowed at once */
static void test_no_store(void **state)
{
    struct bouncelimit *bl = bouncelimit_new(NULL, 0, 0, 60);
    struct answer a = {0, BOUNCELIMIT_ADDRESS};

    assert_non_null(bl);
    assert_int_equal(bouncelimit_check(bl, "a@b.example", on_answer, &a), 1);
    assert_int_equal(a.done, 0);
    bouncelimit_free(bl);
    assert_string_equal(bouncelimit_verdict_name(BOUNCELIMIT_DOMAIN), "domain");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_variants_are_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
