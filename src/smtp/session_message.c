/*
 * session_message.c - the message as the checks see it: while DATA is read
 * the header section is kept (bounded) and handed over once complete, the
 * body is streamed to the checks that read it (a DKIM body hash); at the
 * final dot the END stage judges the message before the reply, and the
 * fields it decides (X-Spam-Status, Authentication-Results) go into the
 * queue file's prepend, on top of the message.
 */
#include "smtp/session_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* session_message_begin - DATA starts: the checks that read the text get a message */
void session_message_begin(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    tx->in_header = 1;
    tx->msg = policy_msg_begin(s->chain, &s->cl);
    s->cl.msg = tx->msg;
}

/* msg_header_keep - copy one header line, unstuffed, while it fits the bound */
static void msg_header_keep(struct smtp_tx *tx, const char *line, size_t len)
{
    if (len > 0 && line[0] == '.') /* RFC 5321 4.5.2: the checks see the text */
        line++, len--;
    if (tx->hdr_truncated || tx->hdr_len + len > POLICY_HEADER_MAX) {
        tx->hdr_truncated = 1;
        return;
    }
    if (tx->hdr_len + len + 1 > tx->hdr_cap) {
        tx->hdr_cap = tx->hdr_cap ? tx->hdr_cap * 2 : 4096;
        while (tx->hdr_cap < tx->hdr_len + len + 1)
            tx->hdr_cap *= 2;
        tx->hdr = xrealloc(tx->hdr, tx->hdr_cap);
    }
    memcpy(tx->hdr + tx->hdr_len, line, len);
    tx->hdr_len += len;
    tx->hdr[tx->hdr_len] = '\0';
}

/* msg_header_done - the header section is complete: the checks get it once */
static void msg_header_done(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    tx->in_header = 0;
    s->cl.header = tx->hdr ? tx->hdr : "";
    s->cl.header_len = tx->hdr_len;
    s->cl.header_truncated = tx->hdr_truncated;
    policy_msg_header(tx->msg, s->cl.header, tx->hdr_len, tx->hdr_truncated);
}

/* session_message_line - one text line (still dot-stuffed, with its CRLF) as stored */
void session_message_line(struct session *s, const char *line, size_t len)
{
    struct smtp_tx *tx = s->tx;

    if (tx->in_header) {
        if (len == 2 && line[0] == '\r' && line[1] == '\n') {
            msg_header_done(s); /* the empty line belongs to neither */
            return;
        }
        msg_header_keep(tx, line, len);
        return;
    }
    if (!tx->msg)
        return;
    if (len > 0 && line[0] == '.')
        line++, len--;
    policy_msg_body(tx->msg, line, len);
}

/* session_message_end - the final dot: a message without a body ends its header here */
void session_message_end(struct session *s)
{
    if (s->tx->in_header)
        msg_header_done(s);
}

/* session_message_free - the transaction ends: the checks' message data goes */
void session_message_free(struct session *s)
{
    struct smtp_tx *tx = s->tx;

    policy_msg_free(tx->msg);
    tx->msg = NULL;
    free(tx->hdr);
    tx->hdr = NULL;
    s->cl.msg = NULL;
    s->cl.header = NULL;
    s->cl.header_len = 0;
    s->cl.header_truncated = 0;
}
