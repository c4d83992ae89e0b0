/* test_quota.c - the quota check through the real pipeline on a real LMDB store, with
 * the injected clock (exact window edges) and a real hook script */
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
#include "auth/users.h"
#include "core/json.h"
#include "policy/checks.h"
#include "policy/policy.h"
#include "policy/quota.h"
#include "policy/stats.h"
#include "store/store.h"
#include "ts_fixture.h"
#include "ts_policy.h"

#define T0 1700006400 /* a multiple of 86400: every window starts here */
#define DAY 86400

struct ctx {
    struct ts_fixture fx;
    char hook[128], out[128];
    int nstores;
};

static struct ctx *C;

/* write_hook - one line "ARGC ARG1 ARG2 EVENT LOGIN COUNT" per run */
static void write_hook(void)
{
    FILE *f = fopen(C->hook, "w");

    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "echo \"$# $1 $2 $MXGATE_EVENT $MXGATE_LOGIN $MXGATE_COUNT\" >> '%s'\n",
            C->out);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(C->hook, 0755), 0);
}

static int setup(void **state)
{
    static struct ctx c;

    memset(&c, 0, sizeof(c));
    C = &c;
    assert_int_equal(ts_fixture_init(&c.fx, "test_quota"), 0);
    snprintf(c.hook, sizeof(c.hook), "%s/hook.sh", c.fx.dir);
    snprintf(c.out, sizeof(c.out), "%s/hook.out", c.fx.dir);
    write_hook();
    clock_set(ts_clock);
    *state = &c;
    return 0;
}

/* unload - the policy, configuration and store of one test */
static void unload(void)
{
    ts_fixture_unload(&C->fx);
    stats_free(C->fx.stats);
    store_close(C->fx.store);
    C->fx.stats = NULL;
    C->fx.store = NULL;
}

static int teardown(void **state)
{
    quota_created_source(NULL, NULL);
    unload();
    clock_set(NULL);
    ts_fixture_free(&C->fx);
    return 0;
}

/* load - a fresh store and a listener running quota with this section; must load */
static void load(const char *section)
{
    struct policy_env env;
    char name[16], conf[4096], err[512] = "";

    unload();
    snprintf(name, sizeof(name), "db%d", C->nstores++);
    C->fx.store = ts_store_open(&C->fx, name, NULL, ts_clock);
    C->fx.stats = stats_new(C->fx.store);
    env = ts_env(&C->fx);
    snprintf(conf, sizeof(conf),
             "listen mx { address = \"127.0.0.1:2525\"  checks = {\"quota\"} }\n%s\n", section);
    ts_now = T0;
    if (!ts_policy_load(&C->fx, conf, &env, err, sizeof(err)))
        fail_msg("policy_new: %s", err);
}

/* client - an authenticated session of login */
static void client(struct policy_client *cl, const char *login)
{
    ts_client(cl, "192.0.2.7");
    cl->login = login;
    cl->sender = "s@x.test";
    cl->rcpt = "r@y.test";
}

/* mail - MAIL of login now: the verdict */
static struct policy_verdict mail(const char *login)
{
    struct policy_client cl;

    client(&cl, login);
    return ts_stage(&C->fx, POLICY_MAIL, &cl, 5000).v;
}

/* rcpt - one RCPT of login now */
static struct policy_verdict rcpt(const char *login)
{
    struct policy_client cl;

    client(&cl, login);
    return ts_stage(&C->fx, POLICY_RCPT, &cl, 5000).v;
}

/* assert_pass - no opinion: the event was counted and goes on */
static void assert_pass(const struct policy_verdict *v)
{
    assert_int_equal(v->action, POLICY_DUNNO);
}

/* assert_quota - 450 4.7.1 with this text and reason */
static void assert_quota(const struct policy_verdict *v, const char *text, const char *reason)
{
    assert_int_equal(v->action, POLICY_TEMPFAIL);
    assert_int_equal(v->code, 450);
    assert_string_equal(v->status, "4.7.1");
    assert_string_equal(v->text, text);
    assert_string_equal(v->reason, reason);
    assert_string_equal(v->check, "quota");
}

/* counter - the store counter of login with suffix (0 when missing) */
static long long counter(const char *login, const char *suffix)
{
    char key[QUOTA_KEY_MAX];
    size_t kl = quota_key(key, sizeof(key), login, suffix);
    void *val = NULL;
    size_t vlen = 0;
    int64_t c = 0;

    assert_true(kl > 0);
    ts_store_get(C->fx.base, C->fx.store, "drain"); /* pending writes first */
    if (store_sync_get(C->fx.store, key, kl, &val, &vlen) == STORE_OK)
        assert_int_equal(store_counter_decode(val, vlen, &c), 0);
    free(val);
    return (long long)c;
}

#define MSG_TEXT(n, what, per)                                                                     \
    "Sending quota exceeded: at most " n " " what " per " per ", try again later"

/* test_window_edges - 3 per minute: the 4th refused up to the last second, the edge resets */
static void test_window_edges(void **state)
{
    struct policy_verdict v;

    load("quota { default = {\"3/60\"} }");
    for (int i = 0; i < 3; i++) {
        v = mail("alice");
        assert_pass(&v);
    }
    v = mail("alice");
    assert_quota(&v, MSG_TEXT("3", "messages", "1 minute"), "messages 4/3 per 60s");
    ts_now = T0 + 59;
    v = mail("alice");
    assert_quota(&v, MSG_TEXT("3", "messages", "1 minute"), "messages 4/3 per 60s");
    /* refused ones were taken back: the window holds what was accepted */
    assert_int_equal(counter("alice", "m:60:28333440"), 3);
    v = mail("bob"); /* another login is not touched */
    assert_pass(&v);
    ts_now = T0 + 60;
    for (int i = 0; i < 3; i++) {
        v = mail("alice");
        assert_pass(&v);
    }
    v = mail("alice");
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    v = mail(NULL); /* no login: not this check's business */
    assert_pass(&v);
    assert_int_equal(ts_stats_sum(&C->fx, "quota.messages"), 3);
}

/* test_several_windows - 2 per minute and 3 per hour: the hour's limit decides later */
static void test_several_windows(void **state)
{
    struct policy_verdict v;

    load("quota { default = {\"2/60\", \"3/3600\"} }");
    v = mail("carol");
    assert_pass(&v);
    v = mail("carol");
    assert_pass(&v);
    v = mail("carol");
    assert_quota(&v, MSG_TEXT("2", "messages", "1 minute"), "messages 3/2 per 60s");
    ts_now = T0 + 60;
    v = mail("carol"); /* the 3rd of the hour */
    assert_pass(&v);
    v = mail("carol"); /* the minute has room, the hour not */
    assert_quota(&v, MSG_TEXT("3", "messages", "1 hour"), "messages 4/3 per 3600s");
    ts_now = T0 + 120;
    v = mail("carol");
    assert_quota(&v, MSG_TEXT("3", "messages", "1 hour"), "messages 4/3 per 3600s");
    ts_now = T0 + 3599;
    v = mail("carol");
    assert_quota(&v, MSG_TEXT("3", "messages", "1 hour"), "messages 4/3 per 3600s");
    ts_now = T0 + 3600;
    v = mail("carol");
    assert_pass(&v);
}

/* test_recipients - recipients counted as each RCPT passes; the 3rd of the minute refused */
static void test_recipients(void **state)
{
    struct policy_verdict v;

    load("quota { default = {\"100/60\"}  recipients = {\"2/60\", \"5/3600\"} }");
    v = mail("dave");
    assert_pass(&v);
    v = rcpt("dave");
    assert_pass(&v);
    v = rcpt("dave");
    assert_pass(&v);
    v = rcpt("dave");
    assert_quota(&v, MSG_TEXT("2", "recipients", "1 minute"), "recipients 3/2 per 60s");
    assert_int_equal(counter("dave", "r:60:28333440"), 2);
    assert_int_equal(counter("dave", "r:3600:472224"), 2);
    assert_int_equal(counter("dave", "m:60:28333440"), 1);
    assert_int_equal(ts_stats_sum(&C->fx, "quota.recipients"), 1);
}

/* created_old - the users file's creation date: "veteran" since long ago */
static int created_old(void *arg, const char *login, time_t *created)
{
    if (strcmp(login, "veteran") != 0)
        return -1;
    *created = T0 - 400 * DAY;
    return 0;
}

/* test_new_account - the 11th message of a new account's day refused, an older one goes on */
static void test_new_account(void **state)
{
    char key[QUOTA_KEY_MAX], old[32];
    size_t kl = quota_key(key, sizeof(key), "oldtimer", "seen");
    struct policy_verdict v;

    load("quota { default = {\"100/3600\", \"500/86400\"}  new_account = {\"10/86400\"}  "
         "new_days = 14 }");
    snprintf(old, sizeof(old), "%lld", (long long)(T0 - 30 * DAY));
    assert_int_equal(store_set(C->fx.store, key, kl, old, strlen(old), 0, NULL, NULL), 0);
    quota_created_source(created_old, NULL);
    for (int i = 0; i < 10; i++) {
        ts_now = T0 + i * 60;
        v = mail("newbie");
        assert_pass(&v);
        v = mail("oldtimer");
        assert_pass(&v);
        v = mail("veteran");
        assert_pass(&v);
    }
    v = mail("newbie");
    assert_quota(&v, MSG_TEXT("10", "messages", "24 hours"), "messages 11/10 per 86400s");
    v = mail("oldtimer");
    assert_pass(&v);
    v = mail("veteran");
    assert_pass(&v);
    /* the first sight was recorded: 14 days later the account is no longer new */
    ts_now = T0 + 14 * DAY;
    for (int i = 0; i < 11; i++) {
        v = mail("newbie");
        assert_pass(&v);
    }
    quota_created_source(NULL, NULL);
}

/* test_suspend_resume - a suspended login gets 550 5.7.13 at MAIL; resumed, it sends */
static void test_suspend_resume(void **state)
{
    struct policy_verdict v;

    load("quota { default = {\"100/3600\"} }");
    v = mail("eve");
    assert_pass(&v);
    assert_int_equal(quota_set_suspended(C->fx.store, "eve", 1, ts_now), 0);
    v = mail("eve");
    assert_int_equal(v.action, POLICY_REJECT);
    assert_int_equal(v.code, 550);
    assert_string_equal(v.status, "5.7.13");
    assert_string_equal(v.text, "Account suspended: sending is disabled, contact your provider");
    v = mail("frank");
    assert_pass(&v);
    assert_int_equal(quota_set_suspended(C->fx.store, "eve", 0, ts_now), 0);
    v = mail("eve");
    assert_pass(&v);
    assert_int_equal(quota_set_suspended(C->fx.store, "bad\nlogin", 1, ts_now), -1);
    assert_int_equal(ts_stats_sum(&C->fx, "quota.suspended"), 1);
    assert_int_equal(ts_stats_sum(&C->fx, "quota.suspend"), 1);
    assert_int_equal(ts_stats_sum(&C->fx, "quota.resume"), 1);
}

/* hook_lines - the hook's output so far */
static size_t hook_lines(char lines[4][160])
{
    FILE *f = fopen(C->out, "r");
    size_t n = 0;

    if (!f)
        return 0;
    while (n < 4 && fgets(lines[n], 160, f)) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    fclose(f);
    return n;
}

/* spin - run the loop for ms (the hook's reaper) */
static void spin(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(C->fx.base, &tv);
    event_base_dispatch(C->fx.base);
}

/* test_hook_after - the 2nd refusal of the day runs the hook once, the login one argument */
static void test_hook_after(void **state)
{
    const char *login = "mal lory;$(touch x)";
    char section[512], lines[4][160];
    struct policy_verdict v;

    unlink(C->out);
    snprintf(section, sizeof(section),
             "quota { default = {\"1/3600\"}  hook = \"%s\"  hook_after = 2 }", C->hook);
    load(section);
    v = mail(login);
    assert_pass(&v);
    v = mail(login); /* refusal 1 */
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    spin(300);
    assert_int_equal(hook_lines(lines), 0);
    v = mail(login); /* refusal 2: the hook */
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    for (int i = 0; i < 100 && hook_lines(lines) < 1; i++)
        spin(20);
    v = mail(login); /* refusal 3: not again */
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    spin(400);
    assert_int_equal(hook_lines(lines), 1);
    assert_string_equal(lines[0], "2 mal lory;$(touch x) 2 quota mal lory;$(touch x) 2");
    assert_int_equal(counter(login, "hit:19676"), 3);
    assert_int_equal(access("x", F_OK), -1);
}

/* print_user - the listing's one user into a string */
static void print_user(const struct quota_user *u, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);

    n += (size_t)snprintf(out + n, 512 - n, "%s%s%s", u->login, u->suspended ? " suspended" : "",
                          u->fresh ? " new" : "");
    for (size_t i = 0; i < u->nuse; i++)
        n += (size_t)snprintf(out + n, 512 - n, " %c%u=%lld/%u", u->use[i].kind, u->use[i].secs,
                              u->use[i].count, u->use[i].limit);
    snprintf(out + n, 512 - n, ";");
}

/* test_users_list - usage against each window, new and suspended flags, JSON */
static void test_users_list(void **state)
{
    char out[512] = "";
    struct policy_verdict v;
    struct json j;

    load("quota { default = {\"5/3600\"}  recipients = {\"9/3600\"}  new_account = "
         "{\"2/86400\"} }");
    v = mail("gina");
    assert_pass(&v);
    v = rcpt("gina");
    assert_pass(&v);
    v = mail("ab");
    assert_pass(&v);
    assert_int_equal(quota_set_suspended(C->fx.store, "ab", 1, ts_now), 0);
    ts_store_get(C->fx.base, C->fx.store, "drain");
    assert_int_equal(quota_users_each(C->fx.cfg, C->fx.store, ts_now, NULL, print_user, out), 0);
    assert_string_equal(out, "ab suspended new m3600=1/5 m86400=1/2 r3600=0/9;"
                             "gina new m3600=1/5 m86400=1/2 r3600=1/9;");
    out[0] = '\0';
    ts_now = T0 + 3600; /* the next hour: its window is empty */
    assert_int_equal(quota_users_each(C->fx.cfg, C->fx.store, ts_now, "gina", print_user, out), 0);
    assert_string_equal(out, "gina new m3600=0/5 m86400=1/2 r3600=0/9;");
    json_init(&j);
    assert_int_equal(quota_users_json(C->fx.cfg, C->fx.store, ts_now, &j), 0);
    assert_non_null(strstr(j.buf, "{\"login\":\"ab\",\"suspended\":true,"));
    assert_non_null(strstr(j.buf, "\"kind\":\"messages\",\"seconds\":86400,\"limit\":2,"
                                  "\"count\":1,\"exhausted\":false"));
    json_free(&j);
}

/* test_users_file_age - created= in the users file decides; a login without it is new
 * from its first sight */
static void test_users_file_age(void **state)
{
    static const char file[] = "young:$6$x$y:created=2023-11-10\n" /* 5 days before T0 */
                               "elder:$6$x$y:created=2020-01-01\n"
                               "plain:$6$x$y\n";
    char err[256];
    struct users *u = users_parse("users", file, sizeof(file) - 1, err, sizeof(err));
    struct policy_verdict v;
    time_t t;

    assert_non_null(u);
    assert_int_equal(quota_date_parse("2023-11-15", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(quota_date_parse("2023-11-15x", &t), -1);
    assert_int_equal(quota_date_parse("15/11/2023", &t), -1);
    load("quota { default = {\"100/3600\"}  new_account = {\"1/86400\"}  new_days = 14 }");
    quota_created_source(quota_users_created, u);
    for (int i = 0; i < 2; i++) {
        v = mail("elder");
        assert_pass(&v);
    }
    v = mail("young");
    assert_pass(&v);
    v = mail("young");
    assert_quota(&v, MSG_TEXT("1", "messages", "24 hours"), "messages 2/1 per 86400s");
    v = mail("plain");
    assert_pass(&v);
    v = mail("plain");
    assert_int_equal(v.action, POLICY_TEMPFAIL);
    ts_now = T0 + 9 * DAY; /* young is 14 days old now */
    for (int i = 0; i < 2; i++) {
        v = mail("young");
        assert_pass(&v);
    }
    quota_created_source(NULL, NULL);
    users_free(u);
}

/* test_config_errors - bad windows do not load */
static void test_config_errors(void **state)
{
    struct quota_window w;

    assert_int_equal(quota_window_parse("10/86400", &w), 0);
    assert_int_equal(w.limit, 10);
    assert_int_equal(w.secs, 86400);
    assert_int_equal(quota_window_parse("0/60", &w), -1);
    assert_int_equal(quota_window_parse("10", &w), -1);
    assert_int_equal(quota_window_parse("10/", &w), -1);
    assert_int_equal(quota_window_parse("10/60x", &w), -1);
    assert_int_equal(quota_window_parse("-1/60", &w), -1);
    assert_int_equal(quota_window_parse("1/99999999", &w), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_edges),   cmocka_unit_test(test_several_windows),
        cmocka_unit_test(test_recipients),     cmocka_unit_test(test_new_account),
        cmocka_unit_test(test_suspend_resume), cmocka_unit_test(test_hook_after),
        cmocka_unit_test(test_users_list),     cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_users_file_age),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
