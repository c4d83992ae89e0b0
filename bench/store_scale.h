/*
 * store_scale.h - what store_scale.c shares with its Redis half
 * (store_scale_redis.c): the records' keys and the Redis server's side.
 */
#ifndef MX_BENCH_STORE_SCALE_H
#define MX_BENCH_STORE_SCALE_H

#include <stddef.h>

#define TTL_SHORT 3600        /* the expiring half */
#define TTL_LONG (30 * 86400) /* the half that stays */

/* key_of - the i-th key of generation gen: triplets for i % 4 < 2, counters otherwise */
size_t key_of(unsigned long i, unsigned long gen, char *buf, size_t len);

/* rs_open - a plain (blocking) connection to the Redis server at UNIX socket path,
 * for what the store interface has no call for: filling, counting, memory.
 * Its database is emptied first. Exits on failure. */
void rs_open(const char *path);

/* rs_preload - records 0..n-1 of generation gen (only the expiring half if
 * only_expiring) in the store's Redis format, pipelined */
void rs_preload(unsigned long n, unsigned long gen, int only_expiring, const char *what);

/* rs_count - keys in the database; *mem gets Redis's used_memory (octets) */
unsigned long rs_count(size_t *mem);

/* rs_expire_at - the expiring half of generation gen expires at unix time t
 * (Redis keeps its own clock: this is how the bench moves it on) */
void rs_expire_at(unsigned long n, unsigned long gen, long long t);

#endif
