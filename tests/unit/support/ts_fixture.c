/* ts_fixture.c - loop, scratch directory, store and policy of a policy test */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "relay/routes.h"
#include "ts_fixture.h"
#include "ts_fs.h"

time_t ts_now;

time_t ts_clock(void)
{
    return ts_now;
}

int ts_fixture_init(struct ts_fixture *fx, const char *name)
{
    memset(fx, 0, sizeof(*fx));
    fx->base = event_base_new();
    if (!fx->base)
        return -1;
    if (ts_tmpdir_make(fx->dir, sizeof(fx->dir), name) < 0) {
        event_base_free(fx->base);
        fx->base = NULL;
        return -1;
    }
    return 0;
}

int ts_fixture_setup(void **state, const char *name)
{
    struct ts_fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || ts_fixture_init(fx, name) < 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

int ts_fixture_teardown(void **state)
{
    int rc = ts_fixture_free(*state);

    free(*state);
    return rc;
}

void ts_fixture_unload(struct ts_fixture *fx)
{
    policy_free(fx->pol);
    routes_free(fx->routes);
    config_free(fx->cfg);
    fx->pol = NULL;
    fx->routes = NULL;
    fx->cfg = NULL;
}

int ts_fixture_free(struct ts_fixture *fx)
{
    ts_fixture_unload(fx);
    stats_free(fx->stats);
    store_close(fx->store);
    fx->stats = NULL;
    fx->store = NULL;
    if (fx->base)
        event_base_free(fx->base);
    fx->base = NULL;
    clock_set(NULL);
    return ts_tmpdir_remove(fx->dir);
}

struct store *ts_store_open(struct ts_fixture *fx, const char *name,
                            const struct store_options *opt, clock_fn clock)
{
    char uri[128], err[256] = "";
    struct store *st;

    snprintf(uri, sizeof(uri), "lmdb:%s/%s", fx->dir, name);
    st = store_open_opts(fx->base, uri, opt, err, sizeof(err));
    if (!st)
        fail_msg("store_open %s: %s", uri, err);
    if (clock)
        clock_set(clock);
    return st;
}

/* on_deadline - ts_run_until's safety net went off */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    *(int *)arg = 1;
}

void ts_run_until(struct event_base *base, const int *count, int want, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    int expired = 0;
    struct event *t = evtimer_new(base, on_deadline, &expired);

    assert_non_null(t);
    evtimer_add(t, &tv);
    while (*count < want && !expired)
        assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0); /* the timer keeps it busy */
    event_free(t);
}

void ts_settle(struct event_base *base, const int *flag)
{
    ts_run_until(base, flag, 1, 10000);
    assert_true(*flag);
}

/* on_get - keep a copy: the value is valid only during the callback */
static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct ts_got *g = arg;

    g->done = 1;
    g->status = status;
    if (status != STORE_OK)
        return;
    g->vlen = vlen < sizeof(g->val) ? vlen : sizeof(g->val) - 1;
    memcpy(g->val, val, g->vlen);
    g->val[g->vlen] = '\0';
}

struct ts_got ts_store_get(struct event_base *base, struct store *st, const char *key)
{
    struct ts_got g;

    memset(&g, 0, sizeof(g));
    assert_int_equal(store_get(st, key, strlen(key), on_get, &g), 0);
    ts_settle(base, &g.done);
    return g;
}

/* on_key - collect one key, and its value when it is a counter */
static int on_key(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct ts_keys *k = arg;

    assert_true(k->n < TS_KEYS_MAX && keylen <= STORE_KEY_MAX);
    memcpy(k->key[k->n], key, keylen);
    k->key[k->n][keylen] = '\0';
    if (store_counter_decode(val, vlen, &k->value[k->n]) < 0)
        k->value[k->n] = -1;
    k->n++;
    return 0;
}

/* on_scanned - the scan is over */
static void on_scanned(void *arg, int status)
{
    struct ts_keys *k = arg;

    assert_int_equal(status, STORE_OK);
    k->done = 1;
}

void ts_store_scan(struct ts_fixture *fx, const char *prefix, struct ts_keys *k)
{
    memset(k, 0, sizeof(*k));
    assert_int_equal(store_scan_prefix(fx->store, prefix, strlen(prefix), on_key, on_scanned, k),
                     0);
    ts_settle(fx->base, &k->done);
}

int64_t ts_stats_sum(struct ts_fixture *fx, const char *name)
{
    static struct ts_keys k; /* too big for the stack of a sanitized build */
    size_t len = strlen(name);
    int64_t sum = 0;

    /* the keys are "stats:<bucket>:<name>": match the name after the last colon */
    ts_store_scan(fx, "stats:", &k);
    for (size_t i = 0; i < k.n; i++) {
        size_t kl = strlen(k.key[i]);
        if (kl > len && k.key[i][kl - len - 1] == ':' && strcmp(k.key[i] + kl - len, name) == 0 &&
            k.value[i] >= 0)
            sum += k.value[i];
    }
    return sum;
}

void ts_store_wipe(struct ts_fixture *fx, const char *prefix)
{
    static struct ts_keys k; /* too big for the stack of a sanitized build */

    ts_store_scan(fx, prefix, &k);
    for (size_t i = 0; i < k.n; i++)
        assert_int_equal(store_del(fx->store, k.key[i], strlen(k.key[i]), NULL, NULL), 0);
}
