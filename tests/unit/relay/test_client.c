/* test_client.c - unit tests for the SMTP/LMTP client against a scripted
 * fake server running on the same event loop (TCP, UNIX socket, real TLS) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "relay/client.h"
#include "relay/conncache.h"
#include "ts_fs.h"
#include "ts_smtp.h"

/* One step of the fake server's script: when the input holds exactly
 * `expect` (NULL: on accept), send `reply` (NULL: nothing). The script of
 * the n-th connection starts at the n-th step whose expect is NULL. */
#define STEP_TLS 1    /* after the reply, start TLS as the server */
#define STEP_CLOSE 2  /* after the reply is flushed, close */
#define STEP_PREFIX 4 /* expect is only a prefix: take whatever arrived */

struct step {
    const char *expect;
    const char *reply;
    int flags;
};

struct fake {
    struct event_base *base;
    struct evconnlistener *lis;
    struct bufferevent *bev;
    const struct step *steps;
    size_t nsteps, k;
    int closing, eof, nconn;
    char err[512];
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct outcome {
    struct event_base *base;
    int calls;
    struct smtp_client_result res;
    struct smtp_client_rcpt rcpt[4];
};

static struct event_base *base;
static SSL_CTX *server_tls, *client_tls;
static char tmpdir[64];

/* fake_close - drop the server side of the connection */
static void fake_close(struct fake *f)
{
    if (f->bev)
        bufferevent_free(f->bev);
    f->bev = NULL;
    f->closing = 0;
}

/* fake_error - remember the first script violation and hang up */
static void fake_error(struct fake *f, const char *what, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in) < 60 ? evbuffer_get_length(in) : 60;
    const char *p = n ? (const char *)evbuffer_pullup(in, (ev_ssize_t)n) : "";

    if (f->err[0] == '\0')
        snprintf(f->err, sizeof f->err, "step %zu: %s: got \"%.*s\"", f->k, what, (int)n, p);
    fake_close(f);
}

static void fake_read(struct bufferevent *bev, void *arg);
static void fake_write(struct bufferevent *bev, void *arg);
static void fake_event(struct bufferevent *bev, short what, void *arg);

/* fake_starttls - wrap the connection in a server-side TLS filter */
static void fake_starttls(struct fake *f)
{
    SSL *ssl = SSL_new(server_tls);
    struct bufferevent *tb = NULL;

    if (ssl)
        tb = bufferevent_openssl_filter_new(f->base, f->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (tb == NULL) {
        snprintf(f->err, sizeof f->err, "cannot start server TLS");
        return;
    }
    bufferevent_setcb(tb, fake_read, fake_write, fake_event, f);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
    f->bev = tb;
}

/* fake_reply - play the reply part of a step */
static void fake_reply(struct fake *f, const struct step *st)
{
    if (st->reply)
        bufferevent_write(f->bev, st->reply, strlen(st->reply));
    if (st->flags & STEP_TLS)
        fake_starttls(f);
    if ((st->flags & STEP_CLOSE) && st->reply)
        f->closing = 1; /* fake_write closes once flushed */
    else if (st->flags & STEP_CLOSE)
        fake_close(f);
}

/* fake_read - match the client's bytes against the script, step by step */
static void fake_read(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (f->bev == bev && evbuffer_get_length(in) > 0) {
        size_t have = evbuffer_get_length(in), elen, n;
        const struct step *st;

        if (f->k >= f->nsteps) {
            fake_error(f, "data after the end of the script", in);
            return;
        }
        st = &f->steps[f->k];
        if (st->expect == NULL) {
            fake_error(f, "data after the end of this connection's script", in);
            return;
        }
        elen = strlen(st->expect);
        n = have < elen ? have : elen;
        if (memcmp(evbuffer_pullup(in, (ev_ssize_t)n), st->expect, n) != 0) {
            fake_error(f, "unexpected client data", in);
            return;
        }
        if (have < elen)
            return;
        evbuffer_drain(in, (st->flags & STEP_PREFIX) ? have : elen);
        if (evbuffer_get_length(in) > 0) { /* lock-step: nothing before our reply */
            fake_error(f, "client did not wait for the reply", in);
            return;
        }
        f->k++;
        fake_reply(f, st);
    }
}

/* fake_write - close after a final reply has been flushed */
static void fake_write(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;

    if (f->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        fake_close(f);
}

/* fake_event - the client hung up */
static void fake_event(struct bufferevent *bev, short what, void *arg)
{
    struct fake *f = arg;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        f->eof++;
        fake_close(f);
    }
}

/* conn_script - where the script of connection n (from 1) starts: at the
 * n-th accept step, or at the beginning when there are fewer */
static size_t conn_script(const struct fake *f, int n)
{
    for (size_t i = 0; i < f->nsteps; i++)
        if (f->steps[i].expect == NULL && --n == 0)
            return i;
    return 0;
}

/* fake_accept - a client connected: greet it if the script says so */
static void fake_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                        int len, void *arg)
{
    struct fake *f = arg;

    f->nconn++;
    fake_close(f);
    f->k = conn_script(f, f->nconn);
    f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (f->bev == NULL) {
        close(fd);
        return;
    }
    bufferevent_setcb(f->bev, fake_read, fake_write, fake_event, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
    if (f->k < f->nsteps && f->steps[f->k].expect == NULL) {
        f->k++;
        fake_reply(f, &f->steps[f->k - 1]);
    }
}

/* fake_start - listen on 127.0.0.1 (an ephemeral port) or on a UNIX socket */
static void fake_start(struct fake *f, const struct step *steps, size_t n, const char *path)
{
    memset(f, 0, sizeof *f);
    f->base = base;
    f->steps = steps;
    f->nsteps = n;
    if (path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&f->addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
        f->addrlen = sizeof *un;
        unlink(path);
    }
    f->lis = ts_listen(base, fake_accept, f, &f->addr, &f->addrlen);
}

/* fake_stop - close the listener and any connection left */
static void fake_stop(struct fake *f)
{
    fake_close(f);
    if (f->lis)
        evconnlistener_free(f->lis);
    if (f->addr.ss_family == AF_UNIX)
        unlink(((struct sockaddr_un *)&f->addr)->sun_path);
}

/* fake_done_conns - assert that the whole script was played without a
 * violation over exactly nconn connections */
static void fake_done_conns(const struct fake *f, int nconn)
{
    assert_string_equal(f->err, "");
    assert_int_equal(f->k, f->nsteps);
    assert_int_equal(f->nconn, nconn);
}

/* fake_done - the whole script over one connection */
static void fake_done(const struct fake *f)
{
    fake_done_conns(f, 1);
}

/* body_file - an unlinked temporary file holding prefix then body */
static int body_file(const char *prefix, const char *body, size_t len)
{
    char path[128];
    int fd;

    snprintf(path, sizeof path, "%s/bodyXXXXXX", tmpdir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, prefix, strlen(prefix)), (ssize_t)strlen(prefix));
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, body + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    return fd;
}

/* with_dot - the body followed by the final dot line, as the server must see it */
static char *with_dot(const char *body)
{
    size_t n = strlen(body);
    char *s = malloc(n + 4);

    assert_non_null(s);
    memcpy(s, body, n);
    memcpy(s + n, ".\r\n", 4);
    return s;
}

/* req_init - a request for f with the given recipients and body */
static void req_init(struct smtp_client_req *r, const struct fake *f, const char *const *rcpts,
                     size_t n, int fd, const char *prefix, const char *body)
{
    memset(r, 0, sizeof *r);
    memcpy(&r->addr, &f->addr, sizeof r->addr);
    r->addrlen = f->addrlen;
    r->helo = "client.test";
    r->sender = "s@a.test";
    r->rcpts = rcpts;
    r->nrcpt = n;
    r->body_fd = fd;
    r->body_off = (off_t)strlen(prefix);
    r->body_len = strlen(body);
    r->connect_timeout = 5;
    r->command_timeout = 5;
    r->data_timeout = 5;
}

/* on_done - record the result and stop the loop */
static void on_done(void *arg, const struct smtp_client_result *res)
{
    struct outcome *o = arg;
    size_t n = res->nrcpt < 4 ? res->nrcpt : 4;

    o->calls++;
    o->res = *res;
    memcpy(o->rcpt, res->rcpt, n * sizeof *res->rcpt);
    o->res.rcpt = o->rcpt;
    event_base_loopexit(o->base, NULL);
}

/* run - deliver with req and run the loop until done (10 s at most) */
static void run(struct smtp_client_req *req, struct outcome *o)
{
    struct timeval limit = {10, 0};

    memset(o, 0, sizeof *o);
    o->base = base;
    req->done = on_done;
    req->arg = o;
    assert_non_null(smtp_client_start(base, req));
    assert_int_equal(o->calls, 0); /* never from inside start */
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    assert_int_equal(o->calls, 1);
}

/* spin - run the loop for ms milliseconds */
static void spin(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* assert_rcpt - recipient i ended with code and text */
static void assert_rcpt(const struct outcome *o, size_t i, int code, const char *text)
{
    assert_int_equal(o->rcpt[i].code, code);
    assert_string_equal(o->rcpt[i].text, text);
}

/* assert_prefix - s starts with prefix */
static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

static const char *const two[] = {"r1@b.test", "r2@b.test"};
static const char body1[] = "Subject: test\r\n\r\nline 1\r\n..leading dot\r\n..\r\n...\r\nlast\r\n";

/* test_pipelining - multi-line greeting and EHLO; MAIL, RCPTs and DATA in
 * one write before any reply; SIZE/BODY/SMTPUTF8 parameters; body intact */
static void test_pipelining(void **state)
{
    char mail[256], *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220-mx.test ESMTP\r\n220-second line\r\n220 ready\r\n", 0},
        {"EHLO client.test\r\n",
         "250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
         "250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n",
         0},
        {mail, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n", 0},
        {dot, "250-2.0.0 queued\r\n250 as ABC123\r\n", 0},
        {"QUIT\r\n", "221 2.0.0 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("JUNK", body1, strlen(body1));

    snprintf(mail, sizeof mail,
             "MAIL FROM:<s@a.test> SIZE=%zu BODY=8BITMIME SMTPUTF8\r\n"
             "RCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
             strlen(body1));
    fake_start(&f, s, 5, NULL);
    req_init(&r, &f, two, 2, fd, "JUNK", body1);
    r.body_8bit = 1;
    r.smtputf8 = 1;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 250, "2.0.0 queued as ABC123");
    assert_rcpt(&o, 1, 250, "2.0.0 queued as ABC123");
    assert_string_equal(o.res.peer_greeting, "220-mx.test ESMTP");
    assert_int_equal(o.res.tls, 0);
    assert_string_equal(o.res.tls_desc, "");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* big_body - a body of about n bytes of CRLF lines, some dot-stuffed */
static char *big_body(size_t n)
{
    char *b = malloc(n + 64);
    size_t len = 0;

    assert_non_null(b);
    for (unsigned i = 0; len < n; i++)
        len +=
            (size_t)sprintf(b + len, i % 7 == 0 ? "..line %u\r\n" : "line %u of the body\r\n", i);
    return b;
}

/* test_no_pipelining - lock-step commands (the server checks that nothing
 * arrives before its reply), no parameters not offered, a body of
 * several hundred KiB read from an offset */
static void test_no_pipelining(void **state)
{
    char *body = big_body(300000), *dot = with_dot(body);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 HELP\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r2@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, "250 queued\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("0123456789", body, strlen(body));

    fake_start(&f, s, 8, NULL);
    req_init(&r, &f, two, 2, fd, "0123456789", body);
    r.body_8bit = 1; /* 8BITMIME not offered: no BODY= */
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 250, "queued");
    assert_rcpt(&o, 1, 250, "queued");
    assert_string_equal(o.res.peer_greeting, "220 mx.test");
    fake_stop(&f);
    close(fd);
    free(body);
    free(dot);
}

/* test_rcpt_partial - one RCPT refused, one accepted, one refused locally
 * (CRLF injection): the message goes to the accepted one only */
static void test_rcpt_partial(void **state)
{
    static const char *const rc[] = {"r1@b.test", "r2@b.test", "x@b.test>\r\nRSET"};
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n550-5.1.1 unknown\r\n550 5.1.1 user\r\n250 ok\r\n354 go\r\n", 0},
        {dot, "250 2.0.0 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 5, NULL);
    req_init(&r, &f, rc, 3, fd, "", body1);
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 550, "5.1.1 unknown 5.1.1 user");
    assert_rcpt(&o, 1, 250, "2.0.0 ok");
    assert_rcpt(&o, 2, 553, "5.1.3 invalid recipient address");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_mail_451 - MAIL refused, pipelined (the 503s that follow are read
 * and ignored) and in lock-step: every recipient gets the MAIL reply */
static void test_mail_451(void **state)
{
    struct step sp[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "451 4.3.0 try later\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no RCPT\r\n",
         0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct step sl[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250 mx.test\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "451 4.3.0 try later\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    const struct step *scripts[] = {sp, sl};
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    for (int i = 0; i < 2; i++) {
        fake_start(&f, scripts[i], 4, NULL);
        req_init(&r, &f, two, 2, -1, "", "");
        run(&r, &o);
        fake_done(&f);
        assert_rcpt(&o, 0, 451, "4.3.0 try later");
        assert_rcpt(&o, 1, 451, "4.3.0 try later");
        fake_stop(&f);
    }
}

/* test_421 - a 421 to a RCPT ends the session: every open recipient gets
 * it and no QUIT follows (the server checks nothing more arrives) */
static void test_421(void **state)
{
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250 mx.test\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "421 4.3.2 shutting down\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s, 4, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    run(&r, &o);
    spin(50);
    fake_done(&f);
    assert_int_equal(f.eof, 1);
    assert_rcpt(&o, 0, 421, "4.3.2 shutting down");
    assert_rcpt(&o, 1, 421, "4.3.2 shutting down");
    fake_stop(&f);
}

/* test_no_rcpt_accepted - pipelined, every RCPT refused, DATA 554: no body */
static void test_no_rcpt_accepted(void **state)
{
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n550 5.1.1 no\r\n450 4.2.1 later\r\n554 5.5.1 no valid recipients\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s, 4, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 550, "5.1.1 no");
    assert_rcpt(&o, 1, 450, "4.2.1 later");
    fake_stop(&f);
}

/* test_dot_552 - the reply to the final dot applies to every recipient */
static void test_dot_552(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {dot, "552 5.3.4 message too big\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 5, NULL);
    req_init(&r, &f, two, 2, fd, "", body1);
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 552, "5.3.4 message too big");
    assert_rcpt(&o, 1, 552, "5.3.4 message too big");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_lmtp_unix - LHLO over a UNIX socket; after the dot one reply per
 * accepted recipient, in RCPT order, skipping the one refused at RCPT */
static void test_lmtp_unix(void **state)
{
    static const char *const rc[] = {"r1@b.test", "r2@b.test", "r3@b.test"};
    char path[128], *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 lmtp.test LMTP\r\n", 0},
        {"LHLO client.test\r\n", "250-lmtp.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
         0},
        {"MAIL FROM:<>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nRCPT TO:<r3@b.test>\r\n"
         "DATA\r\n",
         "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n", 0},
        {dot, "250 2.0.0 r1 delivered\r\n452 4.2.2 r3 mailbox full\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    snprintf(path, sizeof path, "%s/lmtp.sock", tmpdir);
    fake_start(&f, s, 5, path);
    req_init(&r, &f, rc, 3, fd, "", body1);
    r.lmtp = 1;
    r.sender = "";
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 250, "2.0.0 r1 delivered");
    assert_rcpt(&o, 1, 550, "5.1.1 no such user");
    assert_rcpt(&o, 2, 452, "4.2.2 r3 mailbox full");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_helo_fallback - EHLO refused with 502: HELO, then lock-step */
static void test_helo_fallback(void **state)
{
    static const char *const one[] = {"r1@b.test"};
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 old.test\r\n", 0},
        {"EHLO client.test\r\n", "502-5.5.2 what?\r\n502 PIPELINING\r\n", 0},
        {"HELO client.test\r\n", "250 old.test\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, "250 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 8, NULL);
    req_init(&r, &f, one, 1, fd, "", body1);
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 250, "ok");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_greeting_refused - a 554 greeting is every recipient's answer */
static void test_greeting_refused(void **state)
{
    struct step s[] = {
        {NULL, "554-5.7.1 go away\r\n554 5.7.1 really\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s, 2, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 554, "5.7.1 go away 5.7.1 really");
    assert_rcpt(&o, 1, 554, "5.7.1 go away 5.7.1 really");
    assert_string_equal(o.res.peer_greeting, "554-5.7.1 go away");
    fake_stop(&f);
}

/* test_body_edges - an empty body and one not ending in CRLF */
static void test_body_edges(void **state)
{
    static const char *const one[] = {"r1@b.test"};
    static const char *const bodies[] = {"", "no final newline"};
    static const char *const dots[] = {".\r\n", "no final newline\r\n.\r\n"};
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    for (int i = 0; i < 2; i++) {
        struct step s[] = {
            {NULL, "220 mx.test\r\n", 0},
            {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
            {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n",
             "250 ok\r\n250 ok\r\n354 go\r\n", 0},
            {dots[i], "250 ok\r\n", 0},
            {"QUIT\r\n", "221 bye\r\n", 0},
        };
        int fd = body_file("x", bodies[i], strlen(bodies[i]));
        fake_start(&f, s, 5, NULL);
        req_init(&r, &f, one, 1, fd, "x", bodies[i]);
        run(&r, &o);
        fake_done(&f);
        assert_rcpt(&o, 0, 250, "ok");
        fake_stop(&f);
        close(fd);
    }
}

/* test_body_short - the body file ends before body_len: no dot is sent
 * (the peer must drop the message) and the attempt fails temporarily */
static void test_body_short(void **state)
{
    static const char *const one[] = {"r1@b.test"};
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n354 go\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 3, NULL);
    req_init(&r, &f, one, 1, fd, "", body1);
    r.body_len += 100000;
    run(&r, &o);
    assert_rcpt(&o, 0, 0, "cannot read message body: file is shorter than expected");
    spin(50);
    fake_done(&f); /* nothing after the 354: the server saw the hang-up only */
    assert_int_equal(f.eof, 1);
    fake_stop(&f);
    close(fd);
}

/* test_refused - nothing listens: TCP refused, UNIX path missing; done
 * comes from the loop, not from start */
static void test_refused(void **state)
{
    struct sockaddr_in *in;
    struct smtp_client_req r;
    struct outcome o;
    struct fake f;
    char want[256];

    fake_start(&f, NULL, 0, NULL); /* only to get a free port, closed again */
    fake_stop(&f);
    in = (struct sockaddr_in *)&f.addr;
    req_init(&r, &f, two, 2, -1, "", "");
    run(&r, &o);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%u: Connection refused",
             (unsigned)ntohs(in->sin_port));
    assert_rcpt(&o, 0, 0, want);
    assert_rcpt(&o, 1, 0, want);

    memset(&r.addr, 0, sizeof r.addr);
    r.addr.ss_family = AF_UNIX;
    snprintf(((struct sockaddr_un *)&r.addr)->sun_path, 100, "%s/nothing.sock", tmpdir);
    r.addrlen = sizeof(struct sockaddr_un);
    run(&r, &o);
    snprintf(want, sizeof want, "connect to %s/nothing.sock: No such file or directory", tmpdir);
    assert_rcpt(&o, 0, 0, want);
}

/* test_timeouts - no greeting within command_timeout; no reply to the dot
 * within data_timeout */
static void test_timeouts(void **state)
{
    char *dot = with_dot(body1);
    struct step s1[] = {{NULL, NULL, 0}};
    struct step s2[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n", 0},
        {dot, NULL, 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s1, 1, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    r.command_timeout = 1;
    run(&r, &o);
    assert_rcpt(&o, 0, 0, "timeout waiting for greeting");
    assert_rcpt(&o, 1, 0, "timeout waiting for greeting");
    fake_stop(&f);

    fake_start(&f, s2, 4, NULL);
    req_init(&r, &f, two, 2, fd, "", body1);
    r.data_timeout = 1;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 0, "timeout waiting for end of data reply");
    assert_rcpt(&o, 1, 550, "no");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_protocol_errors - over-long line, too many lines, garbage, and a
 * peer that hangs up: code 0 with the reason */
static void test_protocol_errors(void **state)
{
    char many[101 * 8 + 16];
    struct step cases[][3] = {
        {{NULL, many, 0}},
        {{NULL, "hello there\r\n", 0}},
        {{NULL, "220 mx.test\r\n", 0},
         {"EHLO client.test\r\n", "250 mx.test\r\n", 0},
         {"MAIL FROM:<s@a.test>\r\n", NULL, STEP_CLOSE}},
    };
    static const char *const want[] = {
        "protocol error after greeting: too many reply lines",
        "protocol error after greeting: malformed reply",
        "lost connection after MAIL FROM",
    };
    static const size_t nsteps[] = {1, 1, 3};
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    many[0] = '\0';
    for (int i = 0; i < 101; i++)
        strcat(many, "220-xx\r\n");
    strcat(many, "220 xx\r\n");
    for (int i = 0; i < 3; i++) {
        fake_start(&f, cases[i], nsteps[i], NULL);
        req_init(&r, &f, two, 2, -1, "", "");
        run(&r, &o);
        assert_rcpt(&o, 0, 0, want[i]);
        assert_rcpt(&o, 1, 0, want[i]);
        fake_stop(&f);
    }
}

/* long_reply - "<code><sep>" then n 'x' and CRLF, malloc'd */
static char *long_reply(const char *start, size_t n, const char *rest)
{
    size_t a = strlen(start), b = strlen(rest);
    char *s = malloc(a + n + 2 + b + 1);

    assert_non_null(s);
    memcpy(s, start, a);
    memset(s + a, 'x', n);
    memcpy(s + a + n, "\r\n", 2);
    memcpy(s + a + n + 2, rest, b + 1);
    return s;
}

/* test_long_replies - reply lines far over 2048 octets (a greeting line,
 * an EHLO keyword line and the reply to the final dot) are understood:
 * the code and the start of the text are kept, the excess dropped. A
 * peer that stored the message and says so at length gets it once. */
static void test_long_replies(void **state)
{
    char *greet = long_reply("220-", 3000, "220 ready\r\n"), *dot = with_dot(body1);
    char *ehlo = long_reply("250-mx.test ", 2500, "250-PIPELINING\r\n250 SIZE 5000\r\n");
    char *stored = long_reply("250 2.0.0 stored ", 5000, ""), mail[256];
    struct step s[] = {
        {NULL, greet, 0},
        {"EHLO client.test\r\n", ehlo, 0},
        {mail, "250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {dot, stored, 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    snprintf(mail, sizeof mail, "MAIL FROM:<s@a.test> SIZE=%zu\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n",
             strlen(body1));
    fake_start(&f, s, 5, NULL);
    req_init(&r, &f, two, 1, fd, "", body1);
    run(&r, &o);
    fake_done(&f);
    assert_int_equal(o.rcpt[0].code, 250);
    assert_prefix(o.rcpt[0].text, "2.0.0 stored xxxx");
    assert_int_equal(o.rcpt[0].maybe_delivered, 0);
    assert_int_equal(o.res.ehlo_ok, 1);
    assert_int_equal(o.res.ext, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE);
    assert_int_equal(o.res.size_max, 5000);
    fake_stop(&f);
    close(fd);
    free(greet);
    free(ehlo);
    free(stored);
    free(dot);
}

/* test_dot_reply_lost - the message went out whole, then the connection
 * died before the reply: "maybe delivered", never a plain failure */
static void test_dot_reply_lost(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250 mx.test\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, NULL, STEP_CLOSE},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 6, NULL);
    req_init(&r, &f, two, 1, fd, "", body1);
    run(&r, &o);
    assert_int_equal(o.rcpt[0].code, 0);
    assert_int_equal(o.rcpt[0].maybe_delivered, 1);
    assert_prefix(o.rcpt[0].text, "lost connection after end of data");
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_ehlo_only - the capability probe: EHLO, QUIT, nothing else */
static void test_ehlo_only(void **state)
{
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s, 3, NULL);
    req_init(&r, &f, two, 1, -1, "", "");
    r.ehlo_only = 1;
    run(&r, &o);
    fake_done(&f);
    assert_int_equal(o.res.ehlo_ok, 1);
    assert_int_equal(o.res.ext, SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8);
    assert_int_equal(o.res.size_max, 0);
    fake_stop(&f);
}

/* test_starttls - STARTTLS with a real handshake; plaintext injected after
 * the 220 is discarded; EHLO again; a large body through TLS */
static void test_starttls(void **state)
{
    char *body = big_body(200000), *dot = with_dot(body);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250-STARTTLS\r\n250 SIZE 10\r\n", 0},
        {"STARTTLS\r\n", "220 2.0.0 ready\r\n250 injected\r\n", STEP_TLS},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {dot, "250 2.0.0 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body, strlen(body));

    fake_start(&f, s, 7, NULL);
    req_init(&r, &f, two, 2, fd, "", body);
    r.tls = client_tls;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 250, "2.0.0 ok"); /* SIZE 10 from before TLS was forgotten */
    assert_rcpt(&o, 1, 250, "2.0.0 ok");
    assert_int_equal(o.res.tls, 1);
    assert_prefix(o.res.tls_desc, "TLSv1.3 TLS_");
    fake_stop(&f);
    close(fd);
    free(body);
    free(dot);
}

/* test_starttls_failures - a handshake that fails is a temporary failure
 * of the attempt; a refused STARTTLS leaves the session in clear */
static void test_starttls_failures(void **state)
{
    static const char *const one[] = {"r1@b.test"};
    char *dot = with_dot(body1);
    struct step bad[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 STARTTLS\r\n", 0},
        {"STARTTLS\r\n", "220 ready\r\n", 0},
        {"\x16\x03", "this is not TLS\r\n", STEP_PREFIX | STEP_CLOSE}, /* a ClientHello */
    };
    struct step refused[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 STARTTLS\r\n", 0},
        {"STARTTLS\r\n", "454 4.7.0 TLS not available\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, "250 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, bad, 4, NULL);
    req_init(&r, &f, one, 1, -1, "", "");
    r.tls = client_tls;
    run(&r, &o);
    assert_int_equal(o.rcpt[0].code, 0);
    assert_prefix(o.rcpt[0].text, "TLS handshake failed: ");
    fake_stop(&f);

    fake_start(&f, refused, 8, NULL);
    req_init(&r, &f, one, 1, fd, "", body1);
    r.tls = client_tls;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 250, "ok");
    assert_int_equal(o.res.tls, 0);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_refused_locally - SMTPUTF8 needed but not offered; SIZE exceeded */
static void test_refused_locally(void **state)
{
    struct step s1[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct step s2[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250-SMTPUTF8\r\n250 SIZE 100\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s1, 3, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    r.smtputf8 = 1;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 550, "5.6.7 SMTPUTF8 not supported by next hop");
    assert_rcpt(&o, 1, 550, "5.6.7 SMTPUTF8 not supported by next hop");
    fake_stop(&f);

    fake_start(&f, s2, 3, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    r.smtputf8 = 1;
    r.body_len = 101;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 552, "5.3.4 message too big for next hop");
    assert_rcpt(&o, 1, 552, "5.3.4 message too big for next hop");
    fake_stop(&f);
}

/* test_cancel - cancel mid-session and before a deferred done: done never
 * runs, the connection is closed, nothing leaks (ASan) */
static void test_cancel(void **state)
{
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250 mx.test\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", NULL, 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o = {.base = base};
    struct smtp_client *c;

    fake_start(&f, s, 3, NULL);
    req_init(&r, &f, two, 2, -1, "", "");
    r.done = on_done;
    r.arg = &o;
    c = smtp_client_start(base, &r);
    assert_non_null(c);
    spin(300);
    assert_int_equal(f.k, 3); /* the client waits for the MAIL reply */
    smtp_client_cancel(c);
    spin(100);
    assert_int_equal(o.calls, 0);
    assert_int_equal(f.eof, 1);
    fake_stop(&f);

    memset(&r.addr, 0, sizeof r.addr);
    r.addr.ss_family = AF_UNIX;
    snprintf(((struct sockaddr_un *)&r.addr)->sun_path, 100, "%s/nothing.sock", tmpdir);
    r.addrlen = sizeof(struct sockaddr_un);
    c = smtp_client_start(base, &r);
    assert_non_null(c);
    smtp_client_cancel(c);
    spin(50);
    assert_int_equal(o.calls, 0);
}

/* probe_init - a probe request from the null sender: no body at all */
static void probe_init(struct smtp_client_req *r, const struct fake *f, const char *const *rcpts,
                       size_t n)
{
    req_init(r, f, rcpts, n, -1, "", "");
    r->sender = "";
    r->probe = 1;
}

/* test_probe_pipelining - probe mode: MAIL FROM:<> and the RCPTs in one
 * write, no SIZE (offered) and no DATA; each recipient gets its RCPT reply,
 * 2xx included; then QUIT */
static void test_probe_pipelining(void **state)
{
    static const char *const three[] = {"r1@b.test", "r2@b.test", "r3@b.test"};
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 0},
        {"MAIL FROM:<>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nRCPT TO:<r3@b.test>\r\n",
         "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n450 4.2.1 try later\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s, 4, NULL);
    probe_init(&r, &f, three, 3);
    run(&r, &o);
    fake_done(&f);
    assert_int_equal(o.res.nrcpt, 3);
    assert_rcpt(&o, 0, 250, "2.1.5 ok");
    assert_rcpt(&o, 1, 550, "5.1.1 no such user");
    assert_rcpt(&o, 2, 450, "4.2.1 try later");
    fake_stop(&f);
}

/* test_probe_lockstep - probe mode without PIPELINING, over LMTP: one
 * command at a time, QUIT right after the last RCPT reply */
static void test_probe_lockstep(void **state)
{
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"LHLO client.test\r\n", "250 mx.test\r\n", 0},
        {"MAIL FROM:<>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "550 5.1.1 unknown\r\n", 0},
        {"RCPT TO:<r2@b.test>\r\n", "251 2.1.5 will forward\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, s, 6, NULL);
    probe_init(&r, &f, two, 2);
    r.lmtp = 1;
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 550, "5.1.1 unknown");
    assert_rcpt(&o, 1, 251, "2.1.5 will forward");
    fake_stop(&f);
}

/* test_probe_no_answer - a probe whose MAIL, greeting or connection fails
 * learns nothing about the recipients: code 0 (never the 5xx of MAIL,
 * which would call a good recipient unknown), with the reason as text */
static void test_probe_no_answer(void **state)
{
    struct step sm[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\n",
         "550 5.7.1 null sender refused\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct step sg[] = {
        {NULL, "554 5.3.2 go away\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;

    fake_start(&f, sm, 4, NULL);
    probe_init(&r, &f, two, 2);
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 0, "no RCPT reply: MAIL FROM got 550 5.7.1 null sender refused");
    assert_rcpt(&o, 1, 0, "no RCPT reply: MAIL FROM got 550 5.7.1 null sender refused");
    fake_stop(&f);

    fake_start(&f, sg, 2, NULL);
    probe_init(&r, &f, two, 1);
    run(&r, &o);
    fake_done(&f);
    assert_rcpt(&o, 0, 0, "no RCPT reply: greeting got 554 5.3.2 go away");
    fake_stop(&f);

    fake_start(&f, sg, 2, NULL);
    fake_stop(&f); /* nobody listens there any more */
    probe_init(&r, &f, two, 1);
    run(&r, &o);
    assert_int_equal(o.rcpt[0].code, 0);
    assert_prefix(o.rcpt[0].text, "connect to 127.0.0.1:");
}

/* The connection cache. A pipelined one-recipient transaction of body1
 * and what the server sees of it. */
#define EHLO_PIPE "250-mx.test\r\n250 PIPELINING\r\n"
#define TXN1 "MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n"
#define TXN1_OK "250 ok\r\n250 ok\r\n354 go\r\n"

static const char *const r1only[] = {"r1@b.test"};

/* deliver - body1 to r1 with the given cache (and otherwise req_init's
 * request); the outcome in o */
static void deliver(const struct fake *f, struct conncache *cache, int fd, struct outcome *o)
{
    struct smtp_client_req r;

    req_init(&r, f, r1only, 1, fd, "", body1);
    r.cache = cache;
    run(&r, o);
}

/* cache_end - free the cache (QUIT to what is parked) and let the fake
 * servers read it */
static void cache_end(struct conncache *cache)
{
    conncache_free(cache);
    spin(150);
}

/* test_cache_reuse - two deliveries in a row over one connection: no
 * second greeting or EHLO, no RSET, the second transaction pipelined per
 * the first EHLO; the connection survives idle loop time; freeing the
 * cache says QUIT */
static void test_cache_reuse(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test ESMTP\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n", 0},
        {dot, "250 2.0.0 queued as A\r\n", 0},
        {"MAIL FROM:<>\r\nRCPT TO:<r1@b.test>\r\nDATA\r\n", TXN1_OK, 0},
        {dot, "250 2.0.0 queued as B\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    assert_non_null(cache);
    fake_start(&f, s, 7, NULL);
    req_init(&r, &f, two, 2, fd, "", body1);
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "2.0.0 queued as A");
    assert_rcpt(&o, 1, 550, "5.1.1 no");
    spin(200);
    assert_int_equal(f.k, 4);
    assert_int_equal(f.eof, 0); /* parked, not closed */
    req_init(&r, &f, r1only, 1, fd, "", body1);
    r.sender = "";
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "2.0.0 queued as B");
    assert_string_equal(o.res.peer_greeting, "220 mx.test ESMTP"); /* the connection's */
    assert_int_equal(f.eof, 0);
    cache_end(cache);
    fake_done(&f);
    assert_int_equal(f.eof, 1);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_lockstep - what the EHLO said is kept with the connection: no
 * PIPELINING (lock-step again), SIZE and 8BITMIME parameters, and a body
 * over the SIZE limit refused locally on the reused connection */
static void test_cache_lockstep(void **state)
{
    char mail[128], *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250-SIZE 1000\r\n250 8BITMIME\r\n", 0},
        {mail, "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, "250 first\r\n", 0},
        {mail, "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, "250 second\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    snprintf(mail, sizeof mail, "MAIL FROM:<s@a.test> SIZE=%zu BODY=8BITMIME\r\n", strlen(body1));
    fake_start(&f, s, 11, NULL);
    for (int i = 0; i < 3; i++) {
        req_init(&r, &f, r1only, 1, fd, "", body1);
        r.body_8bit = 1;
        r.body_len = i < 2 ? r.body_len : 1001;
        r.cache = cache;
        run(&r, &o);
        assert_rcpt(&o, 0, i < 2 ? 250 : 552,
                    i == 0   ? "first"
                    : i == 1 ? "second"
                             : "5.3.4 message too big for next hop");
    }
    spin(50);
    fake_done(&f); /* the third ended with QUIT: the cache holds nothing */
    assert_int_equal(f.eof, 1);
    conncache_free(cache);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_dead - a parked connection the server closed: dropped while
 * parked, or found dead when MAIL FROM is sent (no reply, or a 421): the
 * delivery goes through on a fresh connection and the caller sees only
 * its result */
static void test_cache_dead(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 one\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 by one\r\n", STEP_CLOSE},
        {NULL, "220 two\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 by two\r\n", 0},
        {TXN1, "421 4.4.2 idle too long\r\n", STEP_CLOSE},
        {NULL, "220 three\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 by three\r\n", 0},
        {TXN1, NULL, STEP_CLOSE},
        {NULL, "220 four\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 by four\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    static const char *const want[] = {"by one", "by two", "by three", "by four"};
    static const char *const greeting[] = {"220 one", "220 two", "220 three", "220 four"};
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 19, NULL);
    for (int i = 0; i < 4; i++) {
        deliver(&f, cache, fd, &o);
        assert_rcpt(&o, 0, 250, want[i]);
        assert_string_equal(o.res.peer_greeting, greeting[i]);
        assert_int_equal(f.nconn, i + 1);
        spin(100); /* the first connection is closed while parked */
    }
    cache_end(cache);
    fake_done_conns(&f, 4);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_dead_late - only a failure before the MAIL reply is retried:
 * a reused connection lost after it is a normal failure; and the one
 * retry's own failure is what the caller sees */
static void test_cache_dead_late(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250 mx.test\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", "250 ok\r\n", 0},
        {"DATA\r\n", "354 go\r\n", 0},
        {dot, "250 ok\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\n", "250 ok\r\n", 0},
        {"RCPT TO:<r1@b.test>\r\n", NULL, STEP_CLOSE},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {TXN1, NULL, STEP_CLOSE},
    };
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 13, NULL);
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "ok");
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 0, "lost connection after RCPT TO");
    assert_int_equal(f.nconn, 1);
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "ok");
    evconnlistener_free(f.lis); /* the retry will find nobody listening */
    f.lis = NULL;
    deliver(&f, cache, fd, &o);
    assert_int_equal(o.rcpt[0].code, 0);
    assert_prefix(o.rcpt[0].text, "connect to 127.0.0.1:");
    cache_end(cache);
    fake_done_conns(&f, 2);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_idle - a parked connection gets QUIT after the idle timeout;
 * beyond max_idle the oldest parked connection gets QUIT at once */
static void test_cache_idle(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct conncache *cache = conncache_new(base, 1, 1);
    struct fake f, g;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 10, NULL);
    fake_start(&g, s, 5, NULL);
    deliver(&f, cache, fd, &o);
    spin(400);
    assert_int_equal(f.eof, 0); /* still parked */
    spin(1000);
    assert_int_equal(f.k, 5); /* QUIT after 1 s idle */
    assert_int_equal(f.eof, 1);
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "ok");
    assert_int_equal(f.nconn, 2);
    deliver(&g, cache, fd, &o); /* max_idle 1: parking this one evicts f's */
    assert_rcpt(&o, 0, 250, "ok");
    spin(100);
    fake_done_conns(&f, 2);
    assert_int_equal(f.eof, 2);
    assert_int_equal(g.k, 4);
    assert_int_equal(g.eof, 0);
    cache_end(cache);
    fake_done(&g);
    assert_int_equal(g.eof, 1);
    fake_stop(&f);
    fake_stop(&g);
    close(fd);
    free(dot);
}

/* test_cache_keys - no sharing between different addresses, HELO names,
 * or TLS wishes; the same key shares again */
static void test_cache_keys(void **state)
{
    char *dot = with_dot(body1);
    struct step sa[] = {
        {NULL, "220 a\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 a1\r\n", 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 a2\r\n", 0},
        {NULL, "220 a\r\n", 0},
        {"EHLO other.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 a3\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct step sb[] = {
        {NULL, "220 b\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 b1\r\n", 0},
        {NULL, "220 b\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 b2\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct conncache *cache = conncache_new(base, 8, 30);
    struct fake a, b;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&a, sa, 11, NULL);
    fake_start(&b, sb, 9, NULL);
    deliver(&a, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "a1");
    deliver(&b, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "b1");
    assert_int_equal(a.k, 4); /* a's parked connection was left alone */
    deliver(&a, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "a2");
    assert_int_equal(a.nconn, 1);
    req_init(&r, &a, r1only, 1, fd, "", body1);
    r.helo = "other.test";
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "a3");
    req_init(&r, &b, r1only, 1, fd, "", body1);
    r.tls = client_tls; /* wanted, not offered: in clear, but not b's first */
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "b2");
    cache_end(cache);
    fake_done_conns(&a, 2);
    fake_done_conns(&b, 2);
    fake_stop(&a);
    fake_stop(&b);
    close(fd);
    free(dot);
}

/* test_cache_cancel - cancel right after a parked connection was taken,
 * and while its MAIL waits for a reply: done never runs, the connection
 * is closed and not parked again (the next delivery connects anew) */
static void test_cache_cancel(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {TXN1, NULL, 0},
    };
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct smtp_client_req r;
    struct outcome o, never = {.base = base};
    struct smtp_client *c;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 9, NULL);
    for (int i = 0; i < 2; i++) {
        deliver(&f, cache, fd, &o);
        assert_rcpt(&o, 0, 250, "ok");
        req_init(&r, &f, r1only, 1, fd, "", body1);
        r.cache = cache;
        r.done = on_done;
        r.arg = &never;
        c = smtp_client_start(base, &r);
        assert_non_null(c);
        if (i == 1)
            spin(200); /* MAIL sent on the reused connection, no reply */
        assert_int_equal(f.k, i == 0 ? 4 : 9);
        smtp_client_cancel(c);
        spin(100);
        assert_int_equal(never.calls, 0);
        assert_int_equal(f.eof, i + 1);
    }
    cache_end(cache);
    fake_done_conns(&f, 2);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_lmtp - LMTP over a UNIX socket: per-recipient replies to the
 * dot, then the next transaction on the same connection; an SMTP request
 * to the same socket does not take the LMTP connection */
static void test_cache_lmtp(void **state)
{
    char path[128], *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 lmtp.test\r\n", 0},
        {"LHLO client.test\r\n", "250-lmtp.test\r\n250 PIPELINING\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r1@b.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n",
         "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {dot, "250 2.0.0 r1 ok\r\n452 4.2.2 r2 full\r\n", 0},
        {"MAIL FROM:<s@a.test>\r\nRCPT TO:<r2@b.test>\r\nDATA\r\n", TXN1_OK, 0},
        {dot, "250 2.0.0 r2 ok\r\n", 0},
        {NULL, "220 lmtp.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 smtp ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    static const char *const r2only[] = {"r2@b.test"};
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    snprintf(path, sizeof path, "%s/lmtp.sock", tmpdir);
    fake_start(&f, s, 11, path);
    req_init(&r, &f, two, 2, fd, "", body1);
    r.lmtp = 1;
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "2.0.0 r1 ok");
    assert_rcpt(&o, 1, 452, "4.2.2 r2 full");
    req_init(&r, &f, r2only, 1, fd, "", body1);
    r.lmtp = 1;
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "2.0.0 r2 ok");
    assert_int_equal(f.nconn, 1);
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "smtp ok");
    cache_end(cache);
    fake_done_conns(&f, 2);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_not_parked - a 421 to the dot, a 421 while parked, a probe,
 * and a stray reply after the dot's (QUIT then): none of these
 * connections is used again */
static void test_cache_not_parked(void **state)
{
    static const char bye[] = "421 4.4.2 closing\r\n";
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "421 4.3.2 shutting down\r\n", 0},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {"MAIL FROM:<>\r\nRCPT TO:<r1@b.test>\r\n", "250 ok\r\n250 2.1.5 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n250 stray\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 ok\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 22, NULL);
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 421, "4.3.2 shutting down");
    spin(50);
    assert_int_equal(f.eof, 1); /* closed at once: no QUIT, not parked */
    deliver(&f, cache, fd, &o);
    assert_rcpt(&o, 0, 250, "ok");
    assert_int_equal(bufferevent_write(f.bev, bye, strlen(bye)), 0);
    spin(100);
    assert_int_equal(f.eof, 2); /* dropped without QUIT */
    probe_init(&r, &f, r1only, 1);
    r.cache = cache;
    run(&r, &o);
    assert_rcpt(&o, 0, 250, "2.1.5 ok");
    deliver(&f, cache, fd, &o); /* the probe's connection was not parked */
    assert_rcpt(&o, 0, 250, "ok");
    deliver(&f, cache, fd, &o); /* nor one with unread input after the dot's reply */
    assert_rcpt(&o, 0, 250, "ok");
    cache_end(cache);
    fake_done_conns(&f, 5);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* test_cache_tls - the TLS session persists: the second delivery goes
 * over the same encrypted connection without STARTTLS or EHLO, and the
 * result still says TLS; the cache's QUIT goes through TLS too */
static void test_cache_tls(void **state)
{
    char *dot = with_dot(body1);
    struct step s[] = {
        {NULL, "220 mx.test\r\n", 0},
        {"EHLO client.test\r\n", "250-mx.test\r\n250 STARTTLS\r\n", 0},
        {"STARTTLS\r\n", "220 2.0.0 ready\r\n", STEP_TLS},
        {"EHLO client.test\r\n", EHLO_PIPE, 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 first\r\n", 0},
        {TXN1, TXN1_OK, 0},
        {dot, "250 second\r\n", 0},
        {"QUIT\r\n", "221 bye\r\n", 0},
    };
    struct conncache *cache = conncache_new(base, 4, 30);
    struct fake f;
    struct smtp_client_req r;
    struct outcome o;
    int fd = body_file("", body1, strlen(body1));

    fake_start(&f, s, 9, NULL);
    for (int i = 0; i < 2; i++) {
        req_init(&r, &f, r1only, 1, fd, "", body1);
        r.tls = client_tls;
        r.cache = cache;
        run(&r, &o);
        assert_rcpt(&o, 0, 250, i == 0 ? "first" : "second");
        assert_int_equal(o.res.tls, 1);
        assert_prefix(o.res.tls_desc, "TLSv1.3 TLS_");
    }
    cache_end(cache);
    fake_done(&f);
    fake_stop(&f);
    close(fd);
    free(dot);
}

/* A sink that serves any number of connections at once, each greeted
 * with its number ("220 conn N"), so that a result's peer_greeting tells
 * which connection carried it. */
#define SINK_CONNS 8

struct sink {
    struct ts_smtp srv;
    int nquit;
    int quit_id[SINK_CONNS]; /* the connections that said QUIT, in order */
};

/* sink_answer - the reply to one command line (or body line) */
static const char *sink_answer(struct ts_smtp_conn *sc, const char *line)
{
    struct sink *s = sc->s->arg;

    if (sc->in_data) {
        sc->in_data = strcmp(line, ".") != 0;
        return sc->in_data ? NULL : "250 ok\r\n";
    }
    if (strncmp(line, "EHLO ", 5) == 0)
        return "250-sink\r\n250 PIPELINING\r\n";
    if (strncmp(line, "MAIL ", 5) == 0 || strncmp(line, "RCPT ", 5) == 0)
        return "250 ok\r\n";
    if (strcmp(line, "DATA") == 0) {
        sc->in_data = 1;
        return "354 go\r\n";
    }
    if (strcmp(line, "QUIT") == 0) {
        s->quit_id[s->nquit++] = sc->id;
        return "221 bye\r\n";
    }
    return "500 what?\r\n";
}

/* sink_start - listen on an ephemeral port of 127.0.0.1; greetings tell connections apart */
static void sink_start(struct sink *s)
{
    memset(s, 0, sizeof *s);
    ts_smtp_start(&s->srv, base, sink_answer, s);
    s->srv.eol = EVBUFFER_EOL_CRLF_STRICT;
    s->srv.max_conns = SINK_CONNS;
}

/* sink_stop - close the listener and every connection left */
static void sink_stop(struct sink *s)
{
    ts_smtp_stop(&s->srv);
}

/* Deliveries running at once, and the connection each ended on. */
struct burst {
    int n, want;
    int conn[SINK_CONNS]; /* in the order done ran */
};

/* on_burst_done - note the connection of one successful delivery */
static void on_burst_done(void *arg, const struct smtp_client_result *res)
{
    struct burst *b = arg;

    assert_int_equal(res->rcpt[0].code, 250);
    assert_int_equal(sscanf(res->peer_greeting, "220 conn %d", &b->conn[b->n]), 1);
    if (++b->n == b->want)
        event_base_loopexit(base, NULL);
}

/* burst - n deliveries of body1 to s at once, with the given HELO name */
static void burst(struct sink *s, struct conncache *cache, int fd, int n, const char *helo,
                  struct burst *b)
{
    struct timeval limit = {10, 0};
    struct fake where; /* req_init takes the address from a fake */

    memset(b, 0, sizeof *b);
    b->want = n;
    memcpy(&where.addr, &s->srv.addr, sizeof where.addr);
    where.addrlen = s->srv.addrlen;
    for (int i = 0; i < n; i++) {
        struct smtp_client_req r;
        req_init(&r, &where, r1only, 1, fd, "", body1);
        r.helo = helo;
        r.cache = cache;
        r.done = on_burst_done;
        r.arg = b;
        assert_non_null(smtp_client_start(base, &r));
    }
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    assert_int_equal(b->n, n);
}

/* test_cache_limits - max_idle 4 keeps 2 per key: of three connections
 * parked at once the first gets QUIT; the next delivery takes the one
 * parked last (LIFO); beyond 4 in all the oldest gets QUIT */
static void test_cache_limits(void **state)
{
    struct conncache *cache = conncache_new(base, 4, 30);
    struct sink a, b;
    struct burst ba, bb, one;
    int fd = body_file("", body1, strlen(body1));

    sink_start(&a);
    sink_start(&b);
    burst(&a, cache, fd, 3, "client.test", &ba);
    spin(100);
    assert_int_equal(a.srv.nconn, 3);
    assert_int_equal(a.nquit, 1);
    assert_int_equal(a.quit_id[0], ba.conn[0]);
    burst(&a, cache, fd, 1, "client.test", &one);
    assert_int_equal(one.conn[0], ba.conn[2]);
    burst(&b, cache, fd, 2, "client.test", &bb);
    spin(100);
    assert_int_equal(a.nquit + b.nquit, 1); /* 4 parked: a's two, b's two */
    burst(&a, cache, fd, 1, "other.test", &one);
    spin(100);
    assert_int_equal(a.srv.nconn, 4);
    assert_int_equal(a.nquit, 2); /* the oldest: a's second */
    assert_int_equal(a.quit_id[1], ba.conn[1]);
    conncache_free(cache);
    spin(100);
    assert_int_equal(a.nquit, 4);
    assert_int_equal(b.nquit, 2);
    sink_stop(&a);
    sink_stop(&b);
    close(fd);
}

/* make_server_tls - a server context with a fresh self-signed P-256 cert */
static SSL_CTX *make_server_tls(void)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    X509_NAME *name;

    assert_non_null(pk);
    assert_non_null(x);
    assert_non_null(ctx);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    assert_int_equal(X509_set_pubkey(x, pk), 1);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pk), 1);
    X509_free(x);
    EVP_PKEY_free(pk);
    return ctx;
}

/* group_setup - TLS contexts and a scratch directory for all tests */
static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN); /* as in the daemon: a peer gone is an error, not a kill */
    if (ts_tmpdir_make(tmpdir, sizeof tmpdir, "test_client") < 0)
        return -1;
    server_tls = make_server_tls();
    client_tls = SSL_CTX_new(TLS_client_method());
    return client_tls ? 0 : -1;
}

/* group_teardown - free the TLS contexts, remove the scratch directory */
static int group_teardown(void **state)
{
    SSL_CTX_free(server_tls);
    SSL_CTX_free(client_tls);
    return rmdir(tmpdir);
}

/* setup - a fresh event base per test */
static int setup(void **state)
{
    base = event_base_new();
    return base ? 0 : -1;
}

/* teardown - free the event base */
static int teardown(void **state)
{
    event_base_free(base);
    base = NULL;
    return 0;
}

/* main - run the client tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail_451, setup, teardown),
        cmocka_unit_test_setup_teardown(test_421, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_rcpt_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dot_552, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lmtp_unix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_helo_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_greeting_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dot_reply_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ehlo_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_locally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_lockstep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_no_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_lockstep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_dead_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_lmtp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_not_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_limits, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
