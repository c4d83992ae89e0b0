/*
 * adm_state.c - what the checks keep in the store, for the operator: greylist
 * triplets and trusted networks (policy/greylist.c), harvest blocks
 * (policy/harvest.c), rate-limit windows (policy/ratelimit.c) and the
 * bounce-flood state (policy/bounceflood.c); and the few changes an operator
 * makes to them. The key formats are those files' (documented at their top).
 */
#include "admin/adm.h"

#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/json.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define ADM_KEY_MAX 512
#define ADM_KEYS_MAX 100000 /* records one clear removes at most */

/* kcopy - a key or value as a NUL-terminated string (bounded) */
static void kcopy(char *dst, size_t dstlen, const void *src, size_t len)
{
    if (len >= dstlen)
        len = dstlen - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* net_end - in "<network>/<bits>:rest" (an IPv6 network holds ':'), the ':' after the bits */
static char *net_end(char *s)
{
    char *slash = strchr(s, '/');

    if (!slash)
        return NULL;
    slash++;
    while (isdigit((unsigned char)*slash))
        slash++;
    return *slash == ':' ? slash : NULL;
}

struct each_ctx {
    void (*grey)(const struct adm_grey *g, void *arg);
    void (*block)(const struct adm_block *b, void *arg);
    void *arg;
    struct adm_limits lim;
    unsigned max;  /* records given to fn per kind at most (0: all) ... */
    unsigned n;    /* ... so far, of the kind scanned now */
    int truncated; /* a kind had more */
};

/* each_full - 1 (the scan stops) when fn had max records of this kind already */
static int each_full(struct each_ctx *c)
{
    if (c->max && c->n >= c->max) {
        c->truncated = 1;
        return 1;
    }
    c->n++;
    return 0;
}

/* each_scan - the records under prefix, counted afresh against max */
static int each_scan(struct store *st, const char *prefix, store_scan_cb item, struct each_ctx *c)
{
    c->n = 0;
    return store_sync_scan_prefix(st, prefix, strlen(prefix), item, c) == STORE_OK ? 0 : -1;
}

/* grey_item - gl:t:<network>/<prefix>:<sender>:<rcpt> "first|pass <time>", or
 * gl:c:<network>/<prefix> "<passes> <time>" */
static int grey_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct each_ctx *c = arg;
    char k[ADM_KEY_MAX], v[64], state[8] = "", *e, *last;
    struct adm_grey g = {0};

    if (each_full(c))
        return 1;
    kcopy(k, sizeof(k), key, keylen);
    kcopy(v, sizeof(v), val, vlen);
    g.network = k + 5;
    if (strncmp(k, "gl:c:", 5) == 0) {
        g.network_only = 1;
        sscanf(v, "%lld %lld", &g.passes, &g.since);
    } else {
        if (!(e = net_end(k + 5)) || !(last = strrchr(e + 1, ':')))
            return 0;
        *e = *last = '\0';
        g.sender = e + 1;
        g.recipient = last + 1;
        sscanf(v, "%7s %lld", state, &g.since);
        g.passed = strcmp(state, "pass") == 0;
    }
    c->grey(&g, c->arg);
    return 0;
}

/* greylist_scan - triplets, then trusted networks, at most c->max of each */
static int greylist_scan(struct store *st, struct each_ctx *c)
{
    return each_scan(st, "gl:t:", grey_item, c) == 0 && each_scan(st, "gl:c:", grey_item, c) == 0
               ? 0
               : -1;
}

int adm_greylist_each(struct store *st, void (*fn)(const struct adm_grey *g, void *arg), void *arg)
{
    struct each_ctx c = {.grey = fn, .arg = arg};

    return greylist_scan(st, &c);
}

void adm_grey_json(const struct adm_grey *g, struct json *j)
{
    json_obj_begin(j);
    json_kstr(j, "network", g->network);
    if (g->network_only) {
        json_kint(j, "passes", g->passes);
    } else {
        json_kstr(j, "sender", g->sender);
        json_kstr(j, "recipient", g->recipient);
        json_kstr(j, "state", g->passed ? "passed" : "waiting");
    }
    json_kint(j, "since", g->since);
    json_obj_end(j);
}

struct json_pass {
    struct json *j;
    int second; /* writing the second array: networks, or rate limits */
};

/* grey_json_one - into "triplets" until the first network, then into "networks" */
static void grey_json_one(const struct adm_grey *g, void *arg)
{
    struct json_pass *p = arg;

    if (g->network_only && !p->second) {
        json_arr_end(p->j);
        json_key(p->j, "networks");
        json_arr_begin(p->j);
        p->second = 1;
    }
    adm_grey_json(g, p->j);
}

int adm_greylist_json(struct store *st, unsigned max, struct json *j)
{
    struct json_pass p = {j, 0};
    struct each_ctx c = {.grey = grey_json_one, .arg = &p, .max = max};
    int rc;

    json_obj_begin(j);
    json_key(j, "triplets");
    json_arr_begin(j);
    rc = greylist_scan(st, &c);
    if (!p.second) {
        json_arr_end(j);
        json_key(j, "networks");
        json_arr_begin(j);
    }
    json_arr_end(j);
    json_key(j, "truncated");
    json_bool(j, c.truncated);
    json_obj_end(j);
    return rc;
}

/* rl_limit - the configured limit of a rate-limit kind (0: none) */
static long rl_limit(const struct each_ctx *c, const char *kind)
{
    static const char *const kinds[] = {"connections", "messages", "recipients"};

    for (int i = 0; i < 3; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return c->lim.limit[i];
    return 0;
}

/* rl_item - rl:<kind>:<network>/<prefix>:<window>: only the current window counts */
static int rl_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct each_ctx *c = arg;
    char k[ADM_KEY_MAX], *net, *e;
    struct adm_block b = {0};
    int64_t count;
    long long window;

    kcopy(k, sizeof(k), key, keylen);
    b.kind = k + 3;
    if (!(net = strchr(k + 3, ':')) || store_counter_decode(val, vlen, &count) < 0)
        return 0;
    *net++ = '\0';
    if (!(e = net_end(net)))
        return 0;
    *e = '\0';
    window = strtoll(e + 1, NULL, 10);
    if (c->lim.interval > 0 && window != (long long)(clock_now() / c->lim.interval))
        return 0;
    if (each_full(c))
        return 1;
    b.client = net;
    b.count = count;
    b.limit = rl_limit(c, b.kind);
    b.over = b.limit > 0 && count > b.limit;
    c->block(&b, c->arg);
    return 0;
}

/* hv_item - hv:b:<client> (blocked) */
static int hv_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct each_ctx *c = arg;
    char k[ADM_KEY_MAX];
    struct adm_block b = {.kind = "harvest", .over = 1};

    if (each_full(c))
        return 1;
    kcopy(k, sizeof(k), key, keylen);
    b.client = k + 5;
    c->block(&b, c->arg);
    return 0;
}

void adm_limits_read(const struct config *cfg, struct adm_limits *l)
{
    cfg_t *rl = cfg_getsec(cfg->raw, "ratelimit");

    memset(l, 0, sizeof(*l));
    if (rl) {
        l->interval = cfg_getint(rl, "interval");
        l->limit[0] = cfg_getint(rl, "connections");
        l->limit[1] = cfg_getint(rl, "messages");
        l->limit[2] = cfg_getint(rl, "recipients");
    }
}

/* blocks_scan - harvest blocks, then rate-limit windows, at most c->max of each */
static int blocks_scan(struct store *st, struct each_ctx *c)
{
    return each_scan(st, "hv:b:", hv_item, c) == 0 && each_scan(st, "rl:", rl_item, c) == 0 ? 0
                                                                                            : -1;
}

int adm_blocks_each(const struct config *cfg, struct store *st,
                    void (*fn)(const struct adm_block *b, void *arg), void *arg)
{
    struct each_ctx c = {.block = fn, .arg = arg};

    adm_limits_read(cfg, &c.lim);
    return blocks_scan(st, &c);
}

/* block_json_one - into "harvest" until the first rate limit, then into "ratelimit" */
static void block_json_one(const struct adm_block *b, void *arg)
{
    struct json_pass *p = arg;
    int harvest = strcmp(b->kind, "harvest") == 0;

    if (!harvest && !p->second) {
        json_arr_end(p->j);
        json_key(p->j, "ratelimit");
        json_arr_begin(p->j);
        p->second = 1;
    }
    json_obj_begin(p->j);
    if (harvest) {
        json_kstr(p->j, "client", b->client);
    } else {
        json_kstr(p->j, "kind", b->kind);
        json_kstr(p->j, "network", b->client);
        json_kint(p->j, "count", b->count);
        json_kint(p->j, "limit", b->limit);
        json_key(p->j, "over");
        json_bool(p->j, b->over);
    }
    json_obj_end(p->j);
}

int adm_blocks_json(const struct adm_limits *l, struct store *st, unsigned max, struct json *j)
{
    struct json_pass p = {j, 0};
    struct each_ctx c = {.block = block_json_one, .arg = &p, .lim = *l, .max = max};
    int rc;

    json_obj_begin(j);
    json_key(j, "harvest");
    json_arr_begin(j);
    rc = blocks_scan(st, &c);
    if (!p.second) {
        json_arr_end(j);
        json_key(j, "ratelimit");
        json_arr_begin(j);
    }
    json_arr_end(j);
    json_key(j, "truncated");
    json_bool(j, c.truncated);
    json_obj_end(j);
    return rc;
}

/* flood_count - the bf:n counter of the window starting at w (0 when absent) */
static int64_t flood_count(struct store *st, long long w)
{
    char key[40];
    void *val = NULL;
    size_t vlen = 0;
    int64_t n = 0;
    int k = snprintf(key, sizeof(key), "bf:n:%lld", w);

    if (store_sync_get(st, key, (size_t)k, &val, &vlen) != STORE_OK ||
        store_counter_decode(val, vlen, &n) < 0)
        n = 0;
    free(val);
    return n;
}

int adm_flood_get(const struct config *cfg, struct store *st, struct adm_flood *f)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "bounce_flood");
    char state[48] = "";
    long long now = (long long)clock_now(), w;
    void *val = NULL;
    size_t vlen = 0;
    int s = store_sync_get(st, "bf:state", 8, &val, &vlen);

    memset(f, 0, sizeof(*f));
    snprintf(f->state, sizeof(f->state), "normal");
    f->interval = sec ? cfg_getint(sec, "interval") : 60;
    if (f->interval < 1)
        f->interval = 60;
    w = now - now % f->interval;
    if (s == STORE_OK) {
        kcopy(state, sizeof(state), val, vlen);
        if (sscanf(state, "%7s %lld", f->state, &f->since) != 2 ||
            (strcmp(f->state, "flood") != 0 && strcmp(f->state, "normal") != 0))
            snprintf(f->state, sizeof(f->state), "unknown");
    }
    free(val);
    f->last = flood_count(st, w - f->interval);
    f->current = flood_count(st, w);
    return s == STORE_OK || s == STORE_NOTFOUND ? 0 : -1;
}

int adm_flood_json(const struct config *cfg, struct store *st, struct json *j)
{
    struct adm_flood f;
    int rc = adm_flood_get(cfg, st, &f);

    json_obj_begin(j);
    json_kstr(j, "state", f.state);
    json_kint(j, "since", f.since);
    json_kint(j, "interval", f.interval);
    json_kint(j, "last", f.last);
    json_kint(j, "current", f.current);
    json_obj_end(j);
    return rc;
}
