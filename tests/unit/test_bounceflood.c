/* test_bounceflood.c - the bounce_flood check through the real pipeline, a real LMDB
 * store and a real hook script (it appends its argument and environment to a file) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/config.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define T0 1700000000 /* the injected clock starts here (a multiple of every interval used) */
#define HOOK_LINES 16

struct ctx {
    struct ts_fixture fx;
    char hook[128];
    char out[128];
};

static struct ctx *C;

/* write_hook - the hook: one line "ARG EVENT COUNT" per run, after an optional sleep */
static void write_hook(void)
{
    FILE *f = fopen(C->hook, "w");

    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "[ -n \"$BF_TEST_SLEEP\" ] && sleep \"$BF_TEST_SLEEP\"\n"
            "echo \"$1 $MXGATE_EVENT $MXGATE_COUNT $#\" >> '%s'\n",
            C->out);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(C->hook, 0755), 0);
}

/* setup - loop, scratch directory, store on the fake clock, the hook script */
static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_bounceflood"), 0);
    snprintf(c.hook, sizeof(c.hook), "%s/hook.sh", c.fx.dir);
    snprintf(c.out, sizeof(c.out), "%s/hook.out", c.fx.dir);
    write_hook();
    c.fx.store = ts_store_open(&c.fx, "db", NULL, ts_clock);
    c.fx.stats = stats_new(c.fx.store);
    assert_non_null(c.fx.stats);
    clock_set(ts_clock);
    *state = &c;
    return 0;
}

/* teardown - free everything */
static int teardown(void **state)
{
    clock_set(NULL);
    ts_fixture_free(&C->fx);
    return 0;
}

/* spin - run the loop for ms milliseconds (timers: the window tick, the hook reaper) */
static void spin(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(C->fx.base, &tv);
    event_base_dispatch(C->fx.base);
}

/* try_load_checks - the listener runs checks (a config list body); the policy or NULL */
static struct policy *try_load_checks(const char *checks, const char *sections, char *err,
                                      size_t errlen)
{
    struct policy_env env = ts_env(&C->fx);
    char conf[4096];

    snprintf(conf, sizeof(conf), "listen mx { address = \"127.0.0.1:2525\"  checks = {%s} }\n%s",
             checks, sections);
    return ts_policy_load(&C->fx, conf, &env, err, errlen);
}

/* try_load - the listener runs bounce_flood alone */
static struct policy *try_load(const char *sections, char *err, size_t errlen)
{
    return try_load_checks("\"bounce_flood\"", sections, err, errlen);
}

/* wipe - forget the records and hook runs of earlier tests */
static void wipe(void)
{
    static struct ts_keys k;

    ts_store_wipe(&C->fx, "bf:");
    ts_store_wipe(&C->fx, "stats:");
    ts_store_scan(&C->fx, "bf:", &k);
    assert_int_equal(k.n, 0);
    unlink(C->out);
    unsetenv("BF_TEST_SLEEP");
}

/* load_checks - a fresh store state, the clock at T0, then the configuration, which must work */
static void load_checks(const char *checks, const char *sections)
{
    char err[256] = "";

    ts_fixture_unload(&C->fx);
    wipe();
    ts_now = T0;
    if (!try_load_checks(checks, sections, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
    spin(20); /* the check reads the state a previous run left */
}

/* load - bounce_flood alone */
static void load(const char *sections)
{
    load_checks("\"bounce_flood\"", sections);
}

/* judge - one RCPT through the pipeline: the deciding verdict */
static struct policy_verdict judge(const char *sender, const char *to)
{
    struct policy_client cl;

    ts_client(&cl, "192.0.2.1");
    cl.sender = sender;
    cl.rcpt = to;
    return ts_stage(&C->fx, POLICY_RCPT, &cl, 0).v;
}

/* rcpt - one RCPT through the pipeline; the check never has an opinion */
static void rcpt(const char *sender, const char *to)
{
    struct policy_verdict v = judge(sender, to);

    assert_int_equal(v.action, POLICY_DUNNO);
    assert_null(v.check);
}

/* bounces - n bounces (null sender) now */
static void bounces(int n)
{
    for (int i = 0; i < n; i++)
        rcpt("", "postmaster@example.test");
}

/* advance - move the clock on and let the window timer see it */
static void advance(int seconds)
{
    ts_now += seconds;
    spin(60);
}

/* hook_lines - the lines the hook wrote so far */
static size_t hook_lines(char lines[HOOK_LINES][64])
{
    FILE *f = fopen(C->out, "r");
    size_t n = 0;

    if (!f)
        return 0;
    while (n < HOOK_LINES && fgets(lines[n], 64, f)) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    fclose(f);
    return n;
}

/* wait_hook - until the hook ran n times in all (5 s at most), and was reaped */
static void wait_hook(size_t n, char lines[HOOK_LINES][64])
{
    for (int i = 0; i < 250 && hook_lines(lines) < n; i++)
        spin(20);
    assert_int_equal(hook_lines(lines), n);
    spin(250); /* the reaper looks every 100 ms */
}

/* assert_hook_count - the hook ran n times, no more (after giving a spawned one time to write) */
static void assert_hook_count(size_t n)
{
    char lines[HOOK_LINES][64];

    spin(150);
    assert_int_equal(hook_lines(lines), n);
}

/* assert_state - bf:state is "<word> <since>" */
static void assert_state(const char *word, long since)
{
    struct ts_got g = ts_store_get(C->fx.base, C->fx.store, "bf:state");
    char want[64];

    assert_int_equal(g.status, STORE_OK);
    snprintf(want, sizeof(want), "%s %ld", word, since);
    assert_string_equal(g.val, want);
}

/* window_count - the bf:n counter of the window starting at w, -1 when missing */
static int64_t window_count(long w)
{
    static struct ts_keys k;
    char key[64];

    ts_store_scan(&C->fx, "bf:n:", &k);
    snprintf(key, sizeof(key), "bf:n:%ld", w);
    for (size_t i = 0; i < k.n; i++)
        if (strcmp(k.key[i], key) == 0)
            return k.value[i];
    return -1;
}

/* sections - the bounce_flood section with the test hook */
static const char *sections(unsigned interval, unsigned start, unsigned stop, unsigned hold)
{
    static char s[512];

    snprintf(s, sizeof(s),
             "bounce_flood { interval = %u  start = %u  stop = %u  hold = %u  hook = \"%s\" }\n",
             interval, start, stop, hold, C->hook);
    return s;
}

/* ---------------------------------------------------------------------- */

/* test_below_start - counts just below start, in one window or spread, declare nothing */
static void test_below_start(void **state)
{
    char lines[HOOK_LINES][64];

    load(sections(10, 5, 1, 20));
    assert_state("normal", T0);
    bounces(4);
    assert_int_equal(window_count(T0), 4);
    advance(9);
    assert_hook_count(0);
    advance(1); /* the next window: its own count from zero */
    bounces(4);
    assert_int_equal(window_count(T0 + 10), 4);
    assert_hook_count(0);
    assert_state("normal", T0);
    assert_int_equal(ts_stats_sum(&C->fx, "bounce_flood.start"), 0);
    bounces(1); /* the fifth of this window: a flood, at once */
    wait_hook(1, lines);
    assert_string_equal(lines[0], "start start 5 1");
    assert_state("flood", T0 + 10);
    assert_int_equal(ts_stats_sum(&C->fx, "bounce_flood.start"), 1);
    bounces(10); /* more bounces in the flood: no second start */
    advance(10);
    bounces(7);
    spin(150);
    assert_int_equal(hook_lines(lines), 1);
    assert_int_equal(ts_stats_sum(&C->fx, "bounce_flood.start"), 1);
}

/* test_non_bounces_ignored - any amount of ordinary mail counts nothing */
static void test_non_bounces_ignored(void **state)
{
    load(sections(10, 3, 0, 10));
    for (int i = 0; i < 20; i++)
        rcpt("alice@client.test", "bob@example.test");
    assert_int_equal(window_count(T0), -1);
    assert_hook_count(0);
    assert_state("normal", T0);
    bounces(2);
    rcpt("carol@client.test", "bob@example.test");
    assert_int_equal(window_count(T0), 2);
    assert_hook_count(0);
}

/* test_hysteresis - the flood ends only after hold seconds of windows at or below stop */
static void test_hysteresis(void **state)
{
    char lines[HOOK_LINES][64];

    load(sections(10, 5, 1, 20));
    bounces(6);
    wait_hook(1, lines);
    assert_string_equal(lines[0], "start start 5 1"); /* declared at the fifth */
    advance(10);                                      /* the flood window ended with 6 */
    bounces(1);
    advance(10); /* one low window (10 s of 20) */
    bounces(2);
    advance(10); /* a window above stop: the low run starts again */
    bounces(1);
    advance(10); /* low: 10 s */
    assert_hook_count(1);
    assert_state("flood", T0);
    advance(10); /* low: 20 s = hold: over */
    wait_hook(2, lines);
    assert_string_equal(lines[1], "stop stop 0 1");
    assert_state("normal", T0 + 50);
    assert_int_equal(ts_stats_sum(&C->fx, "bounce_flood.stop"), 1);
    bounces(4); /* below start again: nothing */
    advance(10);
    spin(150);
    assert_int_equal(hook_lines(lines), 2);
}

/* test_counted_when_refused_later - listed first, it counts bounces a later check refuses;
 * listed after the refusing check it never sees them (why the order matters) */
static void test_counted_when_refused_later(void **state)
{
    char conf[1200], path[128], lines[HOOK_LINES][64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/rcpt.access", C->fx.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "@example.test deny Invalid or missing bounce address tag (BATV)\n");
    assert_int_equal(fclose(f), 0);
    snprintf(conf, sizeof(conf), "access { rcpt = \"%s\" }\n%s", path, sections(10, 3, 0, 10));
    load_checks("\"bounce_flood\", \"access\"", conf);
    for (int i = 0; i < 3; i++) {
        struct policy_verdict v = judge("", "user@example.test");
        assert_int_equal(v.action, POLICY_REJECT);
        assert_string_equal(v.check, "access");
    }
    wait_hook(1, lines);
    assert_string_equal(lines[0], "start start 3 1");
    assert_int_equal(window_count(T0), 3);

    load_checks("\"access\", \"bounce_flood\"", conf); /* access first */
    for (int i = 0; i < 5; i++)
        assert_int_equal(judge("", "user@example.test").action, POLICY_REJECT);
    assert_int_equal(window_count(T0), -1);
    assert_hook_count(0);
}

/* test_ends_in_silence - no mail at all: the window timer alone ends the flood */
static void test_ends_in_silence(void **state)
{
    char lines[HOOK_LINES][64];

    load(sections(5, 3, 0, 10));
    bounces(3);
    wait_hook(1, lines);
    assert_string_equal(lines[0], "start start 3 1");
    advance(5); /* the flood window ended */
    advance(5); /* 5 s of silence */
    assert_hook_count(1);
    advance(5); /* 10 s: over, without a single message */
    wait_hook(2, lines);
    assert_string_equal(lines[1], "stop stop 0 1");
    assert_state("normal", T0 + 15);
}

/* test_long_gap - the clock jumps over many windows (a suspended host): they were empty */
static void test_long_gap(void **state)
{
    char lines[HOOK_LINES][64];

    load(sections(10, 2, 0, 300));
    bounces(2);
    wait_hook(1, lines);
    advance(10); /* the flood window ended with 2 */
    advance(3600);
    wait_hook(2, lines);
    assert_string_equal(lines[1], "stop stop 0 1");
}

/* test_resume_after_restart - a flood recorded by an earlier run still gets its stop hook */
static void test_resume_after_restart(void **state)
{
    char lines[HOOK_LINES][64], err[256];

    load(sections(10, 5, 1, 20));
    bounces(5);
    wait_hook(1, lines);
    assert_state("flood", T0);
    ts_fixture_unload(&C->fx); /* the daemon stops during the flood ... */
    ts_now = T0 + 30;
    assert_non_null(try_load(sections(10, 5, 1, 20), err, sizeof(err))); /* ... and returns */
    spin(20);
    assert_hook_count(1); /* no second start */
    assert_state("flood", T0);
    advance(10);
    assert_hook_count(1);
    advance(10);
    wait_hook(2, lines);
    assert_string_equal(lines[1], "stop stop 0 1");
    assert_state("normal", T0 + 50);
}

/* test_hooks_serialised - one hook at a time; a stop and a start that wait cancel out */
static void test_hooks_serialised(void **state)
{
    char lines[HOOK_LINES][64];

    load(sections(1, 2, 0, 0));
    setenv("BF_TEST_SLEEP", "1", 1); /* the daemon's environment reaches the hook */
    bounces(2);                      /* start: the hook runs for a second */
    advance(1);                      /* the flood window ended with 2 */
    advance(1);                      /* an empty window ends it: stop waits */
    assert_state("normal", T0 + 2);
    bounces(2); /* a new flood: start would wait too; the two cancel out */
    assert_state("flood", T0 + 2);
    wait_hook(1, lines);
    assert_string_equal(lines[0], "start start 2 1");
    spin(1300);
    assert_int_equal(hook_lines(lines), 1); /* nothing ran after it */
    unsetenv("BF_TEST_SLEEP");
    advance(1);
    advance(1);
    wait_hook(2, lines);
    assert_string_equal(lines[1], "stop stop 0 1");
    assert_int_equal(ts_stats_sum(&C->fx, "bounce_flood.start"), 2);
    assert_int_equal(ts_stats_sum(&C->fx, "bounce_flood.stop"), 2);
}

/* test_no_hook - without a hook the transitions are still recorded */
static void test_no_hook(void **state)
{
    load("bounce_flood { interval = 10  start = 2  stop = 0  hold = 10 }\n");
    bounces(2);
    assert_state("flood", T0);
    advance(10);
    advance(10);
    assert_state("normal", T0 + 20);
    assert_hook_count(0);
}

/* test_defaults - a listener naming the check without a section gets the documented defaults */
static void test_defaults(void **state)
{
    load("");
    bounces(99);
    assert_state("normal", T0);
    bounces(1); /* start = 100 */
    assert_state("flood", T0);
}

/* test_init_errors - a missing or unusable hook, thresholds that make no sense */
static void test_init_errors(void **state)
{
    char err[512], conf[300];

    snprintf(conf, sizeof(conf), "bounce_flood { hook = \"%s/missing\" }\n", C->fx.dir);
    assert_null(try_load(conf, err, sizeof(err)));
    assert_non_null(strstr(err, "mxgate.conf:2: bounce_flood: hook"));
    assert_non_null(strstr(err, "No such file or directory"));
    snprintf(conf, sizeof(conf), "bounce_flood { hook = \"%s\" }\n", C->fx.dir);
    assert_null(try_load(conf, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(chmod(C->hook, 0644), 0);
    assert_null(try_load(sections(10, 5, 1, 20), err, sizeof(err)));
    assert_non_null(strstr(err, "Permission denied"));
    assert_int_equal(chmod(C->hook, 0755), 0);
    assert_null(try_load(sections(10, 5, 5, 20), err, sizeof(err)));
    assert_non_null(strstr(err, "stop (5) must be below start (5)"));
    assert_null(try_load(sections(0, 5, 1, 20), err, sizeof(err)));
    assert_non_null(strstr(err, "interval must be between 1 and 86400"));
    assert_null(try_load("bounce_flood { start = 0 }\n", err, sizeof(err)));
    assert_non_null(strstr(err, "start must be between"));
    assert_null(try_load("bounce_flood { hold = -1 }\n", err, sizeof(err)));
    assert_non_null(strstr(err, "hold must be between"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_below_start),
        cmocka_unit_test(test_non_bounces_ignored),
        cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_ends_in_silence),
        cmocka_unit_test(test_long_gap),
        cmocka_unit_test(test_resume_after_restart),
        cmocka_unit_test(test_hooks_serialised),
        cmocka_unit_test(test_no_hook),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_counted_when_refused_later),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
