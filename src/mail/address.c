/* address.c - RFC 5321 paths: mailbox syntax, domains, and relay tricks */
#include "core/utf8.h"
#include "mail/address.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdio.h>
#include <string.h>

#define LABEL_MAX 63
#define IPV6_TAG "IPv6:"
#define IPV6_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1 */

/* ascii_lower - tolower() without the locale: only ASCII letters are folded */
static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* is_alnum - ASCII letter or digit */
static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* is_atext - RFC 5322 atext (ASCII part) */
static int is_atext(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ascii_ieq - case-insensitive equality of two ASCII strings */
static int ascii_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (ascii_lower(*a) != ascii_lower(*b))
            return 0;
    return *a == *b;
}

/* ascii_nieq - the first n octets of a and b are equal ignoring ASCII case */
static int ascii_nieq(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return 0;
    return 1;
}

/* u8 - length of an allowed non-ASCII character at s: only with SMTPUTF8 and well-formed */
static size_t u8(const char *s, int utf8)
{
    return utf8 ? utf8_seq_len((const unsigned char *)s) : 0;
}

/* note_local - record the characters that turn a local part into a route */
static void note_local(struct addr *a, char c, int quoted)
{
    if (c == '%')
        a->has_percent = 1;
    else if (c == '!')
        a->has_bang = 1;
    else if (c == '@' && quoted)
        a->has_at_in_local = 1;
}

/* scan_dotstring - Dot-string: atoms of atext joined by single dots; *len up to '@' or end */
static enum addr_err scan_dotstring(const char *s, int utf8, struct addr *a, size_t *len)
{
    size_t i = 0;
    int prev_dot = 1; /* so that a leading dot is refused */

    while (s[i] != '\0' && s[i] != '@') {
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        if (c == '.' && prev_dot)
            return ADDR_SYNTAX;
        if (c >= 0x80 && (n = u8(s + i, utf8)) == 0)
            return ADDR_8BIT;
        if (c < 0x80 && c != '.' && !is_atext(c))
            return ADDR_SYNTAX;
        note_local(a, (char)c, 0);
        prev_dot = c == '.';
        i += n;
    }
    if (prev_dot)
        return ADDR_SYNTAX;
    *len = i;
    return ADDR_OK;
}

/* scan_quoted - Quoted-string of qtextSMTP and quoted-pairSMTP; *len includes both quotes */
static enum addr_err scan_quoted(const char *s, int utf8, struct addr *a, size_t *len)
{
    size_t i = 1;

    while (s[i] != '"') {
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        if (c == '\\') {
            c = (unsigned char)s[i + 1];
            n = 2;
            if (c < 32 || c > 126)
                return ADDR_SYNTAX;
        } else if (c >= 0x80) {
            if ((n = u8(s + i, utf8)) == 0)
                return ADDR_8BIT;
        } else if (c < 32 || c > 126) {
            return ADDR_SYNTAX; /* controls, DEL and the end of the string */
        }
        note_local(a, (char)c, 1);
        i += n;
    }
    a->quoted = 1;
    *len = i + 1;
    return ADDR_OK;
}

/* domain_check - n octets of LDH labels (U-labels too with utf8), each 1..63, no trailing dot */
static enum addr_err domain_check(const char *s, size_t n, int utf8)
{
    size_t i = 0;

    if (n == 0)
        return ADDR_BAD_DOMAIN;
    if (n > SMTP_DOMAIN_MAX)
        return ADDR_TOO_LONG;
    for (;;) {
        size_t start = i;
        while (i < n && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            size_t k = 1;
            if (c >= 0x80 && ((k = u8(s + i, utf8)) == 0 || i + k > n))
                return ADDR_8BIT;
            if (c < 0x80 && !is_alnum(c) && c != '-')
                return ADDR_BAD_DOMAIN;
            i += k;
        }
        if (i == start || i - start > LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
            return ADDR_BAD_DOMAIN;
        if (i == n)
            return ADDR_OK;
        if (++i == n)
            return ADDR_BAD_DOMAIN; /* trailing dot */
    }
}

/* dotted_quad - exactly four 1..3-digit numbers 0..255 separated by dots, n octets */
static int dotted_quad(const char *s, size_t n)
{
    size_t i = 0;
    int part;

    for (part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;
        while (i < n && digits < 3 && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (unsigned)(s[i++] - '0');
            digits++;
        }
        if (digits == 0 || v > 255)
            return 0;
        if (part < 3 && (i >= n || s[i++] != '.'))
            return 0;
    }
    return i == n;
}

/* literal_check - "[dotted quad]" or "[IPv6:addr]"; general literals are refused */
static enum addr_err literal_check(const char *d, size_t n)
{
    const char *in_s = d + 1;
    size_t tl = strlen(IPV6_TAG), cl;
    char buf[IPV6_TEXT_MAX + 1];
    struct in6_addr a6;

    if (n < 3 || d[n - 1] != ']')
        return ADDR_BAD_DOMAIN;
    cl = n - 2;
    if (cl > tl && ascii_nieq(in_s, IPV6_TAG, tl)) {
        if (cl - tl > IPV6_TEXT_MAX)
            return ADDR_BAD_DOMAIN;
        memcpy(buf, in_s + tl, cl - tl);
        buf[cl - tl] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 ? ADDR_OK : ADDR_BAD_DOMAIN;
    }
    return dotted_quad(in_s, cl) ? ADDR_OK : ADDR_BAD_DOMAIN;
}

/* parse_domain - the text after the '@': a domain or an address literal, stored lower-cased */
static enum addr_err parse_domain(const char *d, int utf8, struct addr *a)
{
    size_t i, n = strlen(d);
    enum addr_err e;

    if (strchr(d, '@') != NULL)
        return ADDR_SYNTAX; /* user@outside@gateway */
    if (n > SMTP_DOMAIN_MAX)
        return ADDR_TOO_LONG;
    a->is_literal = d[0] == '[';
    e = a->is_literal ? literal_check(d, n) : domain_check(d, n, utf8);
    if (e != ADDR_OK)
        return e;
    for (i = 0; i < n; i++)
        a->domain[i] = ascii_lower(d[i]);
    a->domain[n] = '\0';
    return ADDR_OK;
}

/* skip_route - "@dom,@dom:" (RFC 5321 A-d-l); *mb is set to what follows the colon */
static enum addr_err skip_route(const char *p, int utf8, const char **mb)
{
    for (;;) {
        size_t n;
        enum addr_err e;
        if (*p++ != '@')
            return ADDR_SYNTAX;
        n = strcspn(p, ",:");
        e = domain_check(p, n, utf8);
        if (e != ADDR_OK)
            return e == ADDR_8BIT ? e : ADDR_SYNTAX;
        p += n;
        if (*p == ':') {
            *mb = p + 1;
            return ADDR_OK;
        }
        if (*p++ != ',')
            return ADDR_SYNTAX;
    }
}

/* parse_mailbox - Local-part [ "@" domain ]; only Postmaster may lack the domain */
static enum addr_err parse_mailbox(const char *mb, int utf8, struct addr *a)
{
    size_t llen = 0;
    enum addr_err e;

    e = mb[0] == '"' ? scan_quoted(mb, utf8, a, &llen) : scan_dotstring(mb, utf8, a, &llen);
    if (e != ADDR_OK)
        return e;
    if (llen > SMTP_LOCAL_MAX)
        return ADDR_TOO_LONG;
    memcpy(a->local, mb, llen);
    a->local[llen] = '\0';
    if (mb[llen] == '\0')
        return !a->quoted && ascii_ieq(a->local, "postmaster") ? ADDR_OK : ADDR_NO_DOMAIN;
    if (mb[llen] != '@')
        return ADDR_SYNTAX;
    return parse_domain(mb + llen + 1, utf8, a);
}

/* addr_parse - route, local part, domain; on any error a is left zeroed */
enum addr_err addr_parse(const char *path, int utf8, struct addr *a)
{
    const char *mb = path;
    enum addr_err e;

    memset(a, 0, sizeof *a);
    if (path == NULL || path[0] == '\0')
        return ADDR_EMPTY;
    if (strnlen(path, SMTP_PATH_MAX) > SMTP_PATH_MAX - 2)
        return ADDR_TOO_LONG;
    e = path[0] == '@' ? skip_route(path, utf8, &mb) : ADDR_OK;
    if (e == ADDR_OK)
        e = parse_mailbox(mb, utf8, a);
    if (e != ADDR_OK)
        memset(a, 0, sizeof *a);
    else
        a->had_route = mb != path;
    return e;
}

/* addr_format - "local@domain", or "local" alone for a bare Postmaster */
int addr_format(const struct addr *a, char *dst, size_t dstlen)
{
    size_t ll = strlen(a->local), dl = strlen(a->domain);
    size_t n = ll + (dl > 0 ? 1 + dl : 0);

    if (dst == NULL || dstlen == 0)
        return -1;
    if (n + 1 > dstlen) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, a->local, ll);
    if (dl > 0) {
        dst[ll] = '@';
        memcpy(dst + ll + 1, a->domain, dl);
    }
    dst[n] = '\0';
    return (int)n;
}

/* addr_is_relay_trick - any form a host behind us might read as "forward elsewhere" */
int addr_is_relay_trick(const struct addr *a)
{
    return a->has_percent || a->has_bang || a->had_route || a->has_at_in_local;
}

/* addr_domain_match - "*" all, ".x.y" strict subdomains of x.y, otherwise ASCII-caseless equality
 */
int addr_domain_match(const char *domain, const char *pattern)
{
    size_t dl, pl;

    if (domain == NULL || pattern == NULL || pattern[0] == '\0')
        return 0;
    if (strcmp(pattern, "*") == 0)
        return 1;
    if (pattern[0] != '.')
        return ascii_ieq(domain, pattern);
    dl = strlen(domain);
    pl = strlen(pattern);
    return dl > pl && ascii_ieq(domain + dl - pl, pattern);
}

/* canon_is_dotstring - n octets of s form a Dot-string: atext atoms (UTF-8 too), single dots */
static int canon_is_dotstring(const char *s, size_t n)
{
    int prev_dot = 1;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' ? prev_dot : (c < 0x80 && !is_atext(c)))
            return 0;
        prev_dot = c == '.';
    }
    return !prev_dot;
}

/* canon_local - the local part unquoted when it can be, else minimally escaped; length or -1 */
static int canon_local(const struct addr *a, unsigned flags, char *dst, size_t dstlen)
{
    char raw[SMTP_LOCAL_MAX];
    size_t n = 0, o = 0;
    const char *p = a->local;

    if (!a->quoted) {
        if ((n = strlen(p)) > sizeof(raw))
            return -1;
        memcpy(raw, p, n);
    } else {
        for (p++; *p != '\0' && *p != '"'; p++) {
            if (n == sizeof(raw))
                return -1;
            raw[n++] = *p == '\\' && p[1] != '\0' ? *++p : *p;
        }
    }
    if ((flags & ADDR_CANON_FOLD) != 0)
        for (size_t i = 0; i < n; i++)
            raw[i] = ascii_lower(raw[i]);
    if (!a->quoted || canon_is_dotstring(raw, n)) {
        if (n + 1 > dstlen)
            return -1;
        memcpy(dst, raw, n);
        return (int)n;
    }
    if (dstlen < 3)
        return -1;
    dst[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (o + 4 > dstlen) /* this octet, its escape, the closing quote, the NUL */
            return -1;
        if (raw[i] == '"' || raw[i] == '\\')
            dst[o++] = '\\';
        dst[o++] = raw[i];
    }
    dst[o++] = '"';
    return (int)o;
}

/* canon_literal - [IPv6:x] in inet_ntop's form, [a.b.c.d] without leading zeros */
static int canon_literal(const char *d, char *dst, size_t dstlen)
{
    size_t n = strlen(d), tl = strlen(IPV6_TAG);
    char buf[IPV6_TEXT_MAX + 1];
    struct in6_addr a6;
    unsigned q[4];
    int r;

    if (n > tl + 2 && ascii_nieq(d + 1, IPV6_TAG, tl) && n - tl - 2 <= IPV6_TEXT_MAX) {
        memcpy(buf, d + 1 + tl, n - tl - 2);
        buf[n - tl - 2] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) == 1 && inet_ntop(AF_INET6, &a6, buf, sizeof(buf)))
            r = snprintf(dst, dstlen, "[IPv6:%s]", buf);
        else
            r = snprintf(dst, dstlen, "%s", d);
    } else if (sscanf(d, "[%u.%u.%u.%u]", &q[0], &q[1], &q[2], &q[3]) == 4) {
        r = snprintf(dst, dstlen, "[%u.%u.%u.%u]", q[0], q[1], q[2], q[3]);
    } else {
        r = snprintf(dst, dstlen, "%s", d);
    }
    return r < 0 || (size_t)r >= dstlen ? -1 : r;
}

/* addr_canon_domain - lower-case ASCII; a name with U-labels through IDNA to A-labels */
int addr_canon_domain(const char *domain, char *dst, size_t dstlen)
{
    char *ace = NULL;
    const char *src = domain;
    size_t n;
    int has8 = 0;

    for (const char *p = domain; *p != '\0'; p++)
        has8 |= (unsigned char)*p >= 0x80;
    if (domain[0] == '[')
        return canon_literal(domain, dst, dstlen);
    /* UTS #46 mapping folds case and width and applies NFC, so every spelling
     * of a name gives one A-label form; a refused name is kept (fails closed:
     * it can only ever equal itself) */
    if (has8 && idn2_to_ascii_8z(domain, &ace,
                                 IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT |
                                     IDN2_USE_STD3_ASCII_RULES) == IDN2_OK)
        src = ace;
    n = strlen(src);
    if (n + 1 > dstlen) {
        idn2_free(ace);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        dst[i] = ascii_lower(src[i]);
    idn2_free(ace);
    return (int)n;
}

/* addr_canon_parsed - local part, '@', domain (a bare postmaster has no domain) */
int addr_canon_parsed(const struct addr *a, unsigned flags, char *dst, size_t dstlen)
{
    int ll, dl;

    if (dst == NULL || dstlen == 0 || (ll = canon_local(a, flags, dst, dstlen)) < 0)
        return -1;
    dst[ll] = '\0';
    if (a->domain[0] == '\0')
        return ll;
    if ((size_t)ll + 2 > dstlen)
        return -1;
    dst[ll] = '@';
    dl = addr_canon_domain(a->domain, dst + ll + 1, dstlen - (size_t)ll - 1);
    if (dl < 0) {
        dst[0] = '\0';
        return -1;
    }
    return ll + 1 + dl;
}

/* addr_canon - parse (UTF-8 allowed: the session already applied SMTPUTF8), then canonicalise */
int addr_canon(const char *addr, unsigned flags, char *dst, size_t dstlen)
{
    struct addr a;
    enum addr_err e = addr_parse(addr, 1, &a);

    if (dst == NULL || dstlen == 0)
        return -1;
    dst[0] = '\0';
    if (e == ADDR_EMPTY)
        return 0;
    return e == ADDR_OK ? addr_canon_parsed(&a, flags, dst, dstlen) : -1;
}

/* addr_canon_lax - canonical, or the raw string lower-cased after its last '@' (all with fold) */
int addr_canon_lax(const char *addr, unsigned flags, char *dst, size_t dstlen)
{
    const char *at;
    size_t n;

    if (addr_canon(addr, flags, dst, dstlen) >= 0)
        return (int)strlen(dst);
    if (addr == NULL || dst == NULL || (n = strlen(addr)) + 1 > dstlen)
        return -1;
    at = strrchr(addr, '@');
    for (size_t i = 0; i <= n; i++)
        dst[i] = (flags & ADDR_CANON_FOLD) != 0 || (at && addr + i > at) ? ascii_lower(addr[i])
                                                                         : addr[i];
    return (int)n;
}

/* addr_host_ok - an ASCII domain or an IPv4/IPv6 address literal, nothing else */
int addr_host_ok(const char *s)
{
    char ldh[SMTP_DOMAIN_MAX + 1];
    size_t n = strlen(s);

    if (n == 0 || n > SMTP_DOMAIN_MAX)
        return 0;
    if (s[0] == '[')
        return literal_check(s, n) == ADDR_OK;
    /* An underscore is taken where a letter may stand, as Postfix's
     * valid_hostname() does: Windows hosts name themselves so, and refusing
     * their HELO refuses their mail. It cannot fake "(name [address])". */
    memcpy(ldh, s, n + 1);
    for (size_t i = 0; i < n; i++)
        if (ldh[i] == '_')
            ldh[i] = 'u';
    return domain_check(ldh, n, 0) == ADDR_OK;
}

/* addr_strerror - a short phrase for logs and reply texts */
const char *addr_strerror(enum addr_err e)
{
    switch (e) {
    case ADDR_OK:
        return "valid address";
    case ADDR_EMPTY:
        return "empty address";
    case ADDR_SYNTAX:
        return "address syntax error";
    case ADDR_TOO_LONG:
        return "address too long";
    case ADDR_NO_DOMAIN:
        return "address has no domain";
    case ADDR_BAD_DOMAIN:
        return "malformed domain";
    case ADDR_8BIT:
        return "non-ASCII address needs SMTPUTF8 and valid UTF-8";
    }
    return "unknown address error";
}
