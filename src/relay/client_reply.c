/* client_reply.c - reading the peer's replies (bounded, long lines cut, not refused) and
 * giving each recipient its result */
#include "relay/client_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* cl_stage_name - the command whose reply is awaited, for messages */
const char *cl_stage_name(const struct smtp_client *c)
{
    static const char *const names[] = {
        [ST_CONNECT] = "connect",   [ST_GREETING] = "greeting", [ST_EHLO] = "EHLO",
        [ST_HELO] = "HELO",         [ST_STARTTLS] = "STARTTLS", [ST_TLS] = "TLS handshake",
        [ST_MAIL] = "MAIL FROM",    [ST_RCPT] = "RCPT TO",      [ST_DATA] = "DATA",
        [ST_BODY] = "message body", [ST_DOT] = "end of data",   [ST_QUIT] = "QUIT",
        [ST_DONE] = "end",          [ST_REUSE] = "MAIL FROM",
    };
    if (c->st == ST_EHLO && c->req.lmtp)
        return "LHLO";
    return names[c->st];
}

/* append_clean - append n peer bytes to the string dst, control and 8-bit
 * bytes replaced by '?' so that logs and DSNs stay printable; truncates */
static void append_clean(char *dst, size_t size, const char *src, size_t n)
{
    size_t len = strlen(dst);

    for (size_t i = 0; i < n && len + 1 < size; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[len++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[len] = '\0';
}

/* cl_set_rcpt - record the final status of recipient i */
void cl_set_rcpt(struct smtp_client *c, size_t i, int code, const char *text)
{
    c->res.rcpt[i].code = code;
    snprintf(c->res.rcpt[i].text, sizeof c->res.rcpt[i].text, "%s", text);
    c->rflags[i] |= RF_FINAL;
}

/* cl_vfail_all - give every recipient without a final status this one */
void cl_vfail_all(struct smtp_client *c, int code, const char *fmt, va_list ap)
{
    char text[sizeof c->res.rcpt[0].text];

    if (vsnprintf(text, sizeof text, fmt, ap) < 0)
        snprintf(text, sizeof text, "delivery failed");
    for (size_t i = 0; i < c->req.nrcpt; i++) {
        if (c->rflags[i] & RF_FINAL)
            continue;
        cl_set_rcpt(c, i, code, text);
        /* the whole message went out: without the reply to the final dot
         * nobody knows whether the peer stored it */
        c->res.rcpt[i].maybe_delivered = c->st == ST_DOT && code == 0 && (c->rflags[i] & RF_OK);
    }
}

/* cl_fail_all - vfail_all with variable arguments */
__attribute__((format(printf, 3, 4))) void cl_fail_all(struct smtp_client *c, int code,
                                                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cl_vfail_all(c, code, fmt, ap);
    va_end(ap);
}

/* cl_reply_to - give recipient i the current reply; ok says whether a 2xx is
 * a valid final answer at this stage (any other class is a protocol error).
 * A probe asks about recipients: a refused greeting, EHLO or MAIL says
 * nothing about them, so it is no answer (code 0) with the reply as text. */
void cl_reply_to(struct smtp_client *c, size_t i, int ok)
{
    char text[sizeof c->res.rcpt[0].text];
    int probe_other = c->req.probe && c->st != ST_RCPT;

    if (!probe_other && (c->rcode >= 400 || (ok && c->rcode / 100 == 2))) {
        cl_set_rcpt(c, i, c->rcode, c->rtext);
        return;
    }
    if (snprintf(text, sizeof text,
                 probe_other ? "no RCPT reply: %s got %d %s"
                             : "protocol error: unexpected reply to %s: %d %s",
                 cl_stage_name(c), c->rcode, c->rtext) < 0)
        text[0] = '\0';
    cl_set_rcpt(c, i, 0, text);
}

/* cl_reply_to_all - reply_to for every recipient still without a final status */
void cl_reply_to_all(struct smtp_client *c, int ok)
{
    for (size_t i = 0; i < c->req.nrcpt; i++)
        if (!(c->rflags[i] & RF_FINAL))
            cl_reply_to(c, i, ok);
}

/* cl_next_rcpt - the first recipient at or after i carrying flag, or nrcpt */
size_t cl_next_rcpt(const struct smtp_client *c, size_t i, unsigned flag)
{
    while (i < c->req.nrcpt && !(c->rflags[i] & flag))
        i++;
    return i;
}

/* ext_parse - note one EHLO keyword line (RFC 5321 4.1.1.1) */
static void ext_parse(struct smtp_client *c, const char *t)
{
    static const struct {
        const char *kw;
        unsigned flag;
    } kws[] = {
        {"PIPELINING", SMTP_EXT_PIPELINING}, {"SIZE", SMTP_EXT_SIZE},
        {"8BITMIME", SMTP_EXT_8BITMIME},     {"STARTTLS", SMTP_EXT_STARTTLS},
        {"SMTPUTF8", SMTP_EXT_SMTPUTF8},     {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCED},
    };
    size_t n = strcspn(t, " ");

    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
        if (strlen(kws[i].kw) == n && strncasecmp(t, kws[i].kw, n) == 0)
            c->ext |= kws[i].flag;
    if (n == 4 && strncasecmp(t, "SIZE", 4) == 0 && t[4] == ' ' && t[5] >= '0' && t[5] <= '9') {
        errno = 0;
        c->size_max = strtoull(t + 5, NULL, 10);
        if (errno == ERANGE)
            c->size_max = 0; /* beyond any body we could send */
    }
}

/* reply_line - add one line to the reply being read; 1 when the reply is
 * complete, 0 when more lines follow, -1 (c->perr set) when malformed */
static int reply_line(struct smtp_client *c, const char *line, size_t len)
{
    const char *t = len > 4 ? line + 4 : "";

    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
        c->perr = "malformed reply";
        return -1;
    }
    if (c->rlines == 0) {
        c->rcode = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        c->rtext[0] = '\0';
        if (c->st == ST_GREETING && c->res.peer_greeting[0] == '\0')
            append_clean(c->res.peer_greeting, sizeof c->res.peer_greeting, line, len);
    } else if (c->rtext[0] != '\0') {
        append_clean(c->rtext, sizeof c->rtext, " ", 1);
    }
    if (++c->rlines > REPLY_LINES_MAX) {
        c->perr = "too many reply lines";
        return -1;
    }
    append_clean(c->rtext, sizeof c->rtext, t, len > 4 ? len - 4 : 0);
    if (c->st == ST_EHLO && c->rlines > 1)
        ext_parse(c, t);
    if (len > 3 && line[3] == '-')
        return 0;
    c->rlines = 0;
    return 1;
}

/*
 * reply_read - take lines from the input until a reply is complete; 1
 * then, 0 when no complete line is left, -1 (c->perr set) on bad input.
 * A line longer than REPLY_LINE_MAX is not an error: its first
 * REPLY_LINE_MAX octets are kept (the code and the start of the text) and
 * the rest is dropped as it arrives, so that a peer that stored the
 * message and says so at length is still understood.
 */
int cl_reply_read(struct smtp_client *c, struct evbuffer *in)
{
    char line[REPLY_LINE_MAX + 1];
    int r = 0;

    while (r == 0) {
        size_t eol = 0, len = evbuffer_get_length(in), take;
        struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
        if (p.pos < 0 && !c->rlong && len <= REPLY_LINE_MAX + 1)
            return 0; /* the +1 is a CR waiting for its LF */
        if (p.pos < 0 || c->rlong || p.pos > REPLY_LINE_MAX) {
            if (!c->rlong) { /* keep the start of the long line */
                int n = evbuffer_remove(in, c->rline, REPLY_LINE_MAX);
                if (n < 0) {
                    c->perr = "cannot read reply";
                    return -1;
                }
                c->rlong = 1;
                c->rlong_len = (size_t)n;
                continue;
            }
            if (p.pos < 0) { /* drop all but a CR that may start the CRLF */
                take = len > 0 && evbuffer_pullup(in, len)[len - 1] == '\r' ? len - 1 : len;
                evbuffer_drain(in, take);
                return 0;
            }
            evbuffer_drain(in, (size_t)p.pos + eol);
            c->rlong = 0;
            memcpy(line, c->rline, c->rlong_len);
            p.pos = (ev_ssize_t)c->rlong_len;
        } else if (evbuffer_remove(in, line, (size_t)p.pos) != p.pos ||
                   evbuffer_drain(in, eol) != 0) {
            c->perr = "cannot read reply";
            return -1;
        }
        line[p.pos] = '\0';
        r = reply_line(c, line, (size_t)p.pos);
    }
    return r;
}
