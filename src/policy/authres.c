/*
 * authres.c - the Authentication-Results field (RFC 8601): our results for
 * the internal servers, and recognising an incoming field that claims to be
 * ours (RFC 8601 5) so that the session can remove it.
 *
 * Results and domains come from our checks, but addresses, selectors and
 * DKIM reasons come from outside: each value is written as a token when it
 * is one, else as a quoted-string, and any control octet or ';' from outside
 * becomes '?'. That keeps every resinfo one resinfo for the simplest reader
 * (one that splits on ';'), and the field one field.
 */
#include "policy/authres.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

#define AR_NAME_LEN 24   /* "Authentication-Results: ", before the value's first line */
#define AR_LINE 78       /* RFC 5322 2.1.1: SHOULD */
#define AR_VALUE_MAX 900 /* one quoted value at most: a line stays under 998 */

struct ar_buf {
    char *out;
    size_t cap;
    size_t len;
    size_t col; /* octets on the current line */
    int full;   /* something did not fit */
};

/* ar_tspecial - RFC 2045 tspecials: not in a token */
static int ar_tspecial(unsigned char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* ar_token - s is a non-empty RFC 2045 token */
static int ar_token(const char *s)
{
    if (!*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || ar_tspecial(*p))
            return 0;
    return 1;
}

/* ar_atext - RFC 5322 atext */
static int ar_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* ar_addr - s is dot-atom "@" domain: a pvalue without quotes (RFC 8601 2.2) */
static int ar_addr(const char *s)
{
    const char *at = strchr(s, '@');

    if (!at || at == s || strchr(at + 1, '@') || !ar_token(at + 1))
        return 0;
    for (const char *p = s; p < at; p++)
        if (!(ar_atext((unsigned char)*p) || (*p == '.' && p > s && p + 1 < at && p[1] != '.')))
            return 0;
    return 1;
}

/* ar_value - v as one value into dst: bare when it may be, else quoted; what
 * could break the field or split a resinfo is '?' */
static void ar_value(const char *v, char *dst, size_t dstlen)
{
    char clean[AR_VALUE_MAX];
    size_t i, o = 0;

    for (i = 0; v[i] && i + 1 < sizeof(clean); i++) {
        unsigned char c = (unsigned char)v[i];
        clean[i] = c < 0x20 || c == 0x7f || c == ';' ? '?' : (char)c;
    }
    clean[i] = '\0';
    if (ar_token(clean) || ar_addr(clean)) {
        snprintf(dst, dstlen, "%s", clean);
        return;
    }
    dst[o++] = '"';
    for (i = 0; clean[i] && o + 4 < dstlen; i++) {
        if (clean[i] == '"' || clean[i] == '\\')
            dst[o++] = '\\';
        dst[o++] = clean[i];
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

/* ar_put - append n octets */
static void ar_put(struct ar_buf *b, const char *s, size_t n)
{
    if (b->full || b->len + n + 1 > b->cap) {
        b->full = 1;
        return;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
    b->out[b->len] = '\0';
    b->col += n;
}

/* ar_fold - a line break and the tab that makes it a fold */
static void ar_fold(struct ar_buf *b)
{
    ar_put(b, "\r\n\t", 3);
    b->col = 1;
}

/* ar_word - one word after a space, or on a new line when the line would grow past 78 */
static void ar_word(struct ar_buf *b, const char *w)
{
    size_t n = strlen(w);

    if (b->col + 1 + n > AR_LINE && b->col > 1)
        ar_fold(b);
    else
        ar_put(b, " ", 1);
    ar_put(b, w, n);
}

/* One resinfo, word by word, so that it starts a line of its own when it does
 * not fit where the previous one ended */
struct ar_res {
    char buf[4096];
    size_t len; /* words, each NUL-terminated */
};

/* ar_add - "name=value" (the value made safe), or a word as it is when value is NULL */
static void ar_add(struct ar_res *r, const char *name, const char *value)
{
    char v[AR_VALUE_MAX + 8];
    int n;

    if (value)
        ar_value(value, v, sizeof(v));
    n = snprintf(r->buf + r->len, sizeof(r->buf) - r->len, "%s%s%s", name, value ? "=" : "",
                 value ? v : "");
    if (n >= 0 && (size_t)n < sizeof(r->buf) - r->len)
        r->len += (size_t)n + 1;
}

/* ar_emit - "; " and the resinfo, on a new line when it does not fit this one */
static void ar_emit(struct ar_buf *b, const struct ar_res *r)
{
    size_t total = r->len ? r->len - 1 : 0; /* the NULs become spaces */

    ar_put(b, ";", 1);
    for (size_t i = 0; i < r->len; i += strlen(r->buf + i) + 1) {
        const char *w = r->buf + i;
        if (i == 0 && b->col + 1 + total > AR_LINE && b->col > 1) {
            ar_fold(b);
            ar_put(b, w, strlen(w));
        } else {
            ar_word(b, w);
        }
    }
}

/* ar_spf - spf=RESULT smtp.mailfrom=ADDRESS (or smtp.helo=NAME) */
static void ar_spf(struct ar_buf *b, const struct policy_auth *a)
{
    struct ar_res r = {.len = 0};

    ar_add(&r, "spf", a->spf);
    if (a->spf_identity[0])
        ar_add(&r, a->spf_helo ? "smtp.helo" : "smtp.mailfrom", a->spf_identity);
    ar_emit(b, &r);
}

/* ar_dkim - one signature: dkim=RESULT [reason=...] header.d= header.s= header.b= */
static void ar_dkim(struct ar_buf *b, const struct policy_auth_dkim *k)
{
    struct ar_res r = {.len = 0};

    ar_add(&r, "dkim", k->result[0] ? k->result : "none");
    if (strcmp(k->result, "pass") != 0 && k->reason[0])
        ar_add(&r, "reason", k->reason);
    if (k->domain[0])
        ar_add(&r, "header.d", k->domain);
    if (k->selector[0])
        ar_add(&r, "header.s", k->selector);
    if (k->b[0])
        ar_add(&r, "header.b", k->b);
    ar_emit(b, &r);
}

/* ar_dmarc - dmarc=RESULT [(p=POLICY)] header.from=DOMAIN */
static void ar_dmarc(struct ar_buf *b, const struct policy_auth *a)
{
    struct ar_res r = {.len = 0};
    char c[32];

    ar_add(&r, "dmarc", a->dmarc);
    if (strcmp(a->dmarc, "fail") == 0 && ar_token(a->dmarc_policy)) {
        snprintf(c, sizeof(c), "(p=%s)", a->dmarc_policy);
        ar_add(&r, c, NULL);
    }
    if (a->from_domain[0])
        ar_add(&r, "header.from", a->from_domain);
    ar_emit(b, &r);
}

int authres_format(const struct policy_client *cl, const char *authserv_id, char *out,
                   size_t outlen)
{
    const struct policy_auth *a = cl->auth;
    struct ar_buf b = {out, outlen, 0, AR_NAME_LEN, outlen == 0};
    char id[AR_VALUE_MAX + 8];
    size_t ndkim = a->ndkim < POLICY_DKIM_MAX ? a->ndkim : POLICY_DKIM_MAX;

    ar_value(authserv_id && authserv_id[0] ? authserv_id : "localhost", id, sizeof(id));
    ar_put(&b, id, strlen(id));
    if (!a->spf[0] && ndkim == 0 && !a->dmarc[0]) {
        ar_put(&b, "; none", 6);
    } else {
        if (a->spf[0])
            ar_spf(&b, a);
        for (size_t i = 0; i < ndkim; i++)
            ar_dkim(&b, &a->dkim[i]);
        if (a->dmarc[0])
            ar_dmarc(&b, a);
    }
    if (b.full) {
        if (outlen)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ar_cfws - past white space, line breaks and (nested) comments; len when a
 * comment never ends */
static size_t ar_cfws(const char *v, size_t len, size_t i)
{
    int depth = 0;

    for (; i < len; i++) {
        char c = v[i];
        if (depth && c == '\\')
            i++;
        else if (c == '(')
            depth++;
        else if (depth && c == ')')
            depth--;
        else if (!depth && c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return i;
    }
    return len;
}

int authres_claims(const char *value, size_t len, const char *authserv_id)
{
    char got[256];
    size_t i = ar_cfws(value, len, 0), n = 0, want;

    if (!authserv_id || !authserv_id[0] || i >= len)
        return 0;
    if (value[i] == '"') {
        for (i++; i < len && value[i] != '"'; i++) {
            if (value[i] == '\\' && i + 1 < len)
                i++;
            if (n + 1 >= sizeof(got))
                return 0;
            got[n++] = value[i];
        }
        if (i >= len)
            return 0; /* never closed */
    } else {
        for (; i < len && value[i] && !strchr(" \t\r\n;(", value[i]); i++) {
            if (n + 1 >= sizeof(got))
                return 0;
            got[n++] = value[i];
        }
    }
    /* "mx.example." is mx.example too: removing one field too many is the safe side */
    if (n > 1 && got[n - 1] == '.')
        n--;
    got[n] = '\0';
    want = strlen(authserv_id);
    if (want > 1 && authserv_id[want - 1] == '.')
        want--;
    return n == want && strncasecmp(got, authserv_id, n) == 0;
}
