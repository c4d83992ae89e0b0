/* policysrv.c - the connections of the policy service: read, judge, answer */
#include "policysrv/policysrv.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/stats.h"
#include "policysrv/instance.h"
#include "policysrv/request.h"

/* Input held at most: a whole request of maximal lines does not fit, which is the
 * point: POLICYSRV_ATTRS_MAX lines of POLICYSRV_LINE_MAX would be 200 KiB. */
#define POLICYSRV_READ_HIGH_WATER (64 * 1024)

struct policysrv {
    LIST_HEAD(, policysrv_conn) conns;
    int draining; /* SIGTERM: answer the requests under way, take no more */
};

struct policysrv_conn {
    LIST_ENTRY(policysrv_conn) entry;
    struct policysrv *ps;
    struct policysrv_env env;
    struct bufferevent *bev;
    char peer[64];
    struct policysrv_req req;       /* the request being read */
    struct policysrv_instance *ins; /* the transaction the last request belonged to */
    int busy;                       /* the checks of a request run; input waits */
    int closing;                    /* the last answer is being written */
};

struct policysrv *policysrv_new(void)
{
    struct policysrv *ps = xcalloc(1, sizeof(*ps));

    LIST_INIT(&ps->conns);
    return ps;
}

/* policysrv_conn_free - the connection ends: its transaction too */
static void policysrv_conn_free(struct policysrv_conn *c)
{
    void (*done)(void *) = c->env.done;
    void *arg = c->env.arg;

    LIST_REMOVE(c, entry);
    if (c->ins)
        policysrv_instance_end(c->ins);
    policysrv_req_clear(&c->req);
    bufferevent_free(c->bev); /* closes the socket */
    free(c);
    done(arg);
}

/* policysrv_send - one answer: "action=..." and the empty line */
static void policysrv_send(struct policysrv_conn *c, const char *action)
{
    evbuffer_add_printf(bufferevent_get_output(c->bev), "action=%s\n\n", action);
}

/* policysrv_fail - a request we cannot judge: say so (Postfix logs the text and
 * defers), then close, since the stream may be out of step */
static void policysrv_fail(struct policysrv_conn *c, const char *why)
{
    char action[256];

    log_warn("event=policy_error client=%s listener=%s error=%s", c->peer, log_q(c->env.listener),
             log_q(why));
    stats_count(c->env.stats, "policy_service.errors");
    snprintf(action, sizeof(action), "451 4.3.0 Policy service error: %s", why);
    policysrv_send(c, action);
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
}

static void policysrv_process(struct policysrv_conn *c);

/* policysrv_answered - the checks of the request decided */
static void policysrv_answered(void *arg, const char *action)
{
    struct policysrv_conn *c = arg;

    policysrv_send(c, action);
    policysrv_req_clear(&c->req);
    c->busy = 0;
    if (c->ps->draining) { /* closed once the answer is written */
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
        return;
    }
    policysrv_process(c); /* a request already buffered behind this one */
}

/* policysrv_judge - a complete request: on with its transaction, or a new one */
static void policysrv_judge(struct policysrv_conn *c)
{
    const char *err = NULL;

    if (policysrv_req_complete(&c->req, &err) < 0) {
        policysrv_fail(c, err);
        return;
    }
    if (c->ins && !policysrv_instance_same(c->ins, &c->req)) {
        policysrv_instance_end(c->ins);
        c->ins = NULL;
    }
    if (!c->ins)
        c->ins = policysrv_instance_new(&c->env, &c->req);
    c->busy = 1;
    policysrv_instance_judge(c->ins, &c->req, policysrv_answered, c);
}

/* policysrv_process - read lines until a request is complete (or input runs out) */
static void policysrv_process(struct policysrv_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const char *err = NULL;

    while (!c->busy && !c->closing) {
        size_t len;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &len, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (evbuffer_get_length(in) > POLICYSRV_LINE_MAX)
                policysrv_fail(c, "attribute line too long");
            return;
        }
        if ((size_t)eol.pos > POLICYSRV_LINE_MAX) {
            policysrv_fail(c, "attribute line too long");
            return;
        }
        char *line = xmalloc((size_t)eol.pos + 2);
        evbuffer_remove(in, line, (size_t)eol.pos + 1);
        if (eol.pos == 0)
            policysrv_judge(c);
        else if (policysrv_req_line(&c->req, line, (size_t)eol.pos, &err) < 0)
            policysrv_fail(c, err);
        free(line);
    }
}

static void policysrv_read_cb(struct bufferevent *bev, void *arg)
{
    policysrv_process(arg);
}

/* policysrv_write_cb - the output drained: a closing connection is done */
static void policysrv_write_cb(struct bufferevent *bev, void *arg)
{
    struct policysrv_conn *c = arg;

    if (c->closing)
        policysrv_conn_free(c);
}

/* policysrv_event_cb - Postfix closed (it does after max_idle), or silence, or an error */
static void policysrv_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct policysrv_conn *c = arg;

    if ((what & BEV_EVENT_TIMEOUT) && !c->busy)
        log_info("event=timeout client=%s listener=%s state=policy", c->peer,
                 log_q(c->env.listener));
    if ((what & BEV_EVENT_TIMEOUT) && c->busy) {
        bufferevent_enable(bev, EV_READ); /* we are the slow ones: the checks time out */
        return;
    }
    policysrv_conn_free(c);
}

/* policysrv_start - see policysrv.h */
void policysrv_start(struct policysrv *ps, const struct policysrv_env *env, evutil_socket_t fd,
                     const char *peer_ip)
{
    struct policysrv_conn *c = xcalloc(1, sizeof(*c));
    struct timeval tv = {.tv_sec = env->idle_timeout, .tv_usec = 0};

    c->ps = ps;
    c->env = *env;
    snprintf(c->peer, sizeof(c->peer), "%s", peer_ip);
    c->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        env->done(env->arg);
        return;
    }
    LIST_INSERT_HEAD(&ps->conns, c, entry);
    log_info("event=policy_connect client=%s listener=%s", c->peer, log_q(env->listener));
    bufferevent_setcb(c->bev, policysrv_read_cb, policysrv_write_cb, policysrv_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, POLICYSRV_READ_HIGH_WATER);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* policysrv_drain - see policysrv.h */
void policysrv_drain(struct policysrv *ps)
{
    struct policysrv_conn *c, *next;

    if (!ps)
        return;
    ps->draining = 1;
    for (c = LIST_FIRST(&ps->conns); c; c = next) {
        next = LIST_NEXT(c, entry);
        if (!c->busy && !c->closing)
            policysrv_conn_free(c);
    }
}

/* policysrv_close_all - see policysrv.h */
void policysrv_close_all(struct policysrv *ps)
{
    while (ps && !LIST_EMPTY(&ps->conns))
        policysrv_conn_free(LIST_FIRST(&ps->conns));
}

void policysrv_free(struct policysrv *ps)
{
    policysrv_close_all(ps);
    free(ps);
}
