/* ts_smtp.c - a line-by-line fake SMTP/LMTP server for the client-side tests */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_smtp.h"

struct evconnlistener *ts_listen(struct event_base *base, evconnlistener_cb cb, void *arg,
                                 struct sockaddr_storage *addr, socklen_t *addrlen)
{
    struct evconnlistener *lis;

    if (addr->ss_family != AF_UNIX) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        memset(addr, 0, sizeof(*addr));
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *addrlen = sizeof(*in);
    }
    lis = evconnlistener_new_bind(base, cb, arg, LEV_OPT_CLOSE_ON_FREE, 16, (struct sockaddr *)addr,
                                  (int)*addrlen);
    assert_non_null(lis);
    /* port 0 asked the kernel for a free one: read back which */
    if (addr->ss_family != AF_UNIX)
        assert_int_equal(getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)addr, addrlen),
                         0);
    return lis;
}

/* conn_free - close one server side connection */
static void conn_free(struct ts_smtp_conn *c)
{
    struct ts_smtp_conn **p = &c->s->conns;

    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
    bufferevent_free(c->bev);
    free(c);
}

/* conn_read - the test's reply to every complete line */
static void conn_read(struct bufferevent *bev, void *arg)
{
    struct ts_smtp_conn *c = arg;
    char *line;

    while (!c->hangup && (line = evbuffer_readln(bufferevent_get_input(bev), NULL, c->s->eol))) {
        const char *reply = c->s->answer(c, line);
        if (reply)
            bufferevent_write(bev, reply, strlen(reply));
        free(line);
    }
    if (c->hangup)
        bufferevent_disable(bev, EV_READ);
}

/* conn_write - a hangup waits for its reply to leave */
static void conn_write(struct bufferevent *bev, void *arg)
{
    struct ts_smtp_conn *c = arg;

    if (c->hangup)
        conn_free(c);
}

/* conn_event - the client went away */
static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

/* on_accept - greet, unless silent (then the connection hangs until ts_smtp_stop) */
static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct ts_smtp *s = arg;
    struct ts_smtp_conn *c;
    char greeting[32];

    if (s->max_conns > 0)
        assert_true(s->nconn < s->max_conns);
    s->nconn++;
    if (s->silent) {
        if (s->nheld < TS_SMTP_HELD)
            s->held[s->nheld++] = fd;
        else
            close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->s = s;
    c->id = s->nconn;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(c->bev);
    c->next = s->conns;
    s->conns = c;
    bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!s->greeting)
        snprintf(greeting, sizeof(greeting), "220 conn %d\r\n", c->id);
    bufferevent_write(c->bev, s->greeting ? s->greeting : greeting,
                      strlen(s->greeting ? s->greeting : greeting));
}

void ts_smtp_start(struct ts_smtp *s, struct event_base *base, ts_smtp_answer_fn answer, void *arg)
{
    memset(s, 0, sizeof(*s));
    s->base = base;
    s->answer = answer;
    s->arg = arg;
    s->eol = EVBUFFER_EOL_CRLF;
    s->lis = ts_listen(base, on_accept, s, &s->addr, &s->addrlen);
    s->port = ntohs(((struct sockaddr_in *)&s->addr)->sin_port);
}

void ts_smtp_stop(struct ts_smtp *s)
{
    if (s->lis)
        evconnlistener_free(s->lis);
    s->lis = NULL;
    while (s->conns)
        conn_free(s->conns);
    while (s->nheld > 0)
        close(s->held[--s->nheld]);
}
