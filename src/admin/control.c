/* control.c - the control socket: flush and delete for mxgatectl */
#include "admin/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/queue.h"
#include "queue/spool.h"

#define CONTROL_LINE_MAX 256

struct control {
    struct evconnlistener *evl;
    struct queue *q;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* control_execute - one request, one reply line */
static void control_execute(struct control *c, const char *req, struct evbuffer *out)
{
    if (strcmp(req, "flush") == 0) {
        unsigned n = queue_flush(c->q);
        log_info("event=flush messages=%u", n);
        evbuffer_add_printf(out, "ok %u\n", n);
    } else if (strncmp(req, "delete ", 7) == 0 && spool_valid_id(req + 7)) {
        if (queue_delete(c->q, req + 7) == 0)
            evbuffer_add_printf(out, "ok\n");
        else
            evbuffer_add_printf(out, "error no such message\n");
    } else {
        evbuffer_add_printf(out, "error unknown request\n");
    }
}

/* control_read - a whole line is the request; anything longer is refused */
static void control_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

    if (!line) {
        if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
            bufferevent_free(bev);
        return;
    }
    control_execute(arg, line, bufferevent_get_output(bev));
    free(line);
    bufferevent_disable(bev, EV_READ);
}

/* control_written - once the reply is out (reading stopped), done with this client */
static void control_written(struct bufferevent *bev, void *arg)
{
    /* libevent also calls this for an empty buffer right after accept */
    if (!(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_free(bev);
}

/* control_event - the client went away */
static void control_event(struct bufferevent *bev, short what, void *arg)
{
    bufferevent_free(bev);
}

/* control_accept - one client, one request */
static void control_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(evl), fd, BEV_OPT_CLOSE_ON_FREE);
    struct timeval tv = {5, 0};

    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, control_read, control_written, control_event, arg);
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* control_open - bind the socket where only our user can reach it */
struct control *control_open(struct event_base *base, const char *path, struct queue *q)
{
    struct control *c = xcalloc(1, sizeof(*c));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    mode_t old;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        free(c);
        errno = ENAMETOOLONG;
        return NULL;
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->q = q;
    unlink(path); /* a stale socket of a previous run */
    old = umask(077);
    c->evl = evconnlistener_new_bind(base, control_accept, c,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                     (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (!c->evl) {
        free(c);
        return NULL;
    }
    return c;
}

/* control_close - stop listening and remove the socket */
void control_close(struct control *c)
{
    if (!c)
        return;
    evconnlistener_free(c->evl);
    unlink(c->path);
    free(c);
}
