/*
 * client.h - an asynchronous SMTP/LMTP client that delivers one message
 * to one next hop over the event loop, with PIPELINING when offered and
 * opportunistic STARTTLS; optionally over a connection kept open by a
 * previous delivery to the same next hop (a connection cache).
 */
#ifndef MX_RELAY_CLIENT_H
#define MX_RELAY_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

struct conncache;

/* Service extensions of the peer's EHLO/LHLO reply. */
enum {
    SMTP_EXT_PIPELINING = 1,
    SMTP_EXT_SIZE = 2,
    SMTP_EXT_8BITMIME = 4,
    SMTP_EXT_STARTTLS = 8,
    SMTP_EXT_SMTPUTF8 = 16,
    SMTP_EXT_ENHANCED = 32
};

/* Final status of one recipient. code 0 means no SMTP reply was obtained
 * (connection refused, timeout, TLS failure): treat as temporary. */
struct smtp_client_rcpt {
    int code;
    char text[512]; /* the reply text, e.g. "5.1.1 unknown user", or why there was none */
    /* the whole message was sent but the reply to the final dot was lost
     * (connection lost, timeout, unreadable reply): the peer may have
     * stored it. code is 0. */
    int maybe_delivered;
};

struct smtp_client_result {
    size_t nrcpt;
    struct smtp_client_rcpt *rcpt; /* one per request recipient, same order */
    int tls;                       /* the session was protected by TLS */
    char tls_desc[96];             /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
    char peer_greeting[128];       /* first line of the 220, for logs */
    /* what the peer's last EHLO/LHLO announced (after STARTTLS if used),
     * when ehlo_ok: every delivery refreshes the next-hop knowledge */
    int ehlo_ok;
    unsigned ext;      /* SMTP_EXT_* */
    uint64_t size_max; /* SIZE parameter; 0: no limit given */
    double ready_at;   /* clock_now_precise() when MAIL FROM went out, 0 if never: the
                        * end of connection set-up (delay= in the delivery logs) */
};

struct smtp_client_req {
    int lmtp;                     /* speak LMTP (LHLO, a reply per recipient after DATA) */
    struct sockaddr_storage addr; /* AF_INET, AF_INET6 or AF_UNIX */
    socklen_t addrlen;
    const char *helo;   /* our name for EHLO/LHLO */
    const char *sender; /* "" for <> */
    const char *const *rcpts;
    size_t nrcpt;
    int body_fd; /* the body: dot-stuffed CRLF lines, no final ".\r\n" */
    off_t body_off;
    uint64_t body_len;
    const char
        *prepend; /* header fields sent before the body (CRLF lines, no dot at a line start) */
    size_t prepend_len;
    int body_8bit;    /* add BODY=8BITMIME when offered */
    int smtputf8;     /* needs SMTPUTF8: 550 5.6.7 if the peer lacks it */
    SSL_CTX *tls;     /* non-NULL: STARTTLS when offered (no verification) */
    int tls_required; /* no STARTTLS, or it failed: nothing is sent in clear (code 0) */
    /* non-NULL: the certificate must name this host (tls then verifies the chain) */
    const char *tls_verify_name;
    int connect_timeout; /* seconds */
    int command_timeout;
    int data_timeout; /* for the reply to the final dot */
    /* probe: verify the recipients, send nothing. After the RCPT replies
     * comes QUIT instead of DATA (SIZE is not offered, the body is not
     * used: body_fd may be -1). Each recipient's result is its RCPT
     * reply, 2xx included; code 0 when there was none (no connection,
     * timeout, or the greeting, EHLO or MAIL refused: the text says so). */
    int probe;
    /* ehlo_only: learn the peer's extensions (greeting, EHLO/LHLO, STARTTLS
     * and EHLO again when tls is set), then QUIT. nrcpt may be 0; the
     * result's ehlo_ok, ext and size_max carry the answer. */
    int ehlo_only;
    /* cache: non-NULL to reuse and keep connections. A connection whose
     * transaction ended normally (the whole reply to the final dot read)
     * is parked there instead of QUIT, keyed by addr, lmtp, whether tls is
     * set and helo; a later request with the same key starts at MAIL FROM
     * on it (no RSET, no greeting, no EHLO, TLS kept). If a reused
     * connection turns out dead (closed, reset, or 421) before MAIL FROM
     * got a reply, the request is retried once on a fresh connection.
     * Never used for probes. NULL: a connection per request
     * (relay/conncache.h). */
    struct conncache *cache;
    /* max_uses: a connection that carried this many transactions is closed, not parked
     * (a destination's per_connection); 0: no limit */
    unsigned max_uses;
    void (*done)(void *arg, const struct smtp_client_result *res);
    void *arg;
};

struct smtp_client;

/*
 * smtp_client_start - begin delivering. req is copied (the strings and fd
 * must stay valid until done runs; the fd is not closed). done is called
 * exactly once, later, from the loop — never from inside this call — and
 * the result is valid only during that call. NULL on immediate resource
 * failure (no callback then).
 */
struct smtp_client *smtp_client_start(struct event_base *base, const struct smtp_client_req *req);

/* smtp_client_cancel - abort; done will not be called; the connection is
 * closed, never parked */
void smtp_client_cancel(struct smtp_client *c);

#endif
