/* guard.c - failure counters and lock-outs for SMTP AUTH in the store */
#include "auth/guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authconf.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define GUARD_KEY_MAX 320

struct guard_job {
    guard_fn fn;
    void *arg; /* NULL fn once cancelled */
    struct store *st;
    unsigned pending;
    unsigned failures;
    int locked;
    unsigned max_failures, lockout;
    char lock_ip[GUARD_KEY_MAX], lock_login[GUARD_KEY_MAX];
};

/* guard_key - "<prefix><kind>:<value>" with the value lower-cased */
static size_t guard_key(char *dst, const char *prefix, const char *kind, const char *v)
{
    int n = snprintf(dst, GUARD_KEY_MAX, "%s%s:", prefix, kind);

    for (; v && *v && n < GUARD_KEY_MAX - 1; v++)
        dst[n++] = (char)(*v >= 'A' && *v <= 'Z' ? *v + 32 : *v);
    dst[n] = '\0';
    return (size_t)n;
}

/* guard_put - one operation finished (or the issuing did): the last one answers */
static struct guard_job *guard_put(struct guard_job *j)
{
    if (--j->pending > 0)
        return j;
    if (j->fn)
        j->fn(j->arg, j->failures, j->locked);
    free(j);
    return NULL;
}

static void guard_got(void *arg, int status, const void *val, size_t vlen)
{
    struct guard_job *j = arg;

    if (status == STORE_OK)
        j->locked = 1;
    guard_put(j);
}

static struct guard_job *guard_new(struct store *st, guard_fn fn, void *arg)
{
    struct guard_job *j = xcalloc(1, sizeof(*j));

    j->st = st;
    j->fn = fn;
    j->arg = arg;
    j->pending = 1; /* the issuing itself */
    return j;
}

struct guard_job *guard_check(struct store *st, const char *ip, const char *login, guard_fn fn,
                              void *arg)
{
    struct guard_job *j = guard_new(st, fn, arg);
    char key[GUARD_KEY_MAX];
    size_t n;

    n = guard_key(key, "authlock:", "ip", ip);
    j->pending++;
    if (store_get(st, key, n, guard_got, j) < 0)
        j->pending--;
    if (login) {
        n = guard_key(key, "authlock:", "login", login);
        j->pending++;
        if (store_get(st, key, n, guard_got, j) < 0)
            j->pending--;
    }
    return guard_put(j);
}

/* guard_counted - a failure counter's new value: at the limit, lock that key out */
static void guard_counted(struct guard_job *j, const char *lock, int status, int64_t value)
{
    if (status != STORE_OK)
        return;
    if (value > (int64_t)j->failures)
        j->failures = (unsigned)value;
    if (value >= (int64_t)j->max_failures && lock[0]) {
        j->locked = 1;
        store_set(j->st, lock, strlen(lock), "1", 1, j->lockout, NULL, NULL);
    }
}

static void guard_incr_ip(void *arg, int status, int64_t value)
{
    struct guard_job *j = arg;

    guard_counted(j, j->lock_ip, status, value);
    guard_put(j);
}

static void guard_incr_login(void *arg, int status, int64_t value)
{
    struct guard_job *j = arg;

    guard_counted(j, j->lock_login, status, value);
    guard_put(j);
}

struct guard_job *guard_fail(struct store *st, const struct authconf *ac, const char *ip,
                             const char *login, guard_fn fn, void *arg)
{
    struct guard_job *j = guard_new(st, fn, arg);
    char key[GUARD_KEY_MAX];
    size_t n;

    j->max_failures = ac->max_failures;
    j->lockout = ac->lockout;
    guard_key(j->lock_ip, "authlock:", "ip", ip);
    n = guard_key(key, "authfail:", "ip", ip);
    j->pending++;
    if (store_incr(st, key, n, 1, ac->failure_window, guard_incr_ip, j) < 0)
        j->pending--;
    if (login) {
        guard_key(j->lock_login, "authlock:", "login", login);
        n = guard_key(key, "authfail:", "login", login);
        j->pending++;
        if (store_incr(st, key, n, 1, ac->failure_window, guard_incr_login, j) < 0)
            j->pending--;
    }
    return guard_put(j);
}

void guard_cancel(struct guard_job *j)
{
    if (j)
        j->fn = NULL;
}
