/*
 * store_redis_cmd.h - the Redis backend's pure parts: the URI, the command
 * encoding of each store operation and the decoding of Redis's replies.
 * No sockets here, so that unit tests check them against fake replies.
 *
 * URIs (store { uri }):
 *   redis://[:PASSWORD@]HOST[:PORT][/DB]       TCP (port 6379, db 0 by default)
 *   redis+unix://[:PASSWORD@]/PATH[?db=DB]     a UNIX socket (absolute path)
 * HOST is a name, an IPv4 address or [IPv6]. The password is sent with AUTH,
 * the database chosen with SELECT, on every (re)connection.
 *
 * Records: every key gets the configured prefix ("mxgate:" by default).
 * A plain value is stored as "v" + its octets; a counter as a Redis integer
 * (INCRBY's own representation), so a get tells the two apart and returns a
 * counter as the store's 8-octet little-endian int64.
 */
#ifndef MX_STORE_REDIS_CMD_H
#define MX_STORE_REDIS_CMD_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;

#define RDS_HOST_MAX 256
#define RDS_PATH_MAX 108 /* sun_path */
#define RDS_PASS_MAX 512
#define RDS_DB_MAX 15  /* Redis's default "databases 16" */
#define RDS_ARGS_MAX 8 /* the most arguments one command takes here */
#define RDS_PREFIX_MAX 64

struct rds_uri {
    char host[RDS_HOST_MAX]; /* "" for a UNIX socket */
    int port;
    char path[RDS_PATH_MAX]; /* the UNIX socket, "" for TCP */
    char password[RDS_PASS_MAX];
    int has_password;
    int db;
};

/* rds_uri_parse - location is the URI after "redis:" or "redis+unix:"; 0, or -1 with err */
int rds_uri_parse(const char *scheme, const char *location, struct rds_uri *u, char *err,
                  size_t errlen);

/* rds_uri_name - where the server is, for log lines, without the password */
void rds_uri_name(const struct rds_uri *u, char *dst, size_t len);

/* One command: argv/argvlen point into buf and the caller's key and value. */
struct rds_cmd {
    int argc;
    const char *argv[RDS_ARGS_MAX];
    size_t argvlen[RDS_ARGS_MAX];
    char key[RDS_PREFIX_MAX + 512]; /* prefix + key */
    size_t keylen;
    char num[2][24];    /* numbers as decimal text */
    unsigned char *val; /* "v" + value (xmalloc'd for set), or NULL */
};

/* The Lua scripts: a counter's increment and first expiry in one step, and a lease. */
extern const char rds_script_incr[];
extern const char rds_script_lease[];

/* rds_cmd_* - build one command; rds_cmd_free releases what set allocated */
void rds_cmd_get(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen);
void rds_cmd_set(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen,
                 const void *val, size_t vlen, unsigned ttl);
void rds_cmd_incr(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen,
                  int64_t delta, unsigned ttl);
void rds_cmd_del(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen);
void rds_cmd_lease(struct rds_cmd *c, const char *prefix, const void *key, size_t keylen,
                   const char *owner, unsigned ttl_ms);
void rds_cmd_free(struct rds_cmd *c);

/* rds_match - the SCAN MATCH pattern of prefix + p: glob characters escaped, then "*" */
size_t rds_match(char *dst, size_t len, const char *prefix, const void *p, size_t plen);

/*
 * Decoding. Each returns a store status: a NULL reply (the connection went
 * away) and the errors of a server that cannot answer now (LOADING, NOAUTH,
 * MASTERDOWN, ...) are STORE_EDOWN; other error replies STORE_EIO (or
 * STORE_ETYPE / STORE_ERANGE for INCRBY's own).
 */
/* rds_value - a stored string as the store's value: val and vlen point into the reply, or
 * into ctr (8 octets) for a counter (out-parameters: val, vlen) */
int rds_value(const char *s, size_t n, const void **val, size_t *vlen, unsigned char ctr[8]);
int rds_reply_get(const struct redisReply *r, const void **val, size_t *vlen, unsigned char ctr[8]);
int rds_reply_set(const struct redisReply *r);
int rds_reply_incr(const struct redisReply *r, int64_t *value);
int rds_reply_del(const struct redisReply *r);
/* rds_reply_lease - STORE_OK when the owner holds the lease, STORE_EBUSY when another does */
int rds_reply_lease(const struct redisReply *r);
/* rds_reply_error - the status of an error reply (or a NULL one) */
int rds_reply_error(const struct redisReply *r);

#endif
