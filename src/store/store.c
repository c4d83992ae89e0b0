/*
 * store.c - the store front end: backend registry, argument checks, deferred completions.
 *
 * The completion queue takes completions from the loop (Redis, argument errors)
 * and from a backend's worker thread (LMDB): a mutex guards the list and the
 * recycled completions, and a completion queued off the loop thread wakes the
 * loop through an eventfd (libevent's own cross-thread notification needs
 * evthread_use_pthreads() before the base exists, which callers need not do).
 */
#include "store/store_backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define STORE_DEFAULT_EXPIRE_INTERVAL 60
/* Completions kept for reuse: each operation needs one, so recycling saves a malloc. */
#define STORE_SPARE_MAX 64
/* A get value up to this size travels inside the completion itself. */
#define STORE_OP_INLINE 48
#define STORE_SCHEME_MAX 16

enum store_op_kind { STORE_OP_GET, STORE_OP_DONE, STORE_OP_INCR, STORE_OP_SCAN, STORE_OP_EXPIRE };

struct store_op {
    struct store_op *next;
    enum store_op_kind kind;
    int status;
    void *arg;
    store_get_cb get_cb;
    store_done_cb done_cb;
    store_incr_cb incr_cb;
    store_scan_cb item_cb;
    store_expire_cb expire_cb;
    int64_t value;
    unsigned char *data; /* get: the value; scan: packed records (see scan_add) */
    size_t len;
    size_t cap;
    unsigned char small[STORE_OP_INLINE];
};

struct store {
    const struct store_backend *be;
    void *h;                 /* the backend's handle */
    struct event_base *base; /* NULL for a read-only handle */
    struct event *flush_ev;  /* made active when the first completion is queued */
    struct event *expire_ev;
    unsigned expire_interval;
    unsigned expire_usec;  /* one batch's time; 0 = STORE_EXPIRE_USEC */
    pthread_mutex_t lock;  /* head, tail, spare, nspare, wake_pending */
    struct store_op *head; /* completions waiting for delivery, in order */
    struct store_op *tail;
    struct store_op *spare; /* recycled completions */
    unsigned nspare;
    int wake_pending;      /* the loop was told about the queued completions */
    int wake_fd;           /* eventfd written by a worker's completion; -1: none */
    pthread_t loop_thread; /* the thread that opened the store: its event loop's */
    enum store_on_error on_error;
    int flushing; /* on_flush is delivering: store_close must not free yet */
    int closing;
    int expiring; /* the timer's expiry batch is under way on the backend's worker */
};

/* Registry: one entry per backend built into this binary. */
static const struct store_backend *const store_backends[] = {
    &store_backend_lmdb,
    &store_backend_redis,
    &store_backend_redis_unix,
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* store_now - the store's clock */
time_t store_now(const struct store *st)
{
    return clock_now();
}

/* op_alloc - a cleared completion, recycled when possible */
static struct store_op *op_alloc(struct store *st, enum store_op_kind kind, void *arg)
{
    struct store_op *op;

    pthread_mutex_lock(&st->lock);
    if ((op = st->spare) != NULL) {
        st->spare = op->next;
        st->nspare--;
    }
    pthread_mutex_unlock(&st->lock);
    if (!op)
        op = xmalloc(sizeof *op);
    memset(op, 0, offsetof(struct store_op, small));
    op->kind = kind;
    op->arg = arg;
    op->data = op->small;
    op->cap = sizeof op->small;
    return op;
}

/* op_free - release a completion's buffer and keep the completion for reuse */
static void op_free(struct store *st, struct store_op *op)
{
    if (op->data != op->small)
        free(op->data);
    pthread_mutex_lock(&st->lock);
    if (st->nspare < STORE_SPARE_MAX) {
        op->next = st->spare;
        st->spare = op;
        st->nspare++;
        op = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    free(op);
}

/* store_op_get - a completion for store_get with room for a vlen-octet value */
struct store_op *store_op_get(struct store *st, store_get_cb cb, void *arg, size_t vlen)
{
    struct store_op *op = op_alloc(st, STORE_OP_GET, arg);

    op->get_cb = cb;
    if (vlen > op->cap) {
        op->data = xmalloc(vlen);
        op->cap = vlen;
    }
    op->len = vlen;
    return op;
}

/* store_op_get_value - where to copy the value of a get completion */
void *store_op_get_value(struct store_op *op)
{
    return op->data;
}

/* store_op_done - a completion for set, del (NULL when cb is NULL) */
struct store_op *store_op_done(struct store *st, store_done_cb cb, void *arg)
{
    struct store_op *op;

    if (!cb)
        return NULL;
    op = op_alloc(st, STORE_OP_DONE, arg);
    op->done_cb = cb;
    return op;
}

/* store_op_incr - a completion for incr (NULL when cb is NULL) */
struct store_op *store_op_incr(struct store *st, store_incr_cb cb, void *arg)
{
    struct store_op *op;

    if (!cb)
        return NULL;
    op = op_alloc(st, STORE_OP_INCR, arg);
    op->incr_cb = cb;
    return op;
}

/* store_op_scan - a completion for a scan, records added with store_op_scan_add */
struct store_op *store_op_scan(struct store *st, store_scan_cb item, store_done_cb done, void *arg)
{
    struct store_op *op = op_alloc(st, STORE_OP_SCAN, arg);

    op->item_cb = item;
    op->done_cb = done;
    return op;
}

/* store_op_expire - a completion for an expiry batch (store_op_queue_expired) */
struct store_op *store_op_expire(struct store *st, store_expire_cb cb, void *arg)
{
    struct store_op *op = op_alloc(st, STORE_OP_EXPIRE, arg);

    op->expire_cb = cb;
    return op;
}

/* scan_reserve - make room for need more octets; STORE_OK or STORE_ELIMIT */
static int scan_reserve(struct store_op *op, size_t need)
{
    size_t ncap = op->cap;
    unsigned char *p;

    if (need > STORE_SCAN_MAX_BYTES - op->len)
        return STORE_ELIMIT;
    if (op->len + need <= op->cap)
        return STORE_OK;
    while (ncap < op->len + need)
        ncap *= 2;
    if (ncap > STORE_SCAN_MAX_BYTES)
        ncap = STORE_SCAN_MAX_BYTES;
    p = xmalloc(ncap);
    memcpy(p, op->data, op->len);
    if (op->data != op->small)
        free(op->data);
    op->data = p;
    op->cap = ncap;
    return STORE_OK;
}

/*
 * store_op_scan_add - append one record. The packed form is
 * [size_t keylen][size_t vlen][key][value], unaligned, read back with memcpy.
 */
int store_op_scan_add(struct store_op *op, const void *key, size_t keylen, const void *val,
                      size_t vlen)
{
    size_t hdr = 2 * sizeof(size_t);
    unsigned char *p;
    int rc;

    if (vlen > STORE_SCAN_MAX_BYTES || keylen > STORE_KEY_MAX)
        return STORE_ELIMIT;
    if ((rc = scan_reserve(op, hdr + keylen + vlen)) != STORE_OK)
        return rc;
    p = op->data + op->len;
    memcpy(p, &keylen, sizeof keylen);
    memcpy(p + sizeof keylen, &vlen, sizeof vlen);
    memcpy(p + hdr, key, keylen);
    if (vlen)
        memcpy(p + hdr + keylen, val, vlen);
    op->len += hdr + keylen + vlen;
    return STORE_OK;
}

/* scan_deliver - hand the packed records to item, then the status to done */
static void scan_deliver(struct store_op *op)
{
    size_t hdr = 2 * sizeof(size_t), off = 0, klen, vlen;
    const unsigned char *p;

    while (off < op->len) {
        p = op->data + off;
        memcpy(&klen, p, sizeof klen);
        memcpy(&vlen, p + sizeof klen, sizeof vlen);
        off += hdr + klen + vlen;
        if (op->item_cb(op->arg, p + hdr, klen, p + hdr + klen, vlen) != 0)
            break;
    }
    op->done_cb(op->arg, op->status);
}

/* op_deliver - run a completion's callback */
static void op_deliver(struct store_op *op)
{
    int ok = op->status == STORE_OK;

    switch (op->kind) {
    case STORE_OP_GET:
        op->get_cb(op->arg, op->status, ok ? op->data : NULL, ok ? op->len : 0);
        break;
    case STORE_OP_DONE:
        op->done_cb(op->arg, op->status);
        break;
    case STORE_OP_INCR:
        op->incr_cb(op->arg, op->status, ok ? op->value : 0);
        break;
    case STORE_OP_SCAN:
        scan_deliver(op);
        break;
    case STORE_OP_EXPIRE:
        op->expire_cb(op->arg, (long)op->value, op->status);
        break;
    }
}

/* store_op_queue - deliver op with status (and value, for incr) from the loop; off the
 * loop's thread the loop is woken by store_op_wake */
void store_op_queue(struct store *st, struct store_op *op, int status, int64_t value)
{
    int on_loop = st->wake_fd < 0 || pthread_equal(pthread_self(), st->loop_thread), wake;

    if (!op)
        return;
    op->status = status;
    op->value = value;
    op->next = NULL;
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = op;
    else
        st->head = op;
    st->tail = op;
    /* One wake-up covers every completion queued before the flush takes them. */
    wake = on_loop && !st->wake_pending;
    if (wake)
        st->wake_pending = 1;
    pthread_mutex_unlock(&st->lock);
    if (wake)
        event_active(st->flush_ev, EV_READ, 1);
}

/* store_op_wake - wake the loop for the completions a worker queued (one write covers
 * all of them: the loop takes them in one turn rather than one turn each) */
void store_op_wake(struct store *st)
{
    uint64_t one = 1;
    int wake;

    pthread_mutex_lock(&st->lock);
    wake = st->head && !st->wake_pending;
    if (wake)
        st->wake_pending = 1;
    pthread_mutex_unlock(&st->lock);
    if (wake)
        while (write(st->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
}

/* store_op_queue_expired - deliver an expiry batch's result from the loop (any thread) */
void store_op_queue_expired(struct store *st, struct store_op *op, long deleted, int more)
{
    store_op_queue(st, op, more, deleted);
}

/* store_op_discard - give back a completion that will not be queued */
void store_op_discard(struct store *st, struct store_op *op)
{
    if (op)
        op_free(st, op);
}

/* run_queue - deliver the completions queued so far (not those their callbacks queue);
 * 0 when there were none */
static int run_queue(struct store *st)
{
    struct store_op *op, *next;

    pthread_mutex_lock(&st->lock);
    op = st->head;
    st->head = st->tail = NULL;
    st->wake_pending = 0;
    pthread_mutex_unlock(&st->lock);
    if (!op)
        return 0;
    for (; op; op = next) {
        next = op->next;
        op_deliver(op);
        op_free(st, op);
    }
    return 1;
}

static void store_destroy(struct store *st);

/* on_flush - the loop's turn: deliver the queued completions */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct store *st = arg;
    uint64_t n;

    if (st->wake_fd >= 0 && (what & EV_READ))
        while (read(st->wake_fd, &n, sizeof n) < 0 && errno == EINTR)
            ;
    st->flushing = 1;
    run_queue(st);
    /* store_close was called from a callback: deliver the rest, then free. */
    while (st->closing && run_queue(st))
        ;
    st->flushing = 0;
    if (st->closing)
        store_destroy(st);
}

/* expire_schedule - arm the expiry timer after delay seconds (+ usec) */
static void expire_schedule(struct store *st, long sec, long usec)
{
    struct timeval tv = {sec, usec};

    if (st->expire_ev && event_add(st->expire_ev, &tv) < 0)
        log_warn("event=store_expire_timer error=event_add");
}

/* expire_batch - one expiry batch of the configured time */
static long expire_batch(struct store *st, time_t now, int *more)
{
    return st->be->expire(st->h, now, st->expire_usec ? st->expire_usec : STORE_EXPIRE_USEC, more);
}

/* on_expired - a batch of the timer's is done: come back soon when it was cut short */
static void on_expired(void *arg, long n, int more)
{
    struct store *st = arg;

    st->expiring = 0;
    if (st->closing)
        return;
    if (n > 0)
        log_debug("event=store_expire deleted=%ld more=%d", n, more);
    /* A short pause between batches lets connections run between them. */
    if (more && n >= 0)
        expire_schedule(st, 0, 10000);
    else if (st->expire_interval)
        expire_schedule(st, (long)st->expire_interval, 0);
}

/* on_expire - the timer: one expiry batch, on the backend's worker when it has one
 * (never two under way: the batch's completion schedules the next) */
static void on_expire(evutil_socket_t fd, short what, void *arg)
{
    struct store *st = arg;

    if (st->expiring)
        return;
    if (store_expire_start(st, store_now(st), on_expired, st) == 0)
        st->expiring = 1;
    else if (st->expire_interval) /* the worker's queue is full: try again later */
        expire_schedule(st, (long)st->expire_interval, 0);
}

/* find_backend - the registry entry for a scheme; NULL with err filled */
static const struct store_backend *find_backend(const char *scheme, char *err, size_t errlen)
{
    for (size_t i = 0; i < NITEMS(store_backends); i++)
        if (strcmp(store_backends[i]->scheme, scheme) == 0)
            return store_backends[i];
    snprintf(err, errlen, "unknown store backend \"%s\"", scheme);
    return NULL;
}

/* parse_uri - split "scheme:location"; the backend or NULL with err filled */
static const struct store_backend *parse_uri(const char *uri, const char **location, char *err,
                                             size_t errlen)
{
    char scheme[STORE_SCHEME_MAX];
    const char *colon = uri ? strchr(uri, ':') : NULL;
    size_t n;

    if (!colon || colon == uri || (n = (size_t)(colon - uri)) >= sizeof scheme) {
        snprintf(err, errlen, "store uri \"%s\" is not scheme:location", uri ? uri : "");
        return NULL;
    }
    memcpy(scheme, uri, n);
    scheme[n] = '\0';
    *location = colon + 1;
    return find_backend(scheme, err, errlen);
}

int store_uri_check(const char *uri, char *err, size_t errlen)
{
    const char *location;
    const struct store_backend *be = parse_uri(uri, &location, err, errlen);

    if (!be)
        return -1;
    if (!*location) {
        snprintf(err, errlen, "store uri \"%s\" has no location", uri);
        return -1;
    }
    return be->check ? be->check(location, err, errlen) : 0;
}

/* store_new - the front end around a backend; NULL with err filled */
static struct store *store_new(struct event_base *base, const char *uri,
                               const struct store_options *opt, char *err, size_t errlen)
{
    const char *location;
    const struct store_backend *be = parse_uri(uri, &location, err, errlen);
    struct store *st;

    if (!be)
        return NULL;
    st = xcalloc(1, sizeof *st);
    st->be = be;
    st->base = base;
    st->wake_fd = -1;
    st->loop_thread = pthread_self();
    pthread_mutex_init(&st->lock, NULL);
    st->on_error = opt ? opt->on_error : STORE_ON_ERROR_PASS;
    st->h = be->open(st, base, location, opt, base == NULL, err, errlen);
    if (!st->h) {
        pthread_mutex_destroy(&st->lock);
        free(st);
        return NULL;
    }
    return st;
}

/* store_setup_events - the completion event and the expiry timer; -1 on failure */
static int store_setup_events(struct store *st, const struct store_options *opt)
{
    if (st->be->threaded && (st->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return -1;
    st->flush_ev =
        event_new(st->base, st->wake_fd, st->wake_fd >= 0 ? EV_READ | EV_PERSIST : 0, on_flush, st);
    st->expire_ev = event_new(st->base, -1, 0, on_expire, st);
    if (!st->flush_ev || !st->expire_ev || (st->wake_fd >= 0 && event_add(st->flush_ev, NULL) < 0))
        return -1;
    st->expire_interval =
        opt && opt->expire_interval ? opt->expire_interval : STORE_DEFAULT_EXPIRE_INTERVAL;
    st->expire_usec = opt ? opt->expire_usec : 0;
    return event_add(st->expire_ev, &(struct timeval){(long)st->expire_interval, 0});
}

/* store_open_opts - open a store for reading and writing, its timers on base */
struct store *store_open_opts(struct event_base *base, const char *uri,
                              const struct store_options *opt, char *err, size_t errlen)
{
    struct store *st;

    if (!base) {
        snprintf(err, errlen, "store_open needs an event base");
        return NULL;
    }
    if ((st = store_new(base, uri, opt, err, errlen)) == NULL)
        return NULL;
    if (store_setup_events(st, opt) < 0) {
        snprintf(err, errlen, "cannot create store events");
        store_destroy(st);
        return NULL;
    }
    return st;
}

/* store_open - store_open_opts with the default options */
struct store *store_open(struct event_base *base, const char *uri, char *err, size_t errlen)
{
    return store_open_opts(base, uri, NULL, err, errlen);
}

/* store_open_readonly - open for synchronous reads, without an event loop */
struct store *store_open_readonly(const char *uri, char *err, size_t errlen)
{
    return store_new(NULL, uri, NULL, err, errlen);
}

/* store_open_readonly_opts - the same with options */
struct store *store_open_readonly_opts(const char *uri, const struct store_options *opt, char *err,
                                       size_t errlen)
{
    return store_new(NULL, uri, opt, err, errlen);
}

/* store_destroy - close the backend and free everything (nothing may be queued) */
static void store_destroy(struct store *st)
{
    struct store_op *op;

    /* A backend that answers on the loop (Redis) completes what it still had at
     * close: those callbacks run here, before the events go. */
    st->be->close(st->h);
    while (run_queue(st))
        ;
    if (st->flush_ev)
        event_free(st->flush_ev);
    if (st->expire_ev)
        event_free(st->expire_ev);
    if (st->wake_fd >= 0)
        close(st->wake_fd);
    while ((op = st->spare) != NULL) {
        st->spare = op->next;
        free(op);
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* store_close - deliver what is pending, then close; deferred when inside a callback */
void store_close(struct store *st)
{
    if (!st || st->closing)
        return;
    st->closing = 1;
    if (st->expire_ev)
        event_del(st->expire_ev);
    if (st->flushing)
        return; /* on_flush delivers the rest and frees st when it unwinds */
    while (run_queue(st))
        ;
    store_destroy(st);
}

/* store_set_expire_interval - change the expiry period; 0 stops the timer */
void store_set_expire_interval(struct store *st, unsigned seconds)
{
    st->expire_interval = seconds;
    if (!st->expire_ev || st->closing)
        return;
    event_del(st->expire_ev);
    if (seconds)
        expire_schedule(st, (long)seconds, 0);
}

/* async_ok - may an asynchronous operation start? -1 with errno when not */
static int async_ok(const struct store *st, int have_cb)
{
    if (!st || !st->base || !have_cb) {
        errno = EINVAL;
        return -1;
    }
    if (st->closing) {
        errno = ESHUTDOWN;
        return -1;
    }
    return 0;
}

/* key_ok - is this a key every backend accepts? */
static int key_ok(const void *key, size_t keylen)
{
    return key && keylen >= 1 && keylen <= STORE_KEY_MAX;
}

/* fail_done - complete a set/del/scan with status without asking the backend */
static int fail_done(struct store *st, store_done_cb cb, void *arg, int status)
{
    store_op_queue(st, store_op_done(st, cb, arg), status, 0);
    return 0;
}

/* store_get - asynchronous lookup */
int store_get(struct store *st, const void *key, size_t keylen, store_get_cb cb, void *arg)
{
    struct store_op *op;

    if (async_ok(st, cb != NULL) < 0)
        return -1;
    if (key_ok(key, keylen))
        return st->be->get(st->h, key, keylen, cb, arg);
    op = store_op_get(st, cb, arg, 0);
    store_op_queue(st, op, STORE_EINVAL, 0);
    return 0;
}

/* store_set - asynchronous replace with optional expiry */
int store_set(struct store *st, const void *key, size_t keylen, const void *val, size_t vlen,
              unsigned ttl_seconds, store_done_cb cb, void *arg)
{
    if (async_ok(st, 1) < 0)
        return -1;
    if (!key_ok(key, keylen) || vlen > STORE_VAL_MAX || (vlen && !val))
        return fail_done(st, cb, arg, STORE_EINVAL);
    return st->be->set(st->h, key, keylen, val, vlen, ttl_seconds, cb, arg);
}

/* store_incr - asynchronous counter increment */
int store_incr(struct store *st, const void *key, size_t keylen, int64_t delta,
               unsigned ttl_seconds, store_incr_cb cb, void *arg)
{
    struct store_op *op;

    if (async_ok(st, 1) < 0)
        return -1;
    if (key_ok(key, keylen))
        return st->be->incr(st->h, key, keylen, delta, ttl_seconds, cb, arg);
    op = store_op_incr(st, cb, arg);
    store_op_queue(st, op, STORE_EINVAL, 0);
    return 0;
}

/* store_del - asynchronous delete */
int store_del(struct store *st, const void *key, size_t keylen, store_done_cb cb, void *arg)
{
    if (async_ok(st, 1) < 0)
        return -1;
    if (!key_ok(key, keylen))
        return fail_done(st, cb, arg, STORE_EINVAL);
    return st->be->del(st->h, key, keylen, cb, arg);
}

/* store_scan_prefix - asynchronous prefix listing */
int store_scan_prefix(struct store *st, const void *prefix, size_t plen, store_scan_cb item,
                      store_done_cb done, void *arg)
{
    if (async_ok(st, item && done) < 0)
        return -1;
    if (plen > STORE_KEY_MAX || (plen && !prefix))
        return fail_done(st, done, arg, STORE_EINVAL);
    return st->be->scan_prefix(st->h, prefix, plen, item, done, arg);
}

/* store_expire - one bounded expiry batch */
long store_expire(struct store *st, time_t now)
{
    int more = 0;

    if (!st->base) {
        errno = EROFS;
        return -1;
    }
    return expire_batch(st, now, &more);
}

/* store_expire_start - one bounded expiry batch, its result later from the loop */
int store_expire_start(struct store *st, time_t now, store_expire_cb cb, void *arg)
{
    struct store_op *op;
    int more = 0;
    long n;

    if (async_ok(st, cb != NULL) < 0) {
        if (st && !st->base)
            errno = EROFS;
        return -1;
    }
    op = store_op_expire(st, cb, arg);
    if (st->be->expire_start) {
        if (st->be->expire_start(st->h, now, st->expire_usec ? st->expire_usec : STORE_EXPIRE_USEC,
                                 op) == 0)
            return 0;
        store_op_discard(st, op);
        return -1;
    }
    n = expire_batch(st, now, &more);
    store_op_queue_expired(st, op, n, more);
    return 0;
}

/* store_flush - make completed writes durable */
int store_flush(struct store *st)
{
    return st->be->flush(st->h);
}

/* store_sync_get - synchronous lookup; *val is malloc'd */
int store_sync_get(struct store *st, const void *key, size_t keylen, void **val, size_t *vlen)
{
    if (!key_ok(key, keylen) || !val || !vlen)
        return STORE_EINVAL;
    return st->be->sync_get(st->h, key, keylen, val, vlen);
}

/* store_sync_scan_prefix - synchronous prefix listing on one snapshot */
int store_sync_scan_prefix(struct store *st, const void *prefix, size_t plen, store_scan_cb item,
                           void *arg)
{
    if (!item || plen > STORE_KEY_MAX || (plen && !prefix))
        return STORE_EINVAL;
    return st->be->sync_scan_prefix(st->h, prefix, plen, item, arg);
}

/* lease_here - store_lease for a backend of one process: read, then write (nothing runs
 * between the two, so it is atomic for this process, the only user of such a store) */
static int lease_here(struct store *st, const void *key, size_t keylen, const char *owner,
                      unsigned ttl_ms, store_done_cb cb, void *arg)
{
    size_t olen = strlen(owner), vlen = 0;
    void *val = NULL;
    int s = st->be->sync_get(st->h, key, keylen, &val, &vlen);

    if (s == STORE_OK && (vlen != olen || memcmp(val, owner, olen) != 0))
        s = STORE_EBUSY;
    free(val);
    if (s != STORE_OK && s != STORE_NOTFOUND)
        return fail_done(st, cb, arg, s);
    return st->be->set(st->h, key, keylen, owner, olen, (ttl_ms + 999) / 1000, cb, arg);
}

/* store_lease - take or renew a lease */
int store_lease(struct store *st, const void *key, size_t keylen, const char *owner,
                unsigned ttl_ms, store_done_cb cb, void *arg)
{
    if (async_ok(st, cb != NULL && owner != NULL) < 0)
        return -1;
    if (!key_ok(key, keylen) || !*owner || strlen(owner) > 255)
        return fail_done(st, cb, arg, STORE_EINVAL);
    if (st->be->lease)
        return st->be->lease(st->h, key, keylen, owner, ttl_ms, cb, arg);
    return lease_here(st, key, keylen, owner, ttl_ms, cb, arg);
}

/* store_shared - may other gateways use this store? */
int store_shared(const struct store *st)
{
    return st && st->be->shared;
}

/* store_on_error - what checks do while the store is down */
enum store_on_error store_on_error(const struct store *st)
{
    return st ? st->on_error : STORE_ON_ERROR_PASS;
}
