/*
 * test_store_redis.c - the store interface on the Redis backend, against a
 * private redis-server (Debian's, on a UNIX socket in a scratch directory,
 * nothing saved): values and counters, TTL semantics as on LMDB, the atomic
 * increment with its first expiry, listings, the lease, the blocking handle
 * of the tools, and an outage (EDOWN at once, never synchronously; back by
 * itself). Skipped when /usr/bin/redis-server is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "store/store.h"
#include "ts_fs.h"

#define REDIS_SERVER "/usr/bin/redis-server"

struct fx {
    char dir[64];
    char sock[128];
    char uri[200];
    pid_t pid;
    struct event_base *base;
    struct store *st;
};

struct result {
    int calls, status;
    unsigned char val[256];
    size_t vlen;
    int64_t value;
};

static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct result *r = arg;

    r->calls++;
    r->status = status;
    r->vlen = vlen;
    if (val && vlen <= sizeof(r->val))
        memcpy(r->val, val, vlen);
}

static void on_done(void *arg, int status)
{
    struct result *r = arg;

    r->calls++;
    r->status = status;
}

static void on_incr(void *arg, int status, int64_t value)
{
    struct result *r = arg;

    r->calls++;
    r->status = status;
    r->value = value;
}

/* run_until - loop until r has its callback (bounded: 5 s) */
static void run_until(struct fx *f, const struct result *r)
{
    for (int i = 0; i < 500 && r->calls == 0; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    assert_int_equal(r->calls, 1);
}

/* redis_cmd - a command on a blocking connection of the test's own; the reply (free it) */
static redisReply *redis_cmd(struct fx *f, const char *fmt, const char *arg)
{
    redisContext *c = redisConnectUnix(f->sock);
    redisReply *r;

    assert_non_null(c);
    assert_int_equal(c->err, 0);
    r = arg ? redisCommand(c, fmt, arg) : redisCommand(c, fmt);
    redisFree(c);
    assert_non_null(r);
    return r;
}

static void server_start(struct fx *f)
{
    for (int i = 0; i < 200; i++) {
        redisContext *c;
        if (i == 0) {
            char log[160];
            snprintf(log, sizeof(log), "%s/redis.log", f->dir);
            f->pid = fork();
            assert_true(f->pid >= 0);
            if (f->pid == 0) {
                execl(REDIS_SERVER, REDIS_SERVER, "--port", "0", "--unixsocket", f->sock,
                      "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir",
                      f->dir, "--logfile", log, (char *)NULL);
                _exit(127);
            }
        }
        c = redisConnectUnix(f->sock);
        if (c && !c->err) {
            redisFree(c);
            return;
        }
        if (c)
            redisFree(c);
        usleep(20000);
    }
    fail_msg("redis-server did not start");
}

static void server_stop(struct fx *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    f->pid = 0;
    unlink(f->sock);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];

    if (access(REDIS_SERVER, X_OK) != 0) {
        free(f);
        skip();
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_redis.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/redis.sock", f->dir);
    snprintf(f->uri, sizeof(f->uri), "redis+unix://%s", f->sock);
    server_start(f);
    f->base = event_base_new();
    f->st = store_open(f->base, f->uri, err, sizeof(err));
    assert_non_null(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->st); /* NULL-safe: test_close_drains closed it */
    event_base_free(f->base);
    server_stop(f);
    ts_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void test_values_and_ttl(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    redisReply *rep;

    assert_int_equal(store_set(f->st, "a\0b", 3, "x\0y", 3, 0, on_done, &r), 0);
    assert_int_equal(r.calls, 0); /* never from inside the call */
    run_until(f, &r);
    assert_int_equal(r.status, STORE_OK);
    memset(&r, 0, sizeof(r));
    store_get(f->st, "a\0b", 3, on_get, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.vlen, 3);
    assert_memory_equal(r.val, "x\0y", 3);

    memset(&r, 0, sizeof(r));
    store_set(f->st, "t", 1, "1", 1, 100, on_done, &r);
    run_until(f, &r);
    rep = redis_cmd(f, "TTL mxgate:t", NULL);
    assert_true(rep->integer > 90 && rep->integer <= 100);
    freeReplyObject(rep);
    memset(&r, 0, sizeof(r));
    store_set(f->st, "t", 1, "2", 1, 0, on_done, &r); /* a replace without TTL: none left */
    run_until(f, &r);
    rep = redis_cmd(f, "TTL mxgate:t", NULL);
    assert_int_equal(rep->integer, -1);
    freeReplyObject(rep);

    memset(&r, 0, sizeof(r));
    store_get(f->st, "missing", 7, on_get, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_NOTFOUND);
    memset(&r, 0, sizeof(r));
    store_del(f->st, "t", 1, on_done, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_OK);
    memset(&r, 0, sizeof(r));
    store_del(f->st, "t", 1, on_done, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_NOTFOUND);
}

static void test_counters(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    redisReply *rep;
    int64_t v;

    store_incr(f->st, "c", 1, 5, 60, on_incr, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(r.value, 5);
    redisReply *p = redis_cmd(f, "PEXPIRE mxgate:c 30000", NULL); /* as if time had passed */
    freeReplyObject(p);
    memset(&r, 0, sizeof(r));
    store_incr(f->st, "c", 1, -7, 60, on_incr, &r);
    run_until(f, &r);
    assert_int_equal(r.value, -2);
    rep = redis_cmd(f, "TTL mxgate:c", NULL); /* the first expiry stays: a fixed window */
    assert_true(rep->integer > 0 && rep->integer <= 30);
    freeReplyObject(rep);

    memset(&r, 0, sizeof(r));
    store_get(f->st, "c", 1, on_get, &r); /* read back as the 8-octet counter */
    run_until(f, &r);
    assert_int_equal(store_counter_decode(r.val, r.vlen, &v), 0);
    assert_int_equal(v, -2);

    memset(&r, 0, sizeof(r));
    store_set(f->st, "plain", 5, "12", 2, 0, on_done, &r);
    run_until(f, &r);
    memset(&r, 0, sizeof(r));
    store_incr(f->st, "plain", 5, 1, 0, on_incr, &r); /* "12" is a value, not a counter */
    run_until(f, &r);
    assert_int_equal(r.status, STORE_ETYPE);
    memset(&r, 0, sizeof(r));
    store_incr(f->st, "nottl", 5, 1, 0, NULL, NULL);
    store_incr(f->st, "nottl", 5, 1, 0, on_incr, &r);
    run_until(f, &r);
    assert_int_equal(r.value, 2);
    rep = redis_cmd(f, "TTL mxgate:nottl", NULL);
    assert_int_equal(rep->integer, -1);
    freeReplyObject(rep);
}

struct listing {
    int n;
    char keys[8][16];
    int done, status; /* the asynchronous scan's end */
};

static int list_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct listing *l = arg;

    snprintf(l->keys[l->n++], sizeof(l->keys[0]), "%.*s=%.*s", (int)keylen, (const char *)key,
             (int)vlen, (const char *)val);
    return l->n == 8;
}

static void list_done(void *arg, int status)
{
    struct listing *l = arg;

    l->done++;
    l->status = status;
}

static void test_scans(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    struct listing l = {0};
    struct store *ro;
    char err[256];
    void *val;
    size_t vlen;
    static const char *const keys[] = {"s:b", "s:a", "s:*", "t:a"};

    for (size_t i = 0; i < 4; i++)
        store_set(f->st, keys[i], 3, "v", 1, 0, NULL, NULL);
    store_get(f->st, "s:a", 3, on_get, &r); /* after the sets on the one connection */
    run_until(f, &r);

    assert_int_equal(store_scan_prefix(f->st, "s:", 2, list_item, list_done, &l), 0);
    for (int i = 0; i < 500 && !l.done; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    assert_int_equal(l.done, 1);
    assert_int_equal(l.status, STORE_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "s:*=v"); /* key order, the glob character literal */
    assert_string_equal(l.keys[1], "s:a=v");
    assert_string_equal(l.keys[2], "s:b=v");

    ro = store_open_readonly(f->uri, err, sizeof(err)); /* mxgatectl's handle */
    assert_non_null(ro);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_sync_scan_prefix(ro, "s:", 2, list_item, &l), STORE_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[2], "s:b=v");
    assert_int_equal(store_sync_get(ro, "t:a", 3, &val, &vlen), STORE_OK);
    assert_int_equal(vlen, 1);
    free(val);
    assert_int_equal(store_sync_get(ro, "t:b", 3, &val, &vlen), STORE_NOTFOUND);
    store_close(ro);
}

static void test_lease(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    void *val;
    size_t vlen;

    store_lease(f->st, "L", 1, "mx1 1", 5000, on_done, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_OK);
    memset(&r, 0, sizeof(r));
    store_lease(f->st, "L", 1, "mx2 2", 5000, on_done, &r);
    run_until(f, &r);
    assert_int_equal(r.status, STORE_EBUSY);
    memset(&r, 0, sizeof(r));
    store_lease(f->st, "L", 1, "mx1 1", 5000, on_done, &r); /* renewed by its holder */
    run_until(f, &r);
    assert_int_equal(r.status, STORE_OK);
    assert_int_equal(store_sync_get(f->st, "L", 1, &val, &vlen), STORE_OK);
    assert_int_equal(vlen, 5);
    assert_memory_equal(val, "mx1 1", 5);
    free(val);
    assert_true(store_shared(f->st));
}

static void test_outage(void **state)
{
    struct fx *f = *state;
    struct result r = {0};
    time_t t0;

    store_set(f->st, "k", 1, "v", 1, 0, on_done, &r);
    run_until(f, &r);
    server_stop(f);
    t0 = time(NULL);
    for (int round = 0; round < 3; round++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(store_get(f->st, "k", 1, on_get, &r), 0);
        assert_int_equal(r.calls, 0);
        run_until(f, &r);
        assert_int_equal(r.status, STORE_EDOWN);
    }
    assert_true(time(NULL) - t0 <= 2); /* nobody waits for a dead store */
    server_start(f);                   /* back, empty */
    for (int i = 0; i < 100; i++) {    /* the back-off, then a new connection */
        memset(&r, 0, sizeof(r));
        store_set(f->st, "k2", 2, "v", 1, 0, on_done, &r);
        run_until(f, &r);
        if (r.status == STORE_OK)
            break;
        usleep(50000);
    }
    assert_int_equal(r.status, STORE_OK);
}

static void test_close_drains(void **state)
{
    struct fx *f = *state;
    redisReply *rep;
    char key[16];

    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "d%d", i);
        store_incr(f->st, key, strlen(key), 1, 0, NULL, NULL);
    }
    store_close(f->st); /* nobody ran the loop: close waits for the answers */
    f->st = NULL;
    rep = redis_cmd(f, "GET mxgate:d49", NULL);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "1");
    freeReplyObject(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values_and_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_drains, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN); /* as mxgated: a server gone is a failed write, not our end */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
