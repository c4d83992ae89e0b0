/* cidr.c - IPv4/IPv6 networks and socket addresses */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cidr_parse - "addr/bits" or a bare address */
int cidr_parse(const char *s, struct cidr *c)
{
    char buf[INET6_ADDRSTRLEN + 8];
    char *slash, *end;
    long bits;

    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    slash = strchr(buf, '/');
    if (slash)
        *slash++ = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        c->bits = 32;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        c->bits = 128;
    } else {
        return -1;
    }
    if (slash) {
        bits = strtol(slash, &end, 10);
        if (*slash == '\0' || *end != '\0' || bits < 0 || bits > c->bits)
            return -1;
        c->bits = (int)bits;
    }
    return 0;
}

/* cidr_prefix_eq - do the first bits of a and b agree */
static int cidr_prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[whole] ^ b[whole]) & (0xff00 >> rest)) == 0;
}

/* cidr_match - does sa fall in c; v4-mapped IPv6 clients match IPv4 networks */
int cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
    const uint8_t *ip;

    if (sa->sa_family == AF_INET) {
        if (c->family != AF_INET)
            return 0;
        ip = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return cidr_prefix_eq(ip, c->addr, c->bits);
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    ip = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (c->family == AF_INET6)
        return cidr_prefix_eq(ip, c->addr, c->bits);
    if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)ip))
        return cidr_prefix_eq(ip + 12, c->addr, c->bits);
    return 0;
}

/* sockaddr_ip - the address as text, v4-mapped shown as plain IPv4 */
const char *sockaddr_ip(const struct sockaddr *sa, char *dst, size_t dstlen)
{
    const struct in6_addr *a6;

    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, dst, (socklen_t)dstlen);
    } else if (sa->sa_family == AF_INET6) {
        a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, a6->s6_addr + 12, dst, (socklen_t)dstlen);
        else
            inet_ntop(AF_INET6, a6, dst, (socklen_t)dstlen);
    } else {
        snprintf(dst, dstlen, "local");
    }
    return dst;
}

/* sockaddr_parse_port - the decimal port after a colon */
static int sockaddr_parse_port(const char *s, int *port)
{
    char *end;
    long p = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* sockaddr_parse - "1.2.3.4:25", "[::1]:25", "1.2.3.4", "::1" */
int sockaddr_parse(const char *s, int default_port, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *port_s = NULL, *colon;
    size_t hl;
    int port = default_port;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return -1;
        hl = (size_t)(close - s - 1);
        port_s = close[1] == ':' ? close + 2 : NULL;
        s++;
    } else if ((colon = strchr(s, ':')) && !strchr(colon + 1, ':')) {
        hl = (size_t)(colon - s);
        port_s = colon + 1;
    } else {
        hl = strlen(s);
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (port_s && sockaddr_parse_port(port_s, &port) < 0)
        return -1;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
        return 0;
    }
    return -1;
}

/* sockaddr_network - the client's network as text */
int sockaddr_network(const struct sockaddr *sa, int v4prefix, int v6prefix, char *out, size_t len)
{
    unsigned char a[16];
    char txt[INET6_ADDRSTRLEN];
    int fam, bits;

    if (sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        fam = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *s6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        fam = IN6_IS_ADDR_V4MAPPED(s6) ? AF_INET : AF_INET6;
        memcpy(a, fam == AF_INET ? s6->s6_addr + 12 : s6->s6_addr, fam == AF_INET ? 4 : 16);
    } else {
        return -1;
    }
    bits = fam == AF_INET ? v4prefix : v6prefix;
    for (int i = 0; i < (fam == AF_INET ? 4 : 16); i++) {
        int keep = bits - 8 * i;
        a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
    }
    if (!inet_ntop(fam, a, txt, sizeof(txt)))
        return -1;
    return snprintf(out, len, "%s/%d", txt, bits) < (int)len ? 0 : -1;
}
