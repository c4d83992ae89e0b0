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

/* grey_triplet - gl:t:<network>/<prefix>:<sender>:<rcpt> "first|pass <time>" */
static void grey_triplet(struct json *j, char *rest, const char *val)
{
    char *e = net_end(rest), *last, state[8] = "";
    long long since = 0;

    if (!e || !(last = strrchr(e + 1, ':')))
        return;
    *e = '\0';
    *last = '\0';
    sscanf(val, "%7s %lld", state, &since);
    json_obj_begin(j);
    json_kstr(j, "network", rest);
    json_kstr(j, "sender", e + 1);
    json_kstr(j, "recipient", last + 1);
    json_kstr(j, "state", strcmp(state, "pass") == 0 ? "passed" : "waiting");
    json_kint(j, "since", since);
    json_obj_end(j);
}

struct grey_ctx {
    struct json *j;
    int networks; /* 0: the triplets pass, 1: the networks pass */
};

/* grey_item - one greylist record of the pass being written */
static int grey_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct grey_ctx *g = arg;
    char k[ADM_KEY_MAX], v[64];
    long long passes = 0, since = 0;

    kcopy(k, sizeof(k), key, keylen);
    kcopy(v, sizeof(v), val, vlen);
    if (!g->networks && strncmp(k, "gl:t:", 5) == 0) {
        grey_triplet(g->j, k + 5, v);
    } else if (g->networks && strncmp(k, "gl:c:", 5) == 0) {
        sscanf(v, "%lld %lld", &passes, &since);
        json_obj_begin(g->j);
        json_kstr(g->j, "network", k + 5);
        json_kint(g->j, "passes", passes);
        json_kint(g->j, "since", since);
        json_obj_end(g->j);
    }
    return 0;
}

int adm_greylist_json(struct store *st, struct json *j)
{
    struct grey_ctx g = {j, 0};
    int rc;

    json_obj_begin(j);
    json_key(j, "triplets");
    json_arr_begin(j);
    rc = store_sync_scan_prefix(st, "gl:t:", 5, grey_item, &g);
    json_arr_end(j);
    json_key(j, "networks");
    json_arr_begin(j);
    g.networks = 1;
    if (rc == STORE_OK)
        rc = store_sync_scan_prefix(st, "gl:c:", 5, grey_item, &g);
    json_arr_end(j);
    json_obj_end(j);
    return rc == STORE_OK ? 0 : -1;
}

struct blocks_ctx {
    struct json *j;
    long interval; /* ratelimit interval */
    long limit[3]; /* connections, messages, recipients */
};

/* rl_limit - the configured limit of a rate-limit kind (0: none) */
static long rl_limit(const struct blocks_ctx *b, const char *kind)
{
    static const char *const kinds[] = {"connections", "messages", "recipients"};

    for (int i = 0; i < 3; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return b->limit[i];
    return 0;
}

/* rl_item - rl:<kind>:<network>/<prefix>:<window>: only the current window counts */
static int rl_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct blocks_ctx *b = arg;
    char k[ADM_KEY_MAX], *kind, *net, *e;
    int64_t count;
    long long window;
    long limit;

    kcopy(k, sizeof(k), key, keylen);
    kind = k + 3;
    if (!(net = strchr(kind, ':')) || store_counter_decode(val, vlen, &count) < 0)
        return 0;
    *net++ = '\0';
    if (!(e = net_end(net)))
        return 0;
    *e = '\0';
    window = strtoll(e + 1, NULL, 10);
    if (b->interval > 0 && window != (long long)(clock_now() / b->interval))
        return 0;
    limit = rl_limit(b, kind);
    json_obj_begin(b->j);
    json_kstr(b->j, "kind", kind);
    json_kstr(b->j, "network", net);
    json_kint(b->j, "count", count);
    json_kint(b->j, "limit", limit);
    json_key(b->j, "over");
    json_bool(b->j, limit > 0 && count > limit);
    json_obj_end(b->j);
    return 0;
}

/* hv_item - hv:b:<client> (blocked) */
static int hv_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct blocks_ctx *b = arg;
    char k[ADM_KEY_MAX];

    kcopy(k, sizeof(k), key, keylen);
    json_obj_begin(b->j);
    json_kstr(b->j, "client", k + 5);
    json_obj_end(b->j);
    return 0;
}

int adm_blocks_json(const struct config *cfg, struct store *st, struct json *j)
{
    cfg_t *rl = cfg_getsec(cfg->raw, "ratelimit");
    struct blocks_ctx b = {.j = j};
    int rc;

    if (rl) {
        b.interval = cfg_getint(rl, "interval");
        b.limit[0] = cfg_getint(rl, "connections");
        b.limit[1] = cfg_getint(rl, "messages");
        b.limit[2] = cfg_getint(rl, "recipients");
    }
    json_obj_begin(j);
    json_key(j, "harvest");
    json_arr_begin(j);
    rc = store_sync_scan_prefix(st, "hv:b:", 5, hv_item, &b);
    json_arr_end(j);
    json_key(j, "ratelimit");
    json_arr_begin(j);
    if (rc == STORE_OK)
        rc = store_sync_scan_prefix(st, "rl:", 3, rl_item, &b);
    json_arr_end(j);
    json_obj_end(j);
    return rc == STORE_OK ? 0 : -1;
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

int adm_flood_json(const struct config *cfg, struct store *st, struct json *j)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "bounce_flood");
    long interval = sec ? cfg_getint(sec, "interval") : 60;
    char state[48] = "", word[8] = "normal";
    long long since = 0, now = (long long)clock_now(), w;
    void *val = NULL;
    size_t vlen = 0;
    int s = store_sync_get(st, "bf:state", 8, &val, &vlen);

    if (interval < 1)
        interval = 60;
    w = now - now % interval;
    if (s == STORE_OK) {
        kcopy(state, sizeof(state), val, vlen);
        if (sscanf(state, "%7s %lld", word, &since) != 2 ||
            (strcmp(word, "flood") != 0 && strcmp(word, "normal") != 0))
            snprintf(word, sizeof(word), "unknown");
    }
    free(val);
    json_obj_begin(j);
    json_kstr(j, "state", word);
    json_kint(j, "since", since);
    json_kint(j, "interval", interval);
    json_kint(j, "last", flood_count(st, w - interval));
    json_kint(j, "current", flood_count(st, w));
    json_obj_end(j);
    return s == STORE_OK || s == STORE_NOTFOUND ? 0 : -1;
}
