/*
 * dkim_canon.c - canonicalisation (RFC 6376 3.4): header fields one at a
 * time, and the body streamed into its SHA-256 as it arrives.
 *
 * The body is read octet by octet through a small state machine, so a
 * message is never held whole: an empty line only bumps a count, and the
 * count is written out when a line with content follows (3.4.3, 3.4.4: empty
 * lines at the end of the body are not hashed). Relaxed white space is held
 * as one flag until a non-WSP octet on the same line shows it is inner
 * (one SP) rather than trailing (nothing).
 */
#include "mail/dkim.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/xmalloc.h"

void dkim_buf_add(struct dkim_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0'; /* for the tests and the logs; not part of the data */
}

void dkim_buf_free(struct dkim_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static EVP_MD *dkim_md;
static pthread_once_t dkim_md_once = PTHREAD_ONCE_INIT;

static void dkim_md_fetch(void)
{
    dkim_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!dkim_md)
        log_panic("event=dkim what=\"no SHA-256\"");
}

/* dkim_sha256 - SHA-256 fetched once: OpenSSL 3 looks an implicit EVP_sha256() up
 * again, under a lock, at every use */
const EVP_MD *dkim_sha256(void)
{
    pthread_once(&dkim_md_once, dkim_md_fetch);
    return dkim_md;
}

static int dkim_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* dkim_canon_relaxed - 3.4.2: lower-case name; unfolded value with WSP runs as one
 * SP, no WSP at either end; no WSP around the colon */
static void dkim_canon_relaxed(const char *f, size_t len, struct dkim_buf *out)
{
    const char *colon = memchr(f, ':', len);
    size_t n = colon ? (size_t)(colon - f) : len, i;
    int wsp = 0, any = 0;

    while (n > 0 && dkim_wsp(f[n - 1]))
        n--;
    for (i = 0; i < n; i++) {
        char c = f[i] >= 'A' && f[i] <= 'Z' ? (char)(f[i] - 'A' + 'a') : f[i];
        dkim_buf_add(out, &c, 1);
    }
    dkim_buf_add(out, ":", 1);
    for (i = colon ? (size_t)(colon - f) + 1 : len; i < len; i++) {
        char c = f[i];
        if (c == '\r' || c == '\n')
            continue; /* unfold */
        if (dkim_wsp(c)) {
            wsp = any; /* leading WSP goes */
            continue;
        }
        if (wsp)
            dkim_buf_add(out, " ", 1);
        wsp = 0;
        any = 1;
        dkim_buf_add(out, &c, 1);
    }
    dkim_buf_add(out, "\r\n", 2);
}

void dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct dkim_buf *out)
{
    if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
        len -= 2;
    if (c == DKIM_CANON_RELAXED) {
        dkim_canon_relaxed(field, len, out);
        return;
    }
    dkim_buf_add(out, field, len); /* simple: as it is (3.4.1) */
    dkim_buf_add(out, "\r\n", 2);
}

#define DKIM_BODY_CHUNK 4096

struct dkim_body {
    enum dkim_canon canon;
    long long limit;          /* -1: none */
    unsigned long long total; /* canonical octets so far, hashed or not */
    unsigned long long blank; /* empty lines held back */
    int cr;                   /* a CR was the last octet */
    int content;              /* the current line has content */
    int wsp;                  /* relaxed: WSP held on the current line */
    int done, short_body;     /* dkim_body_final ran; the body was shorter than limit */
    unsigned char digest[DKIM_HASH_LEN];
    EVP_MD_CTX *md;
    size_t n; /* octets in out, not yet hashed */
    char out[DKIM_BODY_CHUNK];
};

struct dkim_body *dkim_body_new(enum dkim_canon c, long long limit)
{
    struct dkim_body *b = xcalloc(1, sizeof(*b));

    b->canon = c;
    b->limit = limit;
    b->md = EVP_MD_CTX_new();
    if (!b->md || EVP_DigestInit_ex(b->md, dkim_sha256(), NULL) != 1)
        log_panic("event=dkim what=\"no SHA-256\"");
    return b;
}

/* dkim_body_flush - hash what out holds */
static void dkim_body_flush(struct dkim_body *b)
{
    if (b->n > 0)
        EVP_DigestUpdate(b->md, b->out, b->n);
    b->n = 0;
}

/* dkim_body_emit - canonical octets: counted, and hashed up to the limit */
static void dkim_body_emit(struct dkim_body *b, const char *p, size_t len)
{
    size_t take = len;

    if (b->limit >= 0) {
        unsigned long long room =
            b->total >= (unsigned long long)b->limit ? 0 : (unsigned long long)b->limit - b->total;
        if (take > room)
            take = (size_t)room;
    }
    b->total += len;
    while (take > 0) {
        size_t k = take < sizeof(b->out) - b->n ? take : sizeof(b->out) - b->n;
        memcpy(b->out + b->n, p, k);
        b->n += k;
        p += k;
        take -= k;
        if (b->n == sizeof(b->out))
            dkim_body_flush(b);
    }
}

/* dkim_body_content - an octet of line content: held empty lines and WSP first */
static void dkim_body_content(struct dkim_body *b, char c)
{
    if (!b->content) {
        for (; b->blank > 0; b->blank--)
            dkim_body_emit(b, "\r\n", 2);
        b->content = 1;
    }
    if (b->wsp)
        dkim_body_emit(b, " ", 1);
    b->wsp = 0;
    dkim_body_emit(b, &c, 1);
}

/* dkim_body_eol - a CRLF: ends a line with content, or counts an empty one */
static void dkim_body_eol(struct dkim_body *b)
{
    if (b->content)
        dkim_body_emit(b, "\r\n", 2);
    else
        b->blank++;
    b->content = 0;
    b->wsp = 0; /* relaxed: WSP at the end of a line goes */
}

/* dkim_body_plain_octet - relaxed: an octet that is copied as it is */
static int dkim_body_plain_octet(char c)
{
    return c != '\r' && c != ' ' && c != '\t';
}

/* dkim_body_plain - octets from i on (data[i] is plain) that canonicalise to
 * themselves: all but CR; in relaxed mode also a single SP between two such octets
 * (the one SP a WSP run becomes); their count */
static size_t dkim_body_plain(const struct dkim_body *b, const char *data, size_t len, size_t i)
{
    size_t j = i + 1;

    if (b->canon == DKIM_CANON_SIMPLE) {
        const char *cr = memchr(data + i, '\r', len - i);
        return (cr ? (size_t)(cr - data) : len) - i;
    }
    while (j < len) {
        if (dkim_body_plain_octet(data[j]))
            j++;
        else if (data[j] == ' ' && j + 1 < len && dkim_body_plain_octet(data[j + 1]))
            j += 2;
        else
            break;
    }
    return j - i;
}

void dkim_body_update(struct dkim_body *b, const char *data, size_t len)
{
    for (size_t i = 0; i < len;) {
        char c = data[i];
        size_t run;
        if (b->cr) {
            b->cr = 0;
            if (c == '\n') {
                dkim_body_eol(b);
                i++;
                continue;
            }
            dkim_body_content(b, '\r'); /* a bare CR is content */
        }
        if (c == '\r') {
            b->cr = 1;
            i++;
        } else if (b->canon == DKIM_CANON_RELAXED && dkim_wsp(c)) {
            b->wsp = 1;
            i++;
        } else {
            /* a run of plain octets: the first decides what is held, the rest is copied */
            run = dkim_body_plain(b, data, len, i);
            dkim_body_content(b, c);
            dkim_body_emit(b, data + i + 1, run - 1);
            i += run;
        }
    }
}

int dkim_body_final(struct dkim_body *b, unsigned char out[DKIM_HASH_LEN])
{
    if (!b->done) {
        if (b->cr)
            dkim_body_content(b, '\r');
        b->cr = 0;
        if (b->content)
            dkim_body_eol(b); /* a last line without CRLF gets one */
        if (b->canon == DKIM_CANON_SIMPLE && b->total == 0)
            dkim_body_emit(b, "\r\n", 2); /* simple: an empty body is one CRLF */
        dkim_body_flush(b);
        EVP_DigestFinal_ex(b->md, b->digest, NULL);
        b->short_body = b->limit >= 0 && b->total < (unsigned long long)b->limit;
        b->done = 1;
    }
    memcpy(out, b->digest, DKIM_HASH_LEN);
    return b->short_body ? -1 : 0;
}

unsigned long long dkim_body_length(const struct dkim_body *b)
{
    return b->total;
}

enum dkim_canon dkim_body_canon(const struct dkim_body *b)
{
    return b->canon;
}

long long dkim_body_limit(const struct dkim_body *b)
{
    return b->limit;
}

void dkim_body_free(struct dkim_body *b)
{
    if (!b)
        return;
    EVP_MD_CTX_free(b->md);
    free(b);
}
