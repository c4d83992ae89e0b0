/* client_conn.c - the client's connection: connect, write, STARTTLS, the body, the
 * connection cache */
#include "relay/client_internal.h"
#include "relay/conncache.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* cl_addr_text - the next hop as "ip:port", "[ip6]:port" or a socket path */
void cl_addr_text(const struct smtp_client_req *r, char *buf, size_t len)
{
    const struct sockaddr *sa = (const struct sockaddr *)&r->addr;
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    socklen_t alen = r->addrlen < sizeof r->addr ? r->addrlen : sizeof r->addr;
    size_t max = alen > off ? alen - off : 0;
    char host[INET6_ADDRSTRLEN], port[8];

    if (sa->sa_family == AF_UNIX) {
        max = max < sizeof un->sun_path ? max : sizeof un->sun_path;
        snprintf(buf, len, "%.*s", (int)strnlen(un->sun_path, max), un->sun_path);
    } else if (getnameinfo(sa, alen, host, sizeof host, port, sizeof port,
                           NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(buf, len, "address family %d", (int)sa->sa_family);
    } else {
        snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    }
}

/*
 * Plaintext connections are written by us: each batch of commands (or of
 * the body) goes out at once, and the write event is armed only for what
 * the kernel does not take. Left to the bufferevent, every command costs two
 * epoll_ctl calls (arm the write event, disarm it after the write). A TLS
 * bufferevent, which encrypts, keeps writing for itself.
 */
int cl_direct(const struct smtp_client *c)
{
    return bufferevent_openssl_get_ssl(c->bev) == NULL;
}

/* cl_out_flush - write what is queued; 1 when all of it went, 0 when the
 * bufferevent finishes it (short write; an error reaches on_event) */
int cl_out_flush(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int n;

    if (!cl_direct(c))
        return 0;
    if (evbuffer_get_length(out) == 0)
        return 1;
    /* The bufferevent freezes its output's start so that only it drains
     * it; it thaws it the same way around its own writes. */
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    if (n >= 0 && evbuffer_get_length(out) == 0)
        return 1;
    bufferevent_enable(c->bev, EV_WRITE);
    return 0;
}

/* cl_enable_io - reading on; writing left to out_flush on a plaintext connection */
int cl_enable_io(struct smtp_client *c)
{
    if (cl_direct(c) && bufferevent_disable(c->bev, EV_WRITE) != 0)
        return -1;
    return bufferevent_enable(c->bev, cl_direct(c) ? EV_READ : EV_READ | EV_WRITE);
}

/* cl_tls_error - why the TLS handshake failed */
void cl_tls_error(struct bufferevent *bev, short what, int err, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(bev);

    if (e != 0)
        ERR_error_string_n(e, buf, len);
    else if (what & BEV_EVENT_TIMEOUT)
        snprintf(buf, len, "timeout");
    else if (what & BEV_EVENT_EOF)
        snprintf(buf, len, "connection closed by peer");
    else
        snprintf(buf, len, "%s", err != 0 ? strerror(err) : "connection failed");
    ERR_clear_error();
}

/* cl_bev_setup - callbacks, input bound and write timeout of a new bufferevent */
int cl_bev_setup(struct smtp_client *c, struct bufferevent *bev, int timeouts)
{
    struct timeval wtv = {c->req.command_timeout, 0};

    bufferevent_setcb(bev, cl_on_read, cl_on_write, cl_on_event, c);
    bufferevent_setwatermark(bev, EV_READ, 0, INPUT_HIWAT);
    return timeouts ? bufferevent_set_timeouts(bev, NULL, &wtv) : 0;
}

/* cl_tls_start - the peer said 220 to STARTTLS: hand the socket to a TLS
 * bufferevent; returns 1 because the old input must not be read further */
int cl_tls_start(struct smtp_client *c)
{
    SSL *ssl = SSL_new(c->req.tls);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct bufferevent *tb;

    if (ssl == NULL)
        return cl_fail(c, 0, "TLS handshake failed: cannot create a TLS session");
    if (c->req.tls_verify_name && /* the MX host name, as RFC 7672 3.2.2 does for DANE */
        (SSL_set1_host(ssl, c->req.tls_verify_name) != 1 ||
         SSL_set_tlsext_host_name(ssl, c->req.tls_verify_name) != 1)) {
        SSL_free(ssl);
        return cl_fail(c, 0, "TLS handshake failed: cannot set the name to verify");
    }
    /* Whatever the peer sent after the 220 dies with the plaintext
     * bufferevent (CVE-2011-0411); the socket now belongs to the TLS one. */
    bufferevent_setfd(c->bev, -1);
    bufferevent_free(c->bev);
    c->bev = NULL;
    tb = bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                        BEV_OPT_CLOSE_ON_FREE);
    if (tb == NULL) {
        close(fd); /* libevent freed the SSL but does not own the fd on failure */
        return cl_fail(c, 0, "TLS handshake failed: cannot create a TLS bufferevent");
    }
    c->bev = tb;
    bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
    if (cl_bev_setup(c, tb, 1) != 0 || bufferevent_enable(tb, EV_READ | EV_WRITE) != 0)
        return cl_fail(c, 0, "TLS handshake failed: cannot set up the connection");
    cl_enter(c, ST_TLS); /* on failure c is gone; either way stop reading */
    return 1;
}

/* cl_tls_ready - the handshake is done: note the protocol and greet again */
int cl_tls_ready(struct smtp_client *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

    c->res.tls = 1;
    if (ssl)
        snprintf(c->res.tls_desc, sizeof c->res.tls_desc, "%s %s", SSL_get_version(ssl),
                 SSL_get_cipher_name(ssl));
    return cl_send_hello(c);
}

/* cl_body_pump - queue more of the body, up to BODY_HIWAT; after the last
 * byte, the final dot (with a CRLF first if the body lacks one) */
int cl_body_pump(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char buf[BODY_CHUNK];

    while (c->body_left > 0) {
        size_t want = c->body_left < sizeof buf ? (size_t)c->body_left : sizeof buf;
        ssize_t n;

        /* A full output is written now if we write it, else on_write calls again. */
        if (evbuffer_get_length(out) >= BODY_HIWAT && !cl_out_flush(c))
            return 0;
        n = pread(c->req.body_fd, buf, want, c->body_pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* closing without the dot makes the peer drop the message */
            return cl_fail(c, 0, "cannot read message body: %s",
                           n < 0 ? strerror(errno) : "file is shorter than expected");
        if (evbuffer_add(out, buf, (size_t)n) != 0)
            return cl_fail(c, 0, "out of memory sending message body");
        c->tail[0] = n >= 2 ? buf[n - 2] : c->tail[1];
        c->tail[1] = buf[n - 1];
        c->body_pos += n;
        c->body_left -= (uint64_t)n;
    }
    if ((c->tail[0] != '\r' || c->tail[1] != '\n') && evbuffer_add(out, "\r\n", 2) != 0)
        return cl_fail(c, 0, "out of memory sending message body");
    if (evbuffer_add(out, ".\r\n", 3) != 0)
        return cl_fail(c, 0, "out of memory sending message body");
    cl_out_flush(c);
    c->ri = cl_next_rcpt(c, 0, RF_OK);
    return cl_enter(c, ST_DOT);
}

/* cl_body_start - DATA got 354: send the body under the data timeout */
int cl_body_start(struct smtp_client *c)
{
    struct timeval wtv = {c->req.data_timeout, 0};

    c->body_pos = c->req.body_off;
    c->body_left = c->req.body_len;
    c->tail[0] = '\r'; /* an empty body needs no CRLF before the dot */
    c->tail[1] = '\n';
    if (bufferevent_set_timeouts(c->bev, NULL, &wtv) != 0)
        return cl_fail(c, 0, "cannot set the data timeout");
    if (cl_enter(c, ST_BODY) != 0)
        return 1;
    if (c->req.prepend_len &&
        evbuffer_add(bufferevent_get_output(c->bev), c->req.prepend, c->req.prepend_len) != 0)
        return cl_fail(c, 0, "out of memory sending message body");
    return cl_body_pump(c);
}

/* session_save - what the next transaction on this connection must know */
static void session_save(const struct smtp_client *c, struct conncache_session *cs)
{
    memset(cs, 0, sizeof *cs);
    cs->ext = c->ext;
    cs->size_max = c->size_max;
    cs->tls_refused = c->tls_refused;
    cs->tls = c->res.tls;
    memcpy(cs->tls_desc, c->res.tls_desc, sizeof cs->tls_desc);
    memcpy(cs->peer_greeting, c->res.peer_greeting, sizeof cs->peer_greeting);
    cs->uses = c->uses + 1;
}

/* cache_want - the cache key of c's request */
static void cache_want(const struct smtp_client *c, struct conncache_want *w)
{
    w->addr = &c->req.addr;
    w->addrlen = c->req.addrlen;
    w->lmtp = c->req.lmtp;
    w->tls = c->req.tls != NULL;
    w->helo = c->req.helo;
}

/* cl_park - hand the connection to the cache instead of QUIT, if the
 * transaction is over and the connection idle and healthy; 0 when parked
 * (c->bev is gone then), -1 when it must be closed as usual */
int cl_park(struct smtp_client *c)
{
    struct conncache_session cs;
    struct conncache_want w;

    if (!conncache_enabled(c->req.cache) || c->req.probe || c->req.ehlo_only || c->rlines != 0 ||
        (c->req.max_uses && c->uses + 1 >= c->req.max_uses) ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) != 0 ||
        bufferevent_set_timeouts(c->bev, NULL, NULL) != 0)
        return -1;
    session_save(c, &cs);
    cache_want(c, &w);
    if (conncache_park(c->req.cache, &w, c->bev, &cs) != 0)
        return -1;
    c->bev = NULL;
    return 0;
}

/* path_ok - a string we may put in a command line: no control octet
 * (CRLF injection), bounded length */
static int path_ok(const char *s, int nonempty)
{
    size_t n;

    if (s == NULL)
        return 0;
    for (n = 0; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= PATH_MAX_LEN)
            return 0;
    return n > 0 || !nonempty;
}

/* cl_check_envelope - refuse locally what cannot be sent; 1 when at least
 * one recipient is left to send */
int cl_check_envelope(struct smtp_client *c)
{
    size_t nsend = 0;

    if (!path_ok(c->req.helo, 1) || strchr(c->req.helo, ' ') != NULL) {
        cl_fail_all(c, 0, "invalid HELO name in configuration");
        return 0;
    }
    if (!path_ok(c->req.sender, 0)) {
        cl_fail_all(c, 553, "5.1.7 invalid sender address");
        return 0;
    }
    for (size_t i = 0; i < c->req.nrcpt; i++) {
        if (path_ok(c->req.rcpts[i], 1)) {
            c->rflags[i] |= RF_SEND;
            nsend++;
        } else {
            cl_set_rcpt(c, i, 553, "5.1.3 invalid recipient address");
        }
    }
    return nsend > 0;
}

/* connect_failed - fail every recipient with why the connection failed; -1 */
static int connect_failed(struct smtp_client *c, int err)
{
    char addr[128];

    cl_addr_text(&c->req, addr, sizeof addr);
    cl_fail_all(c, 0, "connect to %s: %s", addr, strerror(err));
    return -1;
}

/* cl_start_connect - non-blocking connect; -1 (recipients failed) when it
 * failed at once. Our own connect() keeps its errno; then
 * bufferevent_socket_connect(NULL) waits for the outcome and reports
 * SO_ERROR as errno. */
int cl_start_connect(struct smtp_client *c)
{
    const struct sockaddr *sa = (const struct sockaddr *)&c->req.addr;
    int fd, err;

    if (c->req.addrlen > sizeof c->req.addr)
        return connect_failed(c, EINVAL);
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return connect_failed(c, errno);
    if (connect(fd, sa, c->req.addrlen) != 0 && errno != EINPROGRESS) {
        err = errno;
        close(fd);
        return connect_failed(c, err);
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        return connect_failed(c, ENOMEM);
    }
    if (cl_bev_setup(c, c->bev, 0) == 0 && bufferevent_socket_connect(c->bev, NULL, 0) == 0 &&
        cl_arm(c, ST_CONNECT) == 0)
        return 0;
    bufferevent_free(c->bev); /* closes fd */
    c->bev = NULL;
    return connect_failed(c, ENOMEM);
}

/* session_restore - take over what was learned on a parked connection */
static void session_restore(struct smtp_client *c, const struct conncache_session *cs)
{
    c->ext = cs->ext;
    c->size_max = cs->size_max;
    c->tls_refused = cs->tls_refused;
    c->res.tls = cs->tls;
    memcpy(c->res.tls_desc, cs->tls_desc, sizeof c->res.tls_desc);
    memcpy(c->res.peer_greeting, cs->peer_greeting, sizeof c->res.peer_greeting);
    c->uses = cs->uses;
}

/* session_forget - back to the state of a client that never connected */
static void session_forget(struct smtp_client *c)
{
    c->ext = 0;
    c->size_max = 0;
    c->tls_refused = 0;
    c->res.tls = 0;
    c->res.tls_desc[0] = '\0';
    c->res.peer_greeting[0] = '\0';
    c->uses = 0;
    c->rlines = 0;
    c->reuse_pending = 0;
}

/* cl_reuse_take - adopt a parked connection for c's key, if any; 1 when
 * adopted: the transaction then starts from the loop (ST_REUSE), so that
 * done can never run inside smtp_client_start */
int cl_reuse_take(struct smtp_client *c)
{
    struct conncache_session cs;
    struct conncache_want w;

    if (c->req.cache == NULL || c->req.probe || c->req.ehlo_only)
        return 0;
    cache_want(c, &w);
    if ((c->bev = conncache_take(c->req.cache, &w, &cs)) == NULL)
        return 0;
    session_restore(c, &cs);
    if (cl_bev_setup(c, c->bev, 1) == 0 && cl_enable_io(c) == 0 && cl_arm(c, ST_REUSE) == 0) {
        c->reuse_pending = 1;
        return 1;
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
    session_forget(c);
    return 0;
}

/* cl_reuse_retry - the cached connection died before MAIL FROM got a reply,
 * so nothing was delivered: close it and start over on a fresh connection
 * (a fresh one is never retried). Returns 1: stop reading, c may be gone */
int cl_reuse_retry(struct smtp_client *c)
{
    bufferevent_free(c->bev);
    c->bev = NULL;
    session_forget(c);
    c->pipelining = 0;
    if (cl_start_connect(c) != 0)
        cl_finish(c); /* the recipients carry why the connect failed */
    return 1;
}
