/*
 * dkim_tags.c - tag=value lists (RFC 6376 3.2), shared by DKIM-Signature
 * fields and key records, and the base64 their b=, bh= and p= hold.
 *
 *   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  = ALPHA *ALNUMPUNC          (ALNUMPUNC = ALPHA / DIGIT / "_")
 *   tag-value = [ tval *( 1*(WSP / FWS) tval ) ]   tval = 1*VALCHAR
 *   VALCHAR   = %x21-3A / %x3C-7E
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <string.h>

static const char *const dkim_result_names[] = {"pass",   "fail",      "neutral",
                                                "policy", "permerror", "temperror"};

const char *dkim_result_name(enum dkim_result r)
{
    return (unsigned)r < sizeof(dkim_result_names) / sizeof(dkim_result_names[0])
               ? dkim_result_names[r]
               : "permerror";
}

const char *dkim_algo_name(enum dkim_algo a)
{
    return a == DKIM_A_RSA_SHA256       ? "rsa-sha256"
           : a == DKIM_A_ED25519_SHA256 ? "ed25519-sha256"
                                        : "rsa-sha1";
}

/* dkim_fws - folding white space (the header section is CRLF lines: a CRLF inside a
 * field is always followed by WSP, the header reader made sure of it) */
static int dkim_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int dkim_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int dkim_valchar(char c)
{
    return c >= 0x21 && c <= 0x7e && c != ';';
}

/* dkim_skip_fws - i past any FWS */
static size_t dkim_skip_fws(const char *s, size_t len, size_t i)
{
    while (i < len && dkim_fws(s[i]))
        i++;
    return i;
}

/* dkim_tag_spec - one tag-spec at *i (FWS skipped) up to ';' or the end; 0 or -1 */
static int dkim_tag_spec(const char *s, size_t len, size_t *i, struct dkim_tag *t, char *why,
                         size_t whylen)
{
    size_t p = *i, end;

    t->name = s + p;
    if (!dkim_alpha(s[p])) {
        snprintf(why, whylen, "bad tag name");
        return -1;
    }
    while (p < len && (dkim_alpha(s[p]) || (s[p] >= '0' && s[p] <= '9') || s[p] == '_'))
        p++;
    t->name_len = (size_t)(s + p - t->name);
    p = dkim_skip_fws(s, len, p);
    if (p >= len || s[p] != '=') {
        snprintf(why, whylen, "tag %.*s without =", (int)(t->name_len > 16 ? 16 : t->name_len),
                 t->name);
        return -1;
    }
    p = dkim_skip_fws(s, len, p + 1);
    t->val = s + p;
    for (end = p; p < len && s[p] != ';'; p++) {
        if (dkim_fws(s[p]))
            continue;
        if (!dkim_valchar(s[p])) {
            snprintf(why, whylen, "bad character in tag %.*s",
                     (int)(t->name_len > 16 ? 16 : t->name_len), t->name);
            return -1;
        }
        end = p + 1; /* trailing FWS is not part of the value */
    }
    t->val_len = end > (size_t)(t->val - s) ? end - (size_t)(t->val - s) : 0;
    *i = p;
    return 0;
}

int dkim_tags_parse(const char *s, size_t len, struct dkim_tag *t, size_t max, size_t *n, char *why,
                    size_t whylen)
{
    size_t i = 0;

    *n = 0;
    for (;;) {
        i = dkim_skip_fws(s, len, i);
        if (i >= len)
            return 0; /* empty list, or after a final ';' */
        if (*n == max) {
            snprintf(why, whylen, "more than %zu tags", max);
            return -1;
        }
        if (dkim_tag_spec(s, len, &i, &t[*n], why, whylen) < 0)
            return -1;
        for (size_t k = 0; k < *n; k++)
            if (t[k].name_len == t[*n].name_len &&
                memcmp(t[k].name, t[*n].name, t[k].name_len) == 0) {
                snprintf(why, whylen, "duplicate tag %.*s",
                         (int)(t[k].name_len > 16 ? 16 : t[k].name_len), t[k].name);
                return -1;
            }
        (*n)++;
        if (i >= len)
            return 0;
        i++; /* the ';' */
    }
}

const struct dkim_tag *dkim_tag_get(const struct dkim_tag *t, size_t n, const char *name)
{
    size_t l = strlen(name);

    for (size_t i = 0; i < n; i++)
        if (t[i].name_len == l && memcmp(t[i].name, name, l) == 0)
            return &t[i];
    return NULL;
}

/* dkim_b64_value - the 6 bits of a base64 character, or -1 */
static int dkim_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t outmax, size_t *outlen)
{
    unsigned long acc = 0;
    size_t o = 0, nch = 0, pad = 0;

    for (size_t i = 0; i < len; i++) {
        int v;
        if (dkim_fws(s[i]))
            continue;
        if (s[i] == '=') {
            pad++;
            continue;
        }
        v = dkim_b64_value(s[i]);
        if (v < 0 || pad > 0) /* a character after padding */
            return -1;
        acc = (acc << 6) | (unsigned)v;
        if (++nch % 4 == 0) {
            if (o + 3 > outmax)
                return -1;
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* what is left: 2 characters are 1 octet, 3 are 2; padding must complete a quad */
    if (nch % 4 == 1 || pad > 2 || (pad > 0 && (nch + pad) % 4 != 0))
        return -1;
    if (nch % 4 == 2 || nch % 4 == 3) {
        size_t k = nch % 4 == 2 ? 1 : 2;
        if (o + k > outmax)
            return -1;
        acc <<= 6 * (4 - nch % 4);
        out[o++] = (unsigned char)(acc >> 16);
        if (k == 2)
            out[o++] = (unsigned char)(acc >> 8);
    }
    *outlen = o;
    return 0;
}
