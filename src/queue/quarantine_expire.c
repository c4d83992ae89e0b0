/*
 * quarantine_expire.c - old quarantined mail goes: every hour (and at start)
 * the messages kept longer than quarantine { max_age } are deleted, in the
 * pool (a directory walk and unlinks), each logged as event=quarantine
 * action=expire. max_age = 0 keeps them until an operator acts.
 */
#include "queue/quarantine.h"

#include <confuse.h>
#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/xmalloc.h"

#define QX_INTERVAL 3600

struct quarantine_expiry {
    struct spool *sp;
    struct pool *pool;
    struct event *timer;
    time_t max_age;
    int running; /* a walk is in the pool */
    int n;       /* what the last walk deleted */
};

static void qx_work(void *arg)
{
    struct quarantine_expiry *qx = arg;

    qx->n = quarantine_expire(qx->sp, qx->max_age, clock_now());
}

static void qx_done(void *arg)
{
    struct quarantine_expiry *qx = arg;

    qx->running = 0;
    if (qx->n > 0)
        log_info("event=quarantine action=expire count=%d max_age=%lld", qx->n,
                 (long long)qx->max_age);
}

static void qx_tick(evutil_socket_t fd, short what, void *arg)
{
    struct quarantine_expiry *qx = arg;
    struct timeval tv = {QX_INTERVAL, 0};

    if (!qx->running) {
        qx->running = 1;
        pool_submit(qx->pool, qx_work, qx_done, qx);
    }
    evtimer_add(qx->timer, &tv);
}

struct quarantine_expiry *quarantine_expiry_start(struct event_base *base, struct pool *pool,
                                                  struct spool *sp, const struct config *cfg)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "quarantine");
    struct quarantine_expiry *qx;
    long max_age = sec ? cfg_getint(sec, "max_age") : 0;

    if (max_age <= 0)
        return NULL;
    qx = xcalloc(1, sizeof(*qx));
    qx->sp = sp;
    qx->pool = pool;
    qx->max_age = (time_t)max_age;
    qx->timer = evtimer_new(base, qx_tick, qx);
    if (!qx->timer) {
        free(qx);
        return NULL;
    }
    qx_tick(-1, 0, qx);
    return qx;
}

void quarantine_expiry_free(struct quarantine_expiry *qx)
{
    if (!qx)
        return;
    event_free(qx->timer);
    free(qx);
}

static cfg_opt_t quarantine_opts[] = {
    CFG_INT("max_age", 2592000, CFGF_NONE), /* 30 days; 0: kept until released or deleted */
    CFG_END(),
};

static const struct config_bound quarantine_bounds[] = {
    {"max_age", 0, INT_MAX},
    {NULL, 0, 0},
};

const struct config_section quarantine_section = {
    .name = "quarantine",
    .opts = quarantine_opts,
    .bounds = quarantine_bounds,
};
