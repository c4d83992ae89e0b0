/*
 * store_redis_sync.c - the Redis backend's blocking side: mxgatectl's
 * read-only handle and the admin API's reads on the daemon's handle (short:
 * a GET, or a listing of the statistics). Its own connection, opened when
 * first needed, every command bounded by the store's timeout; a failure
 * drops it and the next call opens a new one.
 *
 * A listing is SCAN (MATCH prefix*, in steps) then MGET, sorted by key: it is
 * not one snapshot as LMDB's is; records written meanwhile may or may not
 * be in it.
 */
#include "store/store_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define RDS_SCAN_COUNT "5000" /* keys Redis looks at per step: fewer round trips */
#define RDS_MGET_BATCH 256

/* sync_ok - a command's reply, or NULL after dropping a connection that failed */
static redisReply *sync_cmd(struct rds *r, int argc, const char **argv, const size_t *len)
{
    redisReply *rep = redisCommandArgv(r->sync, argc, argv, len);

    if (!rep) {
        log_warn("event=store_error backend=redis server=%s error=%s", log_q(r->name),
                 log_q(r->sync->errstr[0] ? r->sync->errstr : "no reply"));
        rds_sync_close(r);
    }
    return rep;
}

/* sync_hello - AUTH and SELECT; 0 or -1 */
static int sync_hello(struct rds *r)
{
    char db[16];
    const char *argv[2];
    size_t len[2];
    redisReply *rep;
    int bad;

    for (int step = 0; step < 2; step++) {
        if (step == 0 && !r->uri.has_password)
            continue;
        if (step == 1 && !r->uri.db)
            continue;
        snprintf(db, sizeof(db), "%d", r->uri.db);
        argv[0] = step == 0 ? "AUTH" : "SELECT";
        argv[1] = step == 0 ? r->uri.password : db;
        len[0] = strlen(argv[0]);
        len[1] = strlen(argv[1]);
        if (!(rep = sync_cmd(r, 2, argv, len)))
            return -1;
        bad = rep->type == REDIS_REPLY_ERROR;
        if (bad)
            log_warn("event=store_error backend=redis server=%s error=%s", log_q(r->name),
                     log_q(rep->str));
        freeReplyObject(rep);
        if (bad) {
            rds_sync_close(r);
            return -1;
        }
    }
    return 0;
}

/* sync_open - the blocking connection; 0 or -1 (logged) */
static int sync_open(struct rds *r)
{
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};

    if (r->sync)
        return 0;
    r->sync = r->uri.path[0] ? redisConnectUnixWithTimeout(r->uri.path, tv)
                             : redisConnectWithTimeout(r->uri.host, r->uri.port, tv);
    if (!r->sync || r->sync->err) {
        log_warn("event=store_error backend=redis server=%s error=%s", log_q(r->name),
                 log_q(r->sync ? r->sync->errstr : "out of memory"));
        rds_sync_close(r);
        return -1;
    }
    redisSetTimeout(r->sync, tv);
    return sync_hello(r);
}

void rds_sync_close(struct rds *r)
{
    if (r->sync)
        redisFree(r->sync);
    r->sync = NULL;
}

int rds_sync_get(void *h, const void *key, size_t keylen, void **val, size_t *vlen)
{
    struct rds *r = h;
    struct rds_cmd cmd;
    redisReply *rep;
    unsigned char ctr[8];
    const void *v;
    int s;

    if (sync_open(r) < 0)
        return STORE_EDOWN;
    rds_cmd_get(&cmd, r->prefix, key, keylen);
    if (!(rep = sync_cmd(r, cmd.argc, cmd.argv, cmd.argvlen)))
        return STORE_EDOWN;
    s = rds_reply_get(rep, &v, vlen, ctr);
    if (s == STORE_OK) {
        *val = xmalloc(*vlen ? *vlen : 1);
        memcpy(*val, v, *vlen);
    }
    freeReplyObject(rep);
    return s;
}

/* The keys of a listing: each [size_t len][octets], for sorting. */
struct rds_keys {
    unsigned char **k;
    size_t n, cap;
};

int rds_key_cmp(const void *a, const void *b)
{
    const unsigned char *x = *(unsigned char *const *)a, *y = *(unsigned char *const *)b;
    size_t lx, ly;
    int c;

    memcpy(&lx, x, sizeof(lx));
    memcpy(&ly, y, sizeof(ly));
    c = memcmp(x + sizeof(lx), y + sizeof(ly), lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* keys_add - keep one key (as Redis named it, prefix included) */
static void keys_add(struct rds_keys *ks, const char *s, size_t n)
{
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? 2 * ks->cap : 256;
        ks->k = xrealloc(ks->k, ks->cap * sizeof(*ks->k));
    }
    ks->k[ks->n] = xmalloc(sizeof(n) + n);
    memcpy(ks->k[ks->n], &n, sizeof(n));
    memcpy(ks->k[ks->n] + sizeof(n), s, n);
    ks->n++;
}

static void keys_free(struct rds_keys *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->k[i]);
    free(ks->k);
}

/* sync_keys - every key under the pattern, by SCAN; STORE_OK or STORE_EDOWN/EIO */
static int sync_keys(struct rds *r, const char *match, struct rds_keys *ks)
{
    char cursor[32] = "0";
    const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", RDS_SCAN_COUNT};
    size_t len[6] = {4, 0, 5, strlen(match), 5, strlen(RDS_SCAN_COUNT)};
    redisReply *rep;

    do {
        len[1] = strlen(cursor);
        if (!(rep = sync_cmd(r, 6, argv, len)))
            return STORE_EDOWN;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            int s = rds_reply_error(rep);
            freeReplyObject(rep);
            return s;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements; i++)
            keys_add(ks, rep->element[1]->element[i]->str,
                     (size_t)rep->element[1]->element[i]->len);
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    if (ks->n > 1) /* qsort wants an array, even of nothing */
        qsort(ks->k, ks->n, sizeof(*ks->k), rds_key_cmp);
    return STORE_OK;
}

/* sync_batch - MGET keys [from, from+n) and call item; 1 when item stopped, 0, or -status */
static int sync_batch(struct rds *r, struct rds_keys *ks, size_t from, size_t n, store_scan_cb item,
                      void *arg)
{
    const char **argv = xcalloc(n + 1, sizeof(*argv));
    size_t *len = xcalloc(n + 1, sizeof(*len)), pl = strlen(r->prefix), kl;
    redisReply *rep;
    int rc = 0;

    argv[0] = "MGET";
    len[0] = 4;
    for (size_t i = 0; i < n; i++) {
        memcpy(&len[i + 1], ks->k[from + i], sizeof(size_t));
        argv[i + 1] = (const char *)ks->k[from + i] + sizeof(size_t);
    }
    rep = sync_cmd(r, (int)n + 1, argv, len);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
        rc = -rds_reply_error(rep);
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char ctr[8];
        const void *v;
        size_t vlen;
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING ||
            rds_value(e->str, (size_t)e->len, &v, &vlen, ctr) != STORE_OK)
            continue; /* gone since the SCAN, or not ours */
        kl = len[i + 1];
        if (kl <= pl)
            continue;
        rc = item(arg, argv[i + 1] + pl, kl - pl, v, vlen) ? 1 : 0;
    }
out:
    if (rep)
        freeReplyObject(rep);
    free(argv);
    free(len);
    return rc;
}

int rds_sync_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item, void *arg)
{
    struct rds *r = h;
    char match[2 * (RDS_PREFIX_MAX + STORE_KEY_MAX) + 2];
    struct rds_keys ks = {0};
    int s, rc = 0;

    if (sync_open(r) < 0)
        return STORE_EDOWN;
    rds_match(match, sizeof(match), r->prefix, prefix, plen);
    s = sync_keys(r, match, &ks);
    for (size_t i = 0; s == STORE_OK && rc == 0 && i < ks.n; i += RDS_MGET_BATCH) {
        size_t n = ks.n - i < RDS_MGET_BATCH ? ks.n - i : RDS_MGET_BATCH;
        rc = sync_batch(r, &ks, i, n, item, arg);
        if (rc < 0)
            s = -rc;
    }
    keys_free(&ks);
    return s;
}
