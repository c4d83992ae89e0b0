/* test_store_thread.c - the LMDB store's worker thread: order, callbacks on the loop's
 * thread only, close with operations in flight, the bounded queue, expiry off the loop */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "store/store.h"
#include "ts_fixture.h"

#define T0 1000000
#define NOPS 2000

static pthread_t loop_thread;

/* What the callbacks saw, in the order they ran. */
struct seen {
    int calls;
    int off_loop; /* callbacks that ran on another thread than the loop's */
    int inside;   /* callbacks that ran inside their call */
    int in_call;  /* set around each call */
    int disorder; /* callbacks whose sequence number was not the next one */
    int next;     /* the sequence number expected next */
    int bad;      /* results other than expected */
    int status[NOPS];
};

struct tag {
    struct seen *s;
    int seq;   /* the order of the call */
    long want; /* the value a get or incr must see (-1: not found) */
};

static struct tag tags[NOPS];

/* note - a callback's bookkeeping */
static void note(struct tag *t, int status)
{
    struct seen *s = t->s;

    s->calls++;
    s->status[t->seq] = status;
    if (!pthread_equal(pthread_self(), loop_thread))
        s->off_loop++;
    if (s->in_call)
        s->inside++;
    if (t->seq != s->next)
        s->disorder++;
    s->next = t->seq + 1;
}

static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct tag *t = arg;
    char buf[32] = "";

    note(t, status);
    if (status == STORE_OK && vlen < sizeof buf)
        memcpy(buf, val, vlen);
    if (t->want < 0 ? status != STORE_NOTFOUND : status != STORE_OK || atol(buf) != t->want)
        t->s->bad++;
}

static void on_done(void *arg, int status)
{
    note(arg, status);
}

static void on_incr(void *arg, int status, int64_t value)
{
    struct tag *t = arg;

    note(t, status);
    if (status == STORE_OK && value != t->want)
        t->s->bad++;
}

struct fx {
    struct ts_fixture fx;
    struct seen s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    assert_int_equal(ts_fixture_init(&f->fx, "test_store_thread"), 0);
    ts_now = T0;
    loop_thread = pthread_self();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc = ts_fixture_free(&f->fx);

    free(f);
    return rc;
}

/* tag_for - the next call's tag */
static struct tag *tag_for(struct fx *f, int seq, long want)
{
    tags[seq] = (struct tag){&f->s, seq, want};
    return &tags[seq];
}

/* test_order - sets, gets, incrs and dels of ten keys interleaved: every read sees
 * every write issued before it, and the callbacks run in the order of the calls */
static void test_order(void **state)
{
    struct fx *f = *state;
    struct store *st = ts_store_open(&f->fx, "db", NULL, ts_clock);
    long last[10], count = 0;
    char key[16], val[16];
    int n = 0;

    f->fx.store = st;
    for (int k = 0; k < 10; k++)
        last[k] = -1;
    while (n < NOPS - 4) {
        int k = n % 10;

        snprintf(key, sizeof key, "k%d", k);
        f->s.in_call = 1;
        if (n % 7 == 3 && last[k] >= 0) { /* a del now and then */
            assert_int_equal(store_del(st, key, strlen(key), on_done, tag_for(f, n, 0)), 0);
            last[k] = -1;
        } else {
            snprintf(val, sizeof val, "%d", n);
            assert_int_equal(
                store_set(st, key, strlen(key), val, strlen(val), 0, on_done, tag_for(f, n, 0)), 0);
            last[k] = n;
        }
        n++;
        assert_int_equal(store_get(st, key, strlen(key), on_get, tag_for(f, n, last[k])), 0);
        n++;
        assert_int_equal(store_incr(st, "count", 5, 1, 0, on_incr, tag_for(f, n, ++count)), 0);
        n++;
        f->s.in_call = 0;
    }
    ts_run_until(f->fx.base, &f->s.calls, n, 10000);
    assert_int_equal(f->s.calls, n);
    assert_int_equal(f->s.bad, 0);
    assert_int_equal(f->s.disorder, 0);
    assert_int_equal(f->s.off_loop, 0);
    assert_int_equal(f->s.inside, 0);
}

/* test_sync_sees_queued - a synchronous read sees the writes issued before it, still
 * queued for the store's thread */
static void test_sync_sees_queued(void **state)
{
    struct fx *f = *state;
    struct store *st = ts_store_open(&f->fx, "db", NULL, ts_clock);
    void *val = NULL;
    size_t vlen = 0;
    char v[16];

    f->fx.store = st;
    for (int i = 0; i < 500; i++) {
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(store_set(st, "x", 1, v, strlen(v), 0, NULL, NULL), 0);
    }
    assert_int_equal(store_sync_get(st, "x", 1, &val, &vlen), STORE_OK);
    assert_int_equal(vlen, 3);
    assert_memory_equal(val, "499", 3);
    free(val);
}

/* test_close_in_flight - close with operations queued: each callback runs once, with its
 * result, from store_close; what they wrote is there after a reopen */
static void test_close_in_flight(void **state)
{
    struct fx *f = *state;
    struct store *st = ts_store_open(&f->fx, "db", NULL, ts_clock);
    struct ts_got g;
    char key[16];

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "c%d", i);
        assert_int_equal(store_set(st, key, strlen(key), "v", 1, 0, on_done, tag_for(f, i, 0)), 0);
    }
    store_close(st);
    assert_int_equal(f->s.calls, 1000);
    assert_int_equal(f->s.disorder, 0);
    assert_int_equal(f->s.off_loop, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(f->s.status[i], STORE_OK);
    f->fx.store = ts_store_open(&f->fx, "db", NULL, ts_clock);
    g = ts_store_get(f->fx.base, f->fx.store, "c999");
    assert_int_equal(g.status, STORE_OK);
}

/* hold_writer - a child that holds the environment's write lock until told to go:
 * the store's thread then waits in its first write; returns the pipe to release it */
static int hold_writer(const char *path, pid_t *child)
{
    int held[2], go[2];
    char c = 0;

    assert_int_equal(pipe(held), 0);
    assert_int_equal(pipe(go), 0);
    if ((*child = fork()) == 0) {
        MDB_env *env;
        MDB_txn *txn;

        close(held[0]);
        close(go[1]);
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 1) ||
            mdb_env_open(env, path, MDB_NOTLS, 0600) || mdb_txn_begin(env, NULL, 0, &txn))
            _exit(1);
        if (write(held[1], "h", 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        _exit(0);
    }
    close(held[1]);
    close(go[0]);
    assert_int_equal(read(held[0], &c, 1), 1); /* the child holds the lock */
    close(held[0]);
    return go[1];
}

/* test_queue_full - with the store's thread stuck (another process holds the write
 * lock), operations past the bound complete with STORE_EDOWN, from the loop, never
 * inside their call; the others complete once the thread goes on */
static void test_queue_full(void **state)
{
    struct fx *f = *state;
    struct store_options opt = {.queue_max = 4};
    struct store *st = ts_store_open(&f->fx, "db", &opt, ts_clock);
    char path[128];
    int go, status, down = 0, ok = 0, early = 0;
    pid_t child;

    f->fx.store = st;
    snprintf(path, sizeof path, "%s/db", f->fx.dir);
    go = hold_writer(path, &child);
    for (int i = 0; i < 20; i++) {
        f->s.in_call = 1;
        assert_int_equal(store_set(st, "q", 1, "v", 1, 0, on_done, tag_for(f, i, 0)), 0);
        f->s.in_call = 0;
    }
    /* The refused ones come back while the thread is still stuck. */
    ts_run_until(f->fx.base, &f->s.calls, 15, 5000);
    early = f->s.calls;
    assert_true(early >= 15 && early <= 16); /* 4 queued, and maybe 1 taken by the thread */
    assert_int_equal(write(go, "g", 1), 1);
    close(go);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ts_run_until(f->fx.base, &f->s.calls, 20, 10000);
    assert_int_equal(f->s.calls, 20);
    for (int i = 0; i < 20; i++) {
        down += f->s.status[i] == STORE_EDOWN;
        ok += f->s.status[i] == STORE_OK;
    }
    assert_int_equal(down, early);
    assert_int_equal(ok + down, 20);
    assert_int_equal(f->s.inside, 0);
    assert_int_equal(f->s.off_loop, 0);
    /* The queue has room again. */
    f->s = (struct seen){0};
    assert_int_equal(store_set(st, "q", 1, "w", 1, 0, on_done, tag_for(f, 0, 0)), 0);
    ts_settle(f->fx.base, &f->s.calls);
    assert_int_equal(f->s.status[0], STORE_OK);
}

struct batch {
    int calls;
    long deleted;
    int more;
    int off_loop;
    int inside;
};

static void on_batch(void *arg, long deleted, int more)
{
    struct batch *b = arg;

    b->calls++;
    b->deleted = deleted;
    b->more = more;
    if (!pthread_equal(pthread_self(), loop_thread))
        b->off_loop++;
}

/* test_expire_on_thread - store_expire_start: the batch runs on the store's thread, after
 * the writes issued before it; its result comes from the loop */
static void test_expire_on_thread(void **state)
{
    struct fx *f = *state;
    struct store *st = ts_store_open(&f->fx, "db", NULL, ts_clock);
    struct batch b = {0};
    char key[16], err[256], uri[128];
    struct store *ro;

    f->fx.store = st;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "e%d", i);
        assert_int_equal(store_set(st, key, strlen(key), "v", 1, i < 60 ? 10 : 0, NULL, NULL), 0);
    }
    ts_now = T0 + 11;
    assert_int_equal(store_expire_start(st, ts_now, on_batch, &b), 0);
    assert_int_equal(b.calls, 0); /* never inside the call */
    ts_settle(f->fx.base, &b.calls);
    assert_int_equal(b.deleted, 60);
    assert_int_equal(b.more, 0);
    assert_int_equal(b.off_loop, 0);
    assert_int_equal(store_expire(st, ts_now), 0); /* nothing left */
    assert_int_equal(store_expire_start(st, ts_now, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    snprintf(uri, sizeof uri, "lmdb:%s/db", f->fx.dir);
    ro = store_open_readonly(uri, err, sizeof err);
    assert_non_null(ro);
    assert_int_equal(store_expire_start(ro, ts_now, on_batch, &b), -1);
    assert_int_equal(errno, EROFS);
    store_close(ro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_sees_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_on_thread, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
