/*
 * guard.h - failed SMTP AUTH counted per client address and per login in the
 * state store, so a password guesser is slowed, then locked out, across
 * sessions and restarts. Keys (TTL'd):
 *   authfail:ip:<addr>, authfail:login:<login>   failures in failure_window
 *   authlock:ip:<addr>, authlock:login:<login>   present while locked out
 * The login is lower-cased; only logins of the users file are counted (an
 * unknown name gets the address's count only, so guessed names cannot fill
 * the store).
 */
#ifndef MXGATE_AUTH_GUARD_H
#define MXGATE_AUTH_GUARD_H

struct store;
struct authconf;
struct guard_job;

/* guard_fn - the answer: failures (the larger of the two counters) and locked */
typedef void (*guard_fn)(void *arg, unsigned failures, int locked);

/* guard_check - is ip or login (NULL: not counted) locked out? fn runs once; the job is
 * returned while pending, NULL when fn already ran */
struct guard_job *guard_check(struct store *st, const char *ip, const char *login, guard_fn fn,
                              void *arg);

/* guard_fail - count one failure; reaching max_failures locks out for lockout seconds
 * (locked is then 1). Same calling convention as guard_check */
struct guard_job *guard_fail(struct store *st, const struct authconf *ac, const char *ip,
                             const char *login, guard_fn fn, void *arg);

/* guard_cancel - fn will not run */
void guard_cancel(struct guard_job *j);

#endif
