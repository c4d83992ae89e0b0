/*
 * store_bench.c - greylist lookups per second through the store interface,
 * on LMDB and on Redis: the checks' own path (an asynchronous store_get of a
 * triplet key, the answer from the event loop), DEPTH lookups in flight as
 * concurrent sessions would have them.
 *
 *   store_bench URI [N [DEPTH]]     e.g. store_bench lmdb:/tmp/sb/db 200000 64
 *                                        store_bench redis+unix:///tmp/r.sock 200000 64
 *
 * It first writes 10,000 triplet records ("pass <time>", as greylist.c), then
 * looks up N keys among them (one in ten missing) and prints the rate.
 * Built on request: cmake --build build --target store_bench (bench/README.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "store/store.h"

#define RECORDS 10000

struct bench {
    struct store *st;
    long issued, done, n, found;
    int depth;
};

static void issue(struct bench *b);

static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    struct bench *b = arg;

    b->done++;
    b->found += status == STORE_OK;
    if (b->issued < b->n)
        issue(b);
}

static void triplet(char *key, size_t len, long i)
{
    snprintf(key, len, "gl:t:192.0.%ld.%ld/32:sender%ld@example.org:rcpt@example.test",
             (i / 256) % 256, i % 256, i);
}

static void issue(struct bench *b)
{
    char key[160];
    long i = b->issued++ % (RECORDS + RECORDS / 9); /* about one in ten is missing */

    triplet(key, sizeof(key), i);
    if (store_get(b->st, key, strlen(key), on_get, b) < 0) {
        perror("store_get");
        exit(1);
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct event_base *base = event_base_new();
    struct bench b = {0};
    char err[256], key[160];
    double t0, t;

    if (argc < 2) {
        fprintf(stderr, "usage: store_bench URI [N [DEPTH]]\n");
        return 2;
    }
    b.n = argc > 2 ? atol(argv[2]) : 200000;
    b.depth = argc > 3 ? atoi(argv[3]) : 64;
    if (!(b.st = store_open(base, argv[1], err, sizeof(err)))) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    for (long i = 0; i < RECORDS; i++) {
        triplet(key, sizeof(key), i);
        store_set(b.st, key, strlen(key), "pass 1700000000", 15, 86400, NULL, NULL);
    }
    event_base_loop(base, EVLOOP_NONBLOCK);
    t0 = now_s();
    for (int i = 0; i < b.depth && b.issued < b.n; i++)
        issue(&b);
    while (b.done < b.n)
        event_base_loop(base, EVLOOP_ONCE);
    t = now_s() - t0;
    printf("%s: %ld lookups (%ld found), %d in flight: %.0f lookups/s, %.1f us each\n", argv[1],
           b.n, b.found, b.depth, (double)b.n / t, t / (double)b.n * 1e6);
    store_close(b.st);
    event_base_free(base);
    return b.found > 0 ? 0 : 1;
}
