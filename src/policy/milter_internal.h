/*
 * milter_internal.h - what milter.c (the check: sessions, stages, decisions)
 * and milter_msg.c (the message: DATA, header fields, body, end of message
 * and the modifications) share.
 */
#ifndef MX_POLICY_MILTER_INTERNAL_H
#define MX_POLICY_MILTER_INTERNAL_H

#include <stdint.h>

#include "policy/milter_client.h"
#include "policy/policy.h"

#define MILTER_BUCKETS 256

struct milter_state {
    struct milter_conf *conf;
    size_t n;
    struct event_base *base;
    struct stats *stats;
    const struct config *cfg;
    uint64_t max_size; /* the largest of the milters' max_size: the body kept */
    struct milter_sess *buckets[MILTER_BUCKETS];
};

enum milter_link_state {
    LINK_NEW,  /* not connected yet */
    LINK_NEG,  /* SMFIC_OPTNEG sent */
    LINK_OPEN, /* negotiated */
    LINK_DONE, /* accepted (or shut down) for the session: nothing more is sent */
    LINK_DEAD  /* failed: on_error decides each stage */
};

/* what a link still has to send in this stage, in order */
#define MILTER_STEP_CONNECT 1u
#define MILTER_STEP_HELO 2u
#define MILTER_STEP_MAIL 4u
#define MILTER_STEP_RCPT 8u

struct milter_sess;

struct milter_link {
    const struct milter_conf *mc;
    struct milter_sess *ss;
    struct milter_conn *conn;
    enum milter_link_state state;
    uint32_t actions, proto; /* negotiated */
    unsigned todo;
    int sub;       /* 0: the item's macros are next, 1: its command */
    int awaiting;  /* an answer is due */
    int skip_tx;   /* accepted (or discarded) for this transaction */
    int in_tx;     /* MAIL was sent and no end of message since: ABORT before the next */
    int sent_conn; /* CONNECT (or its skip) done */
    /* END stage */
    int mstep;      /* milter_msg_next's position */
    size_t hdr_pos; /* next header field in cl->header */
    uint64_t body_pos;
    int body_skip; /* SMFIR_SKIP: the rest of the body is not wanted */
    int eom;       /* end of message sent: modifications may come */
};

struct milter_msg {
    struct evbuffer *body; /* up to the state's max_size */
    uint64_t size;         /* body octets seen */
    uint64_t max;
    int over; /* longer than every milter's max_size: not kept */
};

struct milter_sess {
    struct milter_sess *next; /* hash chain */
    struct milter_state *st;
    struct policy_client *cl;
    struct milter_link *links;
    struct policy_job *job; /* the pending stage, or NULL */
    enum policy_stage stage;
    size_t cur;
    int decided;
    struct policy_verdict v;
    struct milter_msg *msg; /* END */
    int discard;            /* a milter discarded the transaction */
    int discard_all;        /* ... or every transaction of the session */
    char discard_by[64];
    int score;
    char tags[128]; /* milters that tagged the message as spam */
};

/* milter_msg_next - the END stage's next packet for l (DATA, header fields, EOH, body,
 * end of message); 1 with *want (an answer is due), or 0 when l is through */
int milter_msg_next(struct milter_sess *ss, struct milter_link *l, struct milter_pkt *k, int *want);
/* milter_msg_modify - a modification reply at the end of message: applied to the
 * session's client; 0, or -1 with why (not negotiated, unsupported, too big) */
int milter_msg_modify(struct milter_sess *ss, struct milter_link *l, const struct milter_reply *r,
                      const char **why);

void *milter_msg_begin(void *state, const struct policy_client *cl);
void milter_msg_body(void *mdata, const char *data, size_t len);
void milter_msg_free(void *mdata);

#endif
