/*
 * bounceflood.c - the "bounce_flood" check: notice a flood of bounces (a
 * "Joe job": spammers forged addresses of our domains, and the world sends
 * their undeliverable mail back to us) and run the operator's hook, which may
 * steer the flood to a secondary MX (contrib/hooks/mx-withdraw, the method
 * of Yamai et al., 2004).
 *
 *   bounce_flood { interval = 60  start = 100  stop = 10  hold = 300  hook = FILE }
 *
 * Counting: every recipient (RCPT) of a transaction with the null sender is
 * one bounce, counted in fixed windows of `interval` seconds aligned on the
 * epoch. The check never refuses anything: it always answers DUNNO. List it
 * BEFORE "batv" and "recipients" in a listener's checks (before "harvest" too,
 * so that bounces from a client blocked as a harvester still count), e.g.
 *   checks = {"access", "dnsbl", "s25r", "bounce_flood", "harvest", "batv", ...}
 * because a check that refuses a recipient ends the stage, and the bounces
 * refused for a bad BATV tag or an unknown user are the bulk of a flood that
 * must be counted. Listed first it costs nothing. Bounces from clients the
 * connection checks refused (held until RCPT) and from allowlisted clients
 * are not counted: the former are refused whatever the MX, the latter trusted.
 *
 * Hysteresis: when the current window's count reaches `start` a flood is
 * declared at once. A flood ends when windows with at most `stop` bounces
 * have followed each other for `hold` seconds (a window with more resets
 * that run). A timer fires at each window's end, so a flood that ends in
 * silence (no mail at all) is noticed too. Each transition is logged
 *   event=bounce_flood state=start count=N interval=I
 *   event=bounce_flood state=stop count=N interval=I duration=SECONDS
 * counted in statistics (bounce_flood.start, bounce_flood.stop) and runs
 *   HOOK start|stop   with MXGATE_EVENT=start|stop and MXGATE_COUNT=N added
 * (and at start MXGATE_NETWORKS: the busiest client networks of the deciding
 * window, /24 or /48, busiest first, space-separated, see bfnets.h)
 * to the daemon's environment: spawned (no shell), stdin /dev/null, stdout
 * and stderr the daemon's, no other descriptor, its own process group, as
 * the daemon's user. One hook runs at a time, so they finish in order; an
 * event that comes while one runs waits (a start and a stop that both wait
 * cancel out). A hook still running after BF_HOOK_TIMEOUT seconds is killed.
 * Only the hook's own pid is ever waited for.
 *
 * Store (for mxgatectl, and across restarts):
 *   bf:state              "flood <since>" or "normal <since>" (unix times)
 *   bf:n:<window-start>   counter of bounces in the window (kept BF_KEEP_WINDOWS windows)
 * At start-up a recorded flood is resumed, so that its stop hook still runs
 * (the MX it withdrew comes back) even if the daemon restarted meanwhile.
 *
 * A fleet (a store shared by several gateways, Redis): every gateway counts
 * into the same window counters, and takes each window's count from the
 * store's answer, so the thresholds apply to the fleet's bounces. One gateway,
 * the holder of the lease
 *   bf:leader             "<hostname> <pid>" (renewed each window, for 2 windows + 5 s)
 * declares and ends floods and runs the hooks, once for the fleet; the others
 * only count. At each window's end the leader reads the window's fleet count,
 * so bounces that reached only the other gateways start a flood too. When the
 * leader goes away another takes the lease over and resumes a recorded flood
 * from bf:state. With a store of one gateway (LMDB) it is always the leader.
 */
#include "core/clock.h"
#include "core/fsutil.h"
#include "core/xmalloc.h"
#include "policy/checks.h"

#include <confuse.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/spawn.h"
#include "policy/bfnets.h"
#include "policy/stats.h"
#include "store/store.h"

#define BF_INTERVAL_MAX 86400 /* a window of a day at most */
#define BF_HOLD_MAX 604800    /* a week */
#define BF_COUNT_MAX 100000000
#define BF_KEEP_WINDOWS 60 /* window counters kept for mxgatectl: an hour at the default */
#define BF_HOOK_TIMEOUT 60 /* seconds a hook may run before it is killed */
#define BF_REAP_MS 100     /* how often a running hook is looked at */
#define BF_TICK_SLACK_MS 5 /* fire just after the window's end, never just before */
#define BF_TEST_POLL_MS 10 /* with an injected clock the timer polls it */
#define BF_STATE_KEY "bf:state"
#define BF_LEADER_KEY "bf:leader"
#define BF_LEASE_SLACK 5 /* seconds a lease outlives two windows */

enum bf_event { BF_NONE, BF_START, BF_STOP };

struct bf_load; /* the pending read of bf:state at start-up */

/* What a pending store callback of a shared store holds: the check may be gone by then. */
struct bf_anchor {
    struct bounceflood *bf; /* NULL once the check is freed */
    unsigned refs;          /* callbacks still due */
};

struct bf_pending {
    struct bf_anchor *anchor;
    time_t window; /* the window a count is for */
};

struct bounceflood {
    struct store *store;
    struct stats *stats;
    unsigned interval, start, stop, hold;
    char *hook;             /* absolute path; NULL: no hook */
    time_t window;          /* start of the current window */
    uint64_t count;         /* bounces in it */
    int flooding;           /* a flood is declared */
    time_t since;           /* of the current state */
    uint64_t low;           /* seconds of consecutive low windows during a flood */
    struct event *tick;     /* at each window's end */
    struct event *reap;     /* while a hook runs */
    pid_t pid;              /* the running hook, 0: none */
    enum bf_event running;  /* its event */
    struct timespec begun;  /* when it was spawned (monotonic) */
    int killed;             /* it overran and was killed */
    enum bf_event waiting;  /* the event for the next hook, BF_NONE: none */
    uint64_t waiting_count; /* its MXGATE_COUNT */
    struct bf_load *load;
    struct bfnets nets; /* where the current window's bounces come from */
    int retired; /* a reload's instance took over: count, decide nothing (bounceflood_retire) */
    int shared;  /* the store is a fleet's (store_shared) */
    int leader;  /* this gateway decides floods and runs the hooks */
    char owner[300];
    struct bf_anchor *anchor;
};

struct bf_load {
    struct bounceflood *bf; /* NULL once the check is freed: the callback only frees */
};

/* bf_now - the check's notion of now (CLOCK_REALTIME, as the tick is aligned with it) */
static time_t bf_now(void)
{
    struct timespec ts;

    if (clock_is_injected())
        return clock_now();
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

/* bf_event_name - the hook's argument */
static const char *bf_event_name(enum bf_event ev)
{
    return ev == BF_START ? "start" : "stop";
}

/* bf_store_state - mirror the state for mxgatectl and for a restart */
static void bf_store_state(struct bounceflood *bf)
{
    char val[48];
    int n = snprintf(val, sizeof(val), "%s %lld", bf->flooding ? "flood" : "normal",
                     (long long)bf->since);

    if (bf->store &&
        store_set(bf->store, BF_STATE_KEY, strlen(BF_STATE_KEY), val, (size_t)n, 0, NULL, NULL) < 0)
        log_warn("event=bounce_flood what=store key=%s error=%s", BF_STATE_KEY,
                 log_q(strerror(errno)));
}

static void bf_counted(void *arg, int status, int64_t value);

/* bf_pending_new - a callback's hold on the check (a shared store) */
static struct bf_pending *bf_pending_new(struct bounceflood *bf)
{
    struct bf_pending *p = xcalloc(1, sizeof(*p));

    p->anchor = bf->anchor;
    p->anchor->refs++;
    p->window = bf->window;
    return p;
}

/* bf_pending_end - the callback ran: the check, or NULL when it is gone */
static struct bounceflood *bf_pending_end(struct bf_pending *p)
{
    struct bf_anchor *a = p->anchor;
    struct bounceflood *bf = a->bf;

    free(p);
    if (--a->refs == 0 && !a->bf)
        free(a);
    return bf;
}

/* bf_store_count - one more bounce in the window's counter (a fleet's: its answer counts) */
static void bf_store_count(struct bounceflood *bf)
{
    char key[40];
    int n = snprintf(key, sizeof(key), "bf:n:%lld", (long long)bf->window);
    uint64_t ttl = (uint64_t)bf->interval * BF_KEEP_WINDOWS;
    struct bf_pending *p = bf->shared ? bf_pending_new(bf) : NULL;

    if (p && store_incr(bf->store, key, (size_t)n, 1, (unsigned)ttl, bf_counted, p) == 0)
        return;
    if (p)
        bf_pending_end(p);
    if (bf->store && store_incr(bf->store, key, (size_t)n, 1, (unsigned)ttl, NULL, NULL) < 0)
        log_warn("event=bounce_flood what=store key=%s error=%s", log_q(key),
                 log_q(strerror(errno)));
}

/* bf_spawn - start `hook event` without waiting for it; 0 or an errno value */
static int bf_spawn(struct bounceflood *bf, enum bf_event ev, uint64_t count)
{
    char evar[32], cvar[48], arg[8], nvar[16 + BFNETS_TOP * 48];
    char *argv[] = {bf->hook, arg, NULL};
    char *vars[] = {evar, cvar, ev == BF_START ? nvar : NULL, NULL};

    snprintf(arg, sizeof(arg), "%s", bf_event_name(ev));
    snprintf(evar, sizeof(evar), "MXGATE_EVENT=%s", arg);
    snprintf(cvar, sizeof(cvar), "MXGATE_COUNT=%" PRIu64, count);
    memcpy(nvar, "MXGATE_NETWORKS=", 16);
    bfnets_top(&bf->nets, BFNETS_TOP, nvar + 16, sizeof(nvar) - 16);
    return spawn_hook(&bf->pid, bf->hook, argv, vars);
}

/* bf_hook_run - spawn the hook for ev now and watch it */
static void bf_hook_run(struct bounceflood *bf, enum bf_event ev, uint64_t count)
{
    struct timeval tv = {0, BF_REAP_MS * 1000};
    char path[600];
    int rc = bf_spawn(bf, ev, count);

    log_quote(path, sizeof(path), bf->hook);
    if (rc != 0) {
        bf->pid = 0;
        log_err("event=hook check=bounce_flood arg=%s status=error path=%s error=%s",
                bf_event_name(ev), log_q(path), log_q(strerror(rc)));
        return;
    }
    bf->running = ev;
    bf->killed = 0;
    clock_gettime(CLOCK_MONOTONIC, &bf->begun);
    event_add(bf->reap, &tv);
    log_info("event=hook check=bounce_flood arg=%s pid=%ld status=started path=%s",
             bf_event_name(ev), (long)bf->pid, log_q(path));
}

/* bf_hook - run the hook for ev, or let it wait for the running one */
static void bf_hook(struct bounceflood *bf, enum bf_event ev, uint64_t count)
{
    if (!bf->hook)
        return;
    if (bf->pid == 0) {
        bf_hook_run(bf, ev, count);
        return;
    }
    if (bf->waiting != BF_NONE && bf->waiting != ev) {
        /* a start and a stop that both wait leave things as the running hook makes them */
        log_info("event=hook check=bounce_flood arg=%s status=cancelled waiting=%s",
                 bf_event_name(ev), bf_event_name(bf->waiting));
        bf->waiting = BF_NONE;
        return;
    }
    bf->waiting = ev;
    bf->waiting_count = count;
}

/* bf_hook_overrun - kill a hook that ran too long (its whole process group) */
static void bf_hook_overrun(struct bounceflood *bf)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (bf->killed || now.tv_sec - bf->begun.tv_sec < BF_HOOK_TIMEOUT)
        return;
    log_warn("event=hook check=bounce_flood arg=%s pid=%ld status=timeout seconds=%d",
             bf_event_name(bf->running), (long)bf->pid, BF_HOOK_TIMEOUT);
    if (kill(-bf->pid, SIGKILL) < 0)
        kill(bf->pid, SIGKILL);
    bf->killed = 1;
}

/* bf_reap - is our hook done? waitpid on its pid only: other children are not ours */
static void bf_reap(evutil_socket_t fd, short what, void *arg)
{
    struct bounceflood *bf = arg;
    struct timeval tv = {0, BF_REAP_MS * 1000};
    int status = 0;
    pid_t r = waitpid(bf->pid, &status, WNOHANG);

    if (r == 0 || (r < 0 && errno == EINTR)) {
        bf_hook_overrun(bf);
        event_add(bf->reap, &tv);
        return;
    }
    if (r < 0)
        log_warn("event=hook check=bounce_flood arg=%s pid=%ld status=unknown error=%s",
                 bf_event_name(bf->running), (long)bf->pid, log_q(strerror(errno)));
    else if (WIFEXITED(status))
        log_msg(WEXITSTATUS(status) ? LOG_LVL_WARN : LOG_LVL_INFO,
                "event=hook check=bounce_flood arg=%s pid=%ld status=exited code=%d",
                bf_event_name(bf->running), (long)bf->pid, WEXITSTATUS(status));
    else
        log_warn("event=hook check=bounce_flood arg=%s pid=%ld status=killed signal=%d",
                 bf_event_name(bf->running), (long)bf->pid, WTERMSIG(status));
    bf->pid = 0;
    if (bf->waiting != BF_NONE) {
        enum bf_event ev = bf->waiting;
        bf->waiting = BF_NONE;
        bf_hook_run(bf, ev, bf->waiting_count);
    }
}

/* bf_flood_start - the count of the current window reached start */
static void bf_flood_start(struct bounceflood *bf, time_t now)
{
    bf->flooding = 1;
    bf->since = now;
    bf->low = 0;
    log_warn("event=bounce_flood state=start count=%" PRIu64 " interval=%u", bf->count,
             bf->interval);
    stats_count(bf->stats, "bounce_flood.start");
    bf_store_state(bf);
    bf_hook(bf, BF_START, bf->count);
}

/* bf_flood_stop - low windows for hold seconds: the flood is over */
static void bf_flood_stop(struct bounceflood *bf, uint64_t count, time_t now)
{
    log_info("event=bounce_flood state=stop count=%" PRIu64 " interval=%u duration=%lld", count,
             bf->interval, (long long)(now - bf->since));
    bf->flooding = 0;
    bf->since = now;
    bf->low = 0;
    stats_count(bf->stats, "bounce_flood.stop");
    bf_store_state(bf);
    bf_hook(bf, BF_STOP, count);
}

/* bf_window_end - windows of secs seconds ended with count bounces each (hysteresis) */
static void bf_window_end(struct bounceflood *bf, uint64_t count, uint64_t secs, time_t now)
{
    if (!bf->flooding || !bf->leader)
        return;
    if (count > bf->stop) {
        bf->low = 0;
        return;
    }
    bf->low += secs;
    if (bf->low >= bf->hold)
        bf_flood_stop(bf, count, now);
}

/* bf_roll - close the windows that ended before now; the ones nobody saw were empty */
static void bf_roll(struct bounceflood *bf, time_t now)
{
    time_t w = now - now % (time_t)bf->interval;
    uint64_t gap;

    if (w == bf->window)
        return;
    if (w < bf->window) { /* the clock went back: start afresh from here */
        bf->window = w;
        bf->count = 0;
        bfnets_clear(&bf->nets);
        return;
    }
    gap = (uint64_t)(w - bf->window) / bf->interval - 1; /* empty windows in between */
    bf_window_end(bf, bf->count, bf->interval, now);
    if (gap > 0)
        bf_window_end(bf, 0, gap > BF_HOLD_MAX ? BF_HOLD_MAX : gap * bf->interval, now);
    bf->window = w;
    bf->count = 0;
    bfnets_clear(&bf->nets);
}

/* bf_arm - the timer for the end of the current window */
static void bf_arm(struct bounceflood *bf)
{
    struct timeval tv = {0, BF_TEST_POLL_MS * 1000};
    struct timespec ts;
    int64_t ms;

    if (!clock_is_injected()) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ms = ((int64_t)bf->window + bf->interval - ts.tv_sec) * 1000 - ts.tv_nsec / 1000000 +
             BF_TICK_SLACK_MS;
        if (ms < BF_TICK_SLACK_MS)
            ms = BF_TICK_SLACK_MS;
        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    }
    event_add(bf->tick, &tv);
}

static void bf_fleet_tick(struct bounceflood *bf);

/* bf_tick - a window ended: transitions happen even when no mail arrives */
static void bf_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bounceflood *bf = arg;

    if (bf->shared) {
        bf_fleet_tick(bf); /* rolls and re-arms when the fleet's count is in */
        return;
    }
    bf_roll(bf, bf_now());
    bf_arm(bf);
}

/* bf_count - one bounce from sa now */
static void bf_count(struct bounceflood *bf, const struct sockaddr *sa)
{
    time_t now = bf_now();

    if (bf->retired) { /* the store's counter still gets the bounce (mxgatectl flood) */
        bf_store_count(bf);
        return;
    }
    bf_roll(bf, now);
    if (bf->count < UINT64_MAX)
        bf->count++;
    bfnets_add(&bf->nets, sa);
    bf_store_count(bf);
    if (bf->leader && !bf->flooding && bf->count >= bf->start)
        bf_flood_start(bf, now);
}

/* bounceflood_run - count the bounce; never an opinion */
static void bounceflood_run(void *state, struct policy_job *job, enum policy_stage stage,
                            struct policy_client *cl)
{
    struct policy_verdict v;

    if (stage == POLICY_RCPT && cl->sender && cl->sender[0] == '\0')
        bf_count(state, (const struct sockaddr *)&cl->addr);
    policy_verdict_dunno(&v);
    policy_job_done(job, &v);
}

/* bf_loaded - the state recorded before a restart: resume a flood so its stop hook runs */
static void bf_loaded(void *arg, int status, const void *val, size_t vlen)
{
    struct bf_load *ld = arg;
    struct bounceflood *bf = ld->bf;
    char buf[48], *end;
    long long since;

    free(ld);
    if (!bf)
        return;
    bf->load = NULL;
    if (status == STORE_NOTFOUND) {
        bf_store_state(bf);
        return;
    }
    if (status != STORE_OK || vlen >= sizeof(buf) || bf->flooding)
        return;
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    if (strncmp(buf, "flood ", 6) != 0)
        return;
    since = strtoll(buf + 6, &end, 10);
    if (*end != '\0' || since <= 0)
        return;
    bf->flooding = 1;
    bf->since = (time_t)since;
    bf->low = 0;
    log_warn("event=bounce_flood state=resume since=%lld interval=%u", since, bf->interval);
}

/* bf_load_state - ask the store what state a previous run left */
static void bf_load_state(struct bounceflood *bf)
{
    struct bf_load *ld;

    if (!bf->store || bf->load)
        return;
    ld = xcalloc(1, sizeof(*ld));
    ld->bf = bf;
    if (store_get(bf->store, BF_STATE_KEY, strlen(BF_STATE_KEY), bf_loaded, ld) < 0) {
        free(ld);
        return;
    }
    bf->load = ld;
}

/* bf_fleet_count - the fleet's count of the current window is value: a start? */
static void bf_fleet_count(struct bounceflood *bf, time_t window, int64_t value)
{
    if (bf->retired || window != bf->window || value <= 0 || (uint64_t)value <= bf->count)
        return;
    bf->count = (uint64_t)value;
    if (bf->leader && !bf->flooding && bf->count >= bf->start)
        bf_flood_start(bf, bf_now());
}

/* bf_counted - the store's answer to a bounce counted in a fleet's window */
static void bf_counted(void *arg, int status, int64_t value)
{
    struct bf_pending *p = arg;
    time_t window = p->window;
    struct bounceflood *bf = bf_pending_end(p);

    if (bf && status == STORE_OK)
        bf_fleet_count(bf, window, value);
}

/* bf_window_read - the window's fleet count at its end: then close it and go on */
static void bf_window_read(void *arg, int status, const void *val, size_t vlen)
{
    struct bf_pending *p = arg;
    time_t window = p->window;
    struct bounceflood *bf = bf_pending_end(p);
    int64_t v;

    if (!bf || bf->retired)
        return;
    if (status == STORE_OK && store_counter_decode(val, vlen, &v) == 0)
        bf_fleet_count(bf, window, v);
    bf_roll(bf, bf_now());
    bf_arm(bf);
}

/* bf_leased - the answer to taking or renewing the leader's lease */
static void bf_leased(void *arg, int status)
{
    struct bounceflood *bf = bf_pending_end(arg);
    int was;

    if (!bf || bf->retired || (status != STORE_OK && status != STORE_EBUSY))
        return; /* the store is down: nobody can take over meanwhile */
    was = bf->leader;
    bf->leader = status == STORE_OK;
    if (was == bf->leader)
        return;
    log_info("event=bounce_flood_leader state=%s owner=%s", bf->leader ? "taken" : "lost",
             log_q(bf->owner));
    if (bf->leader)
        bf_load_state(bf); /* resume a flood the previous leader declared */
    else
        bf->flooding = 0; /* the other leader decides from now on */
}

/* bf_fleet_tick - renew the lease, then read the ending window's fleet count */
static void bf_fleet_tick(struct bounceflood *bf)
{
    unsigned ttl_ms = (2 * bf->interval + BF_LEASE_SLACK) * 1000;
    struct bf_pending *p = bf_pending_new(bf);
    char key[40];
    int n;

    if (store_lease(bf->store, BF_LEADER_KEY, strlen(BF_LEADER_KEY), bf->owner, ttl_ms, bf_leased,
                    p) < 0)
        bf_pending_end(p);
    p = bf_pending_new(bf);
    n = snprintf(key, sizeof(key), "bf:n:%lld", (long long)bf->window);
    if (store_get(bf->store, key, (size_t)n, bf_window_read, p) < 0) {
        bf_pending_end(p);
        bf_roll(bf, bf_now());
        bf_arm(bf);
    }
}

/* bf_check - the hysteresis needs stop below start */
static void bf_check(cfg_t *root, struct config_diag *d)
{
    cfg_t *sec = cfg_getsec(root, "bounce_flood");
    long start = cfg_getint(sec, "start"), stop = cfg_getint(sec, "stop");

    if (stop >= start)
        config_error(d, sec->line, "bounce_flood: stop (%ld) must be below start (%ld)", stop,
                     start);
}

static cfg_opt_t bf_opts[] = {
    CFG_INT("interval", 60, CFGF_NONE),
    CFG_INT("start", 100, CFGF_NONE), /* bounces per interval that declare a flood */
    CFG_INT("stop", 10, CFGF_NONE),   /* at or below this ... */
    CFG_INT("hold", 300, CFGF_NONE),  /* ... for this long ends it */
    CFG_STR("hook", NULL, CFGF_NODEFAULT),
    CFG_END(),
};

static const struct config_bound bf_bounds[] = {
    {"interval", 1, BF_INTERVAL_MAX},
    {"start", 1, BF_COUNT_MAX},
    {"stop", 0, BF_COUNT_MAX},
    {"hold", 0, BF_HOLD_MAX},
    {NULL, 0, 0},
};

static const struct config_section bf_section = {
    .name = "bounce_flood",
    .opts = bf_opts,
    .bounds = bf_bounds,
    .check = bf_check,
};

/* bf_hook_path - the hook: an executable regular file, made absolute */
static int bf_hook_path(const struct config *cfg, cfg_t *sec, struct bounceflood *bf, char *err,
                        size_t errlen)
{
    const char *h = cfg_getstr(sec, "hook"), *why = NULL;
    struct stat sb;

    if (!h)
        return 0;
    if (!*h || !(bf->hook = fs_abspath(h))) {
        snprintf(err, errlen, "%s:%d: bounce_flood: hook \"%s\": %s", cfg->path, sec->line, h,
                 *h ? strerror(errno) : "empty path");
        return -1;
    }
    if (stat(bf->hook, &sb) < 0 || (S_ISREG(sb.st_mode) && access(bf->hook, X_OK) < 0))
        why = strerror(errno);
    else if (!S_ISREG(sb.st_mode))
        why = "not a regular file";
    if (why) {
        snprintf(err, errlen, "%s:%d: bounce_flood: hook %s: %s", cfg->path, sec->line, bf->hook,
                 why);
        return -1;
    }
    return 0;
}

/* bf_options - read the section and check the hook */
static int bf_options(const struct config *cfg, cfg_t *sec, struct bounceflood *bf, char *err,
                      size_t errlen)
{
    /* bounds and stop < start were checked by config_load */
    bf->interval = (unsigned)cfg_getint(sec, "interval");
    bf->start = (unsigned)cfg_getint(sec, "start");
    bf->stop = (unsigned)cfg_getint(sec, "stop");
    bf->hold = (unsigned)cfg_getint(sec, "hold");
    return bf_hook_path(cfg, sec, bf, err, errlen);
}

/* bounceflood_free - timers, hook path; a running hook is left to finish on its own */
static void bounceflood_free(void *state)
{
    struct bounceflood *bf = state;

    if (!bf)
        return;
    if (bf->load)
        bf->load->bf = NULL;
    if (bf->anchor && (bf->anchor->bf = NULL, bf->anchor->refs == 0))
        free(bf->anchor);
    if (bf->pid > 0)
        log_warn("event=hook check=bounce_flood arg=%s pid=%ld status=abandoned",
                 bf_event_name(bf->running), (long)bf->pid);
    if (bf->tick)
        event_free(bf->tick);
    if (bf->reap)
        event_free(bf->reap);
    free(bf->hook);
    free(bf);
}

/*
 * bounceflood_retire - after a reload the new instance alone declares and ends
 * floods (it resumes a recorded flood from the store): the old one, still
 * counting the bounces of its last sessions, would see its windows go quiet
 * and run the stop hook in the middle of a flood.
 */
static void bounceflood_retire(void *state)
{
    struct bounceflood *bf = state;

    bf->retired = 1;
    evtimer_del(bf->tick);
}

/* bounceflood_init - the section (defaults when absent), the timers, the recorded state */
static int bounceflood_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    struct bounceflood *bf = xcalloc(1, sizeof(*bf));
    cfg_t *sec = cfg_getsec(env->cfg->raw, "bounce_flood");
    time_t now = bf_now();

    bf->store = env->store;
    bf->stats = env->stats;
    bf->shared = store_shared(env->store);
    bf->leader = !bf->shared; /* a fleet's leader is known once the lease is answered */
    bf->anchor = xcalloc(1, sizeof(*bf->anchor));
    bf->anchor->bf = bf;
    snprintf(bf->owner, sizeof(bf->owner), "%.255s %ld", env->cfg->hostname, (long)getpid());
    /* libconfuse gives a section that is absent from the file with its defaults */
    if (!sec) {
        snprintf(err, errlen, "%s:0: bounce_flood: no bounce_flood section", env->cfg->path);
        bounceflood_free(bf);
        return -1;
    }
    if (bf_options(env->cfg, sec, bf, err, errlen) < 0) {
        bounceflood_free(bf);
        return -1;
    }
    bf->window = now - now % (time_t)bf->interval;
    bf->since = now;
    bf->tick = evtimer_new(env->base, bf_tick, bf);
    bf->reap = evtimer_new(env->base, bf_reap, bf);
    if (!bf->tick || !bf->reap) {
        snprintf(err, errlen, "bounce_flood: out of memory");
        bounceflood_free(bf);
        return -1;
    }
    if (bf->shared)
        bf_fleet_tick(bf); /* the lease at once; the first roll changes nothing */
    else
        bf_arm(bf);
    if (!bf->shared)
        bf_load_state(bf);
    *state = bf;
    return 0;
}

const struct policy_check_ops policy_check_bounce_flood = {
    .name = "bounce_flood",
    .stages = POLICY_STAGE(POLICY_RCPT),
    .init = bounceflood_init,
    .run = bounceflood_run,
    .cancel = NULL,
    .reload = NULL,
    .retire = bounceflood_retire,
    .free = bounceflood_free,
    .disconnect = NULL,
    .section = &bf_section,
};
