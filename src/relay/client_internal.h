/*
 * client_internal.h - the SMTP/LMTP client's state, shared by client.c
 * (the state machine: one handler per awaited reply), client_reply.c
 * (reading and parsing replies, per-recipient results) and client_conn.c
 * (connecting, TLS, the body, the connection cache). Nothing else
 * includes it.
 */
#ifndef MX_RELAY_CLIENT_INTERNAL_H
#define MX_RELAY_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/util.h>

#include "relay/client.h"

struct bufferevent;
struct evbuffer;

#define REPLY_LINE_MAX 2048 /* octets of one reply line, CRLF excluded */
#define REPLY_LINES_MAX 100 /* lines of one reply */
#define INPUT_HIWAT 8192    /* stop reading the socket while this much is unparsed */
#define BODY_CHUNK 16384    /* bytes read from the body file at a time */
#define BODY_HIWAT 65536    /* body bytes queued for output at most */
#define PATH_MAX_LEN 256    /* RFC 5321 4.5.3.1.3, also bounds the HELO name */
#define QUIT_WAIT 2         /* seconds to wait for the 221 */

/* the reply awaited, or what is under way */
enum cstate {
    ST_CONNECT,
    ST_GREETING,
    ST_EHLO,
    ST_HELO,
    ST_STARTTLS,
    ST_TLS,
    ST_REUSE, /* a parked connection was adopted: MAIL FROM comes from the loop */
    ST_MAIL,
    ST_RCPT,
    ST_DATA,
    ST_BODY,
    ST_DOT,
    ST_QUIT,
    ST_DONE
};

/* per-recipient flags */
#define RF_SEND 1  /* valid: a RCPT is (or will be) sent for it */
#define RF_OK 2    /* RCPT accepted: its fate is decided after the dot */
#define RF_FINAL 4 /* res.rcpt[i] holds its final status */

struct smtp_client {
    struct event_base *base;
    struct smtp_client_req req;
    struct bufferevent *bev;
    struct event *timer; /* reply/connect timeout, QUIT grace, deferred done */
    enum cstate st;
    struct smtp_client_result res;
    unsigned char *rflags; /* RF_* per recipient */
    size_t ri;             /* recipient whose RCPT (LMTP: end of data) reply is next */
    size_t naccepted;
    unsigned ext;                   /* X_* */
    uint64_t size_max;              /* SIZE parameter, 0 for no limit */
    int tls_refused;                /* STARTTLS got no 220: go on in clear */
    unsigned uses;                  /* transactions on this connection before this one */
    int pipelining;                 /* this transaction is pipelined */
    int rcode;                      /* the reply being read */
    size_t rlines;                  /* lines of it read so far */
    char rtext[512];                /* its text, lines joined by a space */
    int rlong;                      /* dropping the rest of an over-long reply line */
    size_t rlong_len;               /* octets of it kept in rline */
    char rline[REPLY_LINE_MAX + 1]; /* the kept start of an over-long line */
    const char *perr;               /* why the last reply line was refused */
    off_t body_pos;                 /* next body byte to read from the file */
    uint64_t body_left;             /* body bytes not yet queued */
    char tail[2];                   /* the last two body bytes queued */
    int reuse_pending;              /* on a cached connection, no reply read yet: if it
                                       proves dead now, start over on a fresh one */
};

/* cl_finish - report the result and free the client; c is gone afterwards (client.c) */
void cl_finish(struct smtp_client *c);
/* cl_fail - fail every open recipient and finish; returns 1 (stop) (client.c) */
__attribute__((format(printf, 3, 4))) int cl_fail(struct smtp_client *c, int code, const char *fmt,
                                                  ...);
/* cl_arm - switch to state st and start the timer that bounds it (client.c) */
int cl_arm(struct smtp_client *c, enum cstate st);
/* cl_enter - arm, failing the delivery if the timer cannot be set; 0 or 1 (stop) (client.c) */
int cl_enter(struct smtp_client *c, enum cstate st);
/* cl_on_read - parse every complete reply buffered and act on each in turn (client.c) */
void cl_on_read(struct bufferevent *bev, void *arg);
/* cl_send_hello - EHLO or LHLO; forgets the extensions of a previous one (client.c) */
int cl_send_hello(struct smtp_client *c);
/* cl_on_write - the output drained: feed more of the body (client.c) */
void cl_on_write(struct bufferevent *bev, void *arg);
/* cl_on_event - connection established, closed, failed or a write timed out (client.c) */
void cl_on_event(struct bufferevent *bev, short what, void *arg);
/* cl_stage_name - the command whose reply is awaited, for messages (client_reply.c) */
const char *cl_stage_name(const struct smtp_client *c);
/* cl_set_rcpt - record the final status of recipient i (client_reply.c) */
void cl_set_rcpt(struct smtp_client *c, size_t i, int code, const char *text);
/* cl_vfail_all - give every recipient without a final status this one (client_reply.c) */
void cl_vfail_all(struct smtp_client *c, int code, const char *fmt, va_list ap);
/* cl_fail_all - vfail_all with variable arguments (client_reply.c) */
__attribute__((format(printf, 3, 4))) void cl_fail_all(struct smtp_client *c, int code,
                                                       const char *fmt, ...);
/* cl_reply_to - give recipient i the current reply; ok: a 2xx is final here (client_reply.c) */
void cl_reply_to(struct smtp_client *c, size_t i, int ok);
/* cl_reply_to_all - reply_to for every recipient still without a final status (client_reply.c) */
void cl_reply_to_all(struct smtp_client *c, int ok);
/* cl_next_rcpt - the first recipient at or after i carrying flag, or nrcpt (client_reply.c) */
size_t cl_next_rcpt(const struct smtp_client *c, size_t i, unsigned flag);
/* cl_reply_read - take lines until a reply is complete: 1, 0 (need more), -1 (c->perr)
 * (client_reply.c) */
int cl_reply_read(struct smtp_client *c, struct evbuffer *in);
/* cl_addr_text - the next hop as "ip:port", "[ip6]:port" or a socket path (client_conn.c) */
void cl_addr_text(const struct smtp_client_req *r, char *buf, size_t len);
/* cl_direct - a plaintext connection, written by us, not by the bufferevent (client_conn.c) */
int cl_direct(const struct smtp_client *c);
/* cl_out_flush - write what is queued; 1 when all of it went, 0 when not yet (client_conn.c) */
int cl_out_flush(struct smtp_client *c);
/* cl_enable_io - reading on; writing left to out_flush on a plaintext connection (client_conn.c) */
int cl_enable_io(struct smtp_client *c);
/* cl_tls_error - why the TLS handshake failed (client_conn.c) */
void cl_tls_error(struct bufferevent *bev, short what, int err, char *buf, size_t len);
/* cl_bev_setup - callbacks, input bound and write timeout of a new bufferevent (client_conn.c) */
int cl_bev_setup(struct smtp_client *c, struct bufferevent *bev, int timeouts);
/* cl_tls_start - STARTTLS got 220: the socket goes to a TLS bufferevent; 1 (client_conn.c) */
int cl_tls_start(struct smtp_client *c);
/* cl_tls_ready - the handshake is done: note the protocol and greet again (client_conn.c) */
int cl_tls_ready(struct smtp_client *c);
/* cl_body_pump - queue more of the body, then the final dot (client_conn.c) */
int cl_body_pump(struct smtp_client *c);
/* cl_body_start - DATA got 354: send the body under the data timeout (client_conn.c) */
int cl_body_start(struct smtp_client *c);
/* cl_park - hand an idle, healthy connection to the cache; 0 parked, -1 not (client_conn.c) */
int cl_park(struct smtp_client *c);
/* cl_check_envelope - refuse locally what cannot be sent; 1 when some is left (client_conn.c) */
int cl_check_envelope(struct smtp_client *c);
/* cl_start_connect - non-blocking connect; -1 (recipients failed) at once (client_conn.c) */
int cl_start_connect(struct smtp_client *c);
/* cl_reuse_take - adopt a parked connection for c's key; 1 when adopted (client_conn.c) */
int cl_reuse_take(struct smtp_client *c);
/* cl_reuse_retry - a reused connection died before MAIL: start over fresh (client_conn.c) */
int cl_reuse_retry(struct smtp_client *c);

#endif
