/* server_drain.c - SIGTERM: stop accepting, let the messages under way finish, then stop */
#include "smtp/server.h"

#include <event2/event.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "policysrv/policysrv.h"
#include "smtp/session_internal.h"

#define DRAIN_TICK_MS 50

/*
 * drain_idle - may s be told 421 now? Between commands, yes (RFC 5321 3.8:
 * a server that must shut down answers the next command 421; saying so at
 * once lets the client go elsewhere sooner). Not while its checks, its
 * message or its commit run: a transaction in DATA finishes and is
 * answered first. A TLS handshake carries no transaction: it just ends.
 */
static int drain_idle(const struct session *s)
{
    return s->state == SESS_COMMAND || s->state == SESS_GREETING || s->state == SESS_TLS_HANDSHAKE;
}

/* drain_sweep - tell every idle session; 1 when none is left */
static int drain_sweep(struct server *srv)
{
    struct session *s, *next;

    for (s = LIST_FIRST(&srv->sessions); s; s = next) {
        next = LIST_NEXT(s, entry);
        if (!drain_idle(s))
            continue;
        if (s->state == SESS_TLS_HANDSHAKE) {
            s->close_reason = "shutdown";
            session_free(s);
            continue;
        }
        session_close(s, "shutdown", "421 4.3.2 %s Service shutting down, closing connection",
                      s->gen->cfg->hostname);
    }
    return LIST_EMPTY(&srv->sessions);
}

/* drain_count - sessions still open */
static unsigned drain_count(const struct server *srv)
{
    unsigned n = 0;
    const struct session *s;

    LIST_FOREACH(s, &srv->sessions, entry)
    n++;
    return n;
}

/* drain_tick - sweep; done when nothing is left or the time is up */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    struct timeval tv = {.tv_sec = 0, .tv_usec = DRAIN_TICK_MS * 1000};

    if (!drain_sweep(srv) && clock_now() < srv->drain_end) {
        evtimer_add(srv->drain_ev, &tv);
        return;
    }
    log_info("event=drained sessions_left=%u", drain_count(srv));
    srv->drain_done(srv->drain_arg);
}

/* server_drain - see server.h */
void server_drain(struct server *srv, unsigned timeout, void (*done)(void *arg), void *arg)
{
    server_close_listeners(srv);     /* refused at once: the client tries the next MX now */
    server_proxy_close_all(srv);     /* nothing said to these yet: the balancer retries */
    policysrv_drain(srv->policysrv); /* between requests: Postfix asks again */
    srv->drain_done = done;
    srv->drain_arg = arg;
    srv->drain_end = clock_now() + (time_t)timeout;
    log_info("event=draining sessions=%u timeout=%u", drain_count(srv), timeout);
    if (!srv->drain_ev)
        srv->drain_ev = evtimer_new(srv->base, drain_tick, srv);
    if (!srv->drain_ev) {
        done(arg);
        return;
    }
    drain_tick(-1, 0, srv);
}
