/*
 * milter_client.h - one connection to one milter on the event loop (a libevent
 * bufferevent): packets out, decoded replies in, one timer for the connection
 * and for each awaited answer. The owner (milter.c) knows which answer it
 * waits for; this module only moves and checks octets.
 */
#ifndef MX_POLICY_MILTER_CLIENT_H
#define MX_POLICY_MILTER_CLIENT_H

#include "policy/milter_conf.h"
#include "policy/milter_proto.h"

struct event_base;
struct milter_conn;

enum milter_client_err {
    MILTER_OK = 0,
    MILTER_ERR_CONNECT, /* the connection failed */
    MILTER_ERR_TIMEOUT, /* no connection or no answer within the milter's timeout */
    MILTER_ERR_CLOSED,  /* the milter closed the connection */
    MILTER_ERR_PROTOCOL /* a malformed, oversized or unexpected packet */
};

/* Each reply (err 0), or the one error after which the connection is dead
 * (r NULL; why is a short token for the log). The callback may close c. */
typedef void (*milter_client_fn)(void *arg, const struct milter_reply *r, int err, const char *why);

/* milter_client_open - connect to mc's socket; NULL when no socket could be made */
struct milter_conn *milter_client_open(struct event_base *base, const struct milter_conf *mc,
                                       milter_client_fn fn, void *arg);
/* milter_client_send - queue a packet (sent once connected) */
void milter_client_send(struct milter_conn *c, const struct milter_pkt *k);
/* milter_client_wait - an answer is due (1): the timeout runs; 0: none is */
void milter_client_wait(struct milter_conn *c, int on);
/* milter_client_close - say SMFIC_QUIT (if the connection lives) and let go; no more callbacks */
void milter_client_close(struct milter_conn *c);
/* milter_client_errname - "connect", "timeout", "closed", "protocol" */
const char *milter_client_errname(int err);

#endif
