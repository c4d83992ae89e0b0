/* json.c - the JSON writer */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "core/xmalloc.h"

void json_init(struct json *j)
{
    j->cap = 256;
    j->buf = xmalloc(j->cap);
    j->buf[0] = '\0';
    j->len = 0;
    j->comma = 0;
}

void json_free(struct json *j)
{
    free(j->buf);
    j->buf = NULL;
    j->len = j->cap = 0;
}

/* json_put - append n octets */
static void json_put(struct json *j, const char *s, size_t n)
{
    if (j->len + n + 1 > j->cap) {
        while (j->len + n + 1 > j->cap)
            j->cap *= 2;
        j->buf = xrealloc(j->buf, j->cap);
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

/* json_sep - a comma before every value but the first of its level */
static void json_sep(struct json *j)
{
    if (j->comma)
        json_put(j, ",", 1);
    j->comma = 1;
}

void json_obj_begin(struct json *j)
{
    json_sep(j);
    json_put(j, "{", 1);
    j->comma = 0;
}

void json_obj_end(struct json *j)
{
    json_put(j, "}", 1);
    j->comma = 1;
}

void json_arr_begin(struct json *j)
{
    json_sep(j);
    json_put(j, "[", 1);
    j->comma = 0;
}

void json_arr_end(struct json *j)
{
    json_put(j, "]", 1);
    j->comma = 1;
}

void json_key(struct json *j, const char *k)
{
    json_str(j, k);
    json_put(j, ":", 1);
    j->comma = 0;
}

/* json_escape_one - the escape for octet sequence p of length n, or 0 to copy it */
static int json_escape_one(const unsigned char *p, size_t n, char out[8])
{
    if (n == 1 && (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '&')) {
        snprintf(out, 8, "\\u%04x", *p);
        return 1;
    }
    if (n == 1 && (*p == '"' || *p == '\\')) {
        snprintf(out, 8, "\\%c", *p);
        return 1;
    }
    if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) { /* C1 controls: a terminal may obey them */
        snprintf(out, 8, "\\u%04x", p[1]);
        return 1;
    }
    if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
        snprintf(out, 8, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
        return 1;
    }
    return 0;
}

/* json_seq_len - utf8_seq_len that never reads past end (s need not be NUL-terminated) */
static size_t json_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char tail[5] = {0};

    if (end - p >= 4)
        return utf8_seq_len(p);
    memcpy(tail, p, (size_t)(end - p));
    return utf8_seq_len(tail);
}

void json_strn(struct json *j, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char esc[8];

    json_sep(j);
    json_put(j, "\"", 1);
    while (p < end) {
        size_t n = *p >= 0x80 ? json_seq_len(p, end) : 1;
        if (n == 0) { /* not well-formed UTF-8: one replacement per octet */
            json_put(j, "\\ufffd", 6);
            p++;
            continue;
        }
        if (json_escape_one(p, n, esc))
            json_put(j, esc, strlen(esc));
        else
            json_put(j, (const char *)p, n);
        p += n;
    }
    json_put(j, "\"", 1);
}

void json_str(struct json *j, const char *s)
{
    if (!s)
        json_null(j);
    else
        json_strn(j, s, strlen(s));
}

void json_int(struct json *j, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%lld", v);

    json_sep(j);
    json_put(j, b, (size_t)n);
}

void json_double(struct json *j, double v)
{
    char b[48];
    int n;

    if (!isfinite(v)) {
        json_null(j);
        return;
    }
    n = snprintf(b, sizeof(b), "%.6g", v);
    json_sep(j);
    json_put(j, b, (size_t)n);
}

void json_bool(struct json *j, int v)
{
    json_sep(j);
    json_put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json *j)
{
    json_sep(j);
    json_put(j, "null", 4);
}

void json_kstr(struct json *j, const char *k, const char *s)
{
    json_key(j, k);
    json_str(j, s);
}

void json_kint(struct json *j, const char *k, long long v)
{
    json_key(j, k);
    json_int(j, v);
}
