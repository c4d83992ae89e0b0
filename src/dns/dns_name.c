/* dns_name.c - client addresses, reverse and DNSBL query names */
#include "dns/dns_internal.h"
#include "core/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dns_addr_from_sa - client address; an IPv4-mapped IPv6 address becomes IPv4 */
int dns_addr_from_sa(const struct sockaddr *sa, struct dns_addr *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const struct sockaddr_in6 *s6;

    memset(a, 0, sizeof(*a));
    if (sa != NULL && sa->sa_family == AF_INET) {
        a->family = AF_INET;
        a->u.v4 = ((const struct sockaddr_in *)sa)->sin_addr;
        return 0;
    }
    if (sa == NULL || sa->sa_family != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    s6 = (const struct sockaddr_in6 *)sa;
    if (memcmp(s6->sin6_addr.s6_addr, mapped, sizeof(mapped)) == 0) {
        a->family = AF_INET;
        memcpy(&a->u.v4, s6->sin6_addr.s6_addr + 12, 4);
    } else {
        a->family = AF_INET6;
        a->u.v6 = s6->sin6_addr;
    }
    return 0;
}

/* dns_reverse_name - reversed octets or nibbles of a, then zone */
int dns_reverse_name(const struct dns_addr *a, const char *zone, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    char buf[80]; /* "255.255.255.255." or 32 nibbles with dots */
    size_t zlen = strlen(zone), n = 0;
    int i;

    if (zlen > 0 && zone[zlen - 1] == '.')
        zlen--;
    if (zlen == 0 || zone[0] == '.') {
        errno = EINVAL;
        return -1;
    }
    if (zlen > DNS_NAME_SIZE) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (a->family == AF_INET) {
        const unsigned char *b = (const unsigned char *)&a->u.v4;
        n = (size_t)snprintf(buf, sizeof(buf), "%u.%u.%u.%u.", b[3], b[2], b[1], b[0]);
    } else {
        for (i = 15; i >= 0; i--) {
            buf[n++] = hex[a->u.v6.s6_addr[i] & 0xf];
            buf[n++] = '.';
            buf[n++] = hex[a->u.v6.s6_addr[i] >> 4];
            buf[n++] = '.';
        }
    }
    if (n + zlen > 253 || n + zlen + 1 > outlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out, buf, n);
    memcpy(out + n, zone, zlen);
    out[n + zlen] = '\0';
    return 0;
}

/* dns_dnsbl_name - DNSBL query name of sa under zone */
int dns_dnsbl_name(const struct sockaddr *sa, const char *zone, char *out, size_t outlen)
{
    struct dns_addr a;

    if (zone == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (dns_addr_from_sa(sa, &a) < 0)
        return -1;
    return dns_reverse_name(&a, zone, out, outlen);
}

/* dns_name_dup - copy of a DNS name, ASCII lower-cased, without trailing dot */
char *dns_name_dup(const char *s, size_t *lenp)
{
    size_t len = strlen(s), i;
    char *d;

    if (len > 0 && s[len - 1] == '.')
        len--;
    d = xmalloc(len + 1);
    for (i = 0; i < len; i++)
        d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    d[len] = '\0';
    *lenp = len;
    return d;
}
