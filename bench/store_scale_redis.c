/*
 * store_scale_redis.c - store_scale's Redis half: the records are written,
 * counted and given their expiry over a plain hiredis connection of the
 * bench's own, pipelined (10 million SETs one at a time through the store
 * would measure the round trip, not the store), in the format store_redis
 * uses: the "mxgate:" prefix, a triplet's value behind its 'v' octet, a
 * counter as Redis's own integer.
 */
#include "store_scale.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define PIPE 1000 /* commands in flight on the plain connection */

static redisContext *rs;

/* rs_reply - one reply, which must not be an error */
static void rs_reply(void)
{
    redisReply *r = NULL;

    if (redisGetReply(rs, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "store_scale: redis: %s\n", r ? r->str : rs->errstr);
        exit(1);
    }
    freeReplyObject(r);
}

/* rs_flush - read the replies of the queued commands */
static void rs_flush(unsigned long *queued)
{
    for (; *queued; (*queued)--)
        rs_reply();
}

void rs_open(const char *path)
{
    rs = redisConnectUnix(path);
    if (!rs || rs->err) {
        fprintf(stderr, "store_scale: redis at %s: %s\n", path, rs ? rs->errstr : "no memory");
        exit(1);
    }
    redisAppendCommand(rs, "FLUSHDB");
    rs_reply();
}

void rs_preload(unsigned long n, unsigned long gen, int only_expiring, const char *what)
{
    struct timespec t0, t1;
    unsigned long queued = 0, done = 0;
    size_t mem;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long i = 0; i < n; i++) {
        char key[200];
        size_t kl;

        if (only_expiring && i % 2)
            continue;
        memcpy(key, "mxgate:", 7);
        kl = 7 + key_of(i, gen, key + 7, sizeof(key) - 7);
        if (i % 4 < 2)
            redisAppendCommand(rs, "SET %b %b EX %d", key, kl, "vfirst-seen-pass", (size_t)16,
                               i % 2 ? TTL_LONG : TTL_SHORT);
        else
            redisAppendCommand(rs, "SET %b 1 EX %d", key, kl, i % 2 ? TTL_LONG : TTL_SHORT);
        done++;
        if (++queued == PIPE)
            rs_flush(&queued);
    }
    rs_flush(&queued);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    unsigned long keys = rs_count(&mem);
    printf("%-26s %9lu written in %6.1f s (%7.0f/s); %9lu keys, used_memory %7.1f MiB\n", what,
           done, secs, done / secs, keys, mem / 1048576.0);
    fflush(stdout);
}

unsigned long rs_count(size_t *mem)
{
    redisReply *r = redisCommand(rs, "DBSIZE");
    unsigned long n = r && r->type == REDIS_REPLY_INTEGER ? (unsigned long)r->integer : 0;
    const char *m;

    freeReplyObject(r);
    if (!mem)
        return n;
    r = redisCommand(rs, "INFO memory");
    m = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    *mem = m ? strtoull(m + 12, NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

void rs_expire_at(unsigned long n, unsigned long gen, long long t)
{
    unsigned long queued = 0;

    for (unsigned long i = 0; i < n; i += 2) {
        char key[200];
        size_t kl;

        memcpy(key, "mxgate:", 7);
        kl = 7 + key_of(i, gen, key + 7, sizeof(key) - 7);
        redisAppendCommand(rs, "EXPIREAT %b %lld", key, kl, t);
        if (++queued == PIPE)
            rs_flush(&queued);
    }
    rs_flush(&queued);
}
