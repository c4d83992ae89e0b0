/* proxyproto.c - the PROXY protocol header, versions 1 and 2, parsed strictly */
#include "smtp/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t proxyproto_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* proxyproto_bad - r says why */
static enum proxyproto_status proxyproto_bad(struct proxyproto_result *r, const char *why)
{
    r->error = why;
    return PROXYPROTO_BAD;
}

/* proxyproto_port - a v1 port: 1 to 5 digits, no leading zero, at most 65535; -1 if not */
static long proxyproto_port(const char *s, size_t n)
{
    long v = 0;

    if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

/* proxyproto_v1_addr - one address of family af (its text n octets at s) with port into ss */
static int proxyproto_v1_addr(int af, const char *s, size_t n, long port,
                              struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN];

    if (n == 0 || n >= sizeof(buf) || port < 0)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (af == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
        return inet_pton(AF_INET, buf, &s4->sin_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*s6);
    return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1 ? 0 : -1;
}

/* proxyproto_v1_fields - "SRC DST SPORT DPORT" (single spaces, nothing else) of family af */
static enum proxyproto_status proxyproto_v1_fields(int af, const char *s, size_t n,
                                                   struct proxyproto_result *r)
{
    const char *f[4];
    size_t fl[4], k = 0, start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ')
            continue;
        if (k == 4 || i == start)
            return proxyproto_bad(r, "v1: want SRC DST SPORT DPORT separated by single spaces");
        f[k] = s + start;
        fl[k++] = i - start;
        start = i + 1;
    }
    if (k != 4)
        return proxyproto_bad(r, "v1: want SRC DST SPORT DPORT separated by single spaces");
    if (proxyproto_v1_addr(af, f[0], fl[0], proxyproto_port(f[2], fl[2]), &r->src, &r->srclen) <
            0 ||
        proxyproto_v1_addr(af, f[1], fl[1], proxyproto_port(f[3], fl[3]), &r->dst, &r->dstlen) < 0)
        return proxyproto_bad(r, "v1: bad address or port");
    return PROXYPROTO_DONE;
}

/* proxyproto_v1 - "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN ...\r\n" */
static enum proxyproto_status proxyproto_v1(const uint8_t *p, size_t n, struct proxyproto_result *r)
{
    const char *line = (const char *)p;
    size_t lf, len;

    r->version = 1;
    if (memcmp(p, "PROXY ", n < 6 ? n : 6) != 0)
        return proxyproto_bad(r, "no PROXY header");
    for (lf = 0; lf < n && lf < PROXYPROTO_V1_MAX && p[lf] != '\n'; lf++)
        if (p[lf] == '\0' || (p[lf] == '\r' && lf + 1 < n && p[lf + 1] != '\n'))
            return proxyproto_bad(r, "v1: NUL or bare CR in the line");
    if (lf == PROXYPROTO_V1_MAX)
        return proxyproto_bad(r, "v1: no CRLF within 107 octets");
    if (lf == n) {
        r->len = n; /* no LF yet: every octet so far is the line's */
        return PROXYPROTO_MORE;
    }
    if (lf < 7 || p[lf - 1] != '\r')
        return proxyproto_bad(r, "v1: the line does not end with CRLF");
    r->len = lf + 1;
    len = lf - 1 - 6; /* after "PROXY ", before CRLF */
    line += 6;
    if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (len == 7 || line[7] == ' ')) {
        r->local = 1; /* the rest is to be ignored (the specification) */
        return PROXYPROTO_DONE;
    }
    if (len > 5 && memcmp(line, "TCP4 ", 5) == 0)
        return proxyproto_v1_fields(AF_INET, line + 5, len - 5, r);
    if (len > 5 && memcmp(line, "TCP6 ", 5) == 0)
        return proxyproto_v1_fields(AF_INET6, line + 5, len - 5, r);
    return proxyproto_bad(r, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
}

/* proxyproto_v2_tlvs - the TLVs of p[off..end) each fit (their contents are not used) */
static int proxyproto_v2_tlvs(const uint8_t *p, size_t off, size_t end)
{
    while (off < end) {
        size_t tl;
        if (end - off < 3)
            return -1;
        tl = (size_t)p[off + 1] << 8 | p[off + 2];
        if (tl > end - off - 3)
            return -1;
        off += 3 + tl;
    }
    return 0;
}

/* proxyproto_v2_inet - the TCP4 (af AF_INET) or TCP6 address block at p + 16 */
static enum proxyproto_status proxyproto_v2_inet(const uint8_t *p, size_t total, int af,
                                                 struct proxyproto_result *r)
{
    size_t al = af == AF_INET ? 4 : 16, block = 2 * al + 4;

    if (total - 16 < block)
        return proxyproto_bad(r, "v2: address block shorter than its family");
    memset(&r->src, 0, sizeof(r->src));
    memset(&r->dst, 0, sizeof(r->dst));
    if (af == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&r->src, *d = (struct sockaddr_in *)&r->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p + 16, 4);
        memcpy(&d->sin_addr, p + 20, 4);
        memcpy(&s->sin_port, p + 24, 2);
        memcpy(&d->sin_port, p + 26, 2);
        r->srclen = r->dstlen = sizeof(*s);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->src,
                            *d = (struct sockaddr_in6 *)&r->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p + 16, 16);
        memcpy(&d->sin6_addr, p + 32, 16);
        memcpy(&s->sin6_port, p + 48, 2);
        memcpy(&d->sin6_port, p + 50, 2);
        r->srclen = r->dstlen = sizeof(*s);
    }
    if (proxyproto_v2_tlvs(p, 16 + block, total) < 0)
        return proxyproto_bad(r, "v2: a TLV runs past the header");
    return PROXYPROTO_DONE;
}

/* proxyproto_v2 - the 16-octet fixed part, then the address block and TLVs */
static enum proxyproto_status proxyproto_v2(const uint8_t *p, size_t n, struct proxyproto_result *r)
{
    size_t total;

    r->version = 2;
    if (memcmp(p, proxyproto_sig, n < 12 ? n : 12) != 0)
        return proxyproto_bad(r, "no PROXY header");
    if (n < 16) {
        r->len = n;
        return PROXYPROTO_MORE;
    }
    if ((p[12] >> 4) != 2 || (p[12] & 0x0f) > 1)
        return proxyproto_bad(r, "v2: version is not 2 or command not LOCAL or PROXY");
    total = 16 + ((size_t)p[14] << 8 | p[15]);
    if (total > PROXYPROTO_V2_MAX)
        return proxyproto_bad(r, "v2: header longer than 2048 octets");
    if (n < total) {
        r->len = n;
        return PROXYPROTO_MORE;
    }
    r->len = total;
    if ((p[12] & 0x0f) == 0 || p[13] == 0x00) { /* LOCAL, or PROXY with UNSPEC: no address */
        r->local = 1;
        return PROXYPROTO_DONE;
    }
    if (p[13] == 0x11)
        return proxyproto_v2_inet(p, total, AF_INET, r);
    if (p[13] == 0x21)
        return proxyproto_v2_inet(p, total, AF_INET6, r);
    return proxyproto_bad(r, "v2: address family is not TCP over IPv4 or IPv6");
}

/* proxyproto_parse - see proxyproto.h */
enum proxyproto_status proxyproto_parse(const uint8_t *p, size_t n, unsigned versions,
                                        struct proxyproto_result *r)
{
    memset(r, 0, sizeof(*r));
    if (n == 0)
        return PROXYPROTO_MORE;
    if (p[0] == 'P' && (versions & PROXYPROTO_V1))
        return proxyproto_v1(p, n, r);
    if (p[0] == 0x0D && (versions & PROXYPROTO_V2))
        return proxyproto_v2(p, n, r);
    return proxyproto_bad(r, (versions & PROXYPROTO_V2) && !(versions & PROXYPROTO_V1)
                                 ? "no PROXY v2 header"
                             : !(versions & PROXYPROTO_V2) ? "no PROXY v1 header"
                                                           : "no PROXY header");
}
