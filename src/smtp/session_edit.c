/*
 * session_edit.c - a check's edits of the message (a milter's changed or
 * deleted header field, its replaced body) reach the stored message: the
 * queue file is still in tmp/ at the end of DATA, so the header section
 * (from the checks' copy, which is what the check saw and indexed) and the
 * body are rewritten in place before the prepend and the commit
 * (spool_writer_splice). Nothing new in the queue format: delivery and a
 * restart see an ordinary message.
 */
#include "smtp/session_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"

struct edit_buf {
    char *p;
    size_t len, cap;
};

static void eb_add(struct edit_buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = b->cap ? b->cap : 4096;
        while (b->cap < b->len + n + 1)
            b->cap *= 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* eb_stuffed - text in CRLF lines as the queue file keeps it: a bare LF becomes
 * CRLF, a line starting with "." gets another (RFC 5321 4.5.2) */
static void eb_stuffed(struct edit_buf *b, const char *p, size_t n, int *bol)
{
    for (size_t i = 0; i < n; i++) {
        if (*bol && p[i] == '.')
            eb_add(b, ".", 1);
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            eb_add(b, "\r", 1);
        if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n')) {
            eb_add(b, "\r\n", 2); /* a bare CR is no line end we store */
            *bol = 1;
            continue;
        }
        eb_add(b, p + i, 1);
        *bol = p[i] == '\n';
    }
}

/* edit_find - the edit for the n-th field called name, or NULL */
static struct policy_edit_field *edit_find(struct policy_edit *e, const char *name, size_t nlen,
                                           unsigned n)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (strlen(e->fields[i].name) == nlen && strncasecmp(e->fields[i].name, name, nlen) == 0 &&
            e->fields[i].index == n)
            return &e->fields[i];
    return NULL;
}

/* edit_count - fields called name before end */
static unsigned edit_count(const char *h, const char *end, const char *name, size_t nlen)
{
    unsigned n = 0;

    for (const char *p = h; p < end;) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (*p != ' ' && *p != '\t' && (size_t)(end - p) > nlen && p[nlen] == ':' &&
            strncasecmp(p, name, nlen) == 0)
            n++;
        p = lf ? lf + 1 : end;
    }
    return n;
}

/* edit_field_out - one field, changed or as it was */
static void edit_field_out(struct edit_buf *b, struct policy_edit_field *f, const char *p, size_t n,
                           int *bol)
{
    if (!f) {
        eb_stuffed(b, p, n, bol);
    } else if (f->value) {
        eb_stuffed(b, f->name, strlen(f->name), bol);
        eb_add(b, ": ", 2);
        eb_stuffed(b, f->value, strlen(f->value), bol);
        eb_add(b, "\r\n", 2);
        *bol = 1;
    }
    if (f)
        f->index = 0; /* used: not added at the end */
}

/* edit_header - the new header section (without the empty line) */
static void edit_header(struct session *s, struct edit_buf *b)
{
    struct policy_edit *e = s->cl.edit;
    const char *h = s->tx->hdr ? s->tx->hdr : "", *end = h + s->tx->hdr_len;
    int bol = 1;

    for (const char *p = h; p < end;) {
        const char *e2 = p, *colon;
        do {
            const char *lf = memchr(e2, '\n', (size_t)(end - e2));
            e2 = lf ? lf + 1 : end;
        } while (e2 < end && (*e2 == ' ' || *e2 == '\t'));
        colon = memchr(p, ':', (size_t)(e2 - p));
        size_t nlen = colon ? strcspn(p, ": \t") : 0;
        struct policy_edit_field *f =
            nlen ? edit_find(e, p, nlen, edit_count(h, p, p, nlen) + 1) : NULL;
        edit_field_out(b, f, p, (size_t)(e2 - p), &bol);
        p = e2;
    }
    for (size_t i = 0; i < e->nfields; i++) /* a change of a field not there adds it */
        if (e->fields[i].index && e->fields[i].value)
            edit_field_out(b, &e->fields[i], NULL, 0, &bol);
}

/* edit_body - the replaced body, as stored; with the empty line when none was there */
static int edit_body(struct session *s, uint64_t size)
{
    struct smtp_tx *tx = s->tx;
    struct policy_edit *e = s->cl.edit;
    struct edit_buf b = {0};
    uint64_t off = tx->body_off ? tx->body_off : size;
    int bol = 1, rc;

    if (!tx->body_off)
        eb_add(&b, "\r\n", 2);
    eb_stuffed(&b, e->body, e->body_len, &bol);
    if (!bol)
        eb_add(&b, "\r\n", 2);
    rc = spool_writer_splice(tx->writer, off, size - off, b.p ? b.p : "", b.len);
    if (rc == 0) {
        size_t sep = tx->body_off ? 0 : 2; /* the empty line added before a new body */
        session_sign_rebody(s, b.p ? b.p + sep : "", b.len - sep);
    }
    if (rc == 0 && !tx->body_off)
        tx->body_off = off + 2;
    free(b.p);
    return rc;
}

void session_unstuffed(const char *p, size_t n, void (*fn)(void *arg, const char *p, size_t n),
                       void *arg)
{
    for (size_t i = 0; i < n;) {
        const char *lf = memchr(p + i, '\n', n - i);
        size_t end = lf ? (size_t)(lf - p) + 1 : n, skip = p[i] == '.';

        fn(arg, p + i + skip, end - i - skip);
        i = end;
    }
}

static void hdr_add(void *arg, const char *p, size_t n)
{
    struct smtp_tx *tx = arg;

    memcpy(tx->hdr + tx->hdr_len, p, n);
    tx->hdr_len += n;
}

/* edit_keep_header - the checks' copy of the header becomes the stored one h (what the
 * signatures and the log's message-id see) */
static void edit_keep_header(struct session *s, const char *h, size_t n)
{
    struct smtp_tx *tx = s->tx;

    tx->hdr = xrealloc(tx->hdr, n + 1);
    tx->hdr_cap = n + 1;
    tx->hdr_len = 0;
    session_unstuffed(h, n, hdr_add, tx);
    tx->hdr[tx->hdr_len] = '\0';
    tx->hdr_truncated = tx->hdr_len > POLICY_HEADER_MAX;
    s->cl.header = tx->hdr;
    s->cl.header_len = tx->hdr_len;
    s->cl.header_truncated = tx->hdr_truncated;
}

int session_edit_apply(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    struct policy_edit *e = s->cl.edit;
    uint64_t size = spool_writer_size(tx->writer), hdr_end;
    struct edit_buf b = {0};
    int rc = 0;

    if (!e)
        return 0;
    if (e->body_set)
        rc = edit_body(s, size);
    hdr_end = tx->body_off ? tx->body_off - 2 : spool_writer_size(tx->writer);
    if (rc == 0 && e->nfields && tx->hdr_truncated) {
        log_warn("event=edit sid=%s id=%s by=%s what=\"header not changed\" "
                 "why=\"header section too long\"",
                 s->sid, tx->id, log_q(e->by));
    } else if (rc == 0 && e->nfields) {
        edit_header(s, &b);
        rc = spool_writer_splice(tx->writer, tx->hdr_off, hdr_end - tx->hdr_off, b.p ? b.p : "",
                                 b.len);
        if (rc == 0)
            edit_keep_header(s, b.p ? b.p : "", b.len);
    }
    if (rc < 0)
        log_err("event=error sid=%s what=\"spool edit\" error=%s", s->sid, log_q(strerror(errno)));
    else
        log_info("event=edit sid=%s id=%s by=%s fields=%zu body=%s", s->sid, tx->id, log_q(e->by),
                 e->nfields, e->body_set ? "replaced" : "kept");
    free(b.p);
    return rc;
}
