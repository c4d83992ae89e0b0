/* adm_userlists.c - per-user allow and deny lists in the store (policy/userlists.h):
 * add, remove, show */
#include "admin/adm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "policy/userlists.h"
#include "store/store.h"

/* ul_key - "ul:<recipient>|<pattern>" from what the operator typed; 0 or -1 with err */
static int ul_key(const char *user, const char *pattern, char *key, size_t len, char *err,
                  size_t errlen)
{
    char r[UL_ENTRY_MAX], p[UL_ENTRY_MAX];

    if (ul_canon_rcpt(user, r, sizeof(r)) < 0) {
        snprintf(err, errlen, "not a recipient address or @domain");
        return -1;
    }
    if (ul_canon_pattern(pattern, p, sizeof(p)) < 0) {
        snprintf(err, errlen, "not a sender address or domain");
        return -1;
    }
    snprintf(key, len, UL_KEY_PREFIX "%s|%s", r, p);
    return 0;
}

int adm_userlist_add(const struct adm_env *env, const char *user, const char *kind,
                     const char *pattern, char *err, size_t errlen)
{
    char key[UL_KEY_MAX + 4];
    enum ul_kind k = ul_kind_parse(kind);

    if (k == UL_NONE) {
        snprintf(err, errlen, "the list is allow or deny");
        return -1;
    }
    if (ul_key(user, pattern, key, sizeof(key), err, errlen) < 0)
        return -1;
    if (!env->store || store_set(env->store, key, strlen(key), ul_kind_name(k),
                                 strlen(ul_kind_name(k)), 0, NULL, NULL) < 0) {
        snprintf(err, errlen, "store refused the write");
        return -1;
    }
    log_info("event=admin action=list_add key=%s list=%s", log_q(key), ul_kind_name(k));
    return 0;
}

int adm_userlist_remove(const struct adm_env *env, const char *user, const char *pattern, char *err,
                        size_t errlen)
{
    char key[UL_KEY_MAX + 4];
    void *val = NULL;
    size_t vlen;
    int st;

    if (ul_key(user, pattern, key, sizeof(key), err, errlen) < 0)
        return -1;
    if (!env->store) {
        snprintf(err, errlen, "no store");
        return -1;
    }
    st = store_sync_get(env->store, key, strlen(key), &val, &vlen);
    free(val);
    if (st == STORE_NOTFOUND)
        return 0;
    if (st != STORE_OK || store_del(env->store, key, strlen(key), NULL, NULL) < 0) {
        snprintf(err, errlen, "store refused the delete");
        return -1;
    }
    log_info("event=admin action=list_remove key=%s", log_q(key));
    return 1;
}

struct show_ctx {
    void (*fn)(const char *rcpt, const char *kind, const char *pattern, void *arg);
    void *arg;
    size_t plen;
    int n;
};

/* show_one - one record "ul:<rcpt>|<pattern>" -> kind */
static int show_one(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct show_ctx *sc = arg;
    char k[UL_KEY_MAX + 4], v[8], *bar;

    if (keylen >= sizeof(k) || vlen >= sizeof(v))
        return 0;
    memcpy(k, key, keylen);
    k[keylen] = '\0';
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    if (!(bar = strchr(k + sc->plen, '|')))
        return 0;
    *bar = '\0';
    sc->fn(k + sc->plen, v, bar + 1, sc->arg);
    sc->n++;
    return 0;
}

int adm_userlist_each(struct store *st, const char *user,
                      void (*fn)(const char *rcpt, const char *kind, const char *pattern,
                                 void *arg),
                      void *arg)
{
    char r[UL_ENTRY_MAX], prefix[UL_ENTRY_MAX + 8];
    struct show_ctx sc = {fn, arg, strlen(UL_KEY_PREFIX), 0};

    if (user && ul_canon_rcpt(user, r, sizeof(r)) < 0)
        return -1;
    snprintf(prefix, sizeof(prefix), UL_KEY_PREFIX "%s%s", user ? r : "", user ? "|" : "");
    if (store_sync_scan_prefix(st, prefix, strlen(prefix), show_one, &sc) != STORE_OK)
        return -1;
    return sc.n;
}

static void json_one(const char *rcpt, const char *kind, const char *pattern, void *arg)
{
    struct json *j = arg;

    json_obj_begin(j);
    json_kstr(j, "recipient", rcpt);
    json_kstr(j, "list", kind);
    json_kstr(j, "sender", pattern);
    json_obj_end(j);
}

int adm_userlist_json(struct store *st, const char *user, struct json *j)
{
    int n;

    json_obj_begin(j);
    json_key(j, "entries");
    json_arr_begin(j);
    n = adm_userlist_each(st, user, json_one, j);
    json_arr_end(j);
    json_obj_end(j);
    return n < 0 ? -1 : 0;
}
