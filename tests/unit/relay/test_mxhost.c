/* test_mxhost.c - the mx_host sections (relay/mxhost.c): canonical host names, which
 * section names a host (exact over the longest "*.SUFFIX" over "*"; any case, a
 * trailing dot ignored), one state per host, and a reload that keeps the state */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "relay/mxhost.h"
#include "ts_fs.h"

static const struct config_section *const sections[] = {&mxhosts_section, NULL};

/* load - text as a configuration; NULL when config_load refused it */
static struct config *load(const char *dir, const char *text)
{
    char path[512];

    ts_write_file(dir, "mxgate.conf", text, path, sizeof(path));
    return config_load(path, sections, stderr);
}

static void test_canon(void **state)
{
    char b[256];
    (void)state;

    assert_int_equal(mxhost_canon("MX1.Provider.TEST.", b, sizeof(b)), 0);
    assert_string_equal(b, "mx1.provider.test");
    assert_int_equal(mxhost_canon("a-b_c.example", b, sizeof(b)), 0);
    assert_int_equal(mxhost_canon("", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon(".", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon("a..b", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon("-a.b", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon("a-.b", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon("a b.c", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon("*.b.c", b, sizeof(b)), -1);
    assert_int_equal(mxhost_canon("mx\x1b[1m.test", b, sizeof(b)), -1);
}

static void test_match(void **state)
{
    (void)state;

    assert_int_equal(mxhost_match("mx1.provider.test", "mx1.provider.test"), INT_MAX);
    assert_int_equal(mxhost_match("mx1.provider.test", "mx2.provider.test"), 0);
    assert_true(mxhost_match("*.provider.test", "mx1.provider.test") > 1);
    assert_true(mxhost_match("*.provider.test", "a.b.provider.test") > 1);
    assert_int_equal(mxhost_match("*.provider.test", "provider.test"), 0);
    assert_int_equal(mxhost_match("*.provider.test", "xprovider.test"), 0);
    assert_true(mxhost_match("*.mx.provider.test", "a.mx.provider.test") >
                mxhost_match("*.provider.test", "a.mx.provider.test"));
    assert_int_equal(mxhost_match("*", "anything.test"), 1);
}

/* test_table - the best section gives the limits; no section, no state (no limit) */
static void test_table(void **state)
{
    char dir[256];
    struct config *cfg;
    struct mxhosts *t;
    struct mxhost *h;
    (void)state;

    assert_int_equal(ts_tmpdir_make(dir, sizeof(dir), "test_mxhost"), 0);
    cfg = load(dir, "mx_host \"MX1.Provider.Test.\" { concurrency = 1 }\n"
                    "mx_host \"*.provider.test\" { concurrency = 4  rate = \"60/60\"  "
                    "per_connection = 20 }\n"
                    "mx_host \"*.mx.provider.test\" { concurrency = 2 }\n");
    assert_non_null(cfg);
    t = mxhosts_load(cfg);
    h = mxhosts_get(t, "mx1.PROVIDER.test.");
    assert_non_null(h);
    assert_string_equal(h->name, "mx1.provider.test");
    assert_string_equal(h->section, "mx1.provider.test");
    assert_int_equal(h->flow.concurrency, 1);
    assert_int_equal(h->flow.rate_secs, 0);
    assert_int_equal(h->per_connection, 0);
    assert_ptr_equal(mxhosts_get(t, "mx1.provider.test"), h);
    h = mxhosts_get(t, "mx2.provider.test");
    assert_true(h->flow.concurrency == 4 && h->flow.rate_n == 60 && h->flow.rate_secs == 60);
    assert_int_equal(h->per_connection, 20);
    assert_int_equal(mxhosts_get(t, "a.mx.provider.test")->flow.concurrency, 2);
    assert_null(mxhosts_get(t, "provider.test"));
    assert_null(mxhosts_get(t, "mx.other.test"));
    assert_null(mxhosts_get(t, "not a host"));
    assert_int_equal(mxhosts_count(t), 3);
    assert_null(mxhosts_get(NULL, "mx1.provider.test"));
    mxhosts_free(t);
    config_free(cfg);
    assert_int_equal(ts_tmpdir_remove(dir), 0);
}

/* test_reload - new limits apply, the state stays; a host no section names has none */
static void test_reload(void **state)
{
    char dir[256];
    struct config *a, *b;
    struct mxhosts *t;
    struct mxhost *h;
    (void)state;

    assert_int_equal(ts_tmpdir_make(dir, sizeof(dir), "test_mxhost"), 0);
    a = load(dir, "mx_host \"*.provider.test\" { concurrency = 4 }\n");
    t = mxhosts_load(a);
    h = mxhosts_get(t, "mx1.provider.test");
    flow_started(&h->flow, 100, 1);
    flow_finished(&h->flow, 100, FLOW_THROTTLED);
    flow_started(&h->flow, 100, 1);
    b = load(dir, "mx_host \"mx1.provider.test\" { concurrency = 6  per_connection = 3 }\n");
    mxhosts_reconfigure(t, b);
    assert_ptr_equal(mxhosts_get(t, "mx1.provider.test"), h);
    assert_int_equal(h->flow.concurrency, 6);
    assert_int_equal(h->per_connection, 3);
    assert_int_equal(h->flow.window, 2); /* the feedback's window stays */
    assert_int_equal(h->flow.active, 1);
    assert_true(h->flow.backoff_until == 110);
    config_free(a);
    a = load(dir, "mx_host \"mx2.provider.test\" { concurrency = 6 }\n");
    mxhosts_reconfigure(t, a);
    assert_null(mxhosts_get(t, "mx1.provider.test"));
    assert_string_equal(h->section, "");
    assert_int_equal(h->per_connection, 0);
    flow_finished(&h->flow, 120, FLOW_OK); /* the running connection still ends on it */
    assert_int_equal(h->flow.active, 0);
    mxhosts_free(t);
    config_free(a);
    config_free(b);
    assert_int_equal(ts_tmpdir_remove(dir), 0);
}

/* test_check - mxgated -n refuses a title that is no host name and a host twice */
static void test_check(void **state)
{
    char dir[256];
    (void)state;

    assert_int_equal(ts_tmpdir_make(dir, sizeof(dir), "test_mxhost"), 0);
    assert_null(load(dir, "mx_host \"mx*.provider.test\" { concurrency = 1 }\n"));
    assert_null(load(dir, "mx_host \"mx1.provider.test\" { concurrency = 1 }\n"
                          "mx_host \"MX1.provider.test.\" { concurrency = 2 }\n"));
    assert_null(load(dir, "mx_host \"mx1.provider.test\" { concurrency = 0 }\n"));
    assert_null(load(dir, "mx_host \"mx1.provider.test\" { rate = \"fast\" }\n"));
    assert_null(load(dir, "mx_host \"mx1.provider.test\" { per_connection = -1 }\n"));
    assert_null(load(dir, "mx_host \"mx1.provider.test\" { per_connection = 100001 }\n"));
    assert_int_equal(ts_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon),  cmocka_unit_test(test_match), cmocka_unit_test(test_table),
        cmocka_unit_test(test_reload), cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
