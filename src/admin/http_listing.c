/*
 * http_listing.c - the API's reads of the store that list a prefix: greylist,
 * blocks (/api/greylist, /api/blocks), the statistics (/api/stats, its series)
 * and the per-user lists (/api/lists).
 *
 * A greylist or blocks listing returns at most ?limit= records of each kind
 * (API_LIST_DEFAULT without it), and says when there were more: a greylist
 * grown for months holds millions. An LMDB store is read on the loop: its
 * B-tree hands the records of a prefix at once. A shared store (Redis) has no
 * order: any listing is a SCAN of the whole keyspace, round trip after round
 * trip, which at ten million keys takes seconds. Those run on the listener's
 * own thread over a private read-only connection, as mxgatectl reads the
 * store, and the reply follows when it is done: the loop serves sessions
 * meanwhile. (A client that leaves before the reply costs nothing: libevent
 * keeps the request and frees it at the reply.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http_internal.h"
#include "core/json.h"
#include "core/pool.h"
#include "core/xmalloc.h"
#include "policy/userlists.h"
#include "store/store.h"
#include "store/storeconf.h"

#define API_LIST_DEFAULT 1000 /* store records of each kind a listing returns ... */
#define API_LIST_MAX 100000   /* ... and at most, with ?limit= */
#define API_LIST_MAX_S "100000"

enum listing_kind { LIST_GREYLIST, LIST_BLOCKS, LIST_STATS, LIST_SERIES, LIST_USERLIST };

/* A listing on the listener's thread. */
struct listing {
    struct admin *a;
    struct evhttp_request *req;
    enum listing_kind kind;
    unsigned max;            /* greylist, blocks */
    time_t from, to;         /* the statistics' period */
    char user[UL_ENTRY_MAX]; /* the lists of this recipient ("": every one) */
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

/* listing_stats - the statistics table of the period into j; 0 or -1 */
static int listing_stats(struct store *st, time_t from, time_t to, struct json *j)
{
    struct adm_table *t = xmalloc(sizeof(*t));
    int rc = adm_table_read(st, from, to, t);

    if (rc == 0)
        adm_table_json(t, j);
    free(t);
    return rc;
}

/* listing_read - the listing of st into l->j */
static void listing_read(struct listing *l, struct store *st)
{
    switch (l->kind) {
    case LIST_GREYLIST:
        l->rc = adm_greylist_json(st, l->max, &l->j);
        break;
    case LIST_BLOCKS:
        l->rc = adm_blocks_json(&l->lim, st, l->max, &l->j);
        break;
    case LIST_STATS:
        l->rc = listing_stats(st, l->from, l->to, &l->j);
        break;
    case LIST_SERIES:
        l->rc = adm_series_json(st, l->from, l->to, &l->j);
        break;
    case LIST_USERLIST:
        l->rc = adm_userlist_json(st, l->user[0] ? l->user : NULL, &l->j);
        break;
    }
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

    if (l->rc < 0 && l->kind == LIST_USERLIST)
        http_error(&r, 400, "cannot read the lists (user is user@domain or @domain)");
    else if (l->rc < 0)
        http_error(&r, 500,
                   l->kind == LIST_STATS || l->kind == LIST_SERIES ? "cannot read the statistics"
                                                                   : "cannot read the store");
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
static struct listing *listing_new(struct http_req *r, enum listing_kind kind)
{
    const struct config *cfg = adm_cfg(&r->a->env);
    struct listing *l = xcalloc(1, sizeof(*l));

    l->a = r->a;
    l->req = r->req;
    l->kind = kind;
    if (kind == LIST_BLOCKS)
        adm_limits_read(cfg, &l->lim);
    if (store_shared(r->a->env.store)) { /* read on the thread, over a connection of its own */
        storeconf_uri(cfg, l->uri, sizeof(l->uri));
        storeconf_options(cfg, &l->opt);
        if (l->opt.prefix) {
            snprintf(l->prefix, sizeof(l->prefix), "%s", l->opt.prefix);
            l->opt.prefix = l->prefix;
        }
    }
    json_init(&l->j);
    return l;
}

/* listing_run - on the thread for a shared store, else at once */
static void listing_run(struct listing *l)
{
    struct store *st = l->a->env.store;

    if (store_shared(st) && l->a->lister) {
        pool_submit(l->a->lister, listing_work, listing_done, l);
        return;
    }
    listing_read(l, st);
    listing_reply(l);
}

/* listing_period - from/to parameters (default: today); 0 or -1 */
static int listing_period(struct http_req *r, time_t *from, time_t *to)
{
    const char *f = http_param(r, "from"), *t = http_param(r, "to");

    return adm_parse_time(f ? f : "today", 0, from) == 0 &&
                   adm_parse_time(t ? t : (f ? f : "today"), 1, to) == 0 && *from < *to
               ? 0
               : -1;
}

/* http_store_listing - see http_internal.h */
void http_store_listing(struct http_req *r, const char *what)
{
    unsigned max = listing_limit(r);
    struct listing *l;

    if (!max) {
        http_error(r, 400, "limit is a number from 1 to " API_LIST_MAX_S);
        return;
    }
    l = listing_new(r, strcmp(what, "greylist") == 0 ? LIST_GREYLIST : LIST_BLOCKS);
    l->max = max;
    listing_run(l);
}

/* http_stats - see http_internal.h */
void http_stats(struct http_req *r, int series)
{
    time_t from, to;
    struct listing *l;

    if (listing_period(r, &from, &to) < 0) {
        http_error(r, 400, "bad period: from and to are YYYY-MM-DD, YYYY-MM-DDTHH, today, all");
        return;
    }
    l = listing_new(r, series ? LIST_SERIES : LIST_STATS);
    l->from = from;
    l->to = to;
    listing_run(l);
}

/* http_userlists - see http_internal.h */
void http_userlists(struct http_req *r)
{
    const char *user = http_param(r, "user");
    struct listing *l;

    if (user && (!user[0] || strlen(user) >= UL_ENTRY_MAX)) {
        http_error(r, 400, "cannot read the lists (user is user@domain or @domain)");
        return;
    }
    l = listing_new(r, LIST_USERLIST);
    snprintf(l->user, sizeof(l->user), "%s", user ? user : "");
    listing_run(l);
}
