/*
 * bouncelimit.h - at most N delivery status notifications per address and
 * M per domain in a window, counted in the state store.
 *
 * The counters live in the store (store.h), so they survive a restart and
 * are shared by every process on it:
 *   bl:a:<address>   DSNs to that address (canonical form, local part
 *                    lower-cased: "Victim"@x, VICTIM@x and victim@x are one)
 *   bl:d:<domain>    DSNs to that domain (canonical: A-labels)
 * each a fixed window: it expires `window` seconds after its first DSN. The
 * address counter is asked first; a DSN it refuses is not counted for the
 * domain. Nothing is kept in memory, so nothing can fill up: a flood of
 * failures to many forged addresses is bounded by the domain limit, and
 * mail to every other domain keeps its DSNs.
 */
#ifndef MX_QUEUE_BOUNCELIMIT_H
#define MX_QUEUE_BOUNCELIMIT_H

struct store;
struct bouncelimit;

enum bouncelimit_verdict {
    BOUNCELIMIT_ALLOW,   /* send it (also when the store fails: a DSN is never lost to it) */
    BOUNCELIMIT_ADDRESS, /* the address had its `limit` DSNs in this window */
    BOUNCELIMIT_DOMAIN,  /* the domain had its `domain_limit` DSNs in this window */
};

/* bouncelimit_cb - the answer for one DSN */
typedef void (*bouncelimit_cb)(void *arg, enum bouncelimit_verdict v);

/* bouncelimit_new - limits per window seconds over store st (NULL: no limit, for tests) */
struct bouncelimit *bouncelimit_new(struct store *st, unsigned limit, unsigned domain_limit,
                                    unsigned window);
void bouncelimit_free(struct bouncelimit *bl);

/*
 * bouncelimit_check - may one more DSN go to addr? Counts it. 0: cb runs
 * exactly once, later, from the event loop, also after bouncelimit_free
 * (the request keeps what it needs). 1: no store, allowed, cb never runs.
 * -1 (errno ESHUTDOWN): cb never runs; the caller decides (send).
 */
int bouncelimit_check(struct bouncelimit *bl, const char *addr, bouncelimit_cb cb, void *arg);

/* bouncelimit_verdict_name - "allow", "address", "domain" (for logs) */
const char *bouncelimit_verdict_name(enum bouncelimit_verdict v);

#endif
