/*
 * proxyproto.h - the PROXY protocol header a load balancer sends before the
 * client's first byte (HAProxy's proxy-protocol.txt, versions 1 and 2):
 * who the client really is. A strict parser over octets, no I/O.
 */
#ifndef MX_SMTP_PROXYPROTO_H
#define MX_SMTP_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXYPROTO_V1 1u /* the text line "PROXY TCP4 ..." */
#define PROXYPROTO_V2 2u /* the binary header */

#define PROXYPROTO_V1_MAX 107 /* the longest v1 line, CRLF included (the specification's) */
/* the longest v2 header taken: 16 octets and the addresses and TLVs after them. The
 * specification allows 65535; a load balancer sends a few hundred at most. */
#define PROXYPROTO_V2_MAX 2048

enum proxyproto_status { PROXYPROTO_BAD = -1, PROXYPROTO_MORE = 0, PROXYPROTO_DONE = 1 };

struct proxyproto_result {
    int version; /* 1 or 2, once known */
    /* no address given (v1 UNKNOWN, v2 LOCAL or UNSPEC): the connection is the
     * balancer's own (a health check); the socket's peer stays the client */
    int local;
    struct sockaddr_storage src; /* DONE and !local: the client */
    socklen_t srclen;
    struct sockaddr_storage dst; /* DONE and !local: the address the client reached */
    socklen_t dstlen;
    /* DONE: the header's length. MORE: how many of the octets given are known to
     * belong to the header (may be read off the socket without taking a client's
     * octet). */
    size_t len;
    const char *error; /* BAD: why, printable, for the log */
};

/*
 * proxyproto_parse - the header at the start of p[0..n): DONE (r->len octets
 * are the header), MORE (too short to tell yet) or BAD (r->error). versions
 * is PROXYPROTO_V1 and/or PROXYPROTO_V2: what the listener accepts.
 */
enum proxyproto_status proxyproto_parse(const uint8_t *p, size_t n, unsigned versions,
                                        struct proxyproto_result *r);

#endif
