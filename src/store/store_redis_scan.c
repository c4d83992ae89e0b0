/*
 * store_redis_scan.c - the Redis backend's asynchronous listing: SCAN in
 * steps on the shared connection, then MGET in batches, then the records
 * sorted by key into one completion of the front end. Like the blocking
 * listing, not one snapshot: records written meanwhile may or may not be in it.
 */
#include "store/store_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/xmalloc.h"

#define RDS_MGET_BATCH 256

struct rds_scan {
    struct rds *r;
    struct store_op *op;
    char match[2 * (RDS_PREFIX_MAX + STORE_KEY_MAX) + 2];
    char cursor[32];
    unsigned char **k;   /* keys as [size_t len][octets], prefix included */
    size_t n, cap, next; /* next: the first key of the next MGET */
    int status;
};

static void scan_step(struct rds_scan *sc);
static void mget_step(struct rds_scan *sc);

/* scan_end - queue the completion and forget the scan */
static void scan_end(struct rds_scan *sc, int status)
{
    store_op_queue(sc->r->st, sc->op, status, 0);
    for (size_t i = 0; i < sc->n; i++)
        free(sc->k[i]);
    free(sc->k);
    free(sc);
}

/* on_scan - one SCAN step answered: keep its keys, go on or fetch the values */
static void on_scan(void *arg, struct redisReply *rep)
{
    struct rds_scan *sc = arg;

    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY) {
        scan_end(sc, rds_reply_error(rep));
        return;
    }
    snprintf(sc->cursor, sizeof(sc->cursor), "%s", rep->element[0]->str);
    for (size_t i = 0; i < rep->element[1]->elements; i++) {
        size_t n = (size_t)rep->element[1]->element[i]->len;
        if (sc->n == sc->cap) {
            sc->cap = sc->cap ? 2 * sc->cap : 256;
            sc->k = xrealloc(sc->k, sc->cap * sizeof(*sc->k));
        }
        sc->k[sc->n] = xmalloc(sizeof(n) + n);
        memcpy(sc->k[sc->n], &n, sizeof(n));
        memcpy(sc->k[sc->n] + sizeof(n), rep->element[1]->element[i]->str, n);
        sc->n++;
    }
    if (strcmp(sc->cursor, "0") != 0) {
        scan_step(sc);
        return;
    }
    if (sc->n > 1) /* qsort wants an array, even of nothing */
        qsort(sc->k, sc->n, sizeof(*sc->k), rds_key_cmp);
    mget_step(sc);
}

static void scan_step(struct rds_scan *sc)
{
    const char *argv[6] = {"SCAN", sc->cursor, "MATCH", sc->match, "COUNT", "1000"};
    size_t len[6] = {4, strlen(sc->cursor), 5, strlen(sc->match), 5, 4};

    rds_send(sc->r, 6, argv, len, on_scan, sc);
}

/* on_mget - a batch of values: add the live ones of ours to the completion */
static void on_mget(void *arg, struct redisReply *rep)
{
    struct rds_scan *sc = arg;
    size_t pl = strlen(sc->r->prefix), from = sc->next - (rep ? rep->elements : 0);

    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        scan_end(sc, rds_reply_error(rep));
        return;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        unsigned char ctr[8];
        const void *v;
        size_t vlen, kl;
        if (e->type != REDIS_REPLY_STRING ||
            rds_value(e->str, (size_t)e->len, &v, &vlen, ctr) != STORE_OK)
            continue;
        memcpy(&kl, sc->k[from + i], sizeof(kl));
        if (kl <= pl)
            continue;
        if (store_op_scan_add(sc->op, sc->k[from + i] + sizeof(kl) + pl, kl - pl, v, vlen) !=
            STORE_OK) {
            scan_end(sc, STORE_ELIMIT);
            return;
        }
    }
    mget_step(sc);
}

static void mget_step(struct rds_scan *sc)
{
    size_t n = sc->n - sc->next < RDS_MGET_BATCH ? sc->n - sc->next : RDS_MGET_BATCH;
    const char *argv[RDS_MGET_BATCH + 1];
    size_t len[RDS_MGET_BATCH + 1];

    if (n == 0) {
        scan_end(sc, STORE_OK);
        return;
    }
    argv[0] = "MGET";
    len[0] = 4;
    for (size_t i = 0; i < n; i++) {
        memcpy(&len[i + 1], sc->k[sc->next + i], sizeof(size_t));
        argv[i + 1] = (const char *)sc->k[sc->next + i] + sizeof(size_t);
    }
    sc->next += n;
    rds_send(sc->r, (int)n + 1, argv, len, on_mget, sc);
}

int rds_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item,
                    store_done_cb done, void *arg)
{
    struct rds *r = h;
    struct rds_scan *sc = xcalloc(1, sizeof(*sc));

    sc->r = r;
    sc->op = store_op_scan(r->st, item, done, arg);
    strcpy(sc->cursor, "0");
    rds_match(sc->match, sizeof(sc->match), r->prefix, prefix, plen);
    scan_step(sc);
    return 0;
}
