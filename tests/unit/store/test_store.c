/* test_store.c - the key/value store on LMDB: TTLs, counters, scans, expiry, growth, sharing */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_fs.h"

#define T0 1000000

struct fx {
    struct event_base *base;
    struct store *st;
    char dir[64];  /* scratch directory */
    char uri[128]; /* "lmdb:<dir>/db" */
    pid_t child;   /* a reader process still to be reaped */
    int child_fd;  /* our end of its pipe, closed at teardown */
};

/* What a callback saw. */
struct result {
    int calls;
    int status;
    unsigned char val[4096];
    size_t vlen;
    int val_null;
    int64_t num;
    const int *returned; /* when set: the call that started us must have returned */
    int early;           /* callbacks that ran before their call returned */
};

struct scan_res {
    int items;
    char keys[64][80];
    int64_t vals[64];
    int stop_after; /* 0: never stop */
    struct result done;
};

/* note_call - count a callback and check that it is not synchronous */
static void note_call(struct result *r, int status)
{
    r->calls++;
    r->status = status;
    if (r->returned && !*r->returned)
        r->early++;
}

/* on_get - record a get result */
static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct result *r = arg;

    note_call(r, status);
    r->val_null = val == NULL;
    r->vlen = vlen;
    if (val && vlen <= sizeof r->val)
        memcpy(r->val, val, vlen);
}

/* on_done - record a set/del/scan completion */
static void on_done(void *arg, int status)
{
    note_call(arg, status);
}

/* on_incr - record an incr result */
static void on_incr(void *arg, int status, int64_t value)
{
    struct result *r = arg;

    note_call(r, status);
    r->num = value;
}

/* on_item - record one scanned record; stop when asked to */
static int on_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct scan_res *s = arg;

    if (s->items < 64 && keylen < sizeof s->keys[0]) {
        memcpy(s->keys[s->items], key, keylen);
        s->keys[s->items][keylen] = '\0';
        if (store_counter_decode(val, vlen, &s->vals[s->items]) < 0)
            s->vals[s->items] = -1;
    }
    s->items++;
    return s->stop_after && s->items >= s->stop_after;
}

/* on_scan_done - the final callback of a scan */
static void on_scan_done(void *arg, int status)
{
    struct scan_res *s = arg;

    note_call(&s->done, status);
}

/* settle - run the loop until *calls becomes non-zero (bounded) */
static void settle(struct fx *f, const int *calls)
{
    ts_run_until(f->base, calls, 1, 10000);
    assert_int_equal(*calls, 1);
}

/* open_store - open f->uri with options, clock injected */
static void open_store(struct fx *f, const struct store_options *opt)
{
    char err[256] = "";

    f->st = store_open_opts(f->base, f->uri, opt, err, sizeof err);
    if (!f->st)
        fail_msg("store_open: %s", err);
    clock_set(ts_clock);
}

/* setup_dir - a scratch directory and an event base, no store yet */
static int setup_dir(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    assert_int_equal(ts_tmpdir_make(f->dir, sizeof f->dir, "test_store"), 0);
    snprintf(f->uri, sizeof f->uri, "lmdb:%s/db", f->dir);
    f->base = event_base_new();
    assert_non_null(f->base);
    ts_now = T0;
    *state = f;
    return 0;
}

/* setup - scratch directory plus a store with the default options */
static int setup(void **state)
{
    setup_dir(state);
    open_store(*state, NULL);
    return 0;
}

/* teardown - close everything and remove the scratch directory */
static int teardown(void **state)
{
    struct fx *f = *state;

    if (f->child_fd > 0)
        close(f->child_fd);
    if (f->child > 0)
        waitpid(f->child, NULL, 0); /* it sees EOF on its pipe and exits */
    store_close(f->st);
    event_base_free(f->base);
    ts_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* do_set - set and wait for the completion; the status */
static int do_set(struct fx *f, const char *key, const void *val, size_t vlen, unsigned ttl)
{
    struct result r = {0};

    assert_int_equal(store_set(f->st, key, strlen(key), val, vlen, ttl, on_done, &r), 0);
    settle(f, &r.calls);
    return r.status;
}

/* do_get - get and wait; the result in *r */
static void do_get(struct fx *f, const char *key, struct result *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(store_get(f->st, key, strlen(key), on_get, r), 0);
    settle(f, &r->calls);
}

/* do_incr - incr and wait; the status, the value in *value */
static int do_incr(struct fx *f, const char *key, int64_t delta, unsigned ttl, int64_t *value)
{
    struct result r = {0};

    assert_int_equal(store_incr(f->st, key, strlen(key), delta, ttl, on_incr, &r), 0);
    settle(f, &r.calls);
    *value = r.num;
    return r.status;
}

/* do_del - del and wait; the status */
static int do_del(struct fx *f, const char *key)
{
    struct result r = {0};

    assert_int_equal(store_del(f->st, key, strlen(key), on_done, &r), 0);
    settle(f, &r.calls);
    return r.status;
}

/* do_scan - scan a prefix and wait */
static void do_scan(struct fx *f, const char *prefix, struct scan_res *s)
{
    assert_int_equal(store_scan_prefix(f->st, prefix, strlen(prefix), on_item, on_scan_done, s), 0);
    settle(f, &s->done.calls);
}

/* get_status - the status of a get of key */
static int get_status(struct fx *f, const char *key)
{
    struct result r;

    do_get(f, key, &r);
    return r.status;
}

/* test_set_get_roundtrip - binary values, empty values and replacement survive */
static void test_set_get_roundtrip(void **state)
{
    struct fx *f = *state;
    static const unsigned char bin[] = {'a', 0, 'b', 0xff, '\r', '\n'};
    struct result r;

    assert_int_equal(do_set(f, "k1", bin, sizeof bin, 0), STORE_OK);
    do_get(f, "k1", &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.vlen, sizeof bin);
    assert_memory_equal(r.val, bin, sizeof bin);

    assert_int_equal(do_set(f, "k1", "second", 6, 0), STORE_OK);
    do_get(f, "k1", &r);
    assert_int_equal(r.vlen, 6);
    assert_memory_equal(r.val, "second", 6);

    assert_int_equal(do_set(f, "empty", NULL, 0, 0), STORE_OK);
    do_get(f, "empty", &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.vlen, 0);
    assert_false(r.val_null);
}

/* test_get_missing - a key never set is NOTFOUND with no value */
static void test_get_missing(void **state)
{
    struct fx *f = *state;
    struct result r;

    assert_int_equal(do_set(f, "present", "x", 1, 0), STORE_OK);
    do_get(f, "absent", &r);
    assert_int_equal(r.status, STORE_NOTFOUND);
    assert_true(r.val_null);
    assert_int_equal(r.vlen, 0);
    do_get(f, "presen", &r); /* a prefix of a key is another key */
    assert_int_equal(r.status, STORE_NOTFOUND);
}

/* test_ttl_expiry - a record lives ttl seconds by the injected clock, then reads as missing */
static void test_ttl_expiry(void **state)
{
    struct fx *f = *state;
    void *val = NULL;
    size_t vlen = 0;

    assert_int_equal(do_set(f, "grey", "v", 1, 10), STORE_OK);
    assert_int_equal(do_set(f, "forever", "v", 1, 0), STORE_OK);
    ts_now = T0 + 9;
    assert_int_equal(get_status(f, "grey"), STORE_OK);
    ts_now = T0 + 10;
    assert_int_equal(get_status(f, "grey"), STORE_NOTFOUND);
    assert_int_equal(store_sync_get(f->st, "grey", 4, &val, &vlen), STORE_NOTFOUND);
    assert_int_equal(do_del(f, "grey"), STORE_NOTFOUND);
    ts_now = T0 + 100000000;
    assert_int_equal(get_status(f, "forever"), STORE_OK);
    /* A new set on an expired key starts a new life. */
    assert_int_equal(do_set(f, "grey", "w", 1, 5), STORE_OK);
    assert_int_equal(get_status(f, "grey"), STORE_OK);
}

/* test_incr_creates_with_ttl - a counter starts at delta and keeps its creation expiry */
static void test_incr_creates_with_ttl(void **state)
{
    struct fx *f = *state;
    struct result r;
    int64_t v = 0;

    assert_int_equal(do_incr(f, "rate", 1, 60, &v), STORE_OK);
    assert_int_equal(v, 1);
    ts_now = T0 + 30;
    assert_int_equal(do_incr(f, "rate", 1, 60, &v), STORE_OK);
    assert_int_equal(v, 2);
    ts_now = T0 + 59;
    assert_int_equal(do_incr(f, "rate", 5, 60, &v), STORE_OK);
    assert_int_equal(v, 7);
    do_get(f, "rate", &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(store_counter_decode(r.val, r.vlen, &v), 0);
    assert_int_equal(v, 7);
    /* Fixed window: later increments did not push the expiry back. */
    ts_now = T0 + 60;
    assert_int_equal(get_status(f, "rate"), STORE_NOTFOUND);
    assert_int_equal(do_incr(f, "neg", -3, 0, &v), STORE_OK);
    assert_int_equal(v, -3);
}

/* test_incr_expired_restarts - an expired counter starts again at delta with a fresh ttl */
static void test_incr_expired_restarts(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;

    assert_int_equal(do_incr(f, "win", 3, 10, &v), STORE_OK);
    assert_int_equal(v, 3);
    ts_now = T0 + 10;
    assert_int_equal(do_incr(f, "win", 2, 10, &v), STORE_OK);
    assert_int_equal(v, 2);
    ts_now = T0 + 19;
    assert_int_equal(get_status(f, "win"), STORE_OK);
    ts_now = T0 + 20;
    assert_int_equal(get_status(f, "win"), STORE_NOTFOUND);
}

/* test_incr_edge_cases - EXPIRE NX on a counter without expiry, wrong type, overflow */
static void test_incr_edge_cases(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;

    assert_int_equal(do_incr(f, "c", 1, 0, &v), STORE_OK);
    assert_int_equal(do_incr(f, "c", 1, 5, &v), STORE_OK); /* gains an expiry now */
    assert_int_equal(v, 2);
    ts_now = T0 + 5;
    assert_int_equal(get_status(f, "c"), STORE_NOTFOUND);

    assert_int_equal(do_set(f, "text", "hello", 5, 0), STORE_OK);
    assert_int_equal(do_incr(f, "text", 1, 0, &v), STORE_ETYPE);

    assert_int_equal(do_incr(f, "big", INT64_MAX, 0, &v), STORE_OK);
    assert_int_equal(do_incr(f, "big", 1, 0, &v), STORE_ERANGE);
    assert_int_equal(do_incr(f, "big", -1, 0, &v), STORE_OK);
    assert_int_equal(v, INT64_MAX - 1);
}

/* test_del - delete removes, a second delete reports NOTFOUND */
static void test_del(void **state)
{
    struct fx *f = *state;

    assert_int_equal(do_set(f, "a", "1", 1, 0), STORE_OK);
    assert_int_equal(do_set(f, "b", "2", 1, 0), STORE_OK);
    assert_int_equal(do_del(f, "a"), STORE_OK);
    assert_int_equal(get_status(f, "a"), STORE_NOTFOUND);
    assert_int_equal(get_status(f, "b"), STORE_OK);
    assert_int_equal(do_del(f, "a"), STORE_NOTFOUND);
    assert_int_equal(do_del(f, "never"), STORE_NOTFOUND);
}

/* fill_scan_data - records under two prefixes, one expired */
static void fill_scan_data(struct fx *f)
{
    int64_t v;

    assert_int_equal(do_incr(f, "stat:s25r", 3, 0, &v), STORE_OK);
    assert_int_equal(do_incr(f, "stat:dnsbl", 2, 0, &v), STORE_OK);
    assert_int_equal(do_incr(f, "stat:access", 1, 0, &v), STORE_OK);
    assert_int_equal(do_incr(f, "stat:old", 9, 5, &v), STORE_OK);
    assert_int_equal(do_incr(f, "stat", 7, 0, &v), STORE_OK);
    assert_int_equal(do_incr(f, "stau", 7, 0, &v), STORE_OK);
    assert_int_equal(do_set(f, "grey:x", "v", 1, 0), STORE_OK);
    ts_now = T0 + 5;
}

/* test_scan_prefix - live records under the prefix, in key order, then done once */
static void test_scan_prefix(void **state)
{
    struct fx *f = *state;
    struct scan_res s = {0}, stop = {.stop_after = 1}, all = {0};

    fill_scan_data(f);
    do_scan(f, "stat:", &s);
    assert_int_equal(s.done.status, STORE_OK);
    assert_int_equal(s.items, 3);
    assert_string_equal(s.keys[0], "stat:access");
    assert_string_equal(s.keys[1], "stat:dnsbl");
    assert_string_equal(s.keys[2], "stat:s25r");
    assert_int_equal(s.vals[0], 1);
    assert_int_equal(s.vals[2], 3);

    do_scan(f, "stat:", &stop);
    assert_int_equal(stop.items, 1);
    assert_int_equal(stop.done.status, STORE_OK);

    do_scan(f, "", &all);
    assert_int_equal(all.items, 6); /* everything but stat:old */
    assert_string_equal(all.keys[0], "grey:x");
}

/* test_sync_scan - the synchronous scan sees the same records */
static void test_sync_scan(void **state)
{
    struct fx *f = *state;
    struct scan_res s = {0};

    fill_scan_data(f);
    assert_int_equal(store_sync_scan_prefix(f->st, "stat:", 5, on_item, &s), STORE_OK);
    assert_int_equal(s.items, 3);
    assert_string_equal(s.keys[1], "stat:dnsbl");
    assert_int_equal(store_sync_scan_prefix(f->st, "none:", 5, on_item, &s), STORE_OK);
    assert_int_equal(s.items, 3);
}

/* test_scan_limit - a scan larger than STORE_SCAN_MAX_BYTES says it is incomplete */
static void test_scan_limit(void **state)
{
    struct fx *f = *state;
    static char val[60000];
    struct scan_res s = {0};
    char key[32];
    int n = STORE_SCAN_MAX_BYTES / sizeof val + 10;

    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "big:%04d", i);
        assert_int_equal(store_set(f->st, key, strlen(key), val, sizeof val, 0, NULL, NULL), 0);
    }
    do_scan(f, "big:", &s);
    assert_int_equal(s.done.status, STORE_ELIMIT);
    assert_true(s.items > 0);
    assert_true(s.items < n);
}

/* count_prefix - live records under prefix, by a synchronous scan */
static int count_prefix(struct fx *f, const char *prefix)
{
    struct scan_res s = {0};

    assert_int_equal(store_sync_scan_prefix(f->st, prefix, strlen(prefix), on_item, &s), STORE_OK);
    return s.items;
}

/* test_expire_only_expired - expired records are deleted, live ones kept */
static void test_expire_only_expired(void **state)
{
    struct fx *f = *state;
    char key[32];

    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        /* interleaved: ttl 10 (dies), no ttl, ttl 100 (lives) */
        assert_int_equal(do_set(f, key, "v", 1, i % 3 == 0 ? 10 : i % 3 == 1 ? 0 : 100), STORE_OK);
    }
    ts_now = T0 + 20;
    assert_int_equal(store_expire(f->st, ts_now), 20);
    assert_int_equal(store_expire(f->st, ts_now), 0);
    /* Back in time the deleted records would be live again: they are gone for good. */
    ts_now = T0;
    assert_int_equal(count_prefix(f, "k"), 40);
    assert_int_equal(get_status(f, "k000"), STORE_NOTFOUND);
    assert_int_equal(get_status(f, "k001"), STORE_OK);
    assert_int_equal(get_status(f, "k002"), STORE_OK);
}

/* test_expire_batches - one call deletes at most STORE_EXPIRE_BATCH records */
static void test_expire_batches(void **state)
{
    struct fx *f = *state;
    /* a minute per batch: only the counts bound it, even on a loaded machine */
    struct store_options opt = {.expire_usec = 60000000};
    int total = STORE_EXPIRE_BATCH * 2 + 500;
    char key[32];

    open_store(f, &opt);
    for (int i = 0; i < total; i++) {
        snprintf(key, sizeof key, "e%06d", i);
        assert_int_equal(store_set(f->st, key, strlen(key), "v", 1, 1, NULL, NULL), 0);
    }
    assert_int_equal(do_set(f, "keep", "v", 1, 0), STORE_OK);
    ts_now = T0 + 1;
    assert_int_equal(store_expire(f->st, ts_now), STORE_EXPIRE_BATCH);
    assert_int_equal(store_expire(f->st, ts_now), STORE_EXPIRE_BATCH);
    assert_int_equal(store_expire(f->st, ts_now), 500);
    assert_int_equal(store_expire(f->st, ts_now), 0);
    ts_now = T0;
    assert_int_equal(count_prefix(f, "e"), 0);
    assert_int_equal(get_status(f, "keep"), STORE_OK);
}

/* test_expire_budget - a batch stops when its time is spent, and the next one goes on
 * from there until every expired record is gone */
static void test_expire_budget(void **state)
{
    struct fx *f = *state;
    struct store_options opt = {.expire_usec = 1};
    int total = STORE_EXPIRE_BATCH + 100, calls = 0;
    long n, sum = 0;
    char key[32];

    open_store(f, &opt);
    for (int i = 0; i < total; i++) {
        snprintf(key, sizeof key, "b%06d", i);
        assert_int_equal(store_set(f->st, key, strlen(key), "v", 1, 1, NULL, NULL), 0);
    }
    ts_now = T0 + 1;
    /* The clock is read every 64 records: a microsecond is over by then. */
    assert_int_equal(store_expire(f->st, ts_now), 63);
    sum = 63;
    while ((n = store_expire(f->st, ts_now)) > 0) {
        assert_true(n <= 63);
        sum += n;
        calls++;
    }
    assert_int_equal(n, 0);
    assert_int_equal(sum, total);
    assert_true(calls >= total / 64 - 1);
    ts_now = T0;
    assert_int_equal(count_prefix(f, "b"), 0);
}

/* on_loop_timeout - end an event loop run */
static void on_loop_timeout(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* test_expire_timer - the store's own timer deletes expired records */
static void test_expire_timer(void **state)
{
    struct fx *f = *state;
    struct timeval tv = {1, 600000};
    struct event *stop = evtimer_new(f->base, on_loop_timeout, f->base);

    assert_int_equal(do_set(f, "dies", "v", 1, 1), STORE_OK);
    assert_int_equal(do_set(f, "lives", "v", 1, 0), STORE_OK);
    ts_now = T0 + 2;
    store_set_expire_interval(f->st, 1);
    assert_non_null(stop);
    evtimer_add(stop, &tv);
    event_base_dispatch(f->base);
    event_free(stop);
    ts_now = T0;
    assert_int_equal(get_status(f, "dies"), STORE_NOTFOUND);
    assert_int_equal(get_status(f, "lives"), STORE_OK);
}

/* start_all_ops - one of each asynchronous operation, with *returned still 0 */
static void start_all_ops(struct fx *f, struct result r[7], struct scan_res *s, const int *returned)
{
    char longkey[STORE_KEY_MAX + 1];

    memset(longkey, 'x', sizeof longkey);
    for (int i = 0; i < 7; i++)
        r[i].returned = returned;
    s->done.returned = returned;
    assert_int_equal(store_set(f->st, "a", 1, "v", 1, 0, on_done, &r[0]), 0);
    assert_int_equal(store_get(f->st, "a", 1, on_get, &r[1]), 0);
    assert_int_equal(store_incr(f->st, "n", 1, 1, 0, on_incr, &r[2]), 0);
    assert_int_equal(store_del(f->st, "a", 1, on_done, &r[3]), 0);
    assert_int_equal(store_get(f->st, longkey, sizeof longkey, on_get, &r[4]), 0);
    assert_int_equal(store_set(f->st, longkey, sizeof longkey, "v", 1, 0, on_done, &r[5]), 0);
    assert_int_equal(store_incr(f->st, "", 0, 1, 0, on_incr, &r[6]), 0);
    assert_int_equal(store_scan_prefix(f->st, "", 0, on_item, on_scan_done, s), 0);
}

/* test_callbacks_never_synchronous - no callback runs inside its call; each runs once */
static void test_callbacks_never_synchronous(void **state)
{
    struct fx *f = *state;
    struct result r[7] = {0};
    struct scan_res s = {0};
    int returned = 0;

    start_all_ops(f, r, &s, &returned);
    returned = 1;
    for (int i = 0; i < 7; i++)
        assert_int_equal(r[i].calls, 0);
    assert_int_equal(s.done.calls, 0);
    settle(f, &s.done.calls);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].early, 0);
    }
    assert_int_equal(s.done.early, 0);
    /* Completions arrive in the order of the calls. */
    assert_int_equal(r[1].status, STORE_OK);
    assert_int_equal(r[3].status, STORE_OK);
    assert_int_equal(r[2].num, 1);
    assert_int_equal(r[4].status, STORE_EINVAL);
    assert_int_equal(r[5].status, STORE_EINVAL);
    assert_int_equal(r[6].status, STORE_EINVAL);
    assert_int_equal(s.items, 1); /* only "n": "a" was deleted before the scan */
}

/* test_map_growth - a tiny map grows on demand and keeps every record */
static void test_map_growth(void **state)
{
    struct fx *f = *state;
    struct store_options opt = {.map_size = 64 * 1024, .map_max = 64 * 1024 * 1024};
    char key[32], path[128], val[1000];
    struct stat sb;
    struct result r;

    open_store(f, &opt);
    memset(val, 'g', sizeof val);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "grow%05d", i);
        val[0] = (char)('a' + i % 26);
        assert_int_equal(do_set(f, key, val, sizeof val, 0), STORE_OK);
    }
    do_get(f, "grow00027", &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.vlen, sizeof val);
    assert_int_equal(r.val[0], 'b');
    assert_int_equal(count_prefix(f, "grow"), 3000);
    snprintf(path, sizeof path, "%s/db/data.mdb", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 3000 * 1000); /* far beyond the initial 64 KiB */
}

/* test_map_limit - at map_max writes fail with STORE_EFULL and reads go on */
static void test_map_limit(void **state)
{
    struct fx *f = *state;
    struct store_options opt = {.map_size = 64 * 1024, .map_max = 256 * 1024};
    char key[32], val[1000];
    int i, status = STORE_OK;

    open_store(f, &opt);
    memset(val, 'f', sizeof val);
    for (i = 0; i < 1000 && status == STORE_OK; i++) {
        snprintf(key, sizeof key, "full%05d", i);
        status = do_set(f, key, val, sizeof val, 0);
    }
    assert_int_equal(status, STORE_EFULL);
    assert_true(i > 100); /* it did grow past 64 KiB before stopping */
    assert_int_equal(get_status(f, "full00000"), STORE_OK);
    assert_int_equal(get_status(f, key), STORE_NOTFOUND); /* the failed write left nothing */
}

/* child_check - in the reader process: 0 when the store holds what the parent wrote */
static int child_check(const char *uri, const char *key, const char *want)
{
    char err[256];
    struct store *ro = store_open_readonly(uri, err, sizeof err);
    void *val = NULL;
    size_t vlen = 0;
    int ok;

    if (!ro)
        return 0;
    ok = store_sync_get(ro, key, strlen(key), &val, &vlen) == STORE_OK && vlen == strlen(want) &&
         memcmp(val, want, vlen) == 0;
    free(val);
    store_close(ro);
    return ok;
}

/* child_main - a second process: read-only handle, live updates, refused writes */
static int child_main(const char *uri, int in, int out)
{
    char err[256], c = 0;
    struct store *ro = store_open_readonly(uri, err, sizeof err);
    struct scan_res s = {0};
    void *val = NULL;
    size_t vlen = 0;

    if (!ro)
        return 10;
    if (store_sync_get(ro, "first", 5, &val, &vlen) != STORE_OK || vlen != 3)
        return 11;
    free(val);
    if (store_set(ro, "x", 1, "v", 1, 0, on_done, &s.done) != -1 || errno != EINVAL)
        return 12;
    if (store_expire(ro, time(NULL)) != -1 || errno != EROFS)
        return 13;
    /* Tell the parent we are open; wait while it writes (and grows the map). */
    if (write(out, "r", 1) != 1 || read(in, &c, 1) != 1)
        return 14;
    if (store_sync_get(ro, "late", 4, &val, &vlen) != STORE_OK || vlen != 4)
        return 15;
    free(val);
    if (store_sync_scan_prefix(ro, "bulk", 4, on_item, &s) != STORE_OK || s.items != 2000)
        return 16;
    store_close(ro);
    return child_check(uri, "first", "one") ? 0 : 17;
}

/* on_set_ok - counts successful set completions */
static void on_set_ok(void *arg, int status)
{
    int *n = arg;

    if (status == STORE_OK)
        (*n)++;
}

/* write_bulk - many records, to make the parent grow its map */
static void write_bulk(struct fx *f)
{
    char key[32], val[500];
    int ok = 0;

    memset(val, 'b', sizeof val);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "bulk%05d", i);
        assert_int_equal(store_set(f->st, key, strlen(key), val, sizeof val, 0, on_set_ok, &ok), 0);
    }
    assert_int_equal(do_set(f, "late", "news", 4, 0), STORE_OK);
    assert_int_equal(ok, 2000);
    assert_int_equal(store_flush(f->st), STORE_OK);
}

/* test_readonly_second_process - another process reads the store while this one writes */
static void test_readonly_second_process(void **state)
{
    struct fx *f = *state;
    struct store_options opt = {.map_size = 64 * 1024, .map_max = 64 * 1024 * 1024};
    int down[2], up[2], wstatus = 0;
    char c = 0;
    pid_t pid;

    open_store(f, &opt);
    clock_set(NULL); /* the child uses the real clock */
    assert_int_equal(do_set(f, "first", "one", 3, 0), STORE_OK);
    assert_int_equal(store_flush(f->st), STORE_OK);
    assert_int_equal(pipe(down), 0);
    assert_int_equal(pipe(up), 0);
    if ((pid = fork()) == 0) {
        /* Only our own pipe ends: a parent that fails must give us EOF, not a hang. */
        close(down[1]);
        close(up[0]);
        alarm(30);
        _exit(child_main(f->uri, down[0], up[1]));
    }
    assert_true(pid > 0);
    close(down[0]);
    close(up[1]);
    f->child = pid;
    f->child_fd = down[1];
    assert_int_equal(read(up[0], &c, 1), 1);
    close(up[0]);
    write_bulk(f);
    assert_int_equal(write(down[1], "g", 1), 1);
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    f->child = 0;
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
}

/* test_long_key - keys over STORE_KEY_MAX and oversized values complete with STORE_EINVAL */
static void test_long_key(void **state)
{
    struct fx *f = *state;
    char key[STORE_KEY_MAX + 2];
    static char big[STORE_VAL_MAX + 1];
    void *val = NULL;
    size_t vlen = 0;
    int64_t v;

    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    assert_int_equal(do_set(f, key, "v", 1, 0), STORE_EINVAL);
    assert_int_equal(get_status(f, key), STORE_EINVAL);
    assert_int_equal(do_incr(f, key, 1, 0, &v), STORE_EINVAL);
    assert_int_equal(do_del(f, key), STORE_EINVAL);
    assert_int_equal(store_sync_get(f->st, key, strlen(key), &val, &vlen), STORE_EINVAL);
    key[STORE_KEY_MAX] = '\0'; /* exactly STORE_KEY_MAX octets is fine */
    assert_int_equal(do_set(f, key, "v", 1, 0), STORE_OK);
    assert_int_equal(get_status(f, key), STORE_OK);
    assert_int_equal(store_sync_get(f->st, key, strlen(key), &val, &vlen), STORE_OK);
    assert_int_equal(vlen, 1);
    free(val);
    assert_int_equal(do_set(f, "big", big, sizeof big, 0), STORE_EINVAL);
    assert_int_equal(do_set(f, "big", big, sizeof big - 1, 0), STORE_OK);
}

/* on_count - counts incr completions */
static void on_count(void *arg, int status, int64_t value)
{
    int *n = arg;

    if (status == STORE_OK)
        (*n)++;
}

/* sum_item - adds up counters in a scan */
static int sum_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    int64_t *sum = arg, v = 0;

    if (store_counter_decode(val, vlen, &v) == 0)
        *sum += v;
    return 0;
}

/* test_incr_performance - 100000 increments complete, all counted (figures printed only) */
static void test_incr_performance(void **state)
{
    struct fx *f = *state;
    struct timespec a, b;
    int done = 0, n = 100000;
    int64_t sum = 0;
    char key[32];
    double secs;

    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "perf:%d", i % 1000);
        assert_int_equal(store_incr(f->st, key, strlen(key), 1, 3600, on_count, &done), 0);
        if (i % 10000 == 9999) /* 10,000 in flight: under the store's queue bound */
            ts_run_until(f->base, &done, i - 4999, 10000);
    }
    ts_run_until(f->base, &done, n, 10000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(done, n);
    assert_int_equal(store_sync_scan_prefix(f->st, "perf:", 5, sum_item, &sum), STORE_OK);
    assert_int_equal(sum, n);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    print_message("%d incr in %.3f s (%.0f/s)\n", n, secs, secs > 0 ? n / secs : 0.0);
}

/* test_uri_errors - unknown and unbuilt backends, bad URIs, missing read-only store */
static void test_uri_errors(void **state)
{
    struct fx *f = *state;
    char err[256], uri[128];

    assert_null(store_open(f->base, "redis:127.0.0.1:6379", err, sizeof err)); /* no // */
    assert_non_null(strstr(err, "expected redis://"));
    assert_null(store_open(f->base, "bdb:/tmp/x", err, sizeof err));
    assert_non_null(strstr(err, "unknown store backend"));
    assert_null(store_open(f->base, "no-scheme", err, sizeof err));
    assert_null(store_open(f->base, "lmdb:", err, sizeof err));
    assert_null(store_open(NULL, f->uri, err, sizeof err));
    snprintf(uri, sizeof uri, "lmdb:%s/nonexistent", f->dir);
    assert_null(store_open_readonly(uri, err, sizeof err));
    assert_int_equal(strcmp(store_strerror(STORE_EFULL), "store full"), 0);
}

/* on_close_in_cb - a callback that closes the store and tries one more operation */
static void on_close_in_cb(void *arg, int status)
{
    struct fx *f = arg;

    store_close(f->st);
    assert_int_equal(store_get(f->st, "a", 1, on_get, NULL), -1);
    assert_int_equal(errno, ESHUTDOWN);
}

/* test_close_delivers_pending - close runs pending callbacks once, also from a callback */
static void test_close_delivers_pending(void **state)
{
    struct fx *f = *state;
    struct result r1 = {0}, r2 = {0};
    struct store *st = f->st;

    assert_int_equal(store_set(st, "a", 1, "v", 1, 0, on_done, &r1), 0);
    assert_int_equal(store_get(st, "a", 1, on_get, &r2), 0);
    store_close(st);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.status, STORE_OK);

    open_store(f, NULL);
    memset(&r2, 0, sizeof r2);
    assert_int_equal(store_set(f->st, "a", 1, "v", 1, 0, on_close_in_cb, f), 0);
    assert_int_equal(store_get(f->st, "a", 1, on_get, &r2), 0);
    ts_run_until(f->base, &r2.calls, 1, 10000);
    assert_int_equal(r2.calls, 1);
    f->st = NULL; /* freed by the flush that delivered the callbacks */
}

/* test_counter_decode - the documented counter encoding */
static void test_counter_decode(void **state)
{
    static const unsigned char one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char minus[8] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    int64_t v = 0;

    assert_int_equal(store_counter_decode(one, 8, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(store_counter_decode(minus, 8, &v), 0);
    assert_int_equal(v, -2);
    assert_int_equal(store_counter_decode(one, 7, &v), -1);
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define STORE_TEST_DIR(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown)

/* main - run the store tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_set_get_roundtrip),
        STORE_TEST(test_get_missing),
        STORE_TEST(test_ttl_expiry),
        STORE_TEST(test_incr_creates_with_ttl),
        STORE_TEST(test_incr_expired_restarts),
        STORE_TEST(test_incr_edge_cases),
        STORE_TEST(test_del),
        STORE_TEST(test_scan_prefix),
        STORE_TEST(test_sync_scan),
        STORE_TEST(test_scan_limit),
        STORE_TEST(test_expire_only_expired),
        STORE_TEST_DIR(test_expire_batches),
        STORE_TEST_DIR(test_expire_budget),
        STORE_TEST(test_expire_timer),
        STORE_TEST(test_callbacks_never_synchronous),
        STORE_TEST_DIR(test_map_growth),
        STORE_TEST_DIR(test_map_limit),
        STORE_TEST_DIR(test_readonly_second_process),
        STORE_TEST(test_long_key),
        STORE_TEST(test_incr_performance),
        STORE_TEST(test_uri_errors),
        STORE_TEST(test_close_delivers_pending),
        cmocka_unit_test(test_counter_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
