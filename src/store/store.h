/*
 * store.h - asynchronous key/value state with TTLs and counters.
 *
 * Greylist triplets, rate-limit windows, caches and statistics live here.
 * A store is opened from a URI naming its backend:
 *   "lmdb:/var/lib/mxgate/state"   embedded LMDB environment (a directory)
 *   "redis://[:password@]host:port/db"   a Redis server shared by several gateways
 *   "redis+unix://[:password@]/path/redis.sock?db=N"   the same over a UNIX socket
 * Every check uses only this interface, so it behaves identically on each
 * backend.
 *
 * Asynchronous contract: an operation that returns 0 calls its callback
 * exactly once, later, from the event loop, and never from inside the call
 * itself. An operation that returns -1 (errno EINVAL for a NULL callback
 * where one is required or for a read-only handle, or ESHUTDOWN while the
 * store is closing) never calls it. Bad keys and values are not a
 * -1 return: they complete with status STORE_EINVAL through the callback.
 * Pointers passed to a callback (values, keys) are valid only during it.
 *
 * Order: the operations one event loop issues on a store take effect in the
 * order of the calls (a get issued after a set of the same key sees the set,
 * also while both are still pending), and their callbacks run in that order;
 * an operation refused at once (a bad key: STORE_EINVAL; a full queue:
 * STORE_EDOWN) may complete before operations issued earlier.
 *
 * LMDB does the work on a thread of the store's own (one per writable store,
 * not per operation: the operations and the expiry batches in FIFO order), so
 * that a commit waiting for the disk or a cold page of the map never holds up
 * the event loop; the results come back to the loop through the completion
 * queue. That thread's queue is bounded (STORE_QUEUE_MAX operations,
 * STORE_QUEUE_BYTES octets of keys and values): an operation issued while it
 * is full completes with STORE_EDOWN, which the checks treat as an outage
 * (store_on_error), logged once per episode (event=store_queue_full, then
 * event=store_queue_ok). The synchronous calls (store_sync_get,
 * store_sync_scan_prefix, store_expire, store_flush) on such a store first
 * wait until the operations issued before them are done, then run on the
 * calling thread: they see every write issued before them.
 *
 * Records: a key is 1..STORE_KEY_MAX octets, a value 0..STORE_VAL_MAX octets,
 * both arbitrary binary. A record may carry an expiry (ttl_seconds > 0): from
 * then on it reads as missing everywhere (get, incr, del, scan), and a
 * periodic timer owned by the store deletes it for good.
 *
 * Counters: store_incr keeps an int64. Read back through store_get or a scan,
 * a counter's value is 8 octets, little-endian two's complement; decode it
 * with store_counter_decode(). (A Redis backend keeps plain values under a
 * type prefix and counters as Redis integers, so it can tell the two apart
 * and return counters in this same form.)
 */
#ifndef MX_STORE_STORE_H
#define MX_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct store;

/* The longest key every backend accepts (LMDB's default maximum key size). */
#define STORE_KEY_MAX 511
/* The longest value accepted: state records are small; this bounds memory. */
#define STORE_VAL_MAX 65536
/* Octets of keys and values one asynchronous scan may hold for delivery. */
#define STORE_SCAN_MAX_BYTES (16u * 1024 * 1024)
/* store_expire deletes at most this many records per call ... */
#define STORE_EXPIRE_BATCH 2000
/* ... and looks at no more than this many records per call ... */
#define STORE_EXPIRE_VISIT 20000
/* ... and stops after this many microseconds (by default): one call is one event loop
 * turn. The counts alone cost 5 ms at 400,000 records but 30-43 ms at ten
 * million, where the B-tree's pages are colder (bench/store_scale.c). */
#define STORE_EXPIRE_USEC 4000
/* Operations queued for an LMDB store's thread at most (store_options.queue_max) ... */
#define STORE_QUEUE_MAX 65536
/* ... and octets of keys and values they copy (a full queue: STORE_EDOWN) */
#define STORE_QUEUE_BYTES (64u * 1024 * 1024)

enum store_status {
    STORE_OK = 0,
    STORE_NOTFOUND, /* no such key, or it has expired */
    STORE_EINVAL,   /* key empty or longer than STORE_KEY_MAX, value too long */
    STORE_ETYPE,    /* incr on a value that is not 8 octets (not a counter) */
    STORE_ERANGE,   /* incr would overflow int64; the counter is unchanged */
    STORE_EFULL,    /* the store reached its size limit; nothing was written */
    STORE_ELIMIT,   /* scan stopped after STORE_SCAN_MAX_BYTES: results incomplete */
    STORE_ENOMEM,   /* out of memory */
    STORE_EIO,      /* backend failure (details logged) */
    STORE_EDOWN,    /* the store cannot be reached now (Redis down, timed out): logged
                     * once per outage by the backend; the caller follows store_on_error() */
    STORE_EBUSY     /* store_lease: another owner holds the lease */
};

/* What a check does while the store is down (store { on_error }). */
enum store_on_error { STORE_ON_ERROR_PASS, STORE_ON_ERROR_TEMPFAIL };

/* store_get_cb - result of store_get: val/vlen set only when status is STORE_OK */
typedef void (*store_get_cb)(void *arg, int status, const void *val, size_t vlen);
/* store_done_cb - completion of set, del and scan (STORE_OK, STORE_NOTFOUND for del, ...) */
typedef void (*store_done_cb)(void *arg, int status);
/* store_incr_cb - result of store_incr: value is the counter after the increment */
typedef void (*store_incr_cb)(void *arg, int status, int64_t value);
/* store_scan_cb - one live record of a scan; return 0 to go on, non-zero to stop */
typedef int (*store_scan_cb)(void *arg, const void *key, size_t keylen, const void *val,
                             size_t vlen);
/* store_expire_cb - result of store_expire_start: records deleted (-1: failed), and
 * whether more remain to be looked at */
typedef void (*store_expire_cb)(void *arg, long deleted, int more);

struct store_options {
    size_t map_size;          /* LMDB: initial map size in octets; 0 = 256 MiB */
    size_t map_max;           /* LMDB: the map grows up to this; 0 = 16 x map_size */
    unsigned sync_interval;   /* LMDB: seconds between flushes to disk; 0 = 5 */
    unsigned expire_interval; /* seconds between expiry batches; 0 = 60 */
    unsigned expire_usec;     /* the most time one expiry batch takes; 0 = STORE_EXPIRE_USEC */
    unsigned queue_max;       /* LMDB: operations queued for its thread; 0 = STORE_QUEUE_MAX */
    const char *prefix;       /* Redis: namespace of every key; NULL = "mxgate:" */
    unsigned timeout_ms;      /* Redis: connect and command timeout; 0 = 2000 */
    enum store_on_error on_error;
};

/*
 * store_open - open the store named by uri for reading and writing, with
 * its timers on base. NULL with a message in err on failure (unknown or
 * unbuilt backend, bad path, LMDB error). LMDB creates the directory (one
 * level) if it is missing.
 */
struct store *store_open(struct event_base *base, const char *uri, char *err, size_t errlen);
/* store_open_opts - store_open with options (opt may be NULL for the defaults) */
struct store *store_open_opts(struct event_base *base, const char *uri,
                              const struct store_options *opt, char *err, size_t errlen);

/*
 * store_close - close the store. Callbacks of operations still pending run
 * first, with their results; operations started from them fail with
 * ESHUTDOWN. Safe to call from inside a store callback. NULL is a no-op.
 */
void store_close(struct store *st);

/* store_set_expire_interval - seconds between expiry batches; 0 stops the timer */
void store_set_expire_interval(struct store *st, unsigned seconds);

/* store_get - look key up; cb gets STORE_OK with the value, or STORE_NOTFOUND, ... */
int store_get(struct store *st, const void *key, size_t keylen, store_get_cb cb, void *arg);

/*
 * store_set - replace key's record with val, expiring ttl_seconds from now
 * (0 = never). cb may be NULL when the caller does not care.
 */
int store_set(struct store *st, const void *key, size_t keylen, const void *val, size_t vlen,
              unsigned ttl_seconds, store_done_cb cb, void *arg);

/*
 * store_incr - add delta to the counter key and report the new value. A
 * missing (or expired) counter starts at 0. ttl_seconds > 0 gives the counter
 * an expiry only when it has none (Redis INCRBY then EXPIRE NX): set at
 * creation and never pushed back, so that a fixed window works. cb may be
 * NULL.
 */
int store_incr(struct store *st, const void *key, size_t keylen, int64_t delta,
               unsigned ttl_seconds, store_incr_cb cb, void *arg);

/* store_del - delete key; STORE_NOTFOUND when it was missing or expired. cb may be NULL */
int store_del(struct store *st, const void *key, size_t keylen, store_done_cb cb, void *arg);

/*
 * store_scan_prefix - call item for every live record whose key starts with
 * prefix (plen 0: every record), in key order, then done once with the final
 * status. The records are those present when the call was made. item may
 * stop the scan by returning non-zero (done then gets STORE_OK).
 */
int store_scan_prefix(struct store *st, const void *prefix, size_t plen, store_scan_cb item,
                      store_done_cb done, void *arg);

/*
 * store_expire - delete records that expired at or before now: one bounded
 * batch (at most STORE_EXPIRE_BATCH deleted, STORE_EXPIRE_VISIT looked at,
 * the options' expire_usec spent),
 * continuing where the previous batch stopped. Returns how many records it
 * deleted, or -1 (errno EROFS on a read-only handle, EIO). For tests and
 * tools: on LMDB it waits for the store's thread and runs on the caller's.
 */
long store_expire(struct store *st, time_t now);

/*
 * store_expire_start - the same batch without waiting for it: on LMDB, on the
 * store's thread; cb gets the result later, from the loop (as every store
 * callback). The store's own timer uses this, one batch at a time. 0, or -1
 * (errno EROFS read-only, ESHUTDOWN closing, EINVAL no cb, EAGAIN the
 * thread's queue is full).
 */
int store_expire_start(struct store *st, time_t now, store_expire_cb cb, void *arg);

/* store_flush - make every completed write durable now. STORE_OK or STORE_EIO */
int store_flush(struct store *st);

/* store_counter_decode - a counter's 8-octet value as int64; -1 if vlen is not 8 */
int store_counter_decode(const void *val, size_t vlen, int64_t *out);

/*
 * store_lease - take the lease key for owner when it is free, or renew it when
 * owner holds it, for ttl_ms milliseconds (Redis: one script, atomic for
 * every gateway sharing the server; LMDB: seconds, one process). cb gets
 * STORE_OK when owner holds the lease now, STORE_EBUSY when another does.
 */
int store_lease(struct store *st, const void *key, size_t keylen, const char *owner,
                unsigned ttl_ms, store_done_cb cb, void *arg);

/* store_shared - 1 when other gateways may share this store (Redis), else 0 */
int store_shared(const struct store *st);

/* store_on_error - what checks do with STORE_EDOWN (store { on_error }) */
enum store_on_error store_on_error(const struct store *st);

/* store_strerror - a short text for a status */
const char *store_strerror(int status);

/*
 * Synchronous read-only access, for mxgatectl and other tools that read the
 * store while the daemon runs (LMDB is shared between processes). The
 * asynchronous operations are not available on such a handle.
 */

/* store_uri_check - is uri "scheme:location" with a backend built in and a location;
 * 0, or -1 with err (what store_open would refuse before touching anything) */
int store_uri_check(const char *uri, char *err, size_t errlen);

/* store_uri_safe - uri for a log line or a message: a password shown as "***" (dst may be uri) */
const char *store_uri_safe(const char *uri, char *dst, size_t len);

/* store_open_readonly - open uri for reading without an event loop; NULL with err set */
struct store *store_open_readonly(const char *uri, char *err, size_t errlen);
/* store_open_readonly_opts - the same with options (the Redis key prefix, timeout) */
struct store *store_open_readonly_opts(const char *uri, const struct store_options *opt, char *err,
                                       size_t errlen);

/*
 * store_sync_get - look key up now. STORE_OK with *val (malloc'd; the caller
 * frees it) and *vlen, STORE_NOTFOUND, STORE_EINVAL, STORE_ENOMEM, STORE_EIO.
 */
int store_sync_get(struct store *st, const void *key, size_t keylen, void **val, size_t *vlen);

/*
 * store_sync_scan_prefix - call item for every live record under prefix, now,
 * in key order, on one consistent snapshot; item may stop the scan by
 * returning non-zero. item must not call store functions on the same
 * handle. Returns STORE_OK, STORE_EINVAL or STORE_EIO.
 */
int store_sync_scan_prefix(struct store *st, const void *prefix, size_t plen, store_scan_cb item,
                           void *arg);

#endif
