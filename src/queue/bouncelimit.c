/* bouncelimit.c - per-address and per-domain DSN counters in the state store */
#include "queue/bouncelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "store/store.h"

#define BL_KEY_MAX (5 + ADDR_CANON_MAX)

struct bouncelimit {
    struct store *store;
    unsigned limit, domain_limit, window;
};

/* One question: the address counter, then the domain counter. It copies the
 * limits and the store, so that it may outlive the bouncelimit (shutdown). */
struct bl_req {
    struct store *store;
    unsigned limit, domain_limit, window;
    bouncelimit_cb cb;
    void *arg;
    char akey[BL_KEY_MAX];
    char dkey[BL_KEY_MAX]; /* "" when the address has no domain (a bare postmaster) */
};

/* bouncelimit_new - the limits; the counters are in st */
struct bouncelimit *bouncelimit_new(struct store *st, unsigned limit, unsigned domain_limit,
                                    unsigned window)
{
    struct bouncelimit *bl = xcalloc(1, sizeof(*bl));

    bl->store = st;
    bl->limit = limit;
    bl->domain_limit = domain_limit;
    bl->window = window;
    return bl;
}

/* bouncelimit_free - requests under way keep going on their own */
void bouncelimit_free(struct bouncelimit *bl)
{
    free(bl);
}

/* bl_answer - tell the caller and forget the request */
static void bl_answer(struct bl_req *r, enum bouncelimit_verdict v)
{
    bouncelimit_cb cb = r->cb;
    void *arg = r->arg;

    free(r);
    cb(arg, v);
}

/* bl_store_failed - fail open: a DSN is the report of lost mail; the failure is logged */
static void bl_store_failed(struct bl_req *r, const char *key, const char *why)
{
    char q[128], k[2 * BL_KEY_MAX];

    if (strcmp(why, store_strerror(STORE_EDOWN)) == 0) { /* an outage: logged once by the store */
        bl_answer(r, BOUNCELIMIT_ALLOW);
        return;
    }
    log_warn("event=bouncelimit_store_error key=%s error=%s", log_quote(k, sizeof(k), key),
             log_quote(q, sizeof(q), why));
    bl_answer(r, BOUNCELIMIT_ALLOW);
}

/* bl_on_domain - the domain's count after this DSN */
static void bl_on_domain(void *arg, int status, int64_t value)
{
    struct bl_req *r = arg;

    if (status != STORE_OK)
        bl_store_failed(r, r->dkey, store_strerror(status));
    else
        bl_answer(r, value > (int64_t)r->domain_limit ? BOUNCELIMIT_DOMAIN : BOUNCELIMIT_ALLOW);
}

/* bl_on_address - the address's count after this DSN; within it, ask the domain */
static void bl_on_address(void *arg, int status, int64_t value)
{
    struct bl_req *r = arg;

    if (status != STORE_OK) {
        bl_store_failed(r, r->akey, store_strerror(status));
    } else if (value > (int64_t)r->limit) {
        bl_answer(r, BOUNCELIMIT_ADDRESS);
    } else if (!r->dkey[0]) {
        bl_answer(r, BOUNCELIMIT_ALLOW);
    } else if (store_incr(r->store, r->dkey, strlen(r->dkey), 1, r->window, bl_on_domain, r) < 0) {
        bl_store_failed(r, r->dkey, strerror(errno));
    }
}

/* bouncelimit_check - count one DSN to addr under its address, then under its domain */
int bouncelimit_check(struct bouncelimit *bl, const char *addr, bouncelimit_cb cb, void *arg)
{
    char canon[ADDR_CANON_MAX];
    const char *at;
    struct bl_req *r;

    if (!bl->store)
        return 1;
    if (addr_canon_lax(addr, ADDR_CANON_FOLD, canon, sizeof(canon)) < 0)
        snprintf(canon, sizeof(canon), "%s", addr); /* longer than any address: cut */
    r = xcalloc(1, sizeof(*r));
    *r = (struct bl_req){bl->store, bl->limit, bl->domain_limit, bl->window, cb, arg, "", ""};
    snprintf(r->akey, sizeof(r->akey), "bl:a:%s", canon);
    at = strrchr(canon, '@');
    if (at && at[1])
        snprintf(r->dkey, sizeof(r->dkey), "bl:d:%s", at + 1);
    if (store_incr(r->store, r->akey, strlen(r->akey), 1, r->window, bl_on_address, r) < 0) {
        int e = errno;
        free(r);
        errno = e;
        return -1;
    }
    return 0;
}

/* bouncelimit_verdict_name - for logs */
const char *bouncelimit_verdict_name(enum bouncelimit_verdict v)
{
    switch (v) {
    case BOUNCELIMIT_ALLOW:
        return "allow";
    case BOUNCELIMIT_ADDRESS:
        return "address";
    case BOUNCELIMIT_DOMAIN:
        return "domain";
    }
    return "?";
}
