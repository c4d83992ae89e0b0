/* control.c - the control socket: mxgatectl's requests, answered by admin/adm.h */
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

#include "admin/adm.h"
#include "core/json.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/queue.h"
#include "queue/spool.h"

#define CONTROL_LINE_MAX 1024
#define CONTROL_ARGS_MAX 6

struct control {
    struct evconnlistener *evl;
    struct adm_env env;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* control_split - the request's words (at most CONTROL_ARGS_MAX); their count */
static int control_split(char *req, char **argv)
{
    int argc = 0;
    char *save = NULL;

    for (char *w = strtok_r(req, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (argc == CONTROL_ARGS_MAX)
            return -1;
        argv[argc++] = w;
    }
    return argc;
}

/* control_queue - hold|release|delete SELECTOR */
static void control_queue(struct control *c, int argc, char **argv, struct evbuffer *out)
{
    enum adm_qaction a = strcmp(argv[0], "hold") == 0      ? ADM_HOLD
                         : strcmp(argv[0], "release") == 0 ? ADM_RELEASE
                                                           : ADM_DELETE;
    struct adm_select sel;
    int n;

    if (adm_select_parse(argc - 1, argv + 1, &sel) < 0) {
        evbuffer_add_printf(out, "error bad selector\n");
        return;
    }
    n = adm_queue_act(&c->env, a, &sel);
    if (n < 0 && errno == ENOENT) {
        evbuffer_add_printf(out, "error no such message\n");
    } else if (n < 0) {
        evbuffer_add_printf(out, "error %s\n", strerror(errno));
    } else {
        log_info("event=admin action=%s via=control count=%d", argv[0], n);
        evbuffer_add_printf(out, "ok %d\n", n);
    }
}

/* control_store - greylist allow|remove NET [SENDER RCPT]; blocks clear WHO */
static void control_store(struct control *c, int argc, char **argv, struct evbuffer *out)
{
    char err[128] = "bad request";
    int n = -1;

    if (strcmp(argv[0], "blocks") == 0 && argc == 3 && strcmp(argv[1], "clear") == 0)
        n = adm_blocks_clear(&c->env, argv[2], err, sizeof(err));
    else if (strcmp(argv[0], "greylist") == 0 && (argc == 3 || argc == 5)) {
        const char *s = argc == 5 ? argv[3] : NULL, *r = argc == 5 ? argv[4] : NULL;
        if (strcmp(argv[1], "allow") == 0)
            n = adm_greylist_allow(&c->env, argv[2], s, r, err, sizeof(err)) == 0 ? 1 : -1;
        else if (strcmp(argv[1], "remove") == 0)
            n = adm_greylist_remove(&c->env, argv[2], s, r, err, sizeof(err));
    }
    if (n < 0)
        evbuffer_add_printf(out, "error %s\n", err);
    else
        evbuffer_add_printf(out, "ok %d\n", n);
}

/* control_user - user suspend|resume LOGIN (percent-encoded) */
static void control_user(struct control *c, int argc, char **argv, struct evbuffer *out)
{
    char login[300], err[128] = "bad request";
    int on = argc == 3 && strcmp(argv[1], "suspend") == 0;

    if (argc != 3 || (!on && strcmp(argv[1], "resume") != 0) ||
        adm_login_decode(argv[2], login, sizeof(login)) < 0 ||
        adm_user_set(&c->env, login, on, err, sizeof(err)) < 0)
        evbuffer_add_printf(out, "error %s\n", err);
    else
        evbuffer_add_printf(out, "ok 1\n");
}

/* control_quarantine - quarantine release|delete ID */
static void control_quarantine(struct control *c, int argc, char **argv, struct evbuffer *out)
{
    int release = argc == 3 && strcmp(argv[1], "release") == 0;

    if (argc != 3 || (!release && strcmp(argv[1], "delete") != 0))
        evbuffer_add_printf(out, "error bad request\n");
    else if (adm_quarantine_act(&c->env, release, argv[2], "control") < 0)
        evbuffer_add_printf(out, "error %s\n",
                            errno == ENOENT ? "no such message in quarantine" : strerror(errno));
    else
        evbuffer_add_printf(out, "ok 1\n");
}

/* control_list - list add USER allow|deny PATTERN; list remove USER PATTERN */
static void control_list(struct control *c, int argc, char **argv, struct evbuffer *out)
{
    char err[128] = "bad request";
    int n = -1;

    if (argc == 5 && strcmp(argv[1], "add") == 0)
        n = adm_userlist_add(&c->env, argv[2], argv[3], argv[4], err, sizeof(err)) == 0 ? 1 : -1;
    else if (argc == 4 && strcmp(argv[1], "remove") == 0)
        n = adm_userlist_remove(&c->env, argv[2], argv[3], err, sizeof(err));
    if (n < 0)
        evbuffer_add_printf(out, "error %s\n", err);
    else
        evbuffer_add_printf(out, "ok %d\n", n);
}

/* control_status - "ok" then the text lines, or "ok " and the JSON */
static void control_status(struct control *c, int json, struct evbuffer *out)
{
    struct json j;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    if (json) {
        json_init(&j);
        adm_status_json(&c->env, &j);
        evbuffer_add_printf(out, "ok %s\n", j.buf);
        json_free(&j);
        return;
    }
    if (!(f = open_memstream(&text, &len))) {
        evbuffer_add_printf(out, "error out of memory\n");
        return;
    }
    adm_status_text(&c->env, f);
    fclose(f);
    evbuffer_add_printf(out, "ok\n%s", text);
    free(text);
}

/* control_dests - "ok" then a "dest ..." line per destination (adm_dests_lines) */
static void control_dests(struct control *c, struct evbuffer *out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f) {
        evbuffer_add_printf(out, "error out of memory\n");
        return;
    }
    adm_dests_lines(&c->env, f);
    fclose(f);
    evbuffer_add_printf(out, "ok\n%s", text);
    free(text);
}

/* control_execute - one request, one reply */
static void control_execute(struct control *c, char *req, struct evbuffer *out)
{
    char *argv[CONTROL_ARGS_MAX];
    int argc = control_split(req, argv);

    if (argc <= 0) {
        evbuffer_add_printf(out, "error unknown request\n");
    } else if (strcmp(argv[0], "flush") == 0 && argc == 1) {
        unsigned n = queue_flush(c->env.queue);
        log_info("event=flush messages=%u", n);
        evbuffer_add_printf(out, "ok %u\n", n);
    } else if ((strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0 ||
                strcmp(argv[0], "delete") == 0) &&
               argc >= 2) {
        control_queue(c, argc, argv, out);
    } else if (strcmp(argv[0], "greylist") == 0 || strcmp(argv[0], "blocks") == 0) {
        control_store(c, argc, argv, out);
    } else if (strcmp(argv[0], "user") == 0) {
        control_user(c, argc, argv, out);
    } else if (strcmp(argv[0], "quarantine") == 0) {
        control_quarantine(c, argc, argv, out);
    } else if (strcmp(argv[0], "list") == 0) {
        control_list(c, argc, argv, out);
    } else if (strcmp(argv[0], "reload") == 0 && argc == 1 && c->env.reload) {
        log_info("event=reload via=control");
        c->env.reload(c->env.reload_arg);
        evbuffer_add_printf(out, "ok 1\n");
    } else if (strcmp(argv[0], "destinations") == 0 && argc == 1) {
        control_dests(c, out);
    } else if (strcmp(argv[0], "status") == 0 &&
               (argc == 1 || (argc == 2 && strcmp(argv[1], "json") == 0))) {
        control_status(c, argc == 2, out);
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
struct control *control_open(struct event_base *base, const char *path, const struct adm_env *env)
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
    c->env = *env;
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
