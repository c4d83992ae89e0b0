/* spf_header.c - the Received-SPF header field value (RFC 7208 9.1)
 *
 * Values come from the client (HELO, MAIL FROM) or from DNS (the term text,
 * the problem): each is written as a dot-atom when it is one, else as a
 * quoted-string; the comment keeps printable ASCII only and escapes what
 * would end it. Nothing can add a line or another field.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "policy/spf_internal.h"

struct hbuf {
    char *p;
    size_t len, size;
    int overflow;
};

static void put(struct hbuf *b, const char *s, size_t n)
{
    if (b->len + n >= b->size) {
        b->overflow = 1;
        n = b->size - 1 > b->len ? b->size - 1 - b->len : 0;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct hbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static int atext(unsigned char c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int dot_atom(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
        return 0;
    for (; *s; s++)
        if (*s != '.' && !atext((unsigned char)*s))
            return 0;
    return 1;
}

/* A value: dot-atom as is; else quoted, with " and \ escaped and
 * non-printable bytes replaced (a header must stay one line of ASCII) */
static void put_value(struct hbuf *b, const char *s)
{
    if (dot_atom(s)) {
        puts_(b, s);
        return;
    }
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(b, "\\", 1);
        put(b, c < ' ' || c > '~' ? "?" : (const char *)s, 1);
    }
    put(b, "\"", 1);
}

/* comment text: ( ) \ escaped, non-printable replaced */
static void put_ctext(struct hbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '(' || c == ')' || c == '\\')
            put(b, "\\", 1);
        put(b, c < ' ' || c > '~' ? "?" : (const char *)s, 1);
    }
}

static void put_kv(struct hbuf *b, const char *key, const char *value)
{
    puts_(b, " ");
    puts_(b, key);
    puts_(b, "=");
    put_value(b, value);
    puts_(b, ";");
}

static void put_comment(struct hbuf *b, const struct spf_check *c)
{
    const char *who = c->receiver[0] ? c->receiver : "unknown";
    char text[900];

    switch (c->out.result) {
    case SPF_PASS:
        snprintf(text, sizeof text, "%s: domain of %s designates %s as permitted sender", who,
                 c->sender, c->ip_text);
        break;
    case SPF_FAIL:
        snprintf(text, sizeof text, "%s: domain of %s does not designate %s as permitted sender",
                 who, c->sender, c->ip_text);
        break;
    case SPF_SOFTFAIL:
        snprintf(text, sizeof text,
                 "%s: domain of transitioning %s does not designate %s as permitted sender", who,
                 c->sender, c->ip_text);
        break;
    case SPF_NEUTRAL:
        snprintf(text, sizeof text, "%s: %s is neither permitted nor denied by domain of %s", who,
                 c->ip_text, c->sender);
        break;
    case SPF_NONE:
        snprintf(text, sizeof text, "%s: domain of %s does not designate permitted sender hosts",
                 who, c->sender);
        break;
    case SPF_TEMPERROR:
        snprintf(text, sizeof text, "%s: temporary error checking domain of %s", who, c->sender);
        break;
    default:
        snprintf(text, sizeof text, "%s: permanent error in the SPF record of %s", who, c->sender);
    }
    puts_(b, " (");
    put_ctext(b, text);
    puts_(b, ")");
}

int spf_received_spf(const struct spf_check *c, char *buf, size_t len)
{
    struct hbuf b = {buf, 0, len, 0};
    int err = c->out.result == SPF_TEMPERROR || c->out.result == SPF_PERMERROR;

    if (len == 0)
        return -1;
    buf[0] = '\0';
    puts_(&b, spf_result_name(c->out.result));
    put_comment(&b, c);
    put_kv(&b, "client-ip", c->ip_text);
    if (c->out.identity == SPF_ID_MAILFROM)
        put_kv(&b, "envelope-from", c->sender);
    put_kv(&b, "helo", c->helo);
    if (c->receiver[0])
        put_kv(&b, "receiver", c->receiver);
    put_kv(&b, "identity", c->out.identity == SPF_ID_HELO ? "helo" : "mailfrom");
    if (err && c->problem[0])
        put_kv(&b, "problem", c->problem);
    else if (!err && c->mech[0])
        put_kv(&b, "mechanism", c->mech);
    return b.overflow ? -1 : 0;
}
