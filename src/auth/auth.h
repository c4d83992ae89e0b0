/*
 * auth.h - SMTP AUTH's back end: the users file, the senders map and the
 * password check. crypt(3) runs on the thread pool, never on the event loop;
 * a verified login+password is remembered for cache_ttl seconds under a keyed
 * hash (HMAC-SHA-256 with a random per-process key), never the password.
 * One struct auth per configuration generation: a reload builds a new one.
 */
#ifndef MXGATE_AUTH_AUTH_H
#define MXGATE_AUTH_AUTH_H

#include <stddef.h>

#include "auth/authconf.h"

struct config;
struct pool;
struct users;

enum auth_result {
    AUTH_OK,      /* the password is right */
    AUTH_FAIL,    /* unknown login, wrong password, locked account */
    AUTH_TEMPFAIL /* could not check (crypt failed: e.g. an unsupported hash) */
};

struct auth;
struct auth_job;

typedef void (*auth_done_fn)(void *arg, enum auth_result r, int cached);

/* auth_new - the users file and senders map of cfg's auth section; NULL with err
 * set when they do not load, NULL with err "" when there is no auth section */
struct auth *auth_new(const struct config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);

const struct authconf *auth_conf(const struct auth *a);
const struct users *auth_users(const struct auth *a);

/*
 * auth_verify - check login's password: done runs on the loop later (never
 * before auth_verify returns), or immediately from the cache (then NULL is
 * returned and done has run). auth_cancel before the session goes away.
 */
struct auth_job *auth_verify(struct auth *a, struct pool *pool, const char *login,
                             const char *password, auth_done_fn done, void *arg);
void auth_cancel(struct auth_job *j);

/* auth_sender_ok - may login use addr as envelope sender or From: ("": null sender) */
int auth_sender_ok(const struct auth *a, const char *login, const char *addr);

#endif
