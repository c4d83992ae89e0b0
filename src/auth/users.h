/*
 * users.h - the submission users file: one account per line,
 *
 *   login:crypt-hash[:key=value,key=value,...]
 *
 * login   printable ASCII without blanks or ':' (often an address), at most
 *         255 bytes; compared case-insensitively (ASCII).
 * hash    a crypt(3) hash (yescrypt $y$, bcrypt $2b$, SHA-512-crypt $6$...),
 *         or "!" / "*" for an account that may not log in.
 * key     [a-z0-9_-], at most 64 bytes; value printable ASCII without ','
 *         (e.g. created=2026-12-01, read by the quota check).
 *
 * Blank lines and lines starting with '#' are ignored. A malformed line or a
 * duplicate login is an error "FILE:LINE: message" and no table is returned:
 * at start-up the daemon refuses to run; on reload the old table stays.
 * The table is immutable once loaded, so it can be shared with pool threads.
 */
#ifndef MXGATE_AUTH_USERS_H
#define MXGATE_AUTH_USERS_H

#include <stddef.h>

#define USERS_LOGIN_MAX 255

struct users_attr {
    const char *key;
    const char *value;
};

struct users_entry {
    const char *login; /* as written in the file */
    const char *hash;
    const struct users_attr *attrs;
    size_t nattrs;
    unsigned line; /* for log lines */
};

struct users;

/* users_load - parse path; NULL with err set on any error */
struct users *users_load(const char *path, char *err, size_t errlen);

/* users_parse - the same from a buffer (name is used in errors) */
struct users *users_parse(const char *name, const char *buf, size_t len, char *err, size_t errlen);

/* users_find - the entry for login (case-insensitive), or NULL; u may be NULL */
const struct users_entry *users_find(const struct users *u, const char *login);

/* users_attr - the value of key in e's attributes, or NULL */
const char *users_attr(const struct users_entry *e, const char *key);

/* users_count - number of accounts */
size_t users_count(const struct users *u);

/* users_entry_at - the i-th account in login order (for listings) */
const struct users_entry *users_entry_at(const struct users *u, size_t i);

void users_free(struct users *u);

#endif
