/* session_io.c - the session's bytes: replies out (with backpressure), command lines in */
#include "smtp/session_internal.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "mail/address.h"
#include "smtp/server.h"
#include "smtp/serverconf.h"

/*
 * A client that pipelines commands and never reads its replies would make
 * them pile up here without end (the kernel's socket buffers fill first).
 * Past this many unsent octets its input waits, unread, until the replies
 * drain: what a session holds stays bounded by this, plus the command
 * reading's single read and the largest reply of one command.
 */
#define SESSION_OUT_HIGH 1024
#define SESSION_CLOSE_TIMEOUT 10

/*
 * Plaintext replies are written by us, not by the bufferevent: every reply
 * made during a loop turn goes out in one writev at the end of the turn, and
 * the socket's write event is only armed when the kernel would not take it
 * all. Left to the bufferevent, each reply costs two epoll_ctl calls (arm the
 * write event, disarm it a turn later). TLS sessions keep the bufferevent's
 * writing, which encrypts.
 */
int session_direct(const struct session *s)
{
    return !s->fd_in_bev;
}

/*
 * session_resume - the replies drained: take input again. The read callback
 * runs deferred, in a later pass of the loop, so one client that reads fast
 * does not keep the loop to itself.
 */
static void session_resume(struct session *s)
{
    s->out_paused = 0;
    if (!s->peer_eof && (s->state == SESS_COMMAND || s->state == SESS_DATA))
        bufferevent_enable(s->bev, EV_READ);
    bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}

/* session_output_drained - every reply is out: finish a close or a STARTTLS switch, or resume */
static void session_output_drained(struct session *s)
{
    if (s->state == SESS_CLOSING)
        session_free(s);
    else if (s->state == SESS_TLS_SWITCH)
        session_starttls_switch(s);
    else if (s->out_paused)
        session_resume(s);
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

/* session_flush_queued - end of the loop turn: write every queued session's replies */
void session_flush_queued(struct server *srv)
{
    struct session *s;

    while ((s = LIST_FIRST(&srv->flushq)) != NULL) {
        LIST_REMOVE(s, flush_entry);
        s->flush_queued = 0;
        session_flush(s);
    }
}

/* session_queue_flush - have s's output written at the end of this loop turn */
void session_queue_flush(struct session *s)
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
    session_set_state(s, SESS_CLOSING);
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
    if (++s->nerrors >= s->gen->conf->limits.max_errors)
        session_close(s, "errors", "421 4.7.0 %s Error: too many errors", s->gen->cfg->hostname);
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
    if (++s->ncommands > s->gen->conf->limits.max_commands) {
        session_close(s, "commands", "421 4.7.0 %s Error: too many commands",
                      s->gen->cfg->hostname);
        return 1;
    }
    if (session_line_error(s, line, len))
        return 1;
    line[len - 1] = '\0';
    session_command(s, line, len - 1);
    return 1;
}

/*
 * session_out_full - the client is not reading its replies: stop reading its
 * input (the kernel's buffers then hold the client back) until they drain.
 */
static int session_out_full(struct session *s)
{
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) <= SESSION_OUT_HIGH)
        return 0;
    if (!s->out_paused)
        log_debug("event=backpressure sid=%s client=%s", s->sid, s->ip);
    s->out_paused = 1;
    bufferevent_disable(s->bev, EV_READ);
    return 1;
}

/* session_early_talk - input before the greeting: refuse the client */
static void session_early_talk(struct session *s, struct evbuffer *in)
{
    evbuffer_drain(in, evbuffer_get_length(in));
    s->refused_by = "earlytalk";
    log_info("event=reject sid=%s client=%s stage=connect code=554 status=5.5.0 "
             "reason=\"talked before greeting\"",
             s->sid, s->ip);
    session_close(s, "earlytalk", "554 5.5.0 %s Error: talked before greeting",
                  s->gen->cfg->hostname);
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
            if (session_out_full(s) || !session_command_step(s, in))
                return;
            break;
        case SESS_DATA:
            if (session_out_full(s) || !session_data_step(s, in))
                return;
            break;
        case SESS_GREETING:
            session_early_talk(s, in);
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
    session_set_state(s, SESS_CLOSING);
    session_set_timeout(s, SESSION_CLOSE_TIMEOUT);
    if (session_direct(s))
        session_queue_flush(s); /* finds nothing to write and closes */
    else if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * session_process - consume buffered input; after EOF, close when nothing
 * waits any more (no TLS handshake can follow a STARTTLS either). Paused
 * input is not "nothing": it is answered once the replies drain.
 */
void session_process(struct session *s)
{
    session_consume(s);
    if (s->peer_eof && !s->out_paused &&
        (s->state == SESS_COMMAND || s->state == SESS_DATA || s->state == SESS_TLS_SWITCH))
        session_eof_close(s);
}

/*
 * session_eof - EOF from the client, which may still be reading: commands
 * it pipelined before (the final dot and QUIT, say) are still answered, and
 * a commit under way still gets its 250, or the client would send the
 * message again. 0 when the session should just end.
 */
int session_eof(struct session *s)
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

/* session_read_cb - new input (or a resume after the replies drained) */
void session_read_cb(struct bufferevent *bev, void *arg)
{
    session_process(arg);
}

/* session_write_cb - output drained: finish a close or a STARTTLS switch, or resume */
void session_write_cb(struct bufferevent *bev, void *arg)
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
