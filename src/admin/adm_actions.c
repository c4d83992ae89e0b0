/*
 * adm_actions.c - the operator's changes to the checks' store records: let a
 * network or triplet through the greylist, forget greylist records, lift
 * harvest blocks and rate-limit windows. The daemon's store (the writes are
 * asynchronous and ordered: a listing after them sees them).
 */
#include "admin/adm.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/cidr.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "store/store.h"

#define ADM_KEY_MAX 512
#define ADM_ADDR_MAX 200 /* as greylist.c keeps them */
#define ADM_KEYS_MAX 100000

/* adm_network - an address (masked with the prefixes) or "net/bits" as the checks key it */
static int adm_network(const char *s, int v4prefix, int v6prefix, char *out, size_t len)
{
    struct sockaddr_storage ss = {0};
    struct cidr c;

    if (cidr_parse(s, &c) < 0)
        return -1;
    if (strchr(s, '/'))
        v4prefix = v6prefix = c.bits;
    if (c.family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, c.addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, c.addr, 16);
    }
    return sockaddr_network((struct sockaddr *)&ss, v4prefix, v6prefix, out, len);
}

/* adm_canon - an address as greylist keys hold it (canonical, folded, bounded) */
static void adm_canon(const char *s, char *dst)
{
    char c[ADDR_CANON_MAX];

    if (addr_canon_lax(s, ADDR_CANON_FOLD, c, sizeof(c)) < 0)
        c[0] = '\0';
    snprintf(dst, ADM_ADDR_MAX + 1, "%s", c);
}

/* grey_net - NET as the greylist section groups clients; 0 or -1 with err */
static int grey_net(const struct adm_env *env, const char *net, char *out, size_t len, char *err,
                    size_t errlen)
{
    cfg_t *g = cfg_getsec(adm_cfg(env)->raw, "greylist");

    if (adm_network(net, (int)cfg_getint(g, "ipv4_prefix"), (int)cfg_getint(g, "ipv6_prefix"), out,
                    len) < 0) {
        snprintf(err, errlen, "not an address or network");
        return -1;
    }
    return 0;
}

/* grey_triplet_key - "gl:t:NET:SENDER:RCPT" */
static void grey_triplet_key(char *key, size_t len, const char *net, const char *sender,
                             const char *rcpt)
{
    char s[ADM_ADDR_MAX + 1], r[ADM_ADDR_MAX + 1];

    adm_canon(sender, s);
    adm_canon(rcpt, r);
    snprintf(key, len, "gl:t:%s:%s:%s", net, s, r);
}

int adm_greylist_allow(const struct adm_env *env, const char *net, const char *sender,
                       const char *rcpt, char *err, size_t errlen)
{
    cfg_t *g = cfg_getsec(adm_cfg(env)->raw, "greylist");
    unsigned ttl = (unsigned)cfg_getint(g, "pass_ttl");
    long awl = cfg_getint(g, "awl_count");
    char n[80], key[ADM_KEY_MAX], val[64];
    int vl;

    if (grey_net(env, net, n, sizeof(n), err, errlen) < 0)
        return -1;
    if (sender && rcpt) {
        grey_triplet_key(key, sizeof(key), n, sender, rcpt);
        vl = snprintf(val, sizeof(val), "pass %lld", (long long)clock_now());
    } else {
        snprintf(key, sizeof(key), "gl:c:%s", n);
        vl = snprintf(val, sizeof(val), "%ld %lld", awl > 0 ? awl : 1, (long long)clock_now());
    }
    if (store_set(env->store, key, strlen(key), val, (size_t)vl, ttl, NULL, NULL) < 0) {
        snprintf(err, errlen, "store refused the write");
        return -1;
    }
    log_info("event=admin action=greylist_allow key=%s", log_q(key));
    return 0;
}

struct keys {
    char **k;
    size_t n, cap;
    const char *who; /* match: the subject of a key is who (or who/bits); NULL: any */
    size_t skip;     /* octets of prefix before the subject, or 0: a rate-limit key */
};

/* keys_subject_matches - the subject in s (ends at ':' after "/bits", or the key's end) */
static int keys_subject_matches(const struct keys *ks, const char *s)
{
    size_t wl;

    if (!ks->who)
        return 1;
    wl = strlen(ks->who);
    if (strncmp(s, ks->who, wl) != 0)
        return 0;
    s += wl;
    if (*s == '/')
        s += strspn(s + 1, "0123456789") + 1;
    return *s == '\0' || *s == ':';
}

/* keys_item - collect the keys to delete (a scan must not write) */
static int keys_item(void *arg, const void *key, size_t keylen, const void *val, size_t vlen)
{
    struct keys *ks = arg;
    char k[ADM_KEY_MAX];
    const char *subject;

    if (keylen >= sizeof(k) || ks->n >= ADM_KEYS_MAX)
        return 0;
    memcpy(k, key, keylen);
    k[keylen] = '\0';
    subject = k + ks->skip;
    if (!ks->skip && !(subject = strchr(k + 3, ':'))) /* rl:<kind>:<subject>:<window> */
        return 0;
    if (!ks->skip)
        subject++;
    if (!keys_subject_matches(ks, subject))
        return 0;
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? 2 * ks->cap : 16;
        ks->k = xreallocarray(ks->k, ks->cap, sizeof(*ks->k));
    }
    ks->k[ks->n++] = xstrdup(k);
    return 0;
}

/* keys_delete - delete what was collected; the count */
static int keys_delete(const struct adm_env *env, struct keys *ks, const char *what)
{
    int n = 0;

    for (size_t i = 0; i < ks->n; i++) {
        if (store_del(env->store, ks->k[i], strlen(ks->k[i]), NULL, NULL) == 0)
            n++;
        log_info("event=admin action=%s key=%s", what, log_q(ks->k[i]));
        free(ks->k[i]);
    }
    free(ks->k);
    ks->k = NULL;
    ks->n = ks->cap = 0;
    return n;
}

/* keys_scan - collect prefix's keys whose subject matches; 0 or -1 */
static int keys_scan(const struct adm_env *env, struct keys *ks, const char *prefix, size_t skip)
{
    ks->skip = skip;
    return store_sync_scan_prefix(env->store, prefix, strlen(prefix), keys_item, ks) == STORE_OK
               ? 0
               : -1;
}

int adm_greylist_remove(const struct adm_env *env, const char *net, const char *sender,
                        const char *rcpt, char *err, size_t errlen)
{
    char n[80], key[ADM_KEY_MAX];
    struct keys ks = {0};

    if (grey_net(env, net, n, sizeof(n), err, errlen) < 0)
        return -1;
    if (sender && rcpt) {
        grey_triplet_key(key, sizeof(key), n, sender, rcpt);
        ks.k = xcalloc(1, sizeof(*ks.k));
        ks.k[0] = xstrdup(key);
        ks.n = ks.cap = 1;
        return keys_delete(env, &ks, "greylist_remove");
    }
    ks.who = n;
    if (keys_scan(env, &ks, "gl:c:", 5) < 0 || keys_scan(env, &ks, "gl:t:", 5) < 0) {
        keys_delete(env, &ks, "greylist_remove");
        snprintf(err, errlen, "cannot read the store");
        return -1;
    }
    return keys_delete(env, &ks, "greylist_remove");
}

int adm_blocks_clear(const struct adm_env *env, const char *who, char *err, size_t errlen)
{
    struct keys ks = {.who = strcmp(who, "all") == 0 ? NULL : who};
    char n[80];

    if (ks.who && strchr(who, '/')) { /* a network: as the checks write it */
        if (adm_network(who, 32, 128, n, sizeof(n)) < 0) {
            snprintf(err, errlen, "not an address or network");
            return -1;
        }
        ks.who = n;
    } else if (ks.who && adm_network(who, 32, 128, n, sizeof(n)) < 0) {
        snprintf(err, errlen, "not an address or network");
        return -1;
    }
    if (keys_scan(env, &ks, "hv:b:", 5) < 0 || keys_scan(env, &ks, "hv:n:", 5) < 0 ||
        keys_scan(env, &ks, "rl:", 0) < 0) {
        keys_delete(env, &ks, "unblock");
        snprintf(err, errlen, "cannot read the store");
        return -1;
    }
    return keys_delete(env, &ks, "unblock");
}
