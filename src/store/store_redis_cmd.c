/* store_redis_cmd.c - Redis URIs, command encoding and reply decoding (see the header) */
#include "store/store_redis_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/xmalloc.h"
#include "store/store.h"

/*
 * INCRBY and, on a counter without an expiry, EXPIRE in one step, so that a
 * window's counter never lives on without its expiry (the LMDB backend's
 * "EXPIRE NX" semantics). Lua numbers are doubles: a counter is exact up to
 * 2^53, far beyond any window's count.
 */
const char rds_script_incr[] = "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
                               "if ARGV[2] ~= '0' and redis.call('TTL', KEYS[1]) == -1 then\n"
                               "  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
                               "end\n"
                               "return v\n";

/* Take a free lease or renew our own: 1 when ARGV[1] holds it afterwards, 0 otherwise. */
const char rds_script_lease[] = "local cur = redis.call('GET', KEYS[1])\n"
                                "if cur == ARGV[1] then\n"
                                "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "  return 1\n"
                                "end\n"
                                "if cur then return 0 end\n"
                                "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                "return 1\n";

/* uri_auth - "[:password@]" at the start of s: copied to u; the rest in *rest */
static int uri_auth(const char *s, struct rds_uri *u, const char **rest, char *err, size_t errlen)
{
    const char *at = strrchr(s, '@');
    size_t n;

    *rest = s;
    if (!at)
        return 0;
    if (*s != ':' || (n = (size_t)(at - s - 1)) == 0 || n >= sizeof(u->password)) {
        snprintf(err, errlen, "redis uri: the credentials must be \":PASSWORD@\"");
        return -1;
    }
    memcpy(u->password, s + 1, n);
    u->password[n] = '\0';
    u->has_password = 1;
    *rest = at + 1;
    return 0;
}

/* uri_db - a database number 0..RDS_DB_MAX */
static int uri_db(const char *s, int *db, char *err, size_t errlen)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0 || v > RDS_DB_MAX) {
        snprintf(err, errlen, "redis uri: database \"%.20s\" is not 0..%d", s, RDS_DB_MAX);
        return -1;
    }
    *db = (int)v;
    return 0;
}

/* uri_hostport - "host[:port][/db]" or "[v6][:port][/db]" */
static int uri_hostport(const char *s, struct rds_uri *u, char *err, size_t errlen)
{
    const char *slash = strchr(s, '/'), *hend, *colon;
    size_t n;
    char *end;
    long port = 6379;

    if (slash && slash[1] && uri_db(slash + 1, &u->db, err, errlen) < 0)
        return -1;
    hend = slash ? slash : s + strlen(s);
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(hend - s));
        if (!rb) {
            snprintf(err, errlen, "redis uri: unclosed [ in the host");
            return -1;
        }
        n = (size_t)(rb - s - 1);
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
        s++;
    } else {
        colon = memchr(s, ':', (size_t)(hend - s));
        n = (size_t)((colon ? colon : hend) - s);
    }
    if (n == 0 || n >= sizeof(u->host)) {
        snprintf(err, errlen, "redis uri: no host");
        return -1;
    }
    memcpy(u->host, s, n);
    u->host[n] = '\0';
    if (colon) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || end != hend || port < 1 || port > 65535) {
            snprintf(err, errlen, "redis uri: bad port");
            return -1;
        }
    }
    u->port = (int)port;
    return 0;
}

/* uri_unix - "/path[?db=N]" */
static int uri_unix(const char *s, struct rds_uri *u, char *err, size_t errlen)
{
    const char *q = strchr(s, '?');
    size_t n = q ? (size_t)(q - s) : strlen(s);

    if (*s != '/' || n < 2 || n >= sizeof(u->path)) {
        snprintf(err, errlen, "redis+unix uri: the socket must be an absolute path");
        return -1;
    }
    memcpy(u->path, s, n);
    u->path[n] = '\0';
    if (!q)
        return 0;
    if (strncmp(q, "?db=", 4) != 0) {
        snprintf(err, errlen, "redis+unix uri: the only parameter is ?db=N");
        return -1;
    }
    return uri_db(q + 4, &u->db, err, errlen);
}

int rds_uri_parse(const char *scheme, const char *location, struct rds_uri *u, char *err,
                  size_t errlen)
{
    const char *rest;

    memset(u, 0, sizeof(*u));
    if (strncmp(location, "//", 2) != 0) {
        snprintf(err, errlen, "%s uri: expected %s://...", scheme, scheme);
        return -1;
    }
    if (uri_auth(location + 2, u, &rest, err, errlen) < 0)
        return -1;
    if (strcmp(scheme, "redis+unix") == 0)
        return uri_unix(rest, u, err, errlen);
    return uri_hostport(rest, u, err, errlen);
}

void rds_uri_name(const struct rds_uri *u, char *dst, size_t len)
{
    if (u->path[0])
        snprintf(dst, len, "unix:%s/%d", u->path, u->db);
    else if (strchr(u->host, ':'))
        snprintf(dst, len, "[%s]:%d/%d", u->host, u->port, u->db);
    else
        snprintf(dst, len, "%s:%d/%d", u->host, u->port, u->db);
}

/* cmd_start - argv[0] and the prefixed key as argv[key_at] */
static void cmd_start(struct rds_cmd *c, const char *name, const char *prefix, const void *key,
                      size_t keylen)
{
    size_t pl = strlen(prefix);

    memset(c, 0, sizeof(*c));
    if (pl > RDS_PREFIX_MAX)
        pl = RDS_PREFIX_MAX;
    if (keylen > sizeof(c->key) - pl)
        keylen = sizeof(c->key) - pl; /* the front end allows STORE_KEY_MAX: never cut */
    memcpy(c->key, prefix, pl);
    memcpy(c->key + pl, key, keylen);
    c->argv[0] = name;
    c->argvlen[0] = strlen(name);
    c->argc = 1;
    c->keylen = pl + keylen;
}

/* cmd_arg - append an argument */
static void cmd_arg(struct rds_cmd *c, const void *p, size_t n)
{
    c->argv[c->argc] = p;
    c->argvlen[c->argc] = n;
    c->argc++;
}

/* cmd_key - append the prefixed key */
static void cmd_key(struct rds_cmd *c)
{
    cmd_arg(c, c->key, c->keylen);
}

/* cmd_num - append a number as decimal text (slot i of c->num) */
static void cmd_num(struct rds_cmd *c, int i, long long v)
{
    int n = snprintf(c->num[i], sizeof(c->num[i]), "%lld", v);

    cmd_arg(c, c->num[i], (size_t)n);
}

void rds_cmd_get(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen)
{
    cmd_start(c, "GET", prefix, key, keylen);
    cmd_key(c);
}

void rds_cmd_set(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen,
                 const void *val, size_t vlen, unsigned ttl)
{
    cmd_start(c, "SET", prefix, key, keylen);
    cmd_key(c);
    c->val = xmalloc(vlen + 1);
    c->val[0] = 'v';
    if (vlen)
        memcpy(c->val + 1, val, vlen);
    cmd_arg(c, c->val, vlen + 1);
    if (ttl) { /* a plain SET clears an earlier expiry: LMDB's replace does the same */
        cmd_arg(c, "EX", 2);
        cmd_num(c, 0, ttl);
    }
}

void rds_cmd_incr(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen,
                  int64_t delta, unsigned ttl)
{
    cmd_start(c, "EVAL", prefix, key, keylen);
    cmd_arg(c, rds_script_incr, sizeof(rds_script_incr) - 1);
    cmd_arg(c, "1", 1);
    cmd_key(c);
    cmd_num(c, 0, (long long)delta);
    cmd_num(c, 1, (long long)ttl);
}

void rds_cmd_del(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen)
{
    cmd_start(c, "DEL", prefix, key, keylen);
    cmd_key(c);
}

void rds_cmd_lease(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen,
                   const char *owner, unsigned ttl_ms)
{
    size_t n = strlen(owner);

    cmd_start(c, "EVAL", prefix, key, keylen);
    cmd_arg(c, rds_script_lease, sizeof(rds_script_lease) - 1);
    cmd_arg(c, "1", 1);
    cmd_key(c);
    c->val = xmalloc(n + 1); /* stored as a plain value, so that a get reads the owner */
    c->val[0] = 'v';
    memcpy(c->val + 1, owner, n);
    cmd_arg(c, c->val, n + 1);
    cmd_num(c, 0, ttl_ms ? ttl_ms : 1);
}

void rds_cmd_free(struct rds_cmd *c)
{
    free(c->val);
    c->val = NULL;
}

size_t rds_match(char *dst, size_t len, const char *prefix, const void *p, size_t plen)
{
    const unsigned char *s = p;
    size_t o = 0, pl = strlen(prefix);

    /* the namespace prefix and the caller's both: either may hold glob characters */
    for (size_t i = 0; i < pl + plen && o + 3 < len; i++) {
        unsigned char ch = i < pl ? (unsigned char)prefix[i] : s[i - pl];
        if (strchr("*?[]\\", ch) && ch)
            dst[o++] = '\\';
        dst[o++] = (char)ch;
    }
    dst[o++] = '*';
    dst[o] = '\0';
    return o;
}

int rds_reply_error(const struct redisReply *r)
{
    static const char *const down[] = {"LOADING", "NOAUTH",   "WRONGPASS",   "MASTERDOWN",
                                       "BUSY",    "TRYAGAIN", "CLUSTERDOWN", "READONLY"};

    if (!r)
        return STORE_EDOWN;
    if (r->type != REDIS_REPLY_ERROR || !r->str)
        return STORE_EIO;
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
        if (strncmp(r->str, down[i], strlen(down[i])) == 0)
            return STORE_EDOWN;
    if (strstr(r->str, "OOM"))
        return STORE_EFULL;
    return STORE_EIO;
}

int rds_value(const char *s, size_t n, const void **val, size_t *vlen, unsigned char ctr[8])
{
    char buf[24], *end;
    long long v;
    uint64_t u;

    if (n >= 1 && s[0] == 'v') {
        *val = s + 1;
        *vlen = n - 1;
        return STORE_OK;
    }
    if (n == 0 || n >= sizeof(buf))
        return STORE_EIO; /* not written by us */
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno || *end != '\0')
        return STORE_EIO;
    u = (uint64_t)v;
    for (int i = 0; i < 8; i++, u >>= 8)
        ctr[i] = (unsigned char)(u & 0xff);
    *val = ctr;
    *vlen = 8;
    return STORE_OK;
}

int rds_reply_get(const struct redisReply *r, const void **val, size_t *vlen, unsigned char ctr[8])
{
    if (r && r->type == REDIS_REPLY_NIL)
        return STORE_NOTFOUND;
    if (r && r->type == REDIS_REPLY_STRING)
        return rds_value(r->str, (size_t)r->len, val, vlen, ctr);
    return rds_reply_error(r);
}

int rds_reply_set(const struct redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STATUS)
        return STORE_OK;
    return rds_reply_error(r);
}

int rds_reply_incr(const struct redisReply *r, int64_t *value)
{
    if (r && r->type == REDIS_REPLY_INTEGER) {
        *value = (int64_t)r->integer;
        return STORE_OK;
    }
    if (r && r->type == REDIS_REPLY_ERROR && r->str) {
        if (strstr(r->str, "not an integer"))
            return STORE_ETYPE;
        if (strstr(r->str, "overflow"))
            return STORE_ERANGE;
    }
    return rds_reply_error(r);
}

int rds_reply_del(const struct redisReply *r)
{
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer > 0 ? STORE_OK : STORE_NOTFOUND;
    return rds_reply_error(r);
}

int rds_reply_lease(const struct redisReply *r)
{
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer == 1 ? STORE_OK : STORE_EBUSY;
    return rds_reply_error(r);
}
