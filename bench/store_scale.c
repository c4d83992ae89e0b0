/*
 * store_scale.c - the LMDB state store with millions of greylist triplets and
 * rate counters: lookup latency under load, database size, the expiry
 * sweep's duration and its effect on the event loop, and whether the file
 * stays bounded when records expire and new ones arrive.
 *
 *   make -C build store_scale
 *   build/store_scale [-n RECORDS] [-s SECONDS] [-c CYCLES] [-d DIR]
 *
 * Records: half greylist triplets ("gl/<ip>/<sender>/<rcpt>", 16-octet
 * value), half rate counters ("rl/<ip>/<gen>"); half of each expire after an
 * hour, half after 30 days. They are preloaded straight into LMDB in the
 * store's format, 100,000 to a transaction, while the store is closed (the
 * store API writes one transaction per operation: 10 million of those is not
 * what this measures). Everything measured goes through the store API on one
 * event loop like mxgated's, with the loop's turns measured as in the daemon
 * (core/looptime.h): a load of 64 operations in flight (90% store_get, 10%
 * store_incr), then the clock (core/clock.h) is moved two hours on and the
 * expired half is removed while the load runs, as the store's own timer does
 * it: store_expire_start (one bounded batch, on the store's thread), again
 * 10 ms after its result while records remain; each batch is timed from its
 * start to its result (wall: it waits behind the load's operations on the
 * store's thread). The loop's turns (wall and CPU) are what the sweep must
 * not stretch.
 * Each cycle after that preloads as many new expiring records and sweeps
 * again: LMDB reuses freed pages, so the file should not grow.
 * The directory (default: a new one under /tmp) is removed at the end.
 *
 * With -r SOCKET the same runs against a Redis server (store_scale_redis.c):
 *   redis-server --port 0 --unixsocket /tmp/ss.sock --save '' --appendonly no
 *   build/store_scale -r /tmp/ss.sock -n 10000000
 * Its database is emptied first. Redis keeps its own clock and expires keys
 * itself, so a sweep gives the expiring half an expiry 10 s ahead (EXPIREAT)
 * and measures the load while Redis removes them; sizes are its used_memory.
 */
#include <event2/event.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/looptime.h"
#include "store/store.h"
#include "store_scale.h"

#define WINDOW 64          /* operations in flight */
#define LAT_MAX (1u << 24) /* latencies kept per phase */

static time_t now_offset;
static time_t bench_clock(void)
{
    return time(NULL) + now_offset;
}

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct bench {
    struct event_base *base;
    struct store *st;
    const char *dir;
    const char *redis; /* the Redis server's UNIX socket (-r), or NULL: LMDB in dir */
    unsigned long n;   /* records of the first fill */
    int running;       /* the load issues new operations */
    unsigned inflight;
    struct event *refill; /* issues the next operations on the following loop turn */
    double *lat;
    size_t nlat;
    unsigned long ops;
};

size_t key_of(unsigned long i, unsigned long gen, char *buf, size_t len)
{
    if (i % 4 < 2)
        return (size_t)snprintf(buf, len,
                                "gl/10.%lu.%lu.%lu/sender%lu@example%lu.test/rcpt%lu@example.test",
                                (i >> 16) & 255, (i >> 8) & 255, i & 255, i, gen, i % 1000);
    return (size_t)snprintf(buf, len, "rl/10.%lu.%lu.%lu/%lu/%lu", (i >> 16) & 255, (i >> 8) & 255,
                            i & 255, i, gen);
}

/* put_i64 - little-endian, as store_lmdb.c stores expiries and counters */
static void put_i64(unsigned char *p, int64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)((uint64_t)v >> (8 * k));
}

/* env_open - the environment itself, while the store is closed (or in a child) */
static MDB_env *env_open(const char *dir, unsigned flags, MDB_dbi *dbi, MDB_txn **txn)
{
    MDB_env *env;

    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 1) ||
        mdb_env_set_mapsize(env, (size_t)64 << 30) || mdb_env_open(env, dir, flags, 0600) ||
        mdb_txn_begin(env, NULL, flags & MDB_RDONLY, txn)) {
        fprintf(stderr, "store_scale: cannot open %s\n", dir);
        exit(1);
    }
    if (mdb_dbi_open(*txn, "mxgate", flags & MDB_RDONLY ? 0 : MDB_CREATE, dbi)) {
        fprintf(stderr, "store_scale: no database in %s\n", dir);
        exit(1);
    }
    return env;
}

/* count - records and file size; the records in a child process, since one
 * process must not open an environment twice (LMDB's locks are per process) */
static unsigned long count(const char *dir, off_t *size)
{
    char path[4096];
    struct stat sb;
    unsigned long n = 0;
    int fd[2];
    pid_t pid;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    *size = stat(path, &sb) == 0 ? sb.st_size : -1;
    if (pipe(fd) < 0 || (pid = fork()) < 0)
        return 0;
    if (pid == 0) {
        MDB_txn *t;
        MDB_dbi dbi;
        MDB_stat ms;
        MDB_env *env = env_open(dir, MDB_RDONLY | MDB_NOTLS, &dbi, &t);

        n = mdb_stat(t, dbi, &ms) == 0 ? ms.ms_entries : 0;
        if (write(fd[1], &n, sizeof(n)) != sizeof(n))
            _exit(1);
        mdb_txn_abort(t);
        mdb_env_close(env);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], &n, sizeof(n)) != sizeof(n))
        n = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return n;
}

/* preload - records of generation gen (only the expiring half if only_expiring)
 * straight into LMDB in the store's format: [8-octet expiry][payload] */
static void preload(struct bench *b, unsigned long gen, int only_expiring, const char *what)
{
    double t0 = mono();
    unsigned long done = 0, n;
    MDB_dbi dbi;
    MDB_txn *txn;
    MDB_env *env = env_open(b->dir, MDB_NOSYNC, &dbi, &txn);
    time_t now = bench_clock();
    off_t size;

    for (unsigned long i = 0; i < b->n; i++) {
        char key[160];
        unsigned char val[8 + 16] = {0};
        MDB_val k, v = {i % 4 < 2 ? 24 : 16, val};

        if (only_expiring && i % 2)
            continue;
        k.mv_size = key_of(i, gen, key, sizeof(key));
        k.mv_data = key;
        put_i64(val, now + (i % 2 ? TTL_LONG : TTL_SHORT));
        if (i % 4 < 2)
            memcpy(val + 8, "first-seen-pass", 16);
        else
            put_i64(val + 8, 1);
        if (mdb_put(txn, dbi, &k, &v, 0) ||
            (++done % 100000 == 0 && (mdb_txn_commit(txn) || mdb_txn_begin(env, NULL, 0, &txn)))) {
            fprintf(stderr, "store_scale: write failed\n");
            exit(1);
        }
    }
    mdb_txn_commit(txn);
    mdb_env_sync(env, 1);
    mdb_env_close(env);
    n = count(b->dir, &size);
    printf("%-26s %9lu written in %6.1f s (%7.0f/s); %9lu records, data.mdb %7.1f MiB\n", what,
           done, mono() - t0, done / (mono() - t0), n, size / 1048576.0);
    fflush(stdout);
}

static void issue(struct bench *b);

static void on_done(void *arg)
{
    struct bench *b = ((void **)arg)[0];
    double t0;

    memcpy(&t0, (char *)arg + sizeof(void *), sizeof(t0));
    free(arg);
    if (b->nlat < LAT_MAX)
        b->lat[b->nlat++] = mono() - t0;
    b->inflight--;
    b->ops++;
    /* Not from here, nor by event_active: what is activated while callbacks run
     * runs in the same turn, and the turn would never end. A timer waits for the
     * next one. */
    struct timeval zero = {0, 0};

    evtimer_add(b->refill, &zero);
}

static void on_get(void *arg, int status, const void *val, size_t vlen)
{
    on_done(arg);
}

static void on_incr(void *arg, int status, int64_t v)
{
    on_done(arg);
}

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
    issue(arg);
}

/* issue - keep WINDOW operations in flight: 90% lookups, 10% increments, on live keys */
static void issue(struct bench *b)
{
    while (b->running && b->inflight < WINDOW) {
        unsigned long i = ((unsigned long)random() % b->n) | 1;
        char key[160];
        size_t kl;
        void **arg = malloc(sizeof(void *) + sizeof(double));
        double t0 = mono();
        int incr = random() % 10 == 0;

        if (incr) /* a counter that lives long: i % 4 == 3 */
            i = i % 4 == 3 ? i : (i + 2 < b->n ? i + 2 : 3);
        kl = key_of(i, 0, key, sizeof(key));
        arg[0] = b;
        memcpy((char *)arg + sizeof(void *), &t0, sizeof(t0));
        b->inflight++;
        if ((incr ? store_incr(b->st, key, kl, 1, TTL_LONG, on_incr, arg)
                  : store_get(b->st, key, kl, on_get, arg)) < 0) {
            fprintf(stderr, "store_scale: operation refused\n");
            exit(1);
        }
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* report - latency percentiles of the phase, then forget them */
static void report(struct bench *b, const char *what, double secs)
{
    qsort(b->lat, b->nlat, sizeof(double), cmp_d);
    if (b->nlat)
        printf("%-26s %9lu ops in %6.1f s (%7.0f/s); latency p50 %6.1f us  p99 %7.1f us  "
               "max %8.1f us; longest loop turn %.1f ms (the most CPU in a turn %.1f ms)\n",
               what, b->ops, secs, b->ops / secs, b->lat[b->nlat / 2] * 1e6,
               b->lat[b->nlat * 99 / 100] * 1e6, b->lat[b->nlat - 1] * 1e6,
               looptime_max_usec() / 1000.0, looptime_max_cpu_usec() / 1000.0);
    fflush(stdout);
    b->nlat = 0;
    b->ops = 0;
}

struct phase {
    struct bench *b;
    double t0, until;      /* until: a fixed duration; 0: until the sweep is done */
    unsigned long want;    /* sweep: records to remove */
    unsigned long deleted; /* so far */
    unsigned batches;
    double batch_max; /* the longest batch, from its start to its result (seconds) */
    double posted;    /* when the batch under way started (mono) */
    double *wall;     /* every batch's seconds (for the percentiles) */
    size_t nwall, wallcap;
    unsigned long redis_stop; /* Redis: done when the keys are down to this ... */
    double redis_deadline;    /* ... or at this time (mono) */
    double done_at;
    struct event *tick;
};

static void phase_done(struct phase *p)
{
    p->done_at = mono();
    p->b->running = 0;
    event_del(p->tick);
}

/* on_batch - an expiry batch's result, from the loop: time it; the next in 10 ms */
static void on_batch(void *arg, long n, int more)
{
    struct phase *p = arg;
    struct timeval tv = {0, 10000};
    double w = mono() - p->posted;

    if (n < 0) {
        fprintf(stderr, "store_scale: expiry batch failed\n");
        exit(1);
    }
    p->deleted += (unsigned long)n;
    p->batches++;
    p->batch_max = w > p->batch_max ? w : p->batch_max;
    if (p->nwall == p->wallcap) {
        p->wallcap = p->wallcap ? 2 * p->wallcap : 4096;
        if (!(p->wall = realloc(p->wall, p->wallcap * sizeof(double))))
            abort();
    }
    p->wall[p->nwall++] = w;
    if (p->deleted < p->want)
        evtimer_add(p->tick, &tv);
    else
        phase_done(p);
}

/* on_tick - a timed phase: is it over? A sweep: one expiry batch, as the store's
 * own timer does it (store_expire_start, then again 10 ms after its result) */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct phase *p = arg;
    struct timeval retry = {0, 10000};

    if (p->until) {
        if (mono() < p->until)
            return;
    } else if (p->redis_stop) { /* Redis expires by itself: look how far it got */
        struct timeval look = {0, 250000};

        if (rs_count(NULL) > p->redis_stop && mono() < p->redis_deadline) {
            evtimer_add(p->tick, &look);
            return;
        }
    } else {
        p->posted = mono();
        if (store_expire_start(p->b->st, clock_now(), on_batch, p) < 0)
            evtimer_add(p->tick, &retry); /* the store's queue is full */
        return;
    }
    phase_done(p);
}

/* run_load - the load for secs, or (secs 0) until a sweep removed want records */
static double run_load(struct bench *b, double secs, struct phase *p)
{
    struct timeval tv = {0, secs ? 200000 : 10000};

    p->b = b;
    p->t0 = mono();
    p->until = secs ? mono() + secs : 0;
    p->tick = event_new(b->base, -1, secs ? EV_PERSIST : 0, on_tick, p);
    event_add(p->tick, &tv);
    looptime_watch(); /* the loop did not run between phases: no turn spans them */
    looptime_reset_max();
    b->running = 1;
    issue(b);
    while (b->running || b->inflight)
        event_base_loop(b->base, EVLOOP_ONCE);
    event_free(p->tick);
    return p->done_at - p->t0;
}

static int store_up(struct bench *b)
{
    struct store_options o = {.map_size = (size_t)1 << 30, .map_max = (size_t)64 << 30};
    char uri[4200], err[512];

    if (b->redis)
        snprintf(uri, sizeof(uri), "redis+unix://%s", b->redis);
    else
        snprintf(uri, sizeof(uri), "lmdb:%s", b->dir);
    if (!(b->st = store_open_opts(b->base, uri, &o, err, sizeof(err)))) {
        fprintf(stderr, "store_scale: %s\n", err);
        exit(1);
    }
    store_set_expire_interval(b->st, 0);
    return 0;
}

/* sweep - move the clock past the short TTL and let the store's timer remove them */
static void sweep(struct bench *b, const char *what)
{
    off_t size;
    unsigned long before = count(b->dir, &size), after;
    double secs;
    char label[64];

    struct phase p = {.want = before - b->n / 2};

    store_up(b);
    now_offset += 2 * TTL_SHORT;
    secs = run_load(b, 0, &p);
    store_close(b->st);
    snprintf(label, sizeof(label), "%s: load meanwhile", what);
    report(b, label, secs);
    after = count(b->dir, &size);
    qsort(p.wall, p.nwall, sizeof(double), cmp_d);
    printf("%-26s %9lu removed in %6.1f s (%7.0f/s) in %u batches on the store's thread, "
           "start to result p50 %.2f ms, p99 %.2f ms, the longest %.1f ms; %9lu records, "
           "data.mdb %7.1f MiB\n",
           what, before - after, secs, (before - after) / secs, p.batches,
           p.nwall ? p.wall[p.nwall / 2] * 1e3 : 0, p.nwall ? p.wall[p.nwall * 99 / 100] * 1e3 : 0,
           p.batch_max * 1e3, after, size / 1048576.0);
    free(p.wall);
    fflush(stdout);
}

/* sweep_redis - the expiring half of generation gen expires in 10 s (the time to set
 * it); the load runs until Redis has removed them (down to 5 % of the live keys left
 * over: its active expiry stops looking once under 10 % of what it samples has
 * expired) or for at most 3 minutes */
static void sweep_redis(struct bench *b, const char *what, unsigned long gen)
{
    size_t mem0, mem1;
    unsigned long live = b->n / 2, before = rs_count(&mem0), after;
    long long t = (long long)time(NULL) + 10;
    double t_mono = mono() + 10, secs;
    char label[64];
    struct phase p = {.redis_stop = live + live / 20};

    rs_expire_at(b->n, gen, t);
    p.redis_deadline = t_mono + 180;
    store_up(b);
    secs = run_load(b, 0, &p);
    store_close(b->st);
    snprintf(label, sizeof(label), "%s: load meanwhile", what);
    report(b, label, secs);
    after = rs_count(&mem1);
    secs = p.done_at - t_mono; /* from the expiry time on */
    printf("%-26s %9lu removed by Redis in %6.1f s after their expiry time (%7.0f/s), %lu "
           "expired keys left; used_memory %7.1f -> %7.1f MiB\n",
           what, before - after, secs, (before - after) / (secs > 0 ? secs : 1),
           after > live ? after - live : 0, mem0 / 1048576.0, mem1 / 1048576.0);
    fflush(stdout);
}

/* fill, sweep_any - the backend's own way */
static void fill(struct bench *b, unsigned long gen, int only_expiring, const char *what)
{
    if (b->redis)
        rs_preload(b->n, gen, only_expiring, what);
    else
        preload(b, gen, only_expiring, what);
}

static void sweep_any(struct bench *b, const char *what, unsigned long gen)
{
    if (b->redis)
        sweep_redis(b, what, gen);
    else
        sweep(b, what);
}

int main(int argc, char **argv)
{
    struct bench b = {.n = 10000000};
    double secs = 10;
    int cycles = 2, opt;
    char tmpl[] = "/tmp/store_scale.XXXXXX", path[4200];

    while ((opt = getopt(argc, argv, "n:s:c:d:r:")) != -1) {
        if (opt == 'n')
            b.n = strtoul(optarg, NULL, 10);
        else if (opt == 's')
            secs = atof(optarg);
        else if (opt == 'c')
            cycles = atoi(optarg);
        else if (opt == 'd')
            b.dir = optarg;
        else if (opt == 'r')
            b.redis = optarg;
        else {
            fprintf(stderr, "usage: store_scale [-n RECORDS] [-s SECONDS] [-c CYCLES] "
                            "[-d DIR | -r REDIS_SOCKET]\n");
            return 2;
        }
    }
    if (b.n < 8 || (!b.redis && !b.dir && !(b.dir = mkdtemp(tmpl)))) {
        fprintf(stderr, "store_scale: need -n 8 or more and a directory\n");
        return 1;
    }
    clock_set(bench_clock);
    b.base = event_base_new();
    b.lat = malloc(LAT_MAX * sizeof(double));
    b.refill = event_new(b.base, -1, 0, on_refill, &b);
    looptime_watch();
    if (b.redis)
        rs_open(b.redis);
    printf("store_scale: %lu records (half triplets, half counters; half expiring) in %s\n", b.n,
           b.redis ? b.redis : b.dir);
    fill(&b, 0, 0, "preload");
    store_up(&b);
    struct phase load = {0};

    report(&b, "load: 90% get, 10% incr", run_load(&b, secs, &load));
    store_close(b.st);
    sweep_any(&b, "sweep 1", 0);
    for (int c = 1; c <= cycles; c++) {
        char what[64];

        snprintf(what, sizeof(what), "refill %d (new keys)", c);
        fill(&b, (unsigned long)c, 1, what);
        snprintf(what, sizeof(what), "sweep %d", c + 1);
        sweep_any(&b, what, (unsigned long)c);
    }
    event_free(b.refill);
    event_base_free(b.base);
    if (b.dir == tmpl) { /* ours: the two files of the environment, then the directory */
        snprintf(path, sizeof(path), "%s/data.mdb", b.dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/lock.mdb", b.dir);
        unlink(path);
        rmdir(b.dir);
    }
    return 0;
}
