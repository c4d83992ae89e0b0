/* spf_macro.c - SPF macros (RFC 7208 section 7): syntax, domain-spec ends,
 * expansion with the transformers (%{d2r.}, %{l-}, %{L}) */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "policy/spf_internal.h"

#define MAX_PARTS (2 * SPF_INPUT_MAX + 3) /* the longest value (s) cannot split into more */

struct macro {
    char letter; /* lower case */
    int upper;   /* URL-escape the result */
    int keep;    /* rightmost parts to keep; 0 = all */
    int reverse;
    char delims[8]; /* NUL-terminated; "." by default */
};

static int is_delim(char c)
{
    return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/* One token of a macro-string at s: its length (0 at the end), -1 if bad.
 * *mac: 1 when it is a macro-expand ("%{..}", "%%", "%_", "%-"); details in m. */
static int token(const char *s, int flags, int *mac, struct macro *m)
{
    const char *letters = (flags & SPF_MACRO_EXP) ? "slodiphvcrt" : "slodiphv";
    int i = 3, nd = 0;

    *mac = 0;
    if (s[0] == '\0')
        return 0;
    if (s[0] != '%') {
        unsigned char c = (unsigned char)s[0];
        return (c > ' ' && c < 0x7f) || (c == ' ' && (flags & SPF_MACRO_SPACE)) ? 1 : -1;
    }
    *mac = 1;
    if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
        m->letter = s[1];
        return 2;
    }
    if (s[1] != '{' || s[2] == '\0' || strchr(letters, tolower((unsigned char)s[2])) == NULL)
        return -1;
    memset(m, 0, sizeof *m);
    m->letter = (char)tolower((unsigned char)s[2]);
    m->upper = isupper((unsigned char)s[2]) != 0;
    while (isdigit((unsigned char)s[i])) {
        if (m->keep < 1000)
            m->keep = m->keep * 10 + (s[i] - '0');
        i++;
        nd++;
    }
    if (nd > 0 && m->keep == 0) /* 7.1: the number must be nonzero */
        return -1;
    if (s[i] == 'r' || s[i] == 'R') {
        m->reverse = 1;
        i++;
    }
    for (nd = 0; is_delim(s[i]); i++)
        if (nd < (int)sizeof m->delims - 1 && strchr(m->delims, s[i]) == NULL)
            m->delims[nd++] = s[i];
    if (nd == 0)
        m->delims[0] = '.';
    return s[i] == '}' ? i + 1 : -1;
}

int spf_macro_check(const char *s, int flags)
{
    struct macro m;
    int n, mac;

    while ((n = token(s, flags, &mac, &m)) > 0)
        s += n;
    return n;
}

int spf_macro_uses_p(const char *s)
{
    struct macro m;
    int n, mac;

    while ((n = token(s, SPF_MACRO_EXP | SPF_MACRO_SPACE, &mac, &m)) > 0) {
        if (mac && m.letter == 'p')
            return 1;
        s += n;
    }
    return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int toplabel_ok(const char *s, size_t n)
{
    int alpha = 0, dash = 0;

    if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-')
            dash = 1;
        else if (isalpha((unsigned char)s[i]))
            alpha = 1;
        else if (!isdigit((unsigned char)s[i]))
            return 0;
    }
    return alpha || dash;
}

int spf_domain_spec_check(const char *s)
{
    const char *lit = s; /* the literal run after the last macro-expand */
    struct macro m;
    int n, mac = 0, last_mac = 0;
    size_t len;
    const char *dot;

    if (*s == '\0')
        return -1;
    while ((n = token(s, 0, &mac, &m)) > 0) {
        s += n;
        last_mac = mac;
        if (mac)
            lit = s;
    }
    if (n < 0)
        return -1;
    if (last_mac) /* domain-end = macro-expand */
        return 0;
    /* domain-end = "." toplabel [ "." ] */
    len = (size_t)(s - lit);
    if (len > 0 && lit[len - 1] == '.')
        len--;
    for (dot = lit + len; dot > lit && dot[-1] != '.'; dot--)
        ;
    if (dot == lit)
        return -1;
    return toplabel_ok(dot, (size_t)(lit + len - dot)) ? 0 : -1;
}

struct out {
    char *buf;
    size_t len, size;
    int full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n >= o->size) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/* RFC 3986 unreserved characters stay; all others become %XX (7.3). */
static void put_escaped(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            put(o, s + i, 1);
        } else {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", c);
            put(o, hex, 3);
        }
    }
}

static const char *letter_value(const struct spf_macro_ctx *x, char letter, char *tbuf, size_t tlen)
{
    switch (letter) {
    case 's':
        return x->sender;
    case 'l':
        return x->local;
    case 'o':
        return x->odomain;
    case 'd':
        return x->domain;
    case 'i':
        return x->ip_dots;
    case 'c':
        return x->ip_text;
    case 'v':
        return x->v;
    case 'h':
        return x->helo;
    case 'p':
        return x->p != NULL ? x->p : "unknown";
    case 'r':
        return x->receiver != NULL && *x->receiver ? x->receiver : "unknown";
    case 't':
        snprintf(tbuf, tlen, "%lld", x->now);
        return tbuf;
    }
    return "";
}

/* Split on the delimiters, reverse if asked, keep the rightmost parts, join with ".". */
static void put_macro(struct out *o, const struct spf_macro_ctx *x, const struct macro *m)
{
    char tbuf[32], joined[SPF_EXPAND_SIZE];
    const char *v = letter_value(x, m->letter, tbuf, sizeof tbuf), *part[MAX_PARTS];
    size_t plen[MAX_PARTS], np = 0, first, start = 0, vlen = strlen(v);
    struct out j = {joined, 0, sizeof joined, 0};

    joined[0] = '\0';
    for (size_t i = 0; i <= vlen && np < MAX_PARTS; i++) {
        if (i == vlen || strchr(m->delims, v[i]) != NULL) {
            part[np] = v + start;
            plen[np++] = i - start;
            start = i + 1;
        }
    }
    first = m->keep > 0 && (size_t)m->keep < np ? np - (size_t)m->keep : 0;
    for (size_t k = first; k < np; k++) {
        /* the rightmost parts of the list, reversed first when asked */
        size_t idx = m->reverse ? np - 1 - k : k;
        if (k > first)
            put(&j, ".", 1);
        put(&j, part[idx], plen[idx]);
    }
    if (j.full)
        o->full = 1;
    else if (m->upper)
        put_escaped(o, joined, j.len);
    else
        put(o, joined, j.len);
}

int spf_expand(const struct spf_macro_ctx *x, const char *s, int flags, char *buf, size_t size)
{
    struct out o = {buf, 0, size, 0};
    struct macro m;
    int n, mac;

    if (size == 0)
        return -2;
    buf[0] = '\0';
    while ((n = token(s, flags, &mac, &m)) > 0) {
        if (!mac)
            put(&o, s, 1);
        else if (m.letter == '%')
            put(&o, "%", 1);
        else if (m.letter == '_')
            put(&o, " ", 1);
        else if (m.letter == '-')
            put(&o, "%20", 3);
        else
            put_macro(&o, x, &m);
        s += n;
    }
    if (n < 0)
        return -1;
    return o.full ? -2 : 0;
}

int spf_expand_name(const struct spf_macro_ctx *x, const char *s, char out[SPF_NAME_SIZE])
{
    char tmp[SPF_EXPAND_SIZE], *p = tmp;
    size_t n;
    int r = spf_expand(x, s, 0, tmp, sizeof tmp);

    if (r == -1)
        return -1;
    if (r == -2)
        return 1;
    n = strlen(p);
    if (n > 0 && p[n - 1] == '.')
        p[--n] = '\0';
    while (n > 253) { /* 7.3: drop labels from the left until it fits */
        char *dot = strchr(p, '.');
        if (dot == NULL)
            return 1;
        n -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    if (!spf_name_valid(p))
        return 1;
    memcpy(out, p, n + 1);
    return 0;
}
