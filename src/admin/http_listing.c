/*
 * http_listing.c - the API's store listings (/api/greylist, /api/blocks).
 *
 * A listing returns at most ?limit= records of each kind (API_LIST_DEFAULT
 * without it), and says when there were more: a greylist grown for months
 * holds millions. An LMDB store is read on the loop: its B-tree hands the
 * first records of a prefix at once. A shared store (Redis) has no order: a
 * listing is a SCAN of the whole keyspace, round trip after round trip, which
 * at ten million keys takes seconds. That one runs on the listener's own
 * thread over a private read-only connection, as mxgatectl reads it, and the
 * reply follows when it is done: the loop serves sessions meanwhile. (A client
 * that leaves before the reply costs nothing: libevent keeps the request and
 * frees it at the reply.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http_internal.h"
#include "core/json.h"
#include "core/pool.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include "store/storeconf.h"

#define API_LIST_DEFAULT 1000 /* store records of each kind a listing returns ... */
#define API_LIST_MAX 100000   /* ... and at most, with ?limit= */
#define API_LIST_MAX_S "100000"

/* A listing on the listener's thread. */
struct listing {
    struct admin *a;
    struct evhttp_request *req;
    int greylist; /* else blocks */
    unsigned max;
    struct adm_limits lim;
    char uri[4200];
    char prefix[STORECONF_PREFIX_MAX + 1];
    struct store_options opt;
    struct json j;
    int rc; /* 0, or -1: the store could not be read */
};

/* listing_limit - ?limit=N: 1..API_LIST_MAX, API_LIST_DEFAULT without it; 0 when bad */
static unsigned listing_limit(struct http_req *r)
{
    const char *v = http_param(r, "limit");
    char *end;
    unsigned long n;

    if (!v)
        return API_LIST_DEFAULT;
    n = strtoul(v, &end, 10);
    return v[0] >= '0' && v[0] <= '9' && !*end && n >= 1 && n <= API_LIST_MAX ? (unsigned)n : 0;
}

/* listing_read - the listing of st into l->j */
static void listing_read(struct listing *l, struct store *st)
{
    l->rc = l->greylist ? adm_greylist_json(st, l->max, &l->j)
                        : adm_blocks_json(&l->lim, st, l->max, &l->j);
}

/* listing_work - on the listener's thread: a connection of its own, the listing */
static void listing_work(void *arg)
{
    struct listing *l = arg;
    char err[256];
    struct store *st = store_open_readonly_opts(l->uri, &l->opt, err, sizeof(err));

    l->rc = -1;
    if (!st)
        return;
    listing_read(l, st);
    store_close(st);
}

/* listing_reply - the answer, on the loop */
static void listing_reply(struct listing *l)
{
    struct http_req r = {.a = l->a, .req = l->req};

    if (l->rc < 0)
        http_error(&r, 500, "cannot read the store");
    else
        http_json(&r, 200, &l->j);
    json_free(&l->j);
    free(l);
}

static void listing_done(void *arg)
{
    listing_reply(arg);
}

/* listing_new - what the listing needs, copied: a reload may free the configuration
 * before a listing on the thread ends */
static struct listing *listing_new(struct http_req *r, int greylist, unsigned max)
{
    const struct config *cfg = adm_cfg(&r->a->env);
    struct listing *l = xcalloc(1, sizeof(*l));

    l->a = r->a;
    l->req = r->req;
    l->greylist = greylist;
    l->max = max;
    adm_limits_read(cfg, &l->lim);
    storeconf_uri(cfg, l->uri, sizeof(l->uri));
    storeconf_options(cfg, &l->opt);
    if (l->opt.prefix) {
        snprintf(l->prefix, sizeof(l->prefix), "%s", l->opt.prefix);
        l->opt.prefix = l->prefix;
    }
    json_init(&l->j);
    return l;
}

/* http_store_listing - see http_internal.h */
void http_store_listing(struct http_req *r, const char *what)
{
    struct store *st = r->a->env.store;
    unsigned max = listing_limit(r);
    struct listing *l;

    if (strcmp(what, "flood") == 0) { /* one record */
        struct json j;
        json_init(&j);
        if (adm_flood_json(adm_cfg(&r->a->env), st, &j) < 0)
            http_error(r, 500, "cannot read the store");
        else
            http_json(r, 200, &j);
        json_free(&j);
        return;
    }
    if (!max) {
        http_error(r, 400, "limit is a number from 1 to " API_LIST_MAX_S);
        return;
    }
    l = listing_new(r, strcmp(what, "greylist") == 0, max);
    if (store_shared(st) && r->a->lister) {
        pool_submit(r->a->lister, listing_work, listing_done, l);
        return;
    }
    listing_read(l, st);
    listing_reply(l);
}
