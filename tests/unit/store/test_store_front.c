/* test_store_front.c - what the store's front end adds for a fleet, on LMDB: the lease
 * (read then write in one process), store_shared, on_error, URI checks and redaction */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "store/store.h"
#include "ts_fs.h"

struct result {
    int calls, status;
};

static void on_done(void *arg, int status)
{
    struct result *r = arg;

    r->calls++;
    r->status = status;
}

/* lease - one store_lease, run to its callback */
static int lease(struct event_base *base, struct store *st, const char *owner)
{
    struct result r = {0};

    assert_int_equal(store_lease(st, "bf:leader", 9, owner, 5000, on_done, &r), 0);
    assert_int_equal(r.calls, 0);              /* never from inside the call */
    for (int i = 0; i < 1000 && !r.calls; i++) /* the result comes from the store's thread */
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(r.calls, 1);
    return r.status;
}

static void test_lease_on_lmdb(void **state)
{
    struct event_base *base = event_base_new();
    struct store_options opt = {.on_error = STORE_ON_ERROR_TEMPFAIL};
    char dir[64], uri[128], err[256];
    struct store *st;
    void *val;
    size_t vlen;

    assert_int_equal(ts_tmpdir_make(dir, sizeof(dir), "test_store_front"), 0);
    snprintf(uri, sizeof(uri), "lmdb:%s/db", dir);
    st = store_open_opts(base, uri, &opt, err, sizeof(err));
    assert_non_null(st);
    assert_false(store_shared(st));
    assert_int_equal(store_on_error(st), STORE_ON_ERROR_TEMPFAIL);
    assert_int_equal(lease(base, st, "mx1 1"), STORE_OK);
    assert_int_equal(lease(base, st, "mx2 2"), STORE_EBUSY);
    assert_int_equal(lease(base, st, "mx1 1"), STORE_OK); /* its holder renews it */
    assert_int_equal(store_sync_get(st, "bf:leader", 9, &val, &vlen), STORE_OK);
    assert_int_equal(vlen, 5);
    assert_memory_equal(val, "mx1 1", 5);
    free(val);
    assert_int_equal(store_lease(st, "k", 1, NULL, 1000, on_done, NULL), -1); /* no owner */
    store_close(st);
    event_base_free(base);
    ts_tmpdir_remove(dir);
}

static void test_uris(void **state)
{
    char err[256], buf[128];

    assert_int_equal(store_uri_check("redis://127.0.0.1:6379/0", err, sizeof(err)), 0);
    assert_int_equal(store_uri_check("redis+unix:///run/r.sock?db=1", err, sizeof(err)), 0);
    assert_int_equal(store_uri_check("redis://127.0.0.1:0/0", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "port"));
    assert_int_equal(store_uri_check("memcached://x", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown store backend"));
    assert_string_equal(store_uri_safe("redis://:s3cret@h:1/0", buf, sizeof(buf)),
                        "redis://:***@h:1/0");
    assert_string_equal(store_uri_safe("redis+unix://:p@/r.sock", buf, sizeof(buf)),
                        "redis+unix://:***@/r.sock");
    assert_string_equal(store_uri_safe("lmdb:/var/lib/mxgate/db", buf, sizeof(buf)),
                        "lmdb:/var/lib/mxgate/db");
    assert_string_equal(store_strerror(STORE_EDOWN), "store unreachable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_on_lmdb),
        cmocka_unit_test(test_uris),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
