/*
 * clamd_conn.c - one INSTREAM scan on the event loop. The connection opens
 * when the message starts, so the text streams to clamd while the client
 * sends it; the end of DATA sends the last chunk and the terminator and waits
 * for the one reply line. A failure at any point (refused, reset, timed out,
 * an over-long or unparsable reply) is remembered and reported once, so the
 * check decides by its on_error and the session never waits on a dead socket.
 */
#include "policy/clamd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

struct clamd_conn {
    struct bufferevent *bev; /* NULL once failed or answered */
    struct event *later;     /* delivers a result decided inside finish */
    unsigned timeout;
    int failed;
    int finished; /* the terminator went out: waiting for the reply */
    int answered; /* done was called */
    enum clamd_result result;
    char text[CLAMD_REPLY_MAX];
    clamd_done_fn done;
    void *arg;
    size_t npending;
    char pending[CLAMD_CHUNK];
};

/* conn_report - give the result to the waiting check, once */
static void conn_report(struct clamd_conn *c)
{
    if (c->answered || !c->done)
        return;
    c->answered = 1;
    c->done(c->arg, c->result, c->text);
}

/* conn_fail - stop talking; the result is an error with why */
static void conn_fail(struct clamd_conn *c, const char *why)
{
    if (c->failed || c->answered)
        return;
    c->failed = 1;
    c->result = CLAMD_ERROR;
    snprintf(c->text, sizeof(c->text), "%s", why);
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    conn_report(c); /* only once finished: done is set then */
}

/* conn_read - the reply is one NUL-terminated line */
static void conn_read(struct bufferevent *bev, void *arg)
{
    struct clamd_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr nul = evbuffer_search(in, "", 1, NULL);
    char line[CLAMD_REPLY_MAX];
    size_t n;

    if (nul.pos < 0) {
        if (evbuffer_get_length(in) >= sizeof(line))
            conn_fail(c, "reply too long");
        return;
    }
    if ((size_t)nul.pos >= sizeof(line)) {
        conn_fail(c, "reply too long");
        return;
    }
    n = (size_t)nul.pos;
    evbuffer_remove(in, line, n);
    c->result = clamd_reply_parse(line, n, c->text, sizeof(c->text));
    bufferevent_free(c->bev);
    c->bev = NULL;
    conn_report(c);
}

/* conn_event - connected, or the connection failed, closed or timed out */
static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct clamd_conn *c = arg;
    char why[96];

    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof(why), "timeout after %us", c->timeout);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof(why), "connection closed by clamd");
    else
        snprintf(why, sizeof(why), "%s",
                 strerror(EVUTIL_SOCKET_ERROR() ? EVUTIL_SOCKET_ERROR() : EIO));
    conn_fail(c, why);
}

/* conn_later - a result known inside finish is delivered from the loop */
static void conn_later(evutil_socket_t fd, short what, void *arg)
{
    conn_report(arg);
}

struct clamd_conn *clamd_conn_open(struct event_base *base, const struct sockaddr_storage *sa,
                                   socklen_t salen, unsigned timeout)
{
    struct clamd_conn *c = xcalloc(1, sizeof(*c));
    struct timeval tv = {(time_t)timeout, 0};

    c->timeout = timeout;
    c->later = event_new(base, -1, 0, conn_later, c);
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->later || !c->bev) {
        conn_fail(c, "out of memory");
        return c;
    }
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    /* writes time out while the text streams (a clamd that stopped reading);
     * the read timeout starts with the wait for the reply */
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)sa, (int)salen) < 0) {
        conn_fail(c, strerror(errno ? errno : ECONNREFUSED));
        return c;
    }
    bufferevent_write(c->bev, "zINSTREAM", 10); /* with its NUL */
    return c;
}

/* conn_chunk - the pending octets as one chunk */
static void conn_chunk(struct clamd_conn *c)
{
    uint32_t len = htonl((uint32_t)c->npending);

    if (!c->npending || !c->bev)
        return;
    bufferevent_write(c->bev, &len, sizeof(len));
    bufferevent_write(c->bev, c->pending, c->npending);
    c->npending = 0;
}

void clamd_conn_write(struct clamd_conn *c, const char *data, size_t len)
{
    while (len > 0 && !c->failed) {
        size_t n = sizeof(c->pending) - c->npending;
        if (n > len)
            n = len;
        memcpy(c->pending + c->npending, data, n);
        c->npending += n;
        data += n;
        len -= n;
        if (c->npending == sizeof(c->pending))
            conn_chunk(c);
    }
}

void clamd_conn_finish(struct clamd_conn *c, clamd_done_fn done, void *arg)
{
    struct timeval tv = {(time_t)c->timeout, 0};
    uint32_t zero = 0;

    c->done = done;
    c->arg = arg;
    c->finished = 1;
    if (c->failed || !c->bev) {
        if (c->later)
            event_active(c->later, 0, 0);
        return;
    }
    conn_chunk(c);
    bufferevent_write(c->bev, &zero, sizeof(zero));
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ);
}

void clamd_conn_free(struct clamd_conn *c)
{
    if (!c)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->later)
        event_free(c->later);
    free(c);
}
