/* session.c - SMTP session lifecycle: start, state, timeouts, greeting, TLS, end */
#include "smtp/session_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "tls/tls.h"

/*
 * Input held per session. Message text is read in libevent's default pieces,
 * up to 256 KiB ahead. Commands are short: read 960 octets at a time (under
 * one 1 KiB buffer), at most 8 KiB ahead, so that a client pipelining while
 * its replies are held back (session_io.c) or while checks run costs little.
 */
#define SESSION_READ_HIGH_WATER (256 * 1024)
#define SESSION_CMD_HIGH_WATER (8 * 1024)
#define SESSION_CMD_READ_MAX 960

/* session_state_name - for the debug log */
static const char *session_state_name(enum session_state st)
{
    static const char *const names[] = {
        [SESS_GREETING] = "greeting",
        [SESS_COMMAND] = "command",
        [SESS_POLICY] = "policy",
        [SESS_DATA] = "data",
        [SESS_COMMIT] = "commit",
        [SESS_TLS_SWITCH] = "tls-switch",
        [SESS_TLS_HANDSHAKE] = "tls-handshake",
        [SESS_CLOSING] = "closing",
    };

    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* session_read_limits - how much is read at once, and ahead, in the current state */
static void session_read_limits(struct session *s)
{
    int data = s->state == SESS_DATA;

    bufferevent_set_max_single_read(s->bev, data ? 0 : SESSION_CMD_READ_MAX);
    bufferevent_setwatermark(s->bev, EV_READ, 0,
                             data ? SESSION_READ_HIGH_WATER : SESSION_CMD_HIGH_WATER);
}

/* session_set_state - every state change goes through here, so the debug log shows them all */
void session_set_state(struct session *s, enum session_state st)
{
    if (s->state == st)
        return;
    log_debug("event=state sid=%s from=%s to=%s", s->sid, session_state_name(s->state),
              session_state_name(st));
    s->state = st;
    if (s->bev)
        session_read_limits(s);
}

/* session_free - release everything; the only place a session ends */
void session_free(struct session *s)
{
    log_info("event=disconnect sid=%s client=%s commands=%u messages=%u reason=%s", s->sid, s->ip,
             s->ncommands, s->nmessages, s->close_reason ? s->close_reason : "eof");
    LIST_REMOVE(s, entry);
    if (s->flush_queued)
        LIST_REMOVE(s, flush_entry);
    session_policy_end(s);
    if (s->commit)
        session_commit_detach(s);
    session_tx_free(s);
    session_auth_free(s);
    if (s->greet_timer)
        event_free(s->greet_timer);
    if (s->deadline)
        event_free(s->deadline);
    if (s->lifetime)
        event_free(s->lifetime);
    if (s->bev)
        bufferevent_free(s->bev);
    if (!s->fd_in_bev)
        close(s->fd);
    s->release(s->release_arg, (struct sockaddr *)&s->peer);
    server_gen_unref(s->gen);
    free(s->helo);
    free(s->held);
    free(s->tls_desc);
    free(s->cl.score_tests);
    free(s);
}

/* session_deadline_cb - a line did not complete in time */
static void session_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;

    switch (s->state) {
    case SESS_COMMAND:
    case SESS_DATA:
        log_info("event=timeout sid=%s client=%s state=%s", s->sid, s->ip,
                 s->state == SESS_DATA ? "data" : "command");
        session_close(s, "timeout", "421 4.4.2 %s Error: timeout exceeded", s->gen->cfg->hostname);
        break;
    case SESS_POLICY:
    case SESS_COMMIT:
        session_arm_deadline(s); /* we are the ones being slow: wait for ourselves */
        break;
    default: /* greeting, TLS handshake, or a close that could not be flushed */
        s->close_reason = "timeout";
        session_free(s);
        break;
    }
}

/* session_arm_deadline - (re)start the time the current line may take */
void session_arm_deadline(struct session *s)
{
    struct timeval tv = {.tv_sec = s->line_timeout, .tv_usec = 0};

    if (!s->deadline)
        s->deadline = evtimer_new(s->srv->base, session_deadline_cb, s);
    if (s->deadline)
        evtimer_add(s->deadline, &tv);
}

/*
 * session_set_timeout - a client that stops reading our replies is cut off by
 * the bufferevent's write timeout; reading is bounded per line by our own
 * deadline, which only a complete line renews: libevent's read timeout would
 * restart on every byte, and one byte a second would hold a session forever.
 */
void session_set_timeout(struct session *s, unsigned seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

    bufferevent_set_timeouts(s->bev, NULL, &tv);
    s->line_timeout = seconds;
    session_arm_deadline(s);
}

/*
 * session_lifetime_cb - the session as a whole is over its time
 * (timeouts.session): one command per timeout must not hold a slot for days.
 * A reply that is due (checks, a commit, STARTTLS's 220) goes first.
 */
static void session_lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    struct timeval again = {.tv_sec = 1, .tv_usec = 0};

    switch (s->state) {
    case SESS_GREETING:
    case SESS_COMMAND:
    case SESS_DATA:
        log_info("event=timeout sid=%s client=%s state=session", s->sid, s->ip);
        session_close(s, "lifetime", "421 4.4.2 %s Error: session lifetime exceeded",
                      s->gen->cfg->hostname);
        break;
    case SESS_POLICY:
    case SESS_COMMIT:
    case SESS_TLS_SWITCH:
        evtimer_add(s->lifetime, &again);
        break;
    case SESS_TLS_HANDSHAKE:
        s->close_reason = "lifetime";
        session_free(s);
        break;
    default:
        break; /* closing: the close timeout ends it */
    }
}

/* session_start_lifetime - arm timeouts.session once, at the start */
static int session_start_lifetime(struct session *s)
{
    struct timeval tv = {.tv_sec = s->gen->conf->timeouts.session, .tv_usec = 0};

    s->lifetime = evtimer_new(s->srv->base, session_lifetime_cb, s);
    return s->lifetime && evtimer_add(s->lifetime, &tv) == 0 ? 0 : -1;
}

/* session_tls_done - handshake finished: record what protects the session */
static void session_tls_done(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

    s->tls = 1;
    free(s->tls_desc);
    s->tls_desc = xmalloc(SESSION_TLS_DESC);
    tls_describe(ssl, s->tls_desc, SESSION_TLS_DESC);
    log_info("event=tls sid=%s protocol=%s cipher=%s", s->sid, log_q(SSL_get_version(ssl)),
             log_q(SSL_get_cipher_name(ssl)));
    session_set_state(s, s->greeted ? SESS_COMMAND : SESS_GREETING);
    session_set_timeout(s, s->gen->conf->timeouts.command);
    session_process(s);
}

/* session_event_cb - timeouts, EOF, errors, TLS handshake completion */
static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    if (what & BEV_EVENT_CONNECTED) {
        session_tls_done(s);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
        (s->state == SESS_COMMAND || s->state == SESS_DATA)) {
        log_info("event=timeout sid=%s client=%s state=%s", s->sid, s->ip,
                 s->state == SESS_DATA ? "data" : "command");
        session_close(s, "timeout", "421 4.4.2 %s Error: timeout exceeded", s->gen->cfg->hostname);
        return;
    }
    if ((what & BEV_EVENT_EOF) && session_eof(s))
        return;
    if (what & BEV_EVENT_TIMEOUT)
        s->close_reason = "timeout";
    else if ((what & BEV_EVENT_ERROR) && !s->peer_eof) /* after EOF: the client went, as said */
        s->close_reason = s->state == SESS_TLS_HANDSHAKE ? "tls-error" : "error";
    else if (!s->close_reason)
        s->close_reason = "eof";
    session_free(s);
}

/* session_setup_bev - callbacks, watermark and timeout of a fresh bufferevent */
static void session_setup_bev(struct session *s, unsigned timeout)
{
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    session_read_limits(s);
    session_set_timeout(s, timeout);
    /* A new bufferevent starts with writing enabled: direct sessions arm it
     * only for output the kernel did not take (session_flush). */
    if (session_direct(s))
        bufferevent_disable(s->bev, EV_WRITE);
    bufferevent_enable(s->bev, session_direct(s) ? EV_READ : EV_READ | EV_WRITE);
}

/* session_new_tls_bev - wrap fd in a server-side TLS bufferevent */
static int session_new_tls_bev(struct session *s)
{
    SSL *ssl = SSL_new(s->gen->tls);

    if (!ssl)
        return -1;
    s->bev = bufferevent_openssl_socket_new(s->srv->base, s->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!s->bev) {
        SSL_free(ssl);
        return -1;
    }
    s->fd_in_bev = 1;
    session_set_state(s, SESS_TLS_HANDSHAKE);
    session_setup_bev(s, s->gen->conf->timeouts.command);
    return 0;
}

/*
 * session_starttls_switch - the 220 is on the wire. Plaintext that came
 * with or after STARTTLS was already dropped (CVE-2011-0411); from here
 * on only TLS records are read, and the session starts over (RFC 3207 4.2).
 */
void session_starttls_switch(struct session *s)
{
    bufferevent_free(s->bev);
    s->bev = NULL;
    session_tx_free(s);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = 0;
    if (session_new_tls_bev(s) < 0) {
        s->close_reason = "tls-error";
        session_free(s);
    }
}

/* session_greet - the 220 banner */
static void session_greet(struct session *s)
{
    s->greeted = 1;
    if (s->state == SESS_GREETING)
        session_set_state(s, SESS_COMMAND);
    session_reply(s, "220 %s ESMTP mxgate", s->gen->cfg->hostname);
}

/* session_greet_ready - the greeting goes once the delay and the connect checks are over */
void session_greet_ready(struct session *s, unsigned what)
{
    s->greet_wait &= ~what;
    if (s->greet_wait == 0 && !s->greeted && s->state != SESS_CLOSING)
        session_greet(s);
}

/* session_greet_timer - greeting delay over without early talk */
static void session_greet_timer(evutil_socket_t fd, short what, void *arg)
{
    session_greet_ready(arg, SESSION_WAIT_DELAY);
}

/* session_init_io - plaintext or implicit-TLS bufferevent; the greeting waits for the checks */
static int session_init_io(struct session *s)
{
    const struct serverconf *sc = s->gen->conf;

    s->greet_wait = SESSION_WAIT_CHECKS;
    if (s->listen->implicit_tls)
        return session_new_tls_bev(s); /* the banner waits in the output until the handshake */
    s->bev = bufferevent_socket_new(s->srv->base, s->fd, BEV_OPT_DEFER_CALLBACKS);
    if (!s->bev)
        return -1;
    /* Until the greeting, any input is early talk (postscreen's pregreet test). */
    session_set_state(s, SESS_GREETING);
    session_setup_bev(s, sc->timeouts.command + sc->timeouts.greeting_delay);
    if (sc->timeouts.greeting_delay == 0)
        return 0;
    struct timeval tv = {.tv_sec = sc->timeouts.greeting_delay, .tv_usec = 0};
    s->greet_wait |= SESSION_WAIT_DELAY;
    s->greet_timer = evtimer_new(s->srv->base, session_greet_timer, s);
    if (!s->greet_timer || evtimer_add(s->greet_timer, &tv) < 0)
        return -1;
    return 0;
}

/* session_start - a new client passed the connection limits */
void session_start(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                   const struct sockaddr *sa, socklen_t salen, session_release_fn release,
                   void *release_arg)
{
    struct session *s = xcalloc(1, sizeof(*s));

    s->srv = srv;
    s->gen = server_gen_ref(srv->gen);
    s->release = release;
    s->release_arg = release_arg;
    s->listen = l;
    s->fd = fd;
    memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
    sockaddr_ip(sa, s->ip, sizeof(s->ip));
    server_session_id(srv, s->sid, sizeof(s->sid));
    LIST_INSERT_HEAD(&srv->sessions, s, entry);
    log_info("event=connect sid=%s client=%s port=%u listener=%s", s->sid, s->ip,
             sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
                                       : ntohs(((const struct sockaddr_in *)sa)->sin_port),
             log_q(l->name));
    if (session_start_lifetime(s) < 0 || session_init_io(s) < 0) {
        s->close_reason = "resource";
        session_free(s);
        return;
    }
    session_connect_checks(s);
}

/* session_free_all - shutdown */
void session_free_all(struct server *srv)
{
    while (!LIST_EMPTY(&srv->sessions)) {
        struct session *s = LIST_FIRST(&srv->sessions);
        s->close_reason = "shutdown";
        session_free(s);
    }
}
