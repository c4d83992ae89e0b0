/*
 * session_message.c - the message as the checks see it: while DATA is read
 * the header section is kept (bounded) and handed over once complete, the
 * body is streamed to the checks that read it (a DKIM body hash); at the
 * final dot the END stage judges the message before the reply, and the
 * fields it decides (Authentication-Results, X-Spam-Status) go into the
 * queue file's prepend, on top of the message.
 *
 * An incoming Authentication-Results field that claims our authserv-id
 * (RFC 8601 5) is a forgery the mail servers behind us would believe: it is
 * not stored. To see its authserv-id, which may follow a fold, such a field
 * is held back until it ends (or FIELD_HOLD_MAX octets of it have come).
 * Where the score check tags messages, incoming X-Spam-Score, X-Spam-Status
 * and X-Spam-Flag fields are not stored either, nor X-Mxgate-DMARC where the
 * dmarc check tags: the servers behind us sort on them, and only ours may
 * say what the verdict was.
 */
#include "smtp/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/header.h"
#include "policy/authres.h"
#include "smtp/server.h"

#define FIELD_HOLD_MAX 8192

/* session_message_begin - DATA starts: the checks that read the text get a message */
void session_message_begin(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    tx->in_header = 1;
    tx->field = FIELD_NONE;
    tx->msg = policy_msg_begin(s->chain, &s->cl);
    s->cl.msg = tx->msg;
    session_sign_begin(s);
}

/* buf_add - append to a growing buffer (kept NUL-terminated) */
static void buf_add(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        while (*cap < *len + n + 1)
            *cap *= 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* msg_header_keep - copy one stored header line, unstuffed, while it fits the bound */
static void msg_header_keep(struct smtp_tx *tx, const char *line, size_t len)
{
    if (len > 0 && line[0] == '.') /* RFC 5321 4.5.2: the checks see the text */
        line++, len--;
    if (tx->hdr_truncated || tx->hdr_len + len > POLICY_HEADER_MAX) {
        tx->hdr_truncated = 1;
        return;
    }
    buf_add(&tx->hdr, &tx->hdr_len, &tx->hdr_cap, line, len);
}

/* msg_store - a header line that stays: into the spool and the checks' copy */
static void msg_store(struct session *s, const char *line, size_t len)
{
    if (session_data_write(s, line, len) == 0)
        msg_header_keep(s->tx, line, len);
}

/* msg_claims_ours - does the held Authentication-Results field name our authserv-id */
static int msg_claims_ours(const struct session *s)
{
    const struct smtp_tx *tx = s->tx;
    const char *colon = memchr(tx->held, ':', tx->held_len);

    return colon && authres_claims(colon + 1, tx->held_len - (size_t)(colon + 1 - tx->held),
                                   s->gen->cfg->authserv_id);
}

/* msg_decide - the held field is complete (or long enough): drop it, or store it */
static void msg_decide(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    const char *line = tx->held, *end = tx->held + tx->held_len;

    if (msg_claims_ours(s)) {
        log_info("event=field_removed sid=%s client=%s field=Authentication-Results "
                 "why=\"claims our authserv-id\"",
                 s->sid, s->ip);
        tx->field = FIELD_DROP;
    } else {
        tx->field = FIELD_PASS;
        while (line < end) { /* line by line: the checks' copy unstuffs each */
            const char *lf = memchr(line, '\n', (size_t)(end - line));
            size_t n = lf ? (size_t)(lf - line) + 1 : (size_t)(end - line);
            msg_store(s, line, n);
            line += n;
        }
    }
    tx->held_len = 0;
}

/* msg_named - the line starts field name (with its colon, as RFC 5322 allows no space) */
static int msg_named(const char *p, size_t len, const char *name)
{
    size_t n = strlen(name);

    return len > n && strncasecmp(p, name, n) == 0 && p[n] == ':';
}

/* msg_verdict_field - one of the fields a check of this session's chain writes */
static int msg_verdict_field(const struct session *s, const char *p, size_t len)
{
    if (policy_has_check(s->chain, "score") &&
        (msg_named(p, len, "X-Spam-Score") || msg_named(p, len, "X-Spam-Status") ||
         msg_named(p, len, "X-Spam-Flag")))
        return 1;
    if (policy_has_check(s->chain, "clamd") && msg_named(p, len, "X-Mxgate-Virus-Scan"))
        return 1;
    return policy_has_check(s->chain, "dmarc") && msg_named(p, len, "X-Mxgate-DMARC");
}

/* msg_field_start - a line that begins a field: Authentication-Results is held */
static void msg_field_start(struct session *s, const char *line, size_t len)
{
    struct smtp_tx *tx = s->tx;
    const char *p = line[0] == '.' ? line + 1 : line;
    size_t n = (size_t)(line + len - p);

    if (msg_verdict_field(s, p, n)) {
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(p, ":"), p);
        log_info("event=field_removed sid=%s client=%s field=%s why=\"ours to write\"", s->sid,
                 s->ip, log_q(name));
        tx->field = FIELD_DROP;
    } else if (msg_named(p, n, "Authentication-Results")) {
        tx->field = FIELD_HOLD;
        buf_add(&tx->held, &tx->held_len, &tx->held_cap, line, len);
    } else {
        tx->field = FIELD_PASS;
        msg_store(s, line, len);
    }
}

/* msg_field_end - the current field ended: a held one is decided now */
static void msg_field_end(struct session *s)
{
    if (s->tx->field == FIELD_HOLD)
        msg_decide(s);
    s->tx->field = FIELD_NONE;
}

/* msg_header_done - the header section is complete: the checks get it once */
static void msg_header_done(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    msg_field_end(s);
    tx->in_header = 0;
    s->cl.header = tx->hdr ? tx->hdr : "";
    s->cl.header_len = tx->hdr_len;
    s->cl.header_truncated = tx->hdr_truncated;
    policy_msg_header(tx->msg, s->cl.header, tx->hdr_len, tx->hdr_truncated);
}

void session_message_header_line(struct session *s, const char *line, size_t len)
{
    struct smtp_tx *tx = s->tx;

    if (len == 2 && line[0] == '\r' && line[1] == '\n') {
        msg_header_done(s);
        if (session_data_write(s, line, len) == 0) /* the empty line belongs to neither */
            tx->body_off = spool_writer_size(tx->writer);
        return;
    }
    if (!hdr_line_continues(line, len) || tx->field == FIELD_NONE) {
        msg_field_end(s);
        msg_field_start(s, line, len);
    } else if (tx->field == FIELD_PASS) {
        msg_store(s, line, len);
    } else if (tx->field == FIELD_HOLD) {
        buf_add(&tx->held, &tx->held_len, &tx->held_cap, line, len);
        if (tx->held_len > FIELD_HOLD_MAX) /* the authserv-id comes first: enough to decide */
            msg_decide(s);
    }
    /* FIELD_DROP: the rest of a dropped field goes with it */
}

/* session_message_body_line - a stored body line (dot-stuffed) to the checks that read it */
void session_message_body_line(struct session *s, const char *line, size_t len)
{
    if (len > 0 && line[0] == '.')
        line++, len--;
    session_sign_body(s, line, len);
    if (s->tx->msg)
        policy_msg_body(s->tx->msg, line, len);
}

/* session_message_end - the final dot: a message without a body ends its header here */
void session_message_end(struct session *s)
{
    if (s->tx->in_header)
        msg_header_done(s);
}

char *session_message_fields(struct session *s)
{
    char value[AUTHRES_MAX];
    char *out = session_sign_fields(s); /* first: nothing of ours above it is signed */
    size_t len = out ? strlen(out) : 0, cap = out ? len + 1 : 0;

    if (s->chain && authres_format(&s->cl, s->gen->cfg->authserv_id, value, sizeof(value)) == 0) {
        buf_add(&out, &len, &cap, "Authentication-Results: ", 24);
        buf_add(&out, &len, &cap, value, strlen(value));
        buf_add(&out, &len, &cap, "\r\n", 2);
    }
    if (s->cl.add_headers)
        buf_add(&out, &len, &cap, s->cl.add_headers, strlen(s->cl.add_headers));
    free(s->cl.add_headers);
    s->cl.add_headers = NULL;
    return out;
}

/* session_message_free - the transaction ends: the checks' message data goes */
void session_message_free(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    policy_msg_free(tx->msg);
    tx->msg = NULL;
    session_sign_free(s);
    free(tx->hdr);
    free(tx->held);
    tx->hdr = tx->held = NULL;
    tx->hdr_len = tx->hdr_cap = tx->held_len = tx->held_cap = 0;
    s->cl.msg = NULL;
    policy_edit_free(s->cl.edit);
    s->cl.edit = NULL;
    s->cl.queue_id = NULL;
    s->cl.header = NULL;
    s->cl.header_len = 0;
    s->cl.header_truncated = 0;
}
