/*
 * quota.h - per-login sending quotas of the submission service: what the
 * quota check (quota.c), the operator's listing and actions (admin/,
 * mxgatectl user ...) share.
 *
 * Store records, all under "q:" LOGIN NUL (a login never holds NUL, so the
 * records of one login are contiguous in key order and a prefix scan finds
 * them):
 *   q:LOGIN\0m:SECS:N   counter: messages in fixed window N (now / SECS), TTL SECS
 *   q:LOGIN\0r:SECS:N   counter: recipients in that window
 *   q:LOGIN\0hit:N      counter: quota refusals in day N (the hook's trigger), TTL 1 day
 *   q:LOGIN\0seen       "UNIXTIME": the first time mxgate saw the login (no TTL)
 *   q:LOGIN\0sus        "UNIXTIME": suspended since (no TTL; resume deletes it)
 */
#ifndef MX_POLICY_QUOTA_H
#define MX_POLICY_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct config_section;
struct event_base;
struct json;
struct store;

/* the quota section (quota_conf.c), carried by the check */
extern const struct config_section quota_section;

#define QUOTA_PREFIX "q:"
#define QUOTA_LOGIN_MAX 255 /* longer logins are not counted (and logged) */
#define QUOTA_WINDOWS_MAX 8 /* per list */
#define QUOTA_KEY_MAX (QUOTA_LOGIN_MAX + 64)
#define QUOTA_HIT_WINDOW 86400 /* hook_after counts refusals within one (fixed) day */

struct quota_window {
    unsigned limit; /* at most this many in ... */
    unsigned secs;  /* ... this many seconds */
};

struct quota_limits {
    struct quota_window msg[QUOTA_WINDOWS_MAX], rcpt[QUOTA_WINDOWS_MAX], fresh[QUOTA_WINDOWS_MAX];
    size_t nmsg, nrcpt, nfresh;
    unsigned new_days;
};

/* quota_window_parse - "N/SECONDS" (N 1..10^9, SECONDS 1..31 days); 0 or -1 */
int quota_window_parse(const char *s, struct quota_window *w);
/* quota_limits_read - the quota section of cfg (validated by config_load) */
void quota_limits_read(const struct config *cfg, struct quota_limits *l);
/* quota_effective - the message windows for an account that is new (fresh != 0) or not:
 * the default ones, and for a new account the new_account ones too, one window per
 * length with the lower limit. Returns how many (at most 2 * QUOTA_WINDOWS_MAX) */
size_t quota_effective(const struct quota_limits *l, int fresh, struct quota_window *out);
/* quota_period - "1 hour", "24 hours", "90 seconds": a window length for replies */
const char *quota_period(unsigned secs, char *dst, size_t len);

/* quota_key - "q:LOGIN\0SUFFIX" into dst (binary: it holds a NUL), LOGIN folded to ASCII
 * lower case as the users file compares logins; its length, 0 if login is empty or too long */
size_t quota_key(char *dst, size_t len, const char *login, const char *suffix);
/* quota_login_ok - 1..QUOTA_LOGIN_MAX octets, no control characters */
int quota_login_ok(const char *login);

/*
 * The account-age source: when the users file knows an account's creation date
 * (created=YYYY-MM-DD), the module that reads it registers a lookup here; it
 * returns 0 with *created, or -1 (unknown: the first time mxgate saw the login
 * counts). NULL fn: none (the default).
 */
typedef int (*quota_created_fn)(void *arg, const char *login, time_t *created);
void quota_created_source(quota_created_fn fn, void *arg);
int quota_created(const char *login, time_t *created);
/* quota_users_created - the users file's source (arg: its struct users, auth/users.h):
 * the account's "created=YYYY-MM-DD" (midnight UTC). Whoever loads the users table
 * registers it, quota_created_source(quota_users_created, users), and again with the
 * new table when a reload replaces it */
int quota_users_created(void *arg, const char *login, time_t *created);
/* quota_date_parse - "YYYY-MM-DD" as midnight UTC; 0 or -1 */
int quota_date_parse(const char *s, time_t *t);

/* ---- the hook (quota_hook.c): `HOOK LOGIN REFUSALS`, spawned without a shell ---- */
struct quota_hook;
/* quota_hook_new - path must be an executable regular file; NULL with err */
struct quota_hook *quota_hook_new(struct event_base *base, const char *path, char *err,
                                  size_t errlen);
/* quota_hook_run - run the hook for login now, or after the running one (a few wait) */
void quota_hook_run(struct quota_hook *h, const char *login, long long refusals);
/* quota_hook_free - a running hook is left to finish on its own */
void quota_hook_free(struct quota_hook *h);

/* ---- the operator's view (quota_users.c), on a read-only or daemon store ---- */
struct quota_use {
    char kind; /* 'm' messages, 'r' recipients */
    unsigned secs, limit;
    long long count; /* in the current window */
};
struct quota_user {
    const char *login;
    int suspended;
    long long suspended_since, first_seen; /* 0: not recorded */
    long long hits;                        /* refusals today */
    int fresh;                             /* younger than new_days: the stricter tier */
    size_t nuse;
    struct quota_use use[3 * QUOTA_WINDOWS_MAX];
};
/* quota_users_each - fn for every login with a record (in key order), usage of the
 * configured windows at now; only (non-NULL): that login alone. 0 or -1 */
int quota_users_each(const struct config *cfg, struct store *st, time_t now, const char *only,
                     void (*fn)(const struct quota_user *u, void *arg), void *arg);
/* quota_users_json - {"users":[{"login","suspended","suspended_since","first_seen","new",
 * "refusals_today","windows":[{"kind","seconds","limit","count","exhausted"}]}]}. 0 or -1 */
int quota_users_json(const struct config *cfg, struct store *st, time_t now, struct json *j);

/* quota_set_suspended - suspend (on) or resume login in the daemon's store (asynchronous
 * writes, ordered before later reads), counted and logged. 0, or -1 (EINVAL: not a login) */
int quota_set_suspended(struct store *st, const char *login, int on, time_t now);
/* quota_suspend_value - the record of a suspension made at now */
int quota_suspend_value(char *dst, size_t len, time_t now);

#endif
