/* cidr.h - IPv4/IPv6 networks and addresses */
#ifndef MX_CORE_CIDR_H
#define MX_CORE_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network bytes; IPv4 in the first 4 */
    int bits;
};

/* cidr_parse - "192.0.2.0/24", "2001:db8::/32", or a bare address (full length). 0 or -1 */
int cidr_parse(const char *s, struct cidr *c);
/* cidr_match - does sa (AF_INET/AF_INET6; v4-mapped v6 counts as v4) fall in c */
int cidr_match(const struct cidr *c, const struct sockaddr *sa);
/* sockaddr_ip - the address of sa as text, without port; v4-mapped shown as v4 */
const char *sockaddr_ip(const struct sockaddr *sa, char *dst, size_t dstlen);
/* sockaddr_parse - "1.2.3.4:25", "[::1]:25", "host-literal" with default port. 0 or -1 */
int sockaddr_parse(const char *s, int default_port, struct sockaddr_storage *ss, socklen_t *len);

/* sockaddr_network - "192.0.2.0/24": sa masked to v4prefix or v6prefix (v4-mapped
 * addresses count as IPv4), the key greylisting and rate limits group clients by.
 * 0, or -1 (unknown family, or out too small) */
int sockaddr_network(const struct sockaddr *sa, int v4prefix, int v6prefix, char *out, size_t len);

#endif
