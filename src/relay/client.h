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

/* Final status of one recipient. code 0 means no SMTP reply was obtained
 * (connection refused, timeout, TLS failure): treat as temporary. */
struct smtp_client_cache;

struct smtp_client_rcpt {
    int code;
    char text[512]; /* the reply text, e.g. "5.1.1 unknown user", or why there was none */
};

struct smtp_client_result {
    size_t nrcpt;
    struct smtp_client_rcpt *rcpt; /* one per request recipient, same order */
    int tls;                       /* the session was protected by TLS */
    char tls_desc[96];             /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
    char peer_greeting[128];       /* first line of the 220, for logs */
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
    int body_8bit;       /* add BODY=8BITMIME when offered */
    int smtputf8;        /* needs SMTPUTF8: 550 5.6.7 if the peer lacks it */
    SSL_CTX *tls;        /* non-NULL: STARTTLS when offered (no verification) */
    int connect_timeout; /* seconds */
    int command_timeout;
    int data_timeout; /* for the reply to the final dot */
    /* probe: verify the recipients, send nothing. After the RCPT replies
     * comes QUIT instead of DATA (SIZE is not offered, the body is not
     * used: body_fd may be -1). Each recipient's result is its RCPT
     * reply, 2xx included; code 0 when there was none (no connection,
     * timeout, or the greeting, EHLO or MAIL refused: the text says so). */
    int probe;
    /* cache: non-NULL to reuse and keep connections. A connection whose
     * transaction ended normally (the whole reply to the final dot read)
     * is parked there instead of QUIT, keyed by addr, lmtp, whether tls is
     * set and helo; a later request with the same key starts at MAIL FROM
     * on it (no RSET, no greeting, no EHLO, TLS kept). If a reused
     * connection turns out dead (closed, reset, or 421) before MAIL FROM
     * got a reply, the request is retried once on a fresh connection.
     * Never used for probes. NULL: a connection per request. */
    struct smtp_client_cache *cache;
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

/*
 * smtp_client_cache_new - an empty cache of idle connections on base (the
 * base of the clients that use it). At most max_idle are parked in total
 * (beyond that the oldest is closed) and half as many per key (at
 * least one; a burst of deliveries to one next hop must find its
 * connections again, yet cannot take the whole cache); each is closed with
 * QUIT after idle_timeout seconds unused, and dropped at once when the
 * peer closes it or sends anything. max_idle or idle_timeout 0: nothing is
 * ever parked. NULL (errno ENOMEM) on failure. The cache must outlive
 * every client whose request names it.
 */
struct smtp_client_cache *smtp_client_cache_new(struct event_base *base, unsigned max_idle,
                                                unsigned idle_timeout);

/* smtp_client_cache_free - close every parked connection (QUIT written if
 * the socket takes it at once, never waiting) and free the cache; NULL ok */
void smtp_client_cache_free(struct smtp_client_cache *cache);

#endif
