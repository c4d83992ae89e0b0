/* ts_smtp.h - a fake SMTP/LMTP server on the test's event loop: it greets,
 * then hands every command line to the test, which decides the reply */
#ifndef TS_SMTP_H
#define TS_SMTP_H

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#define TS_SMTP_HELD 8

struct ts_smtp;

struct ts_smtp_conn {
    struct ts_smtp *s;
    struct bufferevent *bev;
    struct ts_smtp_conn *next;
    int id;      /* 1 for the first connection accepted, and so on */
    int in_data; /* for the test: the lines are a message body */
    int hangup;  /* set by the test: close once the reply is out */
};

/* ts_smtp_answer_fn - the reply to one line (NULL: none) */
typedef const char *(*ts_smtp_answer_fn)(struct ts_smtp_conn *c, const char *line);

struct ts_smtp {
    struct event_base *base;
    struct evconnlistener *lis;
    struct sockaddr_storage addr; /* where it listens */
    socklen_t addrlen;
    int port;
    ts_smtp_answer_fn answer;
    void *arg;                     /* for the test's answer */
    const char *greeting;          /* NULL: "220 conn <id>", telling connections apart */
    enum evbuffer_eol_style eol;   /* what ends a line */
    int max_conns;                 /* > 0: more connections than this fail the test */
    int silent;                    /* accept but never greet (a hung server) */
    int held[TS_SMTP_HELD], nheld; /* silent: connections kept open, unanswered */
    int nconn;                     /* connections accepted */
    struct ts_smtp_conn *conns;    /* open ones */
};

/* ts_listen - listen on addr: the UNIX socket it names, else an ephemeral port of
 * 127.0.0.1 (written back into addr). Fails the test when it cannot */
struct evconnlistener *ts_listen(struct event_base *base, evconnlistener_cb cb, void *arg,
                                 struct sockaddr_storage *addr, socklen_t *addrlen);
/* ts_smtp_start - s listens on 127.0.0.1, lines end in CRLF (or LF); set the
 * other options in s before the loop runs */
void ts_smtp_start(struct ts_smtp *s, struct event_base *base, ts_smtp_answer_fn answer, void *arg);
/* ts_smtp_stop - nobody listens any more; every connection left is closed */
void ts_smtp_stop(struct ts_smtp *s);

#endif
