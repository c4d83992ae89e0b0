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
#include "core/clock.h"
#include "core/xmalloc.h"
#include "relay/client_internal.h"

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

static int dispatch(struct smtp_client *c);

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

/* cl_finish - report the result and free the client; c is gone afterwards */
void cl_finish(struct smtp_client *c)
{
    /* defensive: every path gives each recipient a status before this */
    cl_fail_all(c, 0, "delivery attempt ended without a reply");
    c->st = ST_DONE;
    c->req.done(c->req.arg, &c->res);
    client_free(c);
}

/* cl_fail - fail every open recipient and finish; returns 1 (stop) */
__attribute__((format(printf, 3, 4))) int cl_fail(struct smtp_client *c, int code, const char *fmt,
                                                  ...)
{
    va_list ap;

    va_start(ap, fmt);
    cl_vfail_all(c, code, fmt, ap);
    va_end(ap);
    cl_finish(c);
    return 1;
}

/* cl_arm - switch to state st and start the timer that bounds it */
int cl_arm(struct smtp_client *c, enum cstate st)
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

/* cl_enter - arm, failing the delivery if the timer cannot be set; 0 or 1 (stop) */
int cl_enter(struct smtp_client *c, enum cstate st)
{
    if (cl_arm(c, st) != 0)
        return cl_fail(c, 0, "cannot set a timer");
    return 0;
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
        return cl_fail(c, 0, "out of memory sending %s", cl_stage_name(c));
    cl_out_flush(c);
    return cl_enter(c, st);
}

/* quit - all recipients are final: say QUIT and wait briefly for the 221 */
static int quit(struct smtp_client *c)
{
    c->reuse_pending = 0; /* the session ends here: nothing to start over */
    return send_cmd(c, ST_QUIT, "QUIT");
}

/* cl_on_read - parse every complete reply buffered and act on each in turn */
void cl_on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;

    if (c->st == ST_REUSE) { /* unasked, before MAIL: the peer is leaving */
        cl_reuse_retry(c);
        return;
    }
    for (;;) {
        int r = cl_reply_read(c, bufferevent_get_input(bev));
        if (r == 0)
            return;
        if (r < 0) {
            cl_fail(c, 0, "protocol error after %s: %s", cl_stage_name(c), c->perr);
            return;
        }
        if (dispatch(c) != 0)
            return; /* c is freed, or bev was replaced by the TLS one */
    }
}

/* cl_send_hello - EHLO or LHLO; forgets the extensions of a previous one */
int cl_send_hello(struct smtp_client *c)
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
    c->res.ready_at = clock_now_precise();
    if ((c->ext & SMTP_EXT_SIZE) && !c->req.probe)
        snprintf(size, sizeof size, " SIZE=%llu", (unsigned long long)c->req.body_len);
    bad = bad || evbuffer_add_printf(
                     b, "MAIL FROM:<%s>%s%s%s\r\n", c->req.sender, size,
                     c->req.body_8bit && (c->ext & SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "",
                     c->req.smtputf8 ? " SMTPUTF8" : "") < 0;
    c->ri = cl_next_rcpt(c, 0, RF_SEND);
    for (size_t i = c->ri; c->pipelining && !bad && i < c->req.nrcpt;
         i = cl_next_rcpt(c, i + 1, RF_SEND))
        bad = evbuffer_add_printf(b, "RCPT TO:<%s>\r\n", c->req.rcpts[i]) < 0;
    if (c->pipelining && !c->req.probe && !bad)
        bad = evbuffer_add(b, "DATA\r\n", 6) != 0;
    if (!bad)
        bad = bufferevent_write_buffer(c->bev, b) != 0;
    if (b)
        evbuffer_free(b);
    if (bad)
        return cl_fail(c, 0, "out of memory sending MAIL FROM");
    cl_out_flush(c);
    return cl_enter(c, ST_MAIL);
}

/* after_hello - the peer greeted us: STARTTLS, or refuse locally what it
 * cannot take, or start the transaction */
static int after_hello(struct smtp_client *c)
{
    if (c->req.tls && (c->ext & SMTP_EXT_STARTTLS) && !c->res.tls && !c->tls_refused)
        return send_cmd(c, ST_STARTTLS, "STARTTLS");
    if (c->req.tls_required && !c->res.tls) { /* the destination's policy: never in clear */
        cl_fail_all(c, 0, "4.7.4 TLS required but not offered (or refused) by the server");
        return quit(c);
    }
    c->res.ehlo_ok = 1; /* what this next hop takes now, for the next-hop cache */
    c->res.ext = c->ext;
    c->res.size_max = c->size_max;
    if (c->req.ehlo_only) {
        cl_fail_all(c, 0, "capabilities learned");
        return quit(c);
    }
    if (c->req.smtputf8 && !(c->ext & SMTP_EXT_SMTPUTF8)) {
        cl_fail_all(c, 550, "5.6.7 SMTPUTF8 not supported by next hop");
        return quit(c);
    }
    if (c->size_max != 0 && c->req.body_len > c->size_max) {
        cl_fail_all(c, 552, "5.3.4 message too big for next hop");
        return quit(c);
    }
    return send_mail(c);
}

/* on_greeting - a 2xx greeting lets us say EHLO; anything else ends it */
static int on_greeting(struct smtp_client *c)
{
    if (c->rcode / 100 == 2)
        return cl_send_hello(c);
    cl_reply_to_all(c, 0);
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
    cl_reply_to_all(c, 0);
    return quit(c);
}

/* on_starttls - 220 starts TLS; a refusal leaves us in clear (opportunistic) */
static int on_starttls(struct smtp_client *c)
{
    if (c->rcode / 100 == 2)
        return cl_tls_start(c);
    c->tls_refused = 1;
    return after_hello(c);
}

/* on_mail - MAIL reply; when pipelining, the RCPT and DATA replies follow
 * even after a refusal, so they are read (and find no open recipient) */
static int on_mail(struct smtp_client *c)
{
    if (c->rcode / 100 != 2) {
        cl_reply_to_all(c, 0);
        if (!c->pipelining)
            return quit(c);
    }
    if (c->pipelining)
        return cl_enter(c, ST_RCPT);
    return send_cmd(c, ST_RCPT, "RCPT TO:<%s>", c->req.rcpts[c->ri]);
}

/* on_rcpt - RCPT reply for recipient c->ri; a probe takes a 2xx as final
 * and ends with QUIT after the last one */
static int on_rcpt(struct smtp_client *c)
{
    size_t i = c->ri;

    if (!(c->rflags[i] & RF_FINAL)) {
        if (c->rcode / 100 == 2 && c->req.probe) {
            cl_reply_to(c, i, 1);
        } else if (c->rcode / 100 == 2) {
            c->rflags[i] |= RF_OK;
            c->naccepted++;
        } else {
            cl_reply_to(c, i, 0);
        }
    }
    c->ri = cl_next_rcpt(c, i + 1, RF_SEND);
    if (c->ri < c->req.nrcpt)
        return c->pipelining ? cl_enter(c, ST_RCPT)
                             : send_cmd(c, ST_RCPT, "RCPT TO:<%s>", c->req.rcpts[c->ri]);
    if (c->req.probe)
        return quit(c);
    if (c->pipelining)
        return cl_enter(c, ST_DATA);
    if (c->naccepted == 0)
        return quit(c);
    return send_cmd(c, ST_DATA, "DATA");
}

/* on_data - DATA reply: 354 starts the body */
static int on_data(struct smtp_client *c)
{
    if (c->rcode == 354 && c->naccepted > 0)
        return cl_body_start(c);
    if (c->rcode == 354) {
        /* pipelined DATA accepted with no recipient: end it empty (RFC 2920 3.1) */
        if (evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3) != 0)
            return cl_fail(c, 0, "out of memory");
        return quit(c); /* its flush writes the dot too */
    }
    cl_reply_to_all(c, 0);
    return quit(c);
}

/* end_session - the transaction is complete: park the connection for the
 * next delivery, or say QUIT */
static int end_session(struct smtp_client *c)
{
    if (cl_park(c) != 0)
        return quit(c);
    cl_finish(c);
    return 1;
}

/* on_dot - reply to the final dot: SMTP one for all, LMTP one per accepted
 * recipient in RCPT order (RFC 2033 4.2) */
static int on_dot(struct smtp_client *c)
{
    if (!c->req.lmtp) {
        cl_reply_to_all(c, 1);
        return end_session(c);
    }
    cl_reply_to(c, c->ri, 1);
    c->ri = cl_next_rcpt(c, c->ri + 1, RF_OK);
    if (c->ri < c->req.nrcpt)
        return cl_enter(c, ST_DOT);
    return end_session(c);
}

/* on_body_reply - the peer replied before our dot: it gave up; close
 * without the dot */
static int on_body_reply(struct smtp_client *c)
{
    cl_reply_to_all(c, 0);
    cl_finish(c);
    return 1;
}

/* on_quit - the 221 ends the session; other replies are late answers to
 * pipelined commands */
static int on_quit(struct smtp_client *c)
{
    if (c->rcode != 221)
        return 0;
    cl_finish(c);
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
        return cl_fail(c, 0, "protocol error: unexpected reply during %s", cl_stage_name(c));
    if (c->reuse_pending) {
        /* the first reply on a cached connection: a 421 there is the
         * peer's idle timeout, not an answer about this message */
        c->reuse_pending = 0;
        if (c->rcode == 421)
            return cl_reuse_retry(c);
    }
    if (c->rcode == 421 && c->st != ST_QUIT) {
        /* the peer is closing the session (RFC 5321 3.8): it is every
         * open recipient's answer, and nothing more will be read */
        cl_reply_to_all(c, 0);
        cl_finish(c);
        return 1;
    }
    return handler[c->st](c);
}

/* cl_on_write - the output drained: feed more of the body */
void cl_on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;

    if (cl_direct(c) && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE); /* back to out_flush */
    if (c->st == ST_BODY)
        cl_body_pump(c);
}

/* on_connected - TCP (or TLS) connection established */
static void on_connected(struct smtp_client *c, struct bufferevent *bev)
{
    if (c->st == ST_TLS) {
        cl_tls_ready(c);
        return;
    }
    /* reading starts only now, so that no byte is taken before connect */
    if (cl_bev_setup(c, bev, 1) != 0 || cl_enable_io(c) != 0) {
        cl_fail(c, 0, "cannot set up the connection");
        return;
    }
    cl_enter(c, ST_GREETING);
}

/* cl_on_event - connection established, closed, failed or a write timed out */
void cl_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char addr[128], why[256];

    if (what & BEV_EVENT_CONNECTED) {
        on_connected(c, bev);
    } else if (c->reuse_pending && !(what & BEV_EVENT_TIMEOUT)) {
        cl_reuse_retry(c); /* closed or reset while idle: nothing was delivered */
    } else if (c->st == ST_QUIT) {
        cl_finish(c);
    } else if (c->st == ST_CONNECT) {
        cl_addr_text(&c->req, addr, sizeof addr);
        cl_fail(c, 0, "connect to %s: %s", addr, err != 0 ? strerror(err) : "connection failed");
    } else if (c->st == ST_TLS) {
        cl_tls_error(bev, what, err, why, sizeof why);
        cl_fail(c, 0, "TLS handshake failed: %s", why);
    } else if (what & BEV_EVENT_TIMEOUT) {
        cl_fail(c, 0, "timeout sending %s", cl_stage_name(c));
    } else if (c->st == ST_GREETING) {
        cl_fail(c, 0, "lost connection before greeting");
    } else if ((what & BEV_EVENT_ERROR) && err != 0) {
        cl_fail(c, 0, "lost connection after %s: %s", cl_stage_name(c), strerror(err));
    } else {
        cl_fail(c, 0, "lost connection after %s", cl_stage_name(c));
    }
}

/* on_timer - a stage timed out, the QUIT grace ended, or a deferred done */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_client *c = arg;
    char addr[128];

    if (c->st == ST_QUIT || c->st == ST_DONE) {
        cl_finish(c);
    } else if (c->st == ST_REUSE) {
        after_hello(c); /* as if the EHLO had just been answered */
    } else if (c->st == ST_CONNECT) {
        cl_addr_text(&c->req, addr, sizeof addr);
        cl_fail(c, 0, "connect to %s: %s", addr, strerror(ETIMEDOUT));
    } else if (c->st == ST_TLS) {
        cl_fail(c, 0, "TLS handshake failed: timeout");
    } else if (c->st == ST_GREETING) {
        cl_fail(c, 0, "timeout waiting for greeting");
    } else {
        cl_fail(c, 0, "timeout waiting for %s reply", cl_stage_name(c));
    }
}

/* smtp_client_start - see client.h */
struct smtp_client *smtp_client_start(struct event_base *base, const struct smtp_client_req *req)
{
    struct smtp_client *c = xcalloc(1, sizeof *c);
    size_t n = req->nrcpt > 0 ? req->nrcpt : 1;

    c->base = base;
    c->req = *req;
    c->res.nrcpt = req->nrcpt;
    c->res.rcpt = xcalloc(n, sizeof *c->res.rcpt);
    c->rflags = xcalloc(n, 1);
    c->timer = evtimer_new(base, on_timer, c);
    if (c->timer == NULL) {
        client_free(c);
        return NULL;
    }
    if (c->req.connect_timeout <= 0) /* zero would expire at once */
        c->req.connect_timeout = 30;
    if (c->req.command_timeout <= 0)
        c->req.command_timeout = 300;
    if (c->req.data_timeout <= 0)
        c->req.data_timeout = 600;
    if (!cl_check_envelope(c) || (!cl_reuse_take(c) && cl_start_connect(c) != 0)) {
        /* done must come from the loop, never from here */
        if (cl_arm(c, ST_DONE) != 0) {
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
