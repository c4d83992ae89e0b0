/* header.c - header fields one at a time (RFC 5322 2.2) */
#include "mail/header.h"

#include <string.h>
#include <strings.h>

/* hdr_line_end - offset just past the CRLF (or LF) that ends the line at off */
static size_t hdr_line_end(const char *h, size_t len, size_t off)
{
    const char *lf = memchr(h + off, '\n', len - off);

    return lf ? (size_t)(lf - h) + 1 : len;
}

int hdr_line_continues(const char *line, size_t len)
{
    return len > 0 && (line[0] == ' ' || line[0] == '\t');
}

/* hdr_name - the field name of a line: printable ASCII but ':' before a ':' (RFC 5322 3.6.8) */
static size_t hdr_name(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == ':')
            return i;
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 0;
}

int hdr_next(const char *h, size_t len, size_t *off, struct hdr_field *f)
{
    size_t start = *off, end, n;

    if (start >= len)
        return 0;
    end = hdr_line_end(h, len, start);
    while (end < len && hdr_line_continues(h + end, len - end))
        end = hdr_line_end(h, len, end);
    memset(f, 0, sizeof(*f));
    f->raw = h + start;
    f->raw_len = end - start;
    n = hdr_name(f->raw, f->raw_len);
    if (n > 0) {
        f->name = f->raw;
        f->name_len = n;
        f->value = f->raw + n + 1;
        f->value_len = f->raw_len - n - 1;
        if (f->value_len > 0 && f->value[f->value_len - 1] == '\n')
            f->value_len--;
        if (f->value_len > 0 && f->value[f->value_len - 1] == '\r')
            f->value_len--;
    }
    *off = end;
    return 1;
}

int hdr_is(const struct hdr_field *f, const char *name)
{
    size_t n = strlen(name);

    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

int hdr_unfold(const struct hdr_field *f, char *out, size_t outlen)
{
    size_t o = 0;

    if (outlen == 0)
        return -1;
    for (size_t i = 0; i < f->value_len; i++) {
        char c = f->value[i];
        if (c == '\r' || c == '\n')
            continue;
        if (o == 0 && (c == ' ' || c == '\t'))
            continue;
        if (o + 1 >= outlen) {
            out[0] = '\0';
            return -1;
        }
        out[o++] = c;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
    return 0;
}

size_t hdr_count(const char *h, size_t len, const char *name)
{
    struct hdr_field f;
    size_t off = 0, n = 0;

    while (hdr_next(h, len, &off, &f))
        n += hdr_is(&f, name);
    return n;
}
