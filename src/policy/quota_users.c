/*
 * quota_users.c - the operator's view of the quotas: each login with a record
 * (first seen, a suspension, counters), its usage of the configured windows
 * in the current window of each, refusals today. Reads the store
 * synchronously (mxgatectl's read-only handle, or the daemon's for the HTTP
 * API); the records of one login are contiguous (quota.h).
 */
#include "policy/quota.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/stats.h"
#include "store/store.h"

#define QU_RAW_MAX 64

/* What one login's records said, before the limits are laid over them. */
struct qu_scan {
    struct quota_limits lim;
    time_t now;
    void (*fn)(const struct quota_user *u, void *arg);
    void *arg;
    int have;
    char login[QUOTA_LOGIN_MAX + 1];
    long long seen, sus, hits;
    int suspended;
    size_t nraw;
    struct {
        char kind;
        unsigned secs;
        long long count;
    } raw[QU_RAW_MAX];
};

/* qu_count - the current window's count of kind/secs, 0 when none */
static long long qu_count(const struct qu_scan *s, char kind, unsigned secs)
{
    for (size_t i = 0; i < s->nraw; i++)
        if (s->raw[i].kind == kind && s->raw[i].secs == secs)
            return s->raw[i].count;
    return 0;
}

/* qu_emit - the login gathered so far, with its windows, to fn */
static void qu_emit(struct qu_scan *s)
{
    struct quota_window w[2 * QUOTA_WINDOWS_MAX];
    struct quota_user u = {0};
    time_t created;
    size_t n;

    if (!s->have)
        return;
    u.login = s->login;
    u.suspended = s->suspended;
    u.suspended_since = s->sus;
    u.first_seen = s->seen;
    u.hits = s->hits;
    if (quota_created(s->login, &created) < 0)
        created = s->seen ? (time_t)s->seen : s->now;
    u.fresh = s->lim.nfresh > 0 && s->now - created < (time_t)s->lim.new_days * 86400;
    n = quota_effective(&s->lim, u.fresh, w);
    for (size_t i = 0; i < n; i++)
        u.use[u.nuse++] =
            (struct quota_use){'m', w[i].secs, w[i].limit, qu_count(s, 'm', w[i].secs)};
    for (size_t i = 0; i < s->lim.nrcpt; i++)
        u.use[u.nuse++] = (struct quota_use){'r', s->lim.rcpt[i].secs, s->lim.rcpt[i].limit,
                                             qu_count(s, 'r', s->lim.rcpt[i].secs)};
    s->fn(&u, s->arg);
    s->have = 0;
}

/* qu_value - a record's value as a number */
static long long qu_value(const void *val, size_t vlen)
{
    char buf[32];
    int64_t c;

    if (store_counter_decode(val, vlen, &c) == 0)
        return (long long)c;
    if (vlen >= sizeof(buf))
        return 0;
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    return strtoll(buf, NULL, 10);
}

/* qu_record - one record of a login: keep what the current windows and flags say */
static void qu_record(struct qu_scan *s, const char *suffix, long long v)
{
    unsigned secs;
    long long win;
    char kind;

    if (strcmp(suffix, "seen") == 0) {
        s->seen = v;
    } else if (strcmp(suffix, "sus") == 0) {
        s->suspended = 1;
        s->sus = v;
    } else if (sscanf(suffix, "hit:%lld", &win) == 1) {
        if (win == (long long)(s->now / QUOTA_HIT_WINDOW))
            s->hits = v;
    } else if (sscanf(suffix, "%c:%u:%lld", &kind, &secs, &win) == 3 && secs > 0 &&
               (kind == 'm' || kind == 'r') && win == (long long)(s->now / (time_t)secs) &&
               s->nraw < QU_RAW_MAX) {
        s->raw[s->nraw].kind = kind;
        s->raw[s->nraw].secs = secs;
        s->raw[s->nraw++].count = v;
    }
}

/* qu_item - a record under q:: a new login emits the previous one */
static int qu_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct qu_scan *s = arg;
    const char *k = key, *nul;
    char suffix[64];
    size_t ll;

    if (keylen < 4 || !(nul = memchr(k + 2, '\0', keylen - 2)))
        return 0;
    ll = (size_t)(nul - (k + 2));
    if (ll == 0 || ll > QUOTA_LOGIN_MAX || keylen - ll - 3 >= sizeof(suffix))
        return 0;
    if (!s->have || strlen(s->login) != ll || memcmp(s->login, k + 2, ll) != 0) {
        qu_emit(s);
        memcpy(s->login, k + 2, ll);
        s->login[ll] = '\0';
        s->seen = s->sus = s->hits = 0;
        s->suspended = 0;
        s->nraw = 0;
        s->have = 1;
    }
    memcpy(suffix, nul + 1, keylen - ll - 3);
    suffix[keylen - ll - 3] = '\0';
    qu_record(s, suffix, qu_value(val, vlen));
    return 0;
}

int quota_users_each(const struct config *cfg, struct store *st, time_t now, const char *only,
                     void (*fn)(const struct quota_user *u, void *arg), void *arg)
{
    struct qu_scan *s = xcalloc(1, sizeof(*s));
    char prefix[QUOTA_KEY_MAX];
    size_t plen = sizeof(QUOTA_PREFIX) - 1;
    int rc;

    quota_limits_read(cfg, &s->lim);
    s->now = now;
    s->fn = fn;
    s->arg = arg;
    memcpy(prefix, QUOTA_PREFIX, plen);
    if (only && !(plen = quota_key(prefix, sizeof(prefix), only, ""))) {
        free(s);
        return 0;
    }
    rc = store_sync_scan_prefix(st, prefix, plen, qu_item, s);
    if (rc == STORE_OK)
        qu_emit(s);
    free(s);
    return rc == STORE_OK ? 0 : -1;
}

/* qu_json - one user as an object of the array */
static void qu_json(const struct quota_user *u, void *arg)
{
    struct json *j = arg;

    json_obj_begin(j);
    json_kstr(j, "login", u->login);
    json_key(j, "suspended");
    json_bool(j, u->suspended);
    json_kint(j, "suspended_since", u->suspended_since);
    json_kint(j, "first_seen", u->first_seen);
    json_key(j, "new");
    json_bool(j, u->fresh);
    json_kint(j, "refusals_today", u->hits);
    json_key(j, "windows");
    json_arr_begin(j);
    for (size_t i = 0; i < u->nuse; i++) {
        json_obj_begin(j);
        json_kstr(j, "kind", u->use[i].kind == 'm' ? "messages" : "recipients");
        json_kint(j, "seconds", u->use[i].secs);
        json_kint(j, "limit", u->use[i].limit);
        json_kint(j, "count", u->use[i].count);
        json_key(j, "exhausted");
        json_bool(j, u->use[i].count >= (long long)u->use[i].limit);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

int quota_users_json(const struct config *cfg, struct store *st, time_t now, struct json *j)
{
    int rc;

    json_obj_begin(j);
    json_key(j, "users");
    json_arr_begin(j);
    rc = quota_users_each(cfg, st, now, NULL, qu_json, j);
    json_arr_end(j);
    json_obj_end(j);
    return rc;
}

int quota_set_suspended(struct store *st, const char *login, int on, time_t now)
{
    char key[QUOTA_KEY_MAX], val[32], hit[48];
    size_t kl;
    int rc;
    struct stats *stats;

    if (!quota_login_ok(login) || !(kl = quota_key(key, sizeof(key), login, "sus"))) {
        errno = EINVAL;
        return -1;
    }
    if (on) {
        int vl = quota_suspend_value(val, sizeof(val), now);
        rc = store_set(st, key, kl, val, (size_t)vl, 0, NULL, NULL);
    } else {
        rc = store_del(st, key, kl, NULL, NULL);
        /* today's refusals start again: a second break-in runs the hook again */
        snprintf(hit, sizeof(hit), "hit:%lld", (long long)(now / QUOTA_HIT_WINDOW));
        if (rc == 0 && (kl = quota_key(key, sizeof(key), login, hit)))
            store_del(st, key, kl, NULL, NULL);
    }
    if (rc < 0)
        return -1;
    stats = stats_new(st);
    stats_count(stats, on ? "quota.suspend" : "quota.resume");
    stats_free(stats);
    log_info("event=quota login=%s action=%s", log_q(login), on ? "suspend" : "resume");
    return 0;
}
