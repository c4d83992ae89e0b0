/* from.c - the domains of the header From: field (RFC 5322 3.4, 3.6.2) */
#include "mail/from.h"

#include <stdio.h>
#include <string.h>

#include "mail/address.h"
#include "mail/header.h"

#define FROM_VALUE_MAX 2048

/* from_skip_comment - past a (possibly nested) comment starting at s[i] == '(' */
static size_t from_skip_comment(const char *s, size_t i)
{
    int depth = 0;

    for (; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1])
            i++;
        else if (s[i] == '(')
            depth++;
        else if (s[i] == ')' && --depth == 0)
            return i + 1;
    }
    return i;
}

/* from_skip_quoted - past a quoted string starting at s[i] == '"' */
static size_t from_skip_quoted(const char *s, size_t i)
{
    for (i++; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1])
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return i;
}

/* from_domain_of - the domain of one addr-spec (comments already gone): after
 * the last '@' outside quotes, trimmed; canonical into dom, -1 if unusable */
static int from_domain_of(const char *spec, size_t len, char *dom)
{
    char raw[FROM_DOMAIN_SIZE];
    size_t at = len, i = 0, n;

    while (i < len) {
        if (spec[i] == '"') {
            i = from_skip_quoted(spec, i);
            continue;
        }
        if (spec[i] == '@')
            at = i;
        i++;
    }
    if (at == len)
        return -1;
    spec += at + 1;
    len -= at + 1;
    while (len && (*spec == ' ' || *spec == '\t'))
        spec++, len--;
    while (len && (spec[len - 1] == ' ' || spec[len - 1] == '\t'))
        len--;
    for (n = 0; n < len; n++)
        if (spec[n] == ' ' || spec[n] == '\t')
            return -1; /* "a@b c": not one domain */
    if (len == 0 || len >= sizeof(raw) || spec[0] == '[')
        return -1; /* a domain literal names no domain DMARC could look up */
    memcpy(raw, spec, len);
    raw[len] = '\0';
    if (raw[len - 1] == '.')
        raw[len - 1] = '\0';
    /* U-labels become A-labels; what is then not a host name names nothing */
    if (addr_canon_domain(raw, dom, FROM_DOMAIN_SIZE) < 0 || !addr_host_ok(dom) ||
        !strchr(dom, '.'))
        return -1;
    return 0;
}

/* from_mailbox - one mailbox (text between separators, comments removed):
 * its angle-addr if it has one, else the whole text */
static int from_mailbox(const char *m, size_t len, char *dom)
{
    size_t i = 0, lt = len;

    while (i < len) {
        if (m[i] == '"') {
            i = from_skip_quoted(m, i);
            continue;
        }
        if (m[i] == '<' && lt == len)
            lt = i;
        else if (m[i] == '>' && lt != len)
            return from_domain_of(m + lt + 1, i - lt - 1, dom);
        i++;
    }
    if (lt != len)
        return -1; /* "<" never closed */
    return from_domain_of(m, len, dom);
}

/* from_blank - only white space */
static int from_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/* from_strip - the value without comments (they may hold '@', ',' or '<') */
static void from_strip(const char *value, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; value[i] && o + 1 < outlen;) {
        if (value[i] == '(') {
            i = from_skip_comment(value, i);
            out[o++] = ' ';
        } else if (value[i] == '"') {
            size_t end = from_skip_quoted(value, i);
            while (i < end && o + 1 < outlen)
                out[o++] = value[i++];
        } else {
            out[o++] = value[i++];
        }
    }
    out[o] = '\0';
}

/* from_split - each mailbox of a stripped value (groups' names skipped) to fn; the
 * number of mailboxes, or -1 when fn refuses one or there are more than max */
static int from_split(char *v, int max, int (*fn)(const char *m, size_t len, int i, void *arg),
                      void *arg)
{
    size_t start = 0, i = 0, len = strlen(v);
    int n = 0, in_angle = 0;

    while (i <= len) {
        char c = v[i];
        if (c == '"') {
            i = from_skip_quoted(v, i);
            continue;
        }
        in_angle += c == '<' ? 1 : c == '>' ? -1 : 0;
        if (c == ':' && !in_angle) { /* a group's display name: not a mailbox */
            start = ++i;
            continue;
        }
        if (((c == ',' || c == ';') && !in_angle) || c == '\0') {
            if (!from_blank(v + start, i - start)) {
                if (n >= max || fn(v + start, i - start, n, arg) < 0)
                    return -1;
                n++;
            }
            start = i + 1;
        }
        i++;
    }
    return n;
}

static int from_domain_fn(const char *m, size_t len, int i, void *arg)
{
    return from_mailbox(m, len, ((char(*)[FROM_DOMAIN_SIZE])arg)[i]);
}

int from_domains(const char *value, char dom[][FROM_DOMAIN_SIZE], int max)
{
    char v[FROM_VALUE_MAX];

    from_strip(value, v, sizeof(v));
    return from_split(v, max, from_domain_fn, dom);
}

/* from_addr_fn - one mailbox's addr-spec (its angle-addr, else the whole text), canonical */
static int from_addr_fn(const char *m, size_t len, int i, void *arg)
{
    char spec[ADDR_CANON_MAX];
    size_t lt = len, gt = len;

    for (size_t j = 0; j < len; j++) {
        if (m[j] == '"') {
            j = from_skip_quoted(m, j) - 1;
            continue;
        }
        if (m[j] == '<' && lt == len)
            lt = j;
        else if (m[j] == '>' && lt != len && gt == len)
            gt = j;
    }
    if (lt != len && gt == len)
        return -1;
    if (lt != len)
        m += lt + 1, len = gt - lt - 1;
    while (len && (*m == ' ' || *m == '\t'))
        m++, len--;
    while (len && (m[len - 1] == ' ' || m[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(spec))
        return -1;
    memcpy(spec, m, len);
    spec[len] = '\0';
    return addr_canon(spec, ADDR_CANON_FOLD, ((char(*)[ADDR_CANON_MAX])arg)[i], ADDR_CANON_MAX) < 0
               ? -1
               : 0;
}

int from_addresses(const char *hdr, size_t len, char addrs[][ADDR_CANON_MAX], int max)
{
    struct hdr_field f, from;
    char value[FROM_VALUE_MAX], v[FROM_VALUE_MAX];
    size_t off = 0, n = 0;

    while (hdr_next(hdr, len, &off, &f))
        if (hdr_is(&f, "From") && n++ == 0)
            from = f;
    if (n != 1 || hdr_unfold(&from, value, sizeof(value)) < 0)
        return -1;
    from_strip(value, v, sizeof(v));
    return from_split(v, max, from_addr_fn, addrs);
}

/* from_one_domain - every address of the field in one domain */
static enum from_status from_one_domain(const struct hdr_field *f, char *dom)
{
    char value[FROM_VALUE_MAX], d[FROM_MAX_ADDRS][FROM_DOMAIN_SIZE];
    int n;

    if (hdr_unfold(f, value, sizeof(value)) < 0)
        return FROM_BAD;
    n = from_domains(value, d, FROM_MAX_ADDRS);
    if (n < 0)
        return FROM_BAD;
    if (n == 0)
        return FROM_NONE;
    for (int i = 1; i < n; i++)
        if (strcmp(d[i], d[0]) != 0)
            return FROM_MANY;
    snprintf(dom, FROM_DOMAIN_SIZE, "%s", d[0]);
    return FROM_ONE;
}

enum from_status from_author_domain(const char *hdr, size_t len, char *dom)
{
    struct hdr_field f, from;
    size_t off = 0, n = 0;

    dom[0] = '\0';
    while (hdr_next(hdr, len, &off, &f))
        if (hdr_is(&f, "From") && n++ == 0)
            from = f;
    if (n == 0)
        return FROM_NONE;
    if (n > 1)
        return FROM_MANY;
    return from_one_domain(&from, dom);
}

const char *from_status_name(enum from_status st)
{
    static const char *const names[] = {"one", "none", "many", "bad"};

    return st <= FROM_BAD ? names[st] : "?";
}
