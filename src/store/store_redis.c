/*
 * store_redis.c - the Redis backend: one asynchronous hiredis connection on
 * the daemon's libevent loop, shared by every check.
 *
 * Connection: AUTH (when the URI has a password), SELECT (a database other
 * than 0) and PING are pipelined first; commands sent meanwhile follow them
 * on the same connection. A connection that fails, is closed by the server,
 * or leaves its oldest command unanswered for the timeout is dropped: every
 * command on it completes with STORE_EDOWN, and a new one is tried after a
 * back-off (RDS_BACKOFF_MIN doubling to RDS_BACKOFF_MAX). While there is no
 * connection, operations complete with STORE_EDOWN at once (from the loop):
 * no session waits for a dead store. The outage is logged once,
 *   event=store_down backend=redis server=... error=...
 *   event=store_up backend=redis server=... down_seconds=N
 * and counted (metrics "store.down", and every failed operation in
 * mxgate_store_errors_total).
 *
 * Results go through the front end's completion queue, so a caller's
 * callback never runs inside hiredis. At close, what is still unanswered is
 * waited for (bounded by the timeout) so that the last writes (statistics)
 * reach the server.
 */
#include "store/store_redis.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

#define RDS_DEFAULT_PREFIX "mxgate:"
#define RDS_DEFAULT_TIMEOUT_MS 2000
#define RDS_BACKOFF_MIN 100 /* ms before the first reconnection attempt */
#define RDS_BACKOFF_MAX 2000

enum rds_state { RDS_DOWN, RDS_CONNECTING, RDS_READY };

struct rds_req {
    struct rds_conn *c;
    rds_reply_fn fn;
    void *arg;
    int64_t deadline; /* monotonic ms */
    struct rds_req *prev, *next;
};

struct rds_conn {
    struct rds *r;
    redisAsyncContext *ac;
    enum rds_state state;
    int down;          /* an outage is under way (and was logged) */
    time_t down_since; /* when it began */
    unsigned backoff;  /* ms before the next attempt */
    struct event *retry_ev;
    struct event *watch_ev;      /* the oldest command's deadline */
    struct event *fail_ev;       /* delivers the failures of commands never sent */
    struct rds_req *head, *tail; /* sent, in order: Redis answers in order */
    struct rds_req *failed, *failed_tail;
    int closing;
};

/* now_ms - the monotonic clock in milliseconds (timeouts, not record times) */
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_start(struct rds_conn *c);

/* conn_down - an outage began (or goes on): log and count it once */
static void conn_down(struct rds_conn *c, const char *why)
{
    if (c->down)
        return;
    c->down = 1;
    c->down_since = time(NULL);
    metrics_event("store.down");
    log_warn("event=store_down backend=redis server=%s error=%s", log_q(c->r->name), log_q(why));
}

/* conn_up - the handshake was answered: an outage, if any, is over */
static void conn_up(struct rds_conn *c)
{
    c->state = RDS_READY;
    c->backoff = RDS_BACKOFF_MIN;
    if (!c->down)
        return;
    c->down = 0;
    metrics_event("store.up");
    log_info("event=store_up backend=redis server=%s down_seconds=%lld", log_q(c->r->name),
             (long long)(time(NULL) - c->down_since));
}

/* conn_retry_later - the next connection attempt after the back-off */
static void conn_retry_later(struct rds_conn *c)
{
    struct timeval tv = {c->backoff / 1000, (c->backoff % 1000) * 1000};

    c->state = RDS_DOWN;
    if (c->closing)
        return;
    event_add(c->retry_ev, &tv);
    c->backoff = c->backoff * 2 > RDS_BACKOFF_MAX ? RDS_BACKOFF_MAX : c->backoff * 2;
}

/* conn_lost - drop the connection: its commands complete with NULL replies (STORE_EDOWN) */
static void conn_lost(struct rds_conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;

    conn_down(c, why);
    c->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis when inside one of its callbacks */
    conn_retry_later(c);
}

/* req_unlink - take a sent command off the list */
static void req_unlink(struct rds_conn *c, struct rds_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        c->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        c->tail = q->prev;
}

/* watch_arm - wake up at the oldest command's deadline */
static void watch_arm(struct rds_conn *c)
{
    int64_t ms;
    struct timeval tv;

    if (!c->head || evtimer_pending(c->watch_ev, NULL))
        return;
    ms = c->head->deadline - now_ms();
    if (ms < 1)
        ms = 1;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    evtimer_add(c->watch_ev, &tv);
}

/* on_watch - a command overran the timeout: the server is as good as gone */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct rds_conn *c = arg;

    if (c->head && c->head->deadline <= now_ms()) {
        conn_lost(c, "timeout");
        return;
    }
    watch_arm(c);
}

/* on_reply - hiredis's callback for every command (reply NULL: connection gone) */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rds_req *q = privdata;
    struct rds_conn *c = q->c;

    req_unlink(c, q);
    if (!reply)
        metrics_inc(METRICS_STORE_ERRORS);
    q->fn(q->arg, reply);
    free(q);
}

/* on_failed - complete the commands that could not be sent */
static void on_failed(evutil_socket_t fd, short what, void *arg)
{
    struct rds_conn *c = arg;
    struct rds_req *q = c->failed, *next;

    c->failed = c->failed_tail = NULL;
    for (; q; q = next) {
        next = q->next;
        metrics_inc(METRICS_STORE_ERRORS);
        q->fn(q->arg, NULL);
        free(q);
    }
}

/* req_fail - the store is down: complete q with a NULL reply from the loop */
static void req_fail(struct rds_conn *c, struct rds_req *q)
{
    q->next = NULL;
    if (c->failed_tail)
        c->failed_tail->next = q;
    else
        c->failed = q;
    c->failed_tail = q;
    event_active(c->fail_ev, EV_TIMEOUT, 1);
}

void rds_send(struct rds *r, int argc, const char **argv, const size_t *argvlen, rds_reply_fn fn,
              void *req_arg)
{
    struct rds_conn *c = r->conn;
    struct rds_req *q = xcalloc(1, sizeof(*q));

    q->c = c;
    q->fn = fn;
    q->arg = req_arg;
    if (!c->ac || c->closing) {
        req_fail(c, q);
        return;
    }
    q->deadline = now_ms() + r->timeout_ms;
    q->prev = c->tail;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    if (redisAsyncCommandArgv(c->ac, on_reply, q, argc, argv, argvlen) != REDIS_OK) {
        req_unlink(c, q);
        req_fail(c, q);
        return;
    }
    watch_arm(c);
}

/* on_hello - AUTH, SELECT or PING of the handshake answered */
static void on_hello(void *arg, struct redisReply *reply)
{
    struct rds_conn *c = arg;
    char why[160];

    if (!reply || c->state != RDS_CONNECTING)
        return; /* the connection is already being dropped */
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%.150s", reply->str ? reply->str : "error");
        conn_lost(c, why);
        return;
    }
    if (reply->type == REDIS_REPLY_STATUS && reply->str && strcmp(reply->str, "PONG") == 0)
        conn_up(c);
}

/* hello - the handshake, pipelined in front of whatever follows */
static void hello(struct rds_conn *c)
{
    struct rds *r = c->r;
    char db[16];
    const char *argv[2];
    size_t len[2];

    if (r->uri.has_password) {
        argv[0] = "AUTH", argv[1] = r->uri.password;
        len[0] = 4, len[1] = strlen(r->uri.password);
        rds_send(r, 2, argv, len, on_hello, c);
    }
    if (r->uri.db) {
        snprintf(db, sizeof(db), "%d", r->uri.db);
        argv[0] = "SELECT", argv[1] = db;
        len[0] = 6, len[1] = strlen(db);
        rds_send(r, 2, argv, len, on_hello, c);
    }
    argv[0] = "PING", len[0] = 4;
    rds_send(r, 1, argv, len, on_hello, c);
}

/* on_connect - the TCP or UNIX connection is made (or failed) */
static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rds_conn *c = ac->data;

    if (status != REDIS_OK && ac == c->ac) {
        c->ac = NULL; /* hiredis frees it */
        conn_down(c, ac->errstr[0] ? ac->errstr : "connect failed");
        conn_retry_later(c);
    }
}

/* on_disconnect - the server closed the connection, or we dropped it */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rds_conn *c = ac->data;

    if (ac != c->ac)
        return; /* dropped by conn_lost */
    c->ac = NULL;
    conn_down(c, ac->errstr[0] ? ac->errstr : "connection closed");
    conn_retry_later(c);
}

/* conn_start - a new connection attempt */
static void conn_start(struct rds_conn *c)
{
    struct rds *r = c->r;
    redisAsyncContext *ac = r->uri.path[0] ? redisAsyncConnectUnix(r->uri.path)
                                           : redisAsyncConnect(r->uri.host, r->uri.port);

    if (!ac || ac->err) {
        conn_down(c, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        conn_retry_later(c);
        return;
    }
    ac->data = c;
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_down(c, "cannot attach to the event loop");
        conn_retry_later(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = RDS_CONNECTING;
    hello(c);
}

/* on_retry - the back-off is over */
static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    conn_start(arg);
}

/* conn_drain - at close: wait (bounded) for the answers still due */
static void conn_drain(struct rds_conn *c, unsigned ms)
{
    int64_t deadline = now_ms() + ms, left;
    struct pollfd p;

    while (c->ac && c->head && (left = deadline - now_ms()) > 0) {
        redisAsyncHandleWrite(c->ac);
        if (!c->ac)
            break;
        p.fd = c->ac->c.fd;
        p.events = POLLIN;
        if (poll(&p, 1, (int)left) > 0)
            redisAsyncHandleRead(c->ac);
    }
}

/* conn_close - drain, drop, and free */
static void conn_close(struct rds_conn *c)
{
    redisAsyncContext *ac;

    conn_drain(c, c->r->timeout_ms);
    c->closing = 1;
    ac = c->ac;
    c->ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    on_failed(-1, 0, c);
    event_free(c->retry_ev);
    event_free(c->watch_ev);
    event_free(c->fail_ev);
    free(c);
}

/* One operation waiting for its reply: the front end's completion, filled then queued. */
struct rds_op {
    struct rds *r;
    int kind; /* 'g' get, 'd' set/del/lease, 'i' incr */
    char cmd; /* 's' set, 'd' del, 'l' lease (how the reply reads) */
    store_get_cb get_cb;
    void *arg;
    struct store_op *done; /* set, del, lease, incr: NULL when nobody waits */
};

/* op_reply - decode the reply and hand the result to the front end's queue */
static void op_reply(void *arg, struct redisReply *reply)
{
    struct rds_op *o = arg;
    struct store *st = o->r->st;
    unsigned char ctr[8];
    const void *val = NULL;
    size_t vlen = 0;
    int64_t v = 0;
    int s;

    if (o->kind == 'g') {
        struct store_op *op;
        s = rds_reply_get(reply, &val, &vlen, ctr);
        op = store_op_get(st, o->get_cb, o->arg, s == STORE_OK ? vlen : 0);
        if (s == STORE_OK && vlen)
            memcpy(store_op_get_value(op), val, vlen);
        store_op_queue(st, op, s, 0);
    } else if (o->kind == 'i') {
        s = rds_reply_incr(reply, &v);
        store_op_queue(st, o->done, s, v);
    } else {
        s = o->cmd == 's'   ? rds_reply_set(reply)
            : o->cmd == 'd' ? rds_reply_del(reply)
                            : rds_reply_lease(reply);
        store_op_queue(st, o->done, s, 0);
    }
    if (s == STORE_EIO && reply && reply->type == REDIS_REPLY_ERROR)
        log_warn("event=store_error backend=redis error=%s", log_q(reply->str));
    free(o);
}

/* op_new - an operation's reply context */
static struct rds_op *op_new(struct rds *r, int kind, char cmd, void *arg)
{
    struct rds_op *o = xcalloc(1, sizeof(*o));

    o->r = r;
    o->kind = kind;
    o->cmd = cmd;
    o->arg = arg;
    return o;
}

/* op_send - send a built command for o */
static int op_send(struct rds *r, struct rds_cmd *cmd, struct rds_op *o)
{
    rds_send(r, cmd->argc, cmd->argv, cmd->argvlen, op_reply, o);
    rds_cmd_free(cmd);
    return 0;
}

static int rds_get(void *h, const void *key, size_t keylen, store_get_cb cb, void *arg)
{
    struct rds *r = h;
    struct rds_op *o = op_new(r, 'g', 'g', arg);
    struct rds_cmd cmd;

    o->get_cb = cb;
    rds_cmd_get(&cmd, r->prefix, key, keylen);
    return op_send(r, &cmd, o);
}

static int rds_set(void *h, const void *key, size_t keylen, const void *val, size_t vlen,
                   unsigned ttl, store_done_cb cb, void *arg)
{
    struct rds *r = h;
    struct rds_op *o = op_new(r, 'd', 's', arg);
    struct rds_cmd cmd;

    o->done = store_op_done(r->st, cb, arg);
    rds_cmd_set(&cmd, r->prefix, key, keylen, val, vlen, ttl);
    return op_send(r, &cmd, o);
}

static int rds_incr(void *h, const void *key, size_t keylen, int64_t delta, unsigned ttl,
                    store_incr_cb cb, void *arg)
{
    struct rds *r = h;
    struct rds_op *o = op_new(r, 'i', 'i', arg);
    struct rds_cmd cmd;

    o->done = store_op_incr(r->st, cb, arg);
    rds_cmd_incr(&cmd, r->prefix, key, keylen, delta, ttl);
    return op_send(r, &cmd, o);
}

static int rds_del(void *h, const void *key, size_t keylen, store_done_cb cb, void *arg)
{
    struct rds *r = h;
    struct rds_op *o = op_new(r, 'd', 'd', arg);
    struct rds_cmd cmd;

    o->done = store_op_done(r->st, cb, arg);
    rds_cmd_del(&cmd, r->prefix, key, keylen);
    return op_send(r, &cmd, o);
}

static int rds_lease(void *h, const void *key, size_t keylen, const char *owner, unsigned ttl_ms,
                     store_done_cb cb, void *arg)
{
    struct rds *r = h;
    struct rds_op *o = op_new(r, 'd', 'l', arg);
    struct rds_cmd cmd;

    o->done = store_op_done(r->st, cb, arg);
    rds_cmd_lease(&cmd, r->prefix, key, keylen, owner, ttl_ms);
    return op_send(r, &cmd, o);
}

/* rds_expire - Redis expires records itself */
static long rds_expire(void *h, time_t now, unsigned usec, int *more)
{
    *more = 0;
    return 0;
}

/* rds_flush - durability is the Redis server's (its save / appendonly settings) */
static int rds_flush(void *h)
{
    return STORE_OK;
}

/* rds_open - parse the URI; connect now (the loop) or when first needed (tools) */
static void *rds_open(const char *scheme, struct store *st, struct event_base *base,
                      const char *location, const struct store_options *opt, char *err,
                      size_t errlen)
{
    struct rds *r = xcalloc(1, sizeof(*r));
    const char *prefix = opt && opt->prefix ? opt->prefix : RDS_DEFAULT_PREFIX;
    struct rds_conn *c;

    if (rds_uri_parse(scheme, location, &r->uri, err, errlen) < 0) {
        free(r);
        return NULL;
    }
    if (strlen(prefix) > RDS_PREFIX_MAX) {
        snprintf(err, errlen, "redis key prefix longer than %d octets", RDS_PREFIX_MAX);
        free(r);
        return NULL;
    }
    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
    r->st = st;
    r->base = base;
    r->timeout_ms = opt && opt->timeout_ms ? opt->timeout_ms : RDS_DEFAULT_TIMEOUT_MS;
    rds_uri_name(&r->uri, r->name, sizeof(r->name));
    if (!base)
        return r;
    c = r->conn = xcalloc(1, sizeof(*c));
    c->r = r;
    c->backoff = RDS_BACKOFF_MIN;
    c->retry_ev = evtimer_new(base, on_retry, c);
    c->watch_ev = evtimer_new(base, on_watch, c);
    c->fail_ev = event_new(base, -1, 0, on_failed, c);
    conn_start(c); /* a server down at start is an outage like any other */
    return r;
}

static void *rds_open_tcp(struct store *st, struct event_base *base, const char *location,
                          const struct store_options *opt, int readonly, char *err, size_t errlen)
{
    return rds_open("redis", st, base, location, opt, err, errlen);
}

static void *rds_open_unix(struct store *st, struct event_base *base, const char *location,
                           const struct store_options *opt, int readonly, char *err, size_t errlen)
{
    return rds_open("redis+unix", st, base, location, opt, err, errlen);
}

/* rds_close - the answers still due first, then the connections */
static void rds_close(void *h)
{
    struct rds *r = h;

    if (r->conn)
        conn_close(r->conn);
    rds_sync_close(r);
    free(r);
}

static int rds_check_tcp(const char *location, char *err, size_t errlen)
{
    struct rds_uri u;

    return rds_uri_parse("redis", location, &u, err, errlen);
}

static int rds_check_unix(const char *location, char *err, size_t errlen)
{
    struct rds_uri u;

    return rds_uri_parse("redis+unix", location, &u, err, errlen);
}

#define RDS_BACKEND(sym, sch, openfn, checkfn)                                                     \
    const struct store_backend sym = {                                                             \
        .scheme = sch,                                                                             \
        .open = openfn,                                                                            \
        .get = rds_get,                                                                            \
        .set = rds_set,                                                                            \
        .incr = rds_incr,                                                                          \
        .del = rds_del,                                                                            \
        .scan_prefix = rds_scan_prefix,                                                            \
        .expire = rds_expire,                                                                      \
        .flush = rds_flush,                                                                        \
        .sync_get = rds_sync_get,                                                                  \
        .sync_scan_prefix = rds_sync_scan_prefix,                                                  \
        .close = rds_close,                                                                        \
        .lease = rds_lease,                                                                        \
        .check = checkfn,                                                                          \
        .shared = 1,                                                                               \
    }

RDS_BACKEND(store_backend_redis, "redis", rds_open_tcp, rds_check_tcp);
RDS_BACKEND(store_backend_redis_unix, "redis+unix", rds_open_unix, rds_check_unix);
