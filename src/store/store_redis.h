/*
 * store_redis.h - what the Redis backend's files share (store_redis.c: the
 * connection and the single-key operations; store_redis_scan.c: listings;
 * store_redis_sync.c: the blocking connection of tools and the admin API).
 */
#ifndef MX_STORE_REDIS_H
#define MX_STORE_REDIS_H

#include <stddef.h>

#include "store/store_backend.h"
#include "store/store_redis_cmd.h"

struct redisReply;
struct redisContext;

/* The command's callback: reply is NULL when the connection went away or timed out. */
typedef void (*rds_reply_fn)(void *req_arg, struct redisReply *reply);

struct rds {
    struct store *st;
    struct event_base *base; /* NULL for a read-only (tools) handle */
    struct rds_uri uri;
    char name[RDS_HOST_MAX + 32]; /* the server, for log lines */
    char prefix[RDS_PREFIX_MAX + 1];
    unsigned timeout_ms;
    struct rds_conn *conn;     /* the asynchronous connection (store_redis.c) */
    struct redisContext *sync; /* the blocking one, opened when first needed */
};

/* rds_send - send argv, calling fn(req_arg, reply) later from the loop; a store that is down
 * calls fn(req_arg, NULL) from the loop too (never from inside rds_send) */
void rds_send(struct rds *r, int argc, const char **argv, const size_t *argvlen, rds_reply_fn fn,
              void *req_arg);

/* rds_scan_prefix - the backend's asynchronous scan (store_redis_scan.c) */
int rds_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item,
                    store_done_cb done, void *arg);

/* The blocking side (store_redis_sync.c). */
int rds_sync_get(void *h, const void *key, size_t keylen, void **val, size_t *vlen);
int rds_sync_scan_prefix(void *h, const void *prefix, size_t plen, store_scan_cb item, void *arg);
void rds_sync_close(struct rds *r);

/* rds_key_cmp - qsort order of keys held as [size_t len][octets] */
int rds_key_cmp(const void *a, const void *b);

#endif
