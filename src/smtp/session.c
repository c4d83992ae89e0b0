/* session.c - SMTP session lifecycle: accept, greeting, line reading, TLS, close */
#include "smtp/session_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "mail/address.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"
#include "tls/tls.h"

#define SESSION_READ_HIGH_WATER (256 * 1024)
#define SESSION_CLOSE_TIMEOUT 10

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);

/* session_free - release everything; the only place a session ends */
static void session_free(struct session *s)
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
    if (s->greet_timer)
        event_free(s->greet_timer);
    if (s->deadline)
        event_free(s->deadline);
    if (s->bev)
        bufferevent_free(s->bev);
    if (!s->fd_in_bev)
        close(s->fd);
    server_ip_release(s->srv, (struct sockaddr *)&s->peer);
    free(s->helo);
    free(s);
}

/*
 * Plaintext replies are written by us, not by the bufferevent: every reply
 * made during a loop turn goes out in one writev at the end of the turn, and
 * the socket's write event is only armed when the kernel would not take it
 * all. Left to the bufferevent, each reply costs two epoll_ctl calls (arm the
 * write event, disarm it a turn later). TLS sessions keep the bufferevent's
 * writing, which encrypts.
 */
static int session_direct(const struct session *s)
{
    return !s->fd_in_bev;
}

/* session_output_drained - every reply is out: finish a close or a STARTTLS switch */
static void session_output_drained(struct session *s)
{
    if (s->state == SESS_CLOSING)
        session_free(s);
    else if (s->state == SESS_TLS_SWITCH)
        session_starttls_switch(s);
}

/* session_write - one writev of the output; -1 on an error or when some is left */
static int session_write(struct session *s, struct evbuffer *out)
{
    int n;

    /* The bufferevent freezes the start of its output so that only it
     * drains it; it thaws it the same way around its own writes. */
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, s->fd);
    evbuffer_freeze(out, 1);
    return n < 0 || evbuffer_get_length(out) > 0 ? -1 : 0;
}

/* session_flush - write the replies; what the kernel does not take, libevent writes later */
static void session_flush(struct session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);

    /* A short write or an error (EPIPE, ECONNRESET) is left to the
     * bufferevent: it retries when writable, under the write timeout, and
     * reports an error through session_event_cb like any other. */
    if (evbuffer_get_length(out) > 0 && session_write(s, out) < 0) {
        bufferevent_enable(s->bev, EV_WRITE);
        return;
    }
    session_output_drained(s);
}

/* session_flush_cb - end of the loop turn: write every queued session's replies */
static void session_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    struct session *s;

    while ((s = LIST_FIRST(&srv->flushq)) != NULL) {
        LIST_REMOVE(s, flush_entry);
        s->flush_queued = 0;
        session_flush(s);
    }
}

/* session_queue_flush - have s's output written at the end of this loop turn */
static void session_queue_flush(struct session *s)
{
    if (!session_direct(s) || s->flush_queued)
        return;
    if (LIST_EMPTY(&s->srv->flushq))
        event_active(s->srv->flush_ev, EV_TIMEOUT, 0);
    LIST_INSERT_HEAD(&s->srv->flushq, s, flush_entry);
    s->flush_queued = 1;
}

/* session_reply_v - one reply line into the output buffer */
static void session_reply_v(struct session *s, const char *fmt, va_list ap)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);

    evbuffer_add_vprintf(out, fmt, ap);
    evbuffer_add(out, "\r\n", 2);
    session_queue_flush(s);
}

/* session_reply - queue one reply line */
void session_reply(struct session *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    session_reply_v(s, fmt, ap);
    va_end(ap);
}

/*
 * session_close - last words, then close when they are flushed. The write
 * callback frees the session, so callers up the stack may still look at
 * s->state (never at a freed session).
 */
void session_close(struct session *s, const char *reason, const char *fmt, ...)
{
    va_list ap;

    if (s->state == SESS_CLOSING)
        return;
    va_start(ap, fmt);
    session_reply_v(s, fmt, ap);
    va_end(ap);
    s->close_reason = reason;
    s->state = SESS_CLOSING;
    bufferevent_disable(s->bev, EV_READ);
    session_set_timeout(s, SESSION_CLOSE_TIMEOUT);
}

/* session_error - an error reply; past max_errors the client is cut off */
void session_error(struct session *s, const char *stage, const char *fmt, ...)
{
    char text[512], from[LOG_QUOTE_MAX + 8], rcpt[LOG_QUOTE_MAX + 8];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    session_reply(s, "%s", text);
    from[0] = rcpt[0] = '\0';
    if (s->tx)
        snprintf(from, sizeof(from), " from=%s", log_qaddr(s->tx->sender));
    if (s->cur_rcpt)
        snprintf(rcpt, sizeof(rcpt), " rcpt=%s", log_qaddr(s->cur_rcpt));
    log_info("event=reject sid=%s client=%s stage=%s code=%.3s status=%.5s reason=%s%s%s", s->sid,
             s->ip, stage, text, text + 4, log_q(text + 10), from, rcpt);
    if (++s->nerrors >= s->srv->conf->limits.max_errors)
        session_close(s, "errors", "421 4.7.0 %s Error: too many errors", s->srv->cfg->hostname);
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
        session_close(s, "timeout", "421 4.4.2 %s Error: timeout exceeded", s->srv->cfg->hostname);
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

/* session_line_error - refuse a malformed command line without parsing it */
static int session_line_error(struct session *s, const char *line, size_t len)
{
    if (len == 0 || line[len - 1] != '\r') {
        session_error(s, "command", "500 5.5.2 Error: bare <LF> received");
        return 1;
    }
    if (memchr(line, '\r', len - 1)) {
        session_error(s, "command", "500 5.5.2 Error: bare <CR> received");
        return 1;
    }
    if (memchr(line, '\0', len - 1)) {
        session_error(s, "command", "500 5.5.2 Error: NUL octet received");
        return 1;
    }
    return 0;
}

/*
 * session_command_step - take one command line. Over-long lines are dropped
 * as they arrive (never buffered whole) and answered when their LF comes.
 */
static int session_command_step(struct session *s, struct evbuffer *in)
{
    char line[SMTP_CMD_LINE_MAX + 1];
    size_t avail = evbuffer_get_length(in), len;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);

    if (p.pos < 0) {
        if (s->cmd_discard || avail > SMTP_CMD_LINE_MAX) {
            evbuffer_drain(in, avail);
            s->cmd_discard = 1;
        }
        return 0;
    }
    len = (size_t)p.pos; /* octets before the LF */
    if (s->cmd_discard || len + 1 > SMTP_CMD_LINE_MAX) {
        evbuffer_drain(in, len + 1);
        s->cmd_discard = 0;
        session_error(s, "command", "500 5.5.2 Error: command line too long");
        return 1;
    }
    evbuffer_remove(in, line, len + 1);
    line[len] = '\0';
    session_arm_deadline(s); /* a whole line: the next one gets its full time */
    if (++s->ncommands > s->srv->conf->limits.max_commands) {
        session_close(s, "commands", "421 4.7.0 %s Error: too many commands",
                      s->srv->cfg->hostname);
        return 1;
    }
    if (session_line_error(s, line, len))
        return 1;
    line[len - 1] = '\0';
    session_command(s, line, len - 1);
    return 1;
}

/* session_consume - run the state machine over buffered input */
static void session_consume(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);

    for (;;) {
        if (evbuffer_get_length(in) == 0)
            return;
        switch (s->state) {
        case SESS_COMMAND:
            if (!session_command_step(s, in))
                return;
            break;
        case SESS_DATA:
            if (!session_data_step(s, in))
                return;
            break;
        case SESS_GREETING:
            evbuffer_drain(in, evbuffer_get_length(in));
            s->refused_by = "earlytalk";
            log_info("event=reject sid=%s client=%s stage=connect code=554 status=5.5.0 "
                     "reason=\"talked before greeting\"",
                     s->sid, s->ip);
            session_close(s, "earlytalk", "554 5.5.0 %s Error: talked before greeting",
                          s->srv->cfg->hostname);
            return;
        default:
            return; /* commit, TLS switch or closing: input waits */
        }
    }
}

/*
 * session_eof_close - the client sent EOF and all it sent before is
 * answered: close once the replies are flushed (the write callback frees).
 */
static void session_eof_close(struct session *s)
{
    s->close_reason = "eof";
    s->state = SESS_CLOSING;
    session_set_timeout(s, SESSION_CLOSE_TIMEOUT);
    if (session_direct(s))
        session_queue_flush(s); /* finds nothing to write and closes */
    else if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * session_process - consume buffered input; after EOF, close when nothing
 * waits any more (no TLS handshake can follow a STARTTLS either).
 */
void session_process(struct session *s)
{
    session_consume(s);
    if (s->peer_eof &&
        (s->state == SESS_COMMAND || s->state == SESS_DATA || s->state == SESS_TLS_SWITCH))
        session_eof_close(s);
}

/*
 * session_eof - EOF from the client, which may still be reading: commands
 * it pipelined before (the final dot and QUIT, say) are still answered, and
 * a commit under way still gets its 250, or the client would send the
 * message again. 0 when the session should just end.
 */
static int session_eof(struct session *s)
{
    switch (s->state) {
    case SESS_COMMAND:
    case SESS_DATA:
    case SESS_POLICY:
    case SESS_COMMIT:
    case SESS_TLS_SWITCH:
        s->peer_eof = 1;
        session_process(s); /* in POLICY and COMMIT: again when they resume */
        return 1;
    case SESS_CLOSING:
        return 1; /* the last reply is being flushed; the write callback frees */
    default:
        return 0;
    }
}

/* session_read_cb - new input */
static void session_read_cb(struct bufferevent *bev, void *arg)
{
    session_process(arg);
}

/* session_write_cb - output drained: finish a close or a STARTTLS switch */
static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    /* libevent also calls this for an output that was empty all along (the
     * write event of a fresh bufferevent): only a drained reply counts. */
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (session_direct(s))
        bufferevent_disable(bev, EV_WRITE); /* back to writing it ourselves */
    session_output_drained(s);
}

/* session_tls_done - handshake finished: record what protects the session */
static void session_tls_done(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

    s->tls = 1;
    tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
    log_info("event=tls sid=%s protocol=%s cipher=%s", s->sid, log_q(SSL_get_version(ssl)),
             log_q(SSL_get_cipher_name(ssl)));
    s->state = s->greeted ? SESS_COMMAND : SESS_GREETING;
    session_set_timeout(s, s->srv->conf->timeouts.command);
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
        session_close(s, "timeout", "421 4.4.2 %s Error: timeout exceeded", s->srv->cfg->hostname);
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
    bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_READ_HIGH_WATER);
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
    SSL *ssl = SSL_new(s->srv->tls);

    if (!ssl)
        return -1;
    s->bev = bufferevent_openssl_socket_new(s->srv->base, s->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!s->bev) {
        SSL_free(ssl);
        return -1;
    }
    s->fd_in_bev = 1;
    s->state = SESS_TLS_HANDSHAKE;
    session_setup_bev(s, s->srv->conf->timeouts.command);
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
        s->state = SESS_COMMAND;
    session_reply(s, "220 %s ESMTP mxgate", s->srv->cfg->hostname);
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
    const struct serverconf *sc = s->srv->conf;

    s->greet_wait = SESSION_WAIT_CHECKS;
    if (s->listen->implicit_tls)
        return session_new_tls_bev(s); /* the banner waits in the output until the handshake */
    s->bev = bufferevent_socket_new(s->srv->base, s->fd, BEV_OPT_DEFER_CALLBACKS);
    if (!s->bev)
        return -1;
    /* Until the greeting, any input is early talk (postscreen's pregreet test). */
    s->state = SESS_GREETING;
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
                   const struct sockaddr *sa, socklen_t salen)
{
    struct session *s = calloc(1, sizeof(*s));
    char ip[64];

    if (!srv->flush_ev && !(srv->flush_ev = event_new(srv->base, -1, 0, session_flush_cb, srv))) {
        free(s);
        s = NULL;
    }
    if (!s) {
        log_err("event=error what=\"out of memory\" client=%s", sockaddr_ip(sa, ip, sizeof(ip)));
        close(fd);
        server_ip_release(srv, sa);
        return;
    }
    s->srv = srv;
    s->listen = l;
    s->fd = fd;
    memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
    sockaddr_ip(sa, s->ip, sizeof(s->ip));
    snprintf(s->sid, sizeof(s->sid), "%llx", (unsigned long long)++srv->next_sid);
    LIST_INSERT_HEAD(&srv->sessions, s, entry);
    log_info("event=connect sid=%s client=%s port=%u listener=%s", s->sid, s->ip,
             sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
                                       : ntohs(((const struct sockaddr_in *)sa)->sin_port),
             log_q(l->name));
    if (session_init_io(s) < 0) {
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
    if (srv->flush_ev)
        event_free(srv->flush_ev);
    srv->flush_ev = NULL;
}
