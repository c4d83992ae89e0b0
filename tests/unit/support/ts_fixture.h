/* ts_fixture.h - what the policy tests run on: an event loop, a scratch
 * directory, an LMDB store with its statistics, the loaded configuration and
 * policy; and synchronous reads of the store for the assertions */
#ifndef TS_FIXTURE_H
#define TS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "core/clock.h"
#include "store/store.h"

struct ts_fixture {
    struct event_base *base;
    char dir[64];          /* removed with everything in it by ts_fixture_free */
    struct store *store;   /* NULL until a test opens one */
    struct stats *stats;   /* NULL until a test makes them */
    struct config *cfg;    /* of the last ts_policy_load */
    struct policy *pol;    /* likewise */
    struct routes *routes; /* the route table of cfg, when the test's env has none */
    char err[512];         /* for tests that keep the last load's message here */
};

/* ts_now - the time of the injected clock: tests set it, ts_clock reads it for
 * the store and the checks, so that TTLs and windows pass without waiting */
extern time_t ts_now;
/* ts_clock - a clock_fn (core/clock.h) answering ts_now */
time_t ts_clock(void);

/* ts_fixture_init - zero fx, a loop and /tmp/<name>.XXXXXX; 0, or -1 (nothing left behind) */
int ts_fixture_init(struct ts_fixture *fx, const char *name);
/* ts_fixture_setup / ts_fixture_teardown - cmocka setup and teardown of a
 * fixture of its own (on the heap) for each test */
int ts_fixture_setup(void **state, const char *name);
int ts_fixture_teardown(void **state);
/* ts_fixture_unload - drop the policy and configuration, ready for another load */
void ts_fixture_unload(struct ts_fixture *fx);
/* ts_fixture_free - unload, statistics, store, loop, directory; 0, or -1 if a file stayed */
int ts_fixture_free(struct ts_fixture *fx);

/* ts_store_open - "lmdb:<dir>/<name>" with opt (NULL: defaults); with clock (ts_clock)
 * the process clock is set to it (clock_set), for the store and every check, until
 * ts_fixture_free; fails the test when it cannot open */
struct store *ts_store_open(struct ts_fixture *fx, const char *name,
                            const struct store_options *opt, clock_fn clock);

/* ts_settle - run the loop until *flag is set, at most 10 s: an LMDB store
 * answers from its own thread, so a lost answer fails after the 10 s */
void ts_settle(struct event_base *base, const int *flag);
/* ts_run_until - run the loop until *count reaches want or ms passed (a
 * deadline, so that a broken check fails instead of hanging); asserts nothing
 * about *count, for tests that wait for something not to happen */
void ts_run_until(struct event_base *base, const int *count, int want, int ms);

struct ts_got {
    int done;
    int status;   /* STORE_OK, STORE_NOTFOUND, ... */
    size_t vlen;  /* of val, cut to fit */
    char val[80]; /* NUL-terminated */
};

/* ts_store_get - the record under key in st, read on base's loop to the end */
struct ts_got ts_store_get(struct event_base *base, struct store *st, const char *key);

#define TS_KEYS_MAX 64

struct ts_keys {
    int done;
    size_t n;
    char key[TS_KEYS_MAX][STORE_KEY_MAX + 1];
    int64_t value[TS_KEYS_MAX]; /* the counter's value, -1 when the record is no counter */
};

/* ts_store_scan - every record under prefix in fx->store, into k */
void ts_store_scan(struct ts_fixture *fx, const char *prefix, struct ts_keys *k);
/* ts_stats_sum - the statistics counter name, summed over its time buckets */
int64_t ts_stats_sum(struct ts_fixture *fx, const char *name);
/* ts_store_wipe - delete every record under prefix (tests share one store) */
void ts_store_wipe(struct ts_fixture *fx, const char *prefix);

#endif
