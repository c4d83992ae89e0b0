/*
 * policysrv.h - mxgate as a Postfix policy service (role = "policy"):
 * Postfix's smtpd asks with check_policy_service, the listener's checks
 * judge the request's client, HELO, sender and recipient as a session of
 * our own would, and the verdict goes back as an action (access(5)).
 *
 * One connection carries many requests, one at a time. Requests with the
 * same instance= (one message transaction in Postfix) share one client:
 * the connect, HELO and MAIL checks run once per transaction, the RCPT
 * checks once per recipient, as in an SMTP session.
 */
#ifndef MX_POLICYSRV_POLICYSRV_H
#define MX_POLICYSRV_POLICYSRV_H

#include <stddef.h>

#include <event2/util.h>

struct event_base;
struct policy_chain;
struct stats;

/* What a connection uses; the caller keeps it all valid until done is called. */
struct policysrv_env {
    struct event_base *base;
    const struct policy_chain *chain; /* the listener's checks */
    struct stats *stats;
    const char *listener;
    unsigned idle_timeout; /* seconds a request may take to arrive (timeouts.command) */
    /* new_id - a session id for the log (one per transaction) */
    void (*new_id)(void *arg, char *dst, size_t len);
    /* done - the connection is over (closed, freed) */
    void (*done)(void *arg);
    void *arg;
};

struct policysrv; /* the open connections */

struct policysrv *policysrv_new(void);
/* policysrv_start - serve the connected socket fd (non-blocking) from peer_ip */
void policysrv_start(struct policysrv *ps, const struct policysrv_env *env, evutil_socket_t fd,
                     const char *peer_ip);
/* policysrv_drain - SIGTERM: close the idle connections now (Postfix opens a new one at
 * its next request), the others once their answer is written */
void policysrv_drain(struct policysrv *ps);
/* policysrv_close_all - close every connection (shutdown) */
void policysrv_close_all(struct policysrv *ps);
void policysrv_free(struct policysrv *ps);

/* For the tests. */
struct policy_verdict;
/* policysrv_action - the action line's value for a refusal v (TEMPFAIL or REJECT):
 * "DEFER_IF_PERMIT 4.7.1 text" for greylisting, else "CODE X.Y.Z text"; control
 * characters of the text become '?' */
void policysrv_action(const struct policy_verdict *v, char *dst, size_t len);

#endif
