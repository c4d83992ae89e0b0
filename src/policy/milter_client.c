/* milter_client.c - one milter connection on libevent bufferevents */
#include "policy/milter_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define CLOSE_GRACE 2 /* seconds a closing connection may take to send its QUIT */

struct milter_conn {
    struct bufferevent *bev;
    struct event *timer;
    const struct milter_conf *mc;
    milter_client_fn fn;
    void *arg;
    int waiting;
    int dead;
    int in_cb;   /* a callback is on the stack: closing is deferred to its return */
    int closing; /* milter_client_close was called */
    int refused; /* the connect failed at once: the timer reports it from the loop */
};

const char *milter_client_errname(int err)
{
    static const char *const names[] = {"none", "connect", "timeout", "closed", "protocol"};

    return err >= 0 && err <= MILTER_ERR_PROTOCOL ? names[err] : "?";
}

static void conn_free(struct milter_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->timer);
    free(c);
}

/* conn_arm - the connection or the awaited answer has timeout seconds */
static void conn_arm(struct milter_conn *c)
{
    struct timeval tv = {.tv_sec = c->mc->timeout};

    event_add(c->timer, &tv);
}

/* conn_fail - the connection is dead: tell the owner once */
static void conn_fail(struct milter_conn *c, int err, const char *why)
{
    if (c->dead)
        return;
    c->dead = 1;
    event_del(c->timer);
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    c->in_cb = 1;
    c->fn(c->arg, NULL, err, why);
    c->in_cb = 0;
}

/* conn_packet - one complete reply: decode it and hand it over; 0, or -1 to stop reading */
static int conn_packet(struct milter_conn *c, const unsigned char *p, size_t len)
{
    struct milter_reply r;
    const char *why;

    memset(&r, 0, sizeof(r));
    if (milter_proto_parse(p, len, &r, &why) < 0) {
        milter_reply_clear(&r);
        conn_fail(c, MILTER_ERR_PROTOCOL, why);
        return -1;
    }
    if (!c->waiting) { /* an answer nobody asked for */
        milter_reply_clear(&r);
        conn_fail(c, MILTER_ERR_PROTOCOL, "unexpected-reply");
        return -1;
    }
    conn_arm(c); /* each packet (progress too) renews the wait */
    c->in_cb = 1;
    c->fn(c->arg, &r, 0, NULL);
    c->in_cb = 0;
    milter_reply_clear(&r);
    return c->closing || c->dead ? -1 : 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    struct milter_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int one = 1;

    /* a milter answers the end of message in several packets, which its Nagle
     * holds back until our ACK: acknowledge at once rather than after 40 ms */
    if (c->mc->addr.ss_family != AF_UNIX)
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));

    while (!c->dead && !c->closing) {
        unsigned char hdr[4];
        size_t avail = evbuffer_get_length(in);
        long n;

        if (avail < 4)
            break;
        evbuffer_copyout(in, hdr, 4);
        n = milter_proto_frame(hdr, avail);
        if (n < 0) {
            conn_fail(c, MILTER_ERR_PROTOCOL, "packet-length");
            break;
        }
        if (avail < (size_t)n + 4)
            break;
        unsigned char *p = evbuffer_pullup(in, n + 4);
        int rc = conn_packet(c, p + 4, (size_t)n);
        if (c->closing)
            break;
        evbuffer_drain(in, (size_t)n + 4);
        if (rc < 0)
            break;
    }
    if (c->closing)
        conn_free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct milter_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        /* small packets, each answered: Nagle would hold one back for an ACK */
        if (c->mc->addr.ss_family != AF_UNIX)
            setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!c->waiting && !c->closing)
            event_del(c->timer);
        return;
    }
    conn_fail(c, (what & BEV_EVENT_EOF) ? MILTER_ERR_CLOSED : MILTER_ERR_CONNECT,
              (what & BEV_EVENT_EOF) ? "eof" : "socket-error");
    if (c->closing)
        conn_free(c);
}

static void conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct milter_conn *c = arg;

    (void)fd, (void)what;
    if (c->closing) { /* the QUIT did not go out in time: let go anyway */
        conn_free(c);
        return;
    }
    if (c->refused)
        conn_fail(c, MILTER_ERR_CONNECT, "connect-refused");
    else
        conn_fail(c, MILTER_ERR_TIMEOUT, "no-answer");
    if (c->closing)
        conn_free(c);
}

struct milter_conn *milter_client_open(struct event_base *base, const struct milter_conf *mc,
                                       milter_client_fn fn, void *arg)
{
    struct milter_conn *c = xcalloc(1, sizeof(*c));

    c->mc = mc;
    c->fn = fn;
    c->arg = arg;
    c->timer = evtimer_new(base, conn_timeout, c);
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->timer || !c->bev) {
        conn_free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_arm(c);
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&mc->addr, (int)mc->addrlen) <
        0) {
        /* refused at once (a missing UNIX socket): the owner hears it from the loop */
        struct timeval now = {0, 0};
        event_add(c->timer, &now);
        c->refused = 1;
    }
    return c;
}

void milter_client_send(struct milter_conn *c, const struct milter_pkt *k)
{
    if (!c->dead)
        bufferevent_write(c->bev, k->p, k->len);
}

void milter_client_wait(struct milter_conn *c, int on)
{
    c->waiting = on;
    if (c->dead || c->refused)
        return;
    if (on)
        conn_arm(c);
    else
        event_del(c->timer);
}

static void conn_quit_sent(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_free(arg);
}

void milter_client_close(struct milter_conn *c)
{
    struct milter_pkt k = {0};
    struct timeval tv = {.tv_sec = CLOSE_GRACE};

    if (!c)
        return;
    c->closing = 1;
    if (c->in_cb)
        return; /* freed when the callback returns */
    if (c->dead) {
        conn_free(c);
        return;
    }
    c->dead = 1;
    milter_proto_simple(&k, SMFIC_QUIT, NULL);
    bufferevent_write(c->bev, k.p, k.len);
    milter_proto_free(&k);
    bufferevent_setcb(c->bev, NULL, conn_quit_sent, conn_event, c);
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_enable(c->bev, EV_WRITE);
    event_add(c->timer, &tv);
}
