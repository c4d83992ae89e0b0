/*
 * client.c - asynchronous SMTP/LMTP client: one message to one next hop.
 *
 * One connection walks a small state machine: connect, greeting, EHLO (LHLO
 * for LMTP, HELO after a refused EHLO), optional STARTTLS and a second EHLO,
 * MAIL/RCPT/DATA (in one write when PIPELINING is offered, RFC 2920), the
 * body read from the spool file in bounded chunks, the final dot, QUIT.
 * Every recipient ends with a reply from the peer or with code 0 and the
 * reason no reply was obtained. done runs exactly once, from the loop.
 *
 * Probe mode (recipient verification) is the same walk cut short: after
 * the RCPT replies comes QUIT instead of DATA, and only a RCPT reply
 * speaks for a recipient.
 *
 * With a connection cache (Postfix's connection reuse) a connection whose
 * transaction ended with the whole reply to the final dot is parked
 * instead of QUIT, with the extensions its EHLO announced and its TLS
 * state; the next request for the same key starts at MAIL FROM on it
 * (no RSET: the transaction is over). A parked connection is dropped when
 * the peer closes it or says anything, and gets QUIT after the idle
 * timeout. A reused connection can still turn out dead when we speak:
 * while MAIL FROM has no reply yet nothing was delivered, so the request
 * silently starts over on a fresh connection, once.
 */
#include "relay/client.h"
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

static int dispatch(struct smtp_client *c);
static int reuse_retry(struct smtp_client *c);

/* stage_name - the command whose reply is awaited, for messages */
static const char *stage_name(const struct smtp_client *c)
{
    static const char *const names[] = {
        [ST_CONNECT] = "connect",   [ST_GREETING] = "greeting", [ST_EHLO] = "EHLO",
        [ST_HELO] = "HELO",         [ST_STARTTLS] = "STARTTLS", [ST_TLS] = "TLS handshake",
        [ST_MAIL] = "MAIL FROM",    [ST_RCPT] = "RCPT TO",      [ST_DATA] = "DATA",
        [ST_BODY] = "message body", [ST_DOT] = "end of data",   [ST_QUIT] = "QUIT",
        [ST_DONE] = "end",          [ST_REUSE] = "MAIL FROM",
    };
    if (c->st == ST_EHLO && c->req.lmtp)
        return "LHLO";
    return names[c->st];
}

/* addr_text - the next hop as "ip:port", "[ip6]:port" or a socket path */
static void addr_text(const struct smtp_client_req *r, char *buf, size_t len)
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

/* append_clean - append n peer bytes to the string dst, control and 8-bit
 * bytes replaced by '?' so that logs and DSNs stay printable; truncates */
static void append_clean(char *dst, size_t size, const char *src, size_t n)
{
    size_t len = strlen(dst);

    for (size_t i = 0; i < n && len + 1 < size; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[len++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[len] = '\0';
}

/* set_rcpt - record the final status of recipient i */
static void set_rcpt(struct smtp_client *c, size_t i, int code, const char *text)
{
    c->res.rcpt[i].code = code;
    snprintf(c->res.rcpt[i].text, sizeof c->res.rcpt[i].text, "%s", text);
    c->rflags[i] |= RF_FINAL;
}

/* vfail_all - give every recipient without a final status this one */
static void vfail_all(struct smtp_client *c, int code, const char *fmt, va_list ap)
{
    char text[sizeof c->res.rcpt[0].text];

    if (vsnprintf(text, sizeof text, fmt, ap) < 0)
        snprintf(text, sizeof text, "delivery failed");
    for (size_t i = 0; i < c->req.nrcpt; i++) {
        if (c->rflags[i] & RF_FINAL)
            continue;
        set_rcpt(c, i, code, text);
        /* the whole message went out: without the reply to the final dot
         * nobody knows whether the peer stored it */
        c->res.rcpt[i].maybe_delivered = c->st == ST_DOT && code == 0 && (c->rflags[i] & RF_OK);
    }
}

/* fail_all - vfail_all with variable arguments */
__attribute__((format(printf, 3, 4))) static void fail_all(struct smtp_client *c, int code,
                                                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail_all(c, code, fmt, ap);
    va_end(ap);
}

/* reply_to - give recipient i the current reply; ok says whether a 2xx is
 * a valid final answer at this stage (any other class is a protocol error).
 * A probe asks about recipients: a refused greeting, EHLO or MAIL says
 * nothing about them, so it is no answer (code 0) with the reply as text. */
static void reply_to(struct smtp_client *c, size_t i, int ok)
{
    char text[sizeof c->res.rcpt[0].text];
    int probe_other = c->req.probe && c->st != ST_RCPT;

    if (!probe_other && (c->rcode >= 400 || (ok && c->rcode / 100 == 2))) {
        set_rcpt(c, i, c->rcode, c->rtext);
        return;
    }
    if (snprintf(text, sizeof text,
                 probe_other ? "no RCPT reply: %s got %d %s"
                             : "protocol error: unexpected reply to %s: %d %s",
                 stage_name(c), c->rcode, c->rtext) < 0)
        text[0] = '\0';
    set_rcpt(c, i, 0, text);
}

/* reply_to_all - reply_to for every recipient still without a final status */
static void reply_to_all(struct smtp_client *c, int ok)
{
    for (size_t i = 0; i < c->req.nrcpt; i++)
        if (!(c->rflags[i] & RF_FINAL))
            reply_to(c, i, ok);
}

/* client_free - release everything; closes the connection */
static void client_free(struct smtp_client *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    free(c->res.rcpt);
    free(c->rflags);
    free(c);
}

/* finish - report the result and free the client; c is gone afterwards */
static void finish(struct smtp_client *c)
{
    /* defensive: every path gives each recipient a status before this */
    fail_all(c, 0, "delivery attempt ended without a reply");
    c->st = ST_DONE;
    c->req.done(c->req.arg, &c->res);
    client_free(c);
}

/* fail - fail every open recipient and finish; returns 1 (stop) */
__attribute__((format(printf, 3, 4))) static int fail(struct smtp_client *c, int code,
                                                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail_all(c, code, fmt, ap);
    va_end(ap);
    finish(c);
    return 1;
}

/* arm - switch to state st and start the timer that bounds it */
static int arm(struct smtp_client *c, enum cstate st)
{
    struct timeval tv = {c->req.command_timeout, 0};

    c->st = st;
    if (st == ST_BODY)
        return evtimer_del(c->timer); /* bounded by the write timeout */
    if (st == ST_CONNECT)
        tv.tv_sec = c->req.connect_timeout;
    else if (st == ST_DOT)
        tv.tv_sec = c->req.data_timeout;
    else if (st == ST_QUIT)
        tv.tv_sec = QUIT_WAIT;
    else if (st == ST_DONE || st == ST_REUSE)
        tv.tv_sec = 0; /* deferred done or MAIL FROM: at the next loop iteration */
    return evtimer_add(c->timer, &tv);
}

/* enter - arm, failing the delivery if the timer cannot be set; 0 or 1 (stop) */
static int enter(struct smtp_client *c, enum cstate st)
{
    if (arm(c, st) != 0)
        return fail(c, 0, "cannot set a timer");
    return 0;
}

/*
 * Plaintext connections are written by us: each batch of commands (or of
 * the body) goes out at once, and the write event is armed only for what
 * the kernel does not take. Left to the bufferevent, every command costs two
 * epoll_ctl calls (arm the write event, disarm it after the write). A TLS
 * bufferevent, which encrypts, keeps writing for itself.
 */
static int direct(const struct smtp_client *c)
{
    return bufferevent_openssl_get_ssl(c->bev) == NULL;
}

/* out_flush - write what is queued; 1 when all of it went, 0 when the
 * bufferevent finishes it (short write; an error reaches on_event) */
static int out_flush(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int n;

    if (!direct(c))
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

/* enable_io - reading on; writing left to out_flush on a plaintext connection */
static int enable_io(struct smtp_client *c)
{
    if (direct(c) && bufferevent_disable(c->bev, EV_WRITE) != 0)
        return -1;
    return bufferevent_enable(c->bev, direct(c) ? EV_READ : EV_READ | EV_WRITE);
}

/* send_cmd - send one command line and wait for its reply in state st */
__attribute__((format(printf, 3, 4))) static int send_cmd(struct smtp_client *c, enum cstate st,
                                                          const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    if (r < 0 || evbuffer_add(out, "\r\n", 2) != 0)
        return fail(c, 0, "out of memory sending %s", stage_name(c));
    out_flush(c);
    return enter(c, st);
}

/* quit - all recipients are final: say QUIT and wait briefly for the 221 */
static int quit(struct smtp_client *c)
{
    c->reuse_pending = 0; /* the session ends here: nothing to start over */
    return send_cmd(c, ST_QUIT, "QUIT");
}

/* next_rcpt - the first recipient at or after i carrying flag, or nrcpt */
static size_t next_rcpt(const struct smtp_client *c, size_t i, unsigned flag)
{
    while (i < c->req.nrcpt && !(c->rflags[i] & flag))
        i++;
    return i;
}

/* ext_parse - note one EHLO keyword line (RFC 5321 4.1.1.1) */
static void ext_parse(struct smtp_client *c, const char *t)
{
    static const struct {
        const char *kw;
        unsigned flag;
    } kws[] = {
        {"PIPELINING", SMTP_EXT_PIPELINING}, {"SIZE", SMTP_EXT_SIZE},
        {"8BITMIME", SMTP_EXT_8BITMIME},     {"STARTTLS", SMTP_EXT_STARTTLS},
        {"SMTPUTF8", SMTP_EXT_SMTPUTF8},     {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCED},
    };
    size_t n = strcspn(t, " ");

    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
        if (strlen(kws[i].kw) == n && strncasecmp(t, kws[i].kw, n) == 0)
            c->ext |= kws[i].flag;
    if (n == 4 && strncasecmp(t, "SIZE", 4) == 0 && t[4] == ' ' && t[5] >= '0' && t[5] <= '9') {
        errno = 0;
        c->size_max = strtoull(t + 5, NULL, 10);
        if (errno == ERANGE)
            c->size_max = 0; /* beyond any body we could send */
    }
}

/* reply_line - add one line to the reply being read; 1 when the reply is
 * complete, 0 when more lines follow, -1 (c->perr set) when malformed */
static int reply_line(struct smtp_client *c, const char *line, size_t len)
{
    const char *t = len > 4 ? line + 4 : "";

    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
        c->perr = "malformed reply";
        return -1;
    }
    if (c->rlines == 0) {
        c->rcode = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        c->rtext[0] = '\0';
        if (c->st == ST_GREETING && c->res.peer_greeting[0] == '\0')
            append_clean(c->res.peer_greeting, sizeof c->res.peer_greeting, line, len);
    } else if (c->rtext[0] != '\0') {
        append_clean(c->rtext, sizeof c->rtext, " ", 1);
    }
    if (++c->rlines > REPLY_LINES_MAX) {
        c->perr = "too many reply lines";
        return -1;
    }
    append_clean(c->rtext, sizeof c->rtext, t, len > 4 ? len - 4 : 0);
    if (c->st == ST_EHLO && c->rlines > 1)
        ext_parse(c, t);
    if (len > 3 && line[3] == '-')
        return 0;
    c->rlines = 0;
    return 1;
}

/*
 * reply_read - take lines from the input until a reply is complete; 1
 * then, 0 when no complete line is left, -1 (c->perr set) on bad input.
 * A line longer than REPLY_LINE_MAX is not an error: its first
 * REPLY_LINE_MAX octets are kept (the code and the start of the text) and
 * the rest is dropped as it arrives, so that a peer that stored the
 * message and says so at length is still understood.
 */
static int reply_read(struct smtp_client *c, struct evbuffer *in)
{
    char line[REPLY_LINE_MAX + 1];
    int r = 0;

    while (r == 0) {
        size_t eol = 0, len = evbuffer_get_length(in), take;
        struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
        if (p.pos < 0 && !c->rlong && len <= REPLY_LINE_MAX + 1)
            return 0; /* the +1 is a CR waiting for its LF */
        if (p.pos < 0 || c->rlong || p.pos > REPLY_LINE_MAX) {
            if (!c->rlong) { /* keep the start of the long line */
                int n = evbuffer_remove(in, c->rline, REPLY_LINE_MAX);
                if (n < 0) {
                    c->perr = "cannot read reply";
                    return -1;
                }
                c->rlong = 1;
                c->rlong_len = (size_t)n;
                continue;
            }
            if (p.pos < 0) { /* drop all but a CR that may start the CRLF */
                take = len > 0 && evbuffer_pullup(in, len)[len - 1] == '\r' ? len - 1 : len;
                evbuffer_drain(in, take);
                return 0;
            }
            evbuffer_drain(in, (size_t)p.pos + eol);
            c->rlong = 0;
            memcpy(line, c->rline, c->rlong_len);
            p.pos = (ev_ssize_t)c->rlong_len;
        } else if (evbuffer_remove(in, line, (size_t)p.pos) != p.pos ||
                   evbuffer_drain(in, eol) != 0) {
            c->perr = "cannot read reply";
            return -1;
        }
        line[p.pos] = '\0';
        r = reply_line(c, line, (size_t)p.pos);
    }
    return r;
}

/* on_read - parse every complete reply buffered and act on each in turn */
static void on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;

    if (c->st == ST_REUSE) { /* unasked, before MAIL: the peer is leaving */
        reuse_retry(c);
        return;
    }
    for (;;) {
        int r = reply_read(c, bufferevent_get_input(bev));
        if (r == 0)
            return;
        if (r < 0) {
            fail(c, 0, "protocol error after %s: %s", stage_name(c), c->perr);
            return;
        }
        if (dispatch(c) != 0)
            return; /* c is freed, or bev was replaced by the TLS one */
    }
}

/* send_hello - EHLO or LHLO; forgets the extensions of a previous one */
static int send_hello(struct smtp_client *c)
{
    c->ext = 0;
    c->size_max = 0;
    return send_cmd(c, ST_EHLO, "%s %s", c->req.lmtp ? "LHLO" : "EHLO", c->req.helo);
}

/* send_mail - MAIL FROM, plus every RCPT and DATA when pipelining, in one write */
static int send_mail(struct smtp_client *c)
{
    struct evbuffer *b = evbuffer_new();
    char size[32] = "";
    int bad = b == NULL;

    c->pipelining = (c->ext & SMTP_EXT_PIPELINING) != 0;
    if ((c->ext & SMTP_EXT_SIZE) && !c->req.probe)
        snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)c->req.body_len);
    bad = bad || evbuffer_add_printf(
                     b, "MAIL FROM:<%s>%s%s%s\r\n", c->req.sender, size,
                     c->req.body_8bit && (c->ext & SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "",
                     c->req.smtputf8 ? " SMTPUTF8" : "") < 0;
    c->ri = next_rcpt(c, 0, RF_SEND);
    for (size_t i = c->ri; c->pipelining && !bad && i < c->req.nrcpt;
         i = next_rcpt(c, i + 1, RF_SEND))
        bad = evbuffer_add_printf(b, "RCPT TO:<%s>\r\n", c->req.rcpts[i]) < 0;
    if (c->pipelining && !c->req.probe && !bad)
        bad = evbuffer_add(b, "DATA\r\n", 6) != 0;
    if (!bad)
        bad = bufferevent_write_buffer(c->bev, b) != 0;
    if (b)
        evbuffer_free(b);
    if (bad)
        return fail(c, 0, "out of memory sending MAIL FROM");
    out_flush(c);
    return enter(c, ST_MAIL);
}

/* after_hello - the peer greeted us: STARTTLS, or refuse locally what it
 * cannot take, or start the transaction */
static int after_hello(struct smtp_client *c)
{
    if (c->req.tls && (c->ext & SMTP_EXT_STARTTLS) && !c->res.tls && !c->tls_refused)
        return send_cmd(c, ST_STARTTLS, "STARTTLS");
    c->res.ehlo_ok = 1; /* what this next hop takes now, for the next-hop cache */
    c->res.ext = c->ext;
    c->res.size_max = c->size_max;
    if (c->req.ehlo_only) {
        fail_all(c, 0, "capabilities learned");
        return quit(c);
    }
    if (c->req.smtputf8 && !(c->ext & SMTP_EXT_SMTPUTF8)) {
        fail_all(c, 550, "5.6.7 SMTPUTF8 not supported by next hop");
        return quit(c);
    }
    if (c->size_max != 0 && c->req.body_len > c->size_max) {
        fail_all(c, 552, "5.3.4 message too big for next hop");
        return quit(c);
    }
    return send_mail(c);
}

/* tls_error - why the TLS handshake failed */
static void tls_error(struct bufferevent *bev, short what, int err, char *buf, size_t len)
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

static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* bev_setup - callbacks, input bound and write timeout of a new bufferevent */
static int bev_setup(struct smtp_client *c, struct bufferevent *bev, int timeouts)
{
    struct timeval wtv = {c->req.command_timeout, 0};

    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(bev, EV_READ, 0, INPUT_HIWAT);
    return timeouts ? bufferevent_set_timeouts(bev, NULL, &wtv) : 0;
}

/* tls_start - the peer said 220 to STARTTLS: hand the socket to a TLS
 * bufferevent; returns 1 because the old input must not be read further */
static int tls_start(struct smtp_client *c)
{
    SSL *ssl = SSL_new(c->req.tls);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct bufferevent *tb;

    if (ssl == NULL)
        return fail(c, 0, "TLS handshake failed: cannot create a TLS session");
    /* Whatever the peer sent after the 220 dies with the plaintext
     * bufferevent (CVE-2011-0411); the socket now belongs to the TLS one. */
    bufferevent_setfd(c->bev, -1);
    bufferevent_free(c->bev);
    c->bev = NULL;
    tb = bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                        BEV_OPT_CLOSE_ON_FREE);
    if (tb == NULL) {
        close(fd); /* libevent freed the SSL but does not own the fd on failure */
        return fail(c, 0, "TLS handshake failed: cannot create a TLS bufferevent");
    }
    c->bev = tb;
    bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
    if (bev_setup(c, tb, 1) != 0 || bufferevent_enable(tb, EV_READ | EV_WRITE) != 0)
        return fail(c, 0, "TLS handshake failed: cannot set up the connection");
    enter(c, ST_TLS); /* on failure c is gone; either way stop reading */
    return 1;
}

/* tls_ready - the handshake is done: note the protocol and greet again */
static int tls_ready(struct smtp_client *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

    c->res.tls = 1;
    if (ssl)
        snprintf(c->res.tls_desc, sizeof c->res.tls_desc, "%s %s", SSL_get_version(ssl),
                 SSL_get_cipher_name(ssl));
    return send_hello(c);
}

/* body_pump - queue more of the body, up to BODY_HIWAT; after the last
 * byte, the final dot (with a CRLF first if the body lacks one) */
static int body_pump(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char buf[BODY_CHUNK];

    while (c->body_left > 0) {
        size_t want = c->body_left < sizeof buf ? (size_t)c->body_left : sizeof buf;
        ssize_t n;

        /* A full output is written now if we write it, else on_write calls again. */
        if (evbuffer_get_length(out) >= BODY_HIWAT && !out_flush(c))
            return 0;
        n = pread(c->req.body_fd, buf, want, c->body_pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* closing without the dot makes the peer drop the message */
            return fail(c, 0, "cannot read message body: %s",
                        n < 0 ? strerror(errno) : "file is shorter than expected");
        if (evbuffer_add(out, buf, (size_t)n) != 0)
            return fail(c, 0, "out of memory sending message body");
        c->tail[0] = n >= 2 ? buf[n - 2] : c->tail[1];
        c->tail[1] = buf[n - 1];
        c->body_pos += n;
        c->body_left -= (uint64_t)n;
    }
    if ((c->tail[0] != '\r' || c->tail[1] != '\n') && evbuffer_add(out, "\r\n", 2) != 0)
        return fail(c, 0, "out of memory sending message body");
    if (evbuffer_add(out, ".\r\n", 3) != 0)
        return fail(c, 0, "out of memory sending message body");
    out_flush(c);
    c->ri = next_rcpt(c, 0, RF_OK);
    return enter(c, ST_DOT);
}

/* body_start - DATA got 354: send the body under the data timeout */
static int body_start(struct smtp_client *c)
{
    struct timeval wtv = {c->req.data_timeout, 0};

    c->body_pos = c->req.body_off;
    c->body_left = c->req.body_len;
    c->tail[0] = '\r'; /* an empty body needs no CRLF before the dot */
    c->tail[1] = '\n';
    if (bufferevent_set_timeouts(c->bev, NULL, &wtv) != 0)
        return fail(c, 0, "cannot set the data timeout");
    if (enter(c, ST_BODY) != 0)
        return 1;
    return body_pump(c);
}

/* on_greeting - a 2xx greeting lets us say EHLO; anything else ends it */
static int on_greeting(struct smtp_client *c)
{
    if (c->rcode / 100 == 2)
        return send_hello(c);
    reply_to_all(c, 0);
    return quit(c);
}

/* on_ehlo - EHLO/LHLO/HELO reply; a 5xx to EHLO gets HELO (RFC 5321 3.2) */
static int on_ehlo(struct smtp_client *c)
{
    if (c->rcode / 100 == 2)
        return after_hello(c);
    c->ext = 0; /* keywords in a refusal mean nothing */
    c->size_max = 0;
    if (c->st == ST_EHLO && !c->req.lmtp && c->rcode / 100 == 5)
        return send_cmd(c, ST_HELO, "HELO %s", c->req.helo);
    reply_to_all(c, 0);
    return quit(c);
}

/* on_starttls - 220 starts TLS; a refusal leaves us in clear (opportunistic) */
static int on_starttls(struct smtp_client *c)
{
    if (c->rcode / 100 == 2)
        return tls_start(c);
    c->tls_refused = 1;
    return after_hello(c);
}

/* on_mail - MAIL reply; when pipelining, the RCPT and DATA replies follow
 * even after a refusal, so they are read (and find no open recipient) */
static int on_mail(struct smtp_client *c)
{
    if (c->rcode / 100 != 2) {
        reply_to_all(c, 0);
        if (!c->pipelining)
            return quit(c);
    }
    if (c->pipelining)
        return enter(c, ST_RCPT);
    return send_cmd(c, ST_RCPT, "RCPT TO:<%s>", c->req.rcpts[c->ri]);
}

/* on_rcpt - RCPT reply for recipient c->ri; a probe takes a 2xx as final
 * and ends with QUIT after the last one */
static int on_rcpt(struct smtp_client *c)
{
    size_t i = c->ri;

    if (!(c->rflags[i] & RF_FINAL)) {
        if (c->rcode / 100 == 2 && c->req.probe) {
            reply_to(c, i, 1);
        } else if (c->rcode / 100 == 2) {
            c->rflags[i] |= RF_OK;
            c->naccepted++;
        } else {
            reply_to(c, i, 0);
        }
    }
    c->ri = next_rcpt(c, i + 1, RF_SEND);
    if (c->ri < c->req.nrcpt)
        return c->pipelining ? enter(c, ST_RCPT)
                             : send_cmd(c, ST_RCPT, "RCPT TO:<%s>", c->req.rcpts[c->ri]);
    if (c->req.probe)
        return quit(c);
    if (c->pipelining)
        return enter(c, ST_DATA);
    if (c->naccepted == 0)
        return quit(c);
    return send_cmd(c, ST_DATA, "DATA");
}

/* on_data - DATA reply: 354 starts the body */
static int on_data(struct smtp_client *c)
{
    if (c->rcode == 354 && c->naccepted > 0)
        return body_start(c);
    if (c->rcode == 354) {
        /* pipelined DATA accepted with no recipient: end it empty (RFC 2920 3.1) */
        if (evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3) != 0)
            return fail(c, 0, "out of memory");
        return quit(c); /* its flush writes the dot too */
    }
    reply_to_all(c, 0);
    return quit(c);
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

/* park - hand the connection to the cache instead of QUIT, if the
 * transaction is over and the connection idle and healthy; 0 when parked
 * (c->bev is gone then), -1 when it must be closed as usual */
static int park(struct smtp_client *c)
{
    struct conncache_session cs;
    struct conncache_want w;

    if (!conncache_enabled(c->req.cache) || c->req.probe || c->req.ehlo_only || c->rlines != 0 ||
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

/* end_session - the transaction is complete: park the connection for the
 * next delivery, or say QUIT */
static int end_session(struct smtp_client *c)
{
    if (park(c) != 0)
        return quit(c);
    finish(c);
    return 1;
}

/* on_dot - reply to the final dot: SMTP one for all, LMTP one per accepted
 * recipient in RCPT order (RFC 2033 4.2) */
static int on_dot(struct smtp_client *c)
{
    if (!c->req.lmtp) {
        reply_to_all(c, 1);
        return end_session(c);
    }
    reply_to(c, c->ri, 1);
    c->ri = next_rcpt(c, c->ri + 1, RF_OK);
    if (c->ri < c->req.nrcpt)
        return enter(c, ST_DOT);
    return end_session(c);
}

/* on_body_reply - the peer replied before our dot: it gave up; close
 * without the dot */
static int on_body_reply(struct smtp_client *c)
{
    reply_to_all(c, 0);
    finish(c);
    return 1;
}

/* on_quit - the 221 ends the session; other replies are late answers to
 * pipelined commands */
static int on_quit(struct smtp_client *c)
{
    if (c->rcode != 221)
        return 0;
    finish(c);
    return 1;
}

/* dispatch - act on a complete reply in the current state; 1 to stop reading */
static int dispatch(struct smtp_client *c)
{
    static int (*const handler[])(struct smtp_client *) = {
        [ST_GREETING] = on_greeting, [ST_EHLO] = on_ehlo,       [ST_HELO] = on_ehlo,
        [ST_STARTTLS] = on_starttls, [ST_MAIL] = on_mail,       [ST_RCPT] = on_rcpt,
        [ST_DATA] = on_data,         [ST_BODY] = on_body_reply, [ST_DOT] = on_dot,
        [ST_QUIT] = on_quit,         [ST_DONE] = NULL,
    };

    if (handler[c->st] == NULL) /* no reply can be awaited then */
        return fail(c, 0, "protocol error: unexpected reply during %s", stage_name(c));
    if (c->reuse_pending) {
        /* the first reply on a cached connection: a 421 there is the
         * peer's idle timeout, not an answer about this message */
        c->reuse_pending = 0;
        if (c->rcode == 421)
            return reuse_retry(c);
    }
    if (c->rcode == 421 && c->st != ST_QUIT) {
        /* the peer is closing the session (RFC 5321 3.8): it is every
         * open recipient's answer, and nothing more will be read */
        reply_to_all(c, 0);
        finish(c);
        return 1;
    }
    return handler[c->st](c);
}

/* on_write - the output drained: feed more of the body */
static void on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;

    if (direct(c) && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE); /* back to out_flush */
    if (c->st == ST_BODY)
        body_pump(c);
}

/* on_connected - TCP (or TLS) connection established */
static void on_connected(struct smtp_client *c, struct bufferevent *bev)
{
    if (c->st == ST_TLS) {
        tls_ready(c);
        return;
    }
    /* reading starts only now, so that no byte is taken before connect */
    if (bev_setup(c, bev, 1) != 0 || enable_io(c) != 0) {
        fail(c, 0, "cannot set up the connection");
        return;
    }
    enter(c, ST_GREETING);
}

/* on_event - connection established, closed, failed or a write timed out */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char addr[128], why[256];

    if (what & BEV_EVENT_CONNECTED) {
        on_connected(c, bev);
    } else if (c->reuse_pending && !(what & BEV_EVENT_TIMEOUT)) {
        reuse_retry(c); /* closed or reset while idle: nothing was delivered */
    } else if (c->st == ST_QUIT) {
        finish(c);
    } else if (c->st == ST_CONNECT) {
        addr_text(&c->req, addr, sizeof addr);
        fail(c, 0, "connect to %s: %s", addr, err != 0 ? strerror(err) : "connection failed");
    } else if (c->st == ST_TLS) {
        tls_error(bev, what, err, why, sizeof why);
        fail(c, 0, "TLS handshake failed: %s", why);
    } else if (what & BEV_EVENT_TIMEOUT) {
        fail(c, 0, "timeout sending %s", stage_name(c));
    } else if (c->st == ST_GREETING) {
        fail(c, 0, "lost connection before greeting");
    } else if ((what & BEV_EVENT_ERROR) && err != 0) {
        fail(c, 0, "lost connection after %s: %s", stage_name(c), strerror(err));
    } else {
        fail(c, 0, "lost connection after %s", stage_name(c));
    }
}

/* on_timer - a stage timed out, the QUIT grace ended, or a deferred done */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_client *c = arg;
    char addr[128];

    if (c->st == ST_QUIT || c->st == ST_DONE) {
        finish(c);
    } else if (c->st == ST_REUSE) {
        after_hello(c); /* as if the EHLO had just been answered */
    } else if (c->st == ST_CONNECT) {
        addr_text(&c->req, addr, sizeof addr);
        fail(c, 0, "connect to %s: %s", addr, strerror(ETIMEDOUT));
    } else if (c->st == ST_TLS) {
        fail(c, 0, "TLS handshake failed: timeout");
    } else if (c->st == ST_GREETING) {
        fail(c, 0, "timeout waiting for greeting");
    } else {
        fail(c, 0, "timeout waiting for %s reply", stage_name(c));
    }
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

/* check_envelope - refuse locally what cannot be sent; 1 when at least
 * one recipient is left to send */
static int check_envelope(struct smtp_client *c)
{
    size_t nsend = 0;

    if (!path_ok(c->req.helo, 1) || strchr(c->req.helo, ' ') != NULL) {
        fail_all(c, 0, "invalid HELO name in configuration");
        return 0;
    }
    if (!path_ok(c->req.sender, 0)) {
        fail_all(c, 553, "5.1.7 invalid sender address");
        return 0;
    }
    for (size_t i = 0; i < c->req.nrcpt; i++) {
        if (path_ok(c->req.rcpts[i], 1)) {
            c->rflags[i] |= RF_SEND;
            nsend++;
        } else {
            set_rcpt(c, i, 553, "5.1.3 invalid recipient address");
        }
    }
    return nsend > 0;
}

/* connect_failed - fail every recipient with why the connection failed; -1 */
static int connect_failed(struct smtp_client *c, int err)
{
    char addr[128];

    addr_text(&c->req, addr, sizeof addr);
    fail_all(c, 0, "connect to %s: %s", addr, strerror(err));
    return -1;
}

/* start_connect - non-blocking connect; -1 (recipients failed) when it
 * failed at once. Our own connect() keeps its errno; then
 * bufferevent_socket_connect(NULL) waits for the outcome and reports
 * SO_ERROR as errno. */
static int start_connect(struct smtp_client *c)
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
    if (bev_setup(c, c->bev, 0) == 0 && bufferevent_socket_connect(c->bev, NULL, 0) == 0 &&
        arm(c, ST_CONNECT) == 0)
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
    c->rlines = 0;
    c->reuse_pending = 0;
}

/* reuse_take - adopt a parked connection for c's key, if any; 1 when
 * adopted: the transaction then starts from the loop (ST_REUSE), so that
 * done can never run inside smtp_client_start */
static int reuse_take(struct smtp_client *c)
{
    struct conncache_session cs;
    struct conncache_want w;

    if (c->req.cache == NULL || c->req.probe || c->req.ehlo_only)
        return 0;
    cache_want(c, &w);
    if ((c->bev = conncache_take(c->req.cache, &w, &cs)) == NULL)
        return 0;
    session_restore(c, &cs);
    if (bev_setup(c, c->bev, 1) == 0 && enable_io(c) == 0 && arm(c, ST_REUSE) == 0) {
        c->reuse_pending = 1;
        return 1;
    }
    bufferevent_free(c->bev);
    c->bev = NULL;
    session_forget(c);
    return 0;
}

/* reuse_retry - the cached connection died before MAIL FROM got a reply,
 * so nothing was delivered: close it and start over on a fresh connection
 * (a fresh one is never retried). Returns 1: stop reading, c may be gone */
static int reuse_retry(struct smtp_client *c)
{
    bufferevent_free(c->bev);
    c->bev = NULL;
    session_forget(c);
    c->pipelining = 0;
    if (start_connect(c) != 0)
        finish(c); /* the recipients carry why the connect failed */
    return 1;
}

/* smtp_client_start - see client.h */
struct smtp_client *smtp_client_start(struct event_base *base, const struct smtp_client_req *req)
{
    struct smtp_client *c = calloc(1, sizeof *c);
    size_t n = req->nrcpt > 0 ? req->nrcpt : 1;

    if (c == NULL)
        return NULL;
    c->base = base;
    c->req = *req;
    c->res.nrcpt = req->nrcpt;
    c->res.rcpt = calloc(n, sizeof *c->res.rcpt);
    c->rflags = calloc(n, 1);
    c->timer = evtimer_new(base, on_timer, c);
    if (c->res.rcpt == NULL || c->rflags == NULL || c->timer == NULL) {
        client_free(c);
        return NULL;
    }
    if (c->req.connect_timeout <= 0) /* zero would expire at once */
        c->req.connect_timeout = 30;
    if (c->req.command_timeout <= 0)
        c->req.command_timeout = 300;
    if (c->req.data_timeout <= 0)
        c->req.data_timeout = 600;
    if (!check_envelope(c) || (!reuse_take(c) && start_connect(c) != 0)) {
        /* done must come from the loop, never from here */
        if (arm(c, ST_DONE) != 0) {
            client_free(c);
            return NULL;
        }
    }
    return c;
}

/* smtp_client_cancel - see client.h */
void smtp_client_cancel(struct smtp_client *c)
{
    if (c != NULL)
        client_free(c);
}
