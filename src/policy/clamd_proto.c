/* clamd_proto.c - the clamd check's pure parts: its reply line and its socket address */
#include "policy/clamd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* clean_copy - at most dstlen-1 octets of p, each outside printable ASCII (space
 * too unless spaces) or a quote or backslash made '?', so the text can go into a
 * reply and a log line */
static void clean_copy(char *dst, size_t dstlen, const char *p, size_t len, int spaces)
{
    size_t n = 0;

    if (!dstlen)
        return;
    for (; n < len && n + 1 < dstlen; n++) {
        unsigned char ch = (unsigned char)p[n];
        dst[n] = (ch == ' ' && !spaces) || ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\'
                     ? '?'
                     : (char)ch;
    }
    dst[n] = '\0';
}

/* ends_with - does [p, p+len) end with word */
static int ends_with(const char *p, size_t len, const char *word)
{
    size_t n = strlen(word);

    return len >= n && memcmp(p + len - n, word, n) == 0;
}

enum clamd_result clamd_reply_parse(const char *reply, size_t len, char *sig, size_t siglen)
{
    const char *p = reply;
    size_t n = len;

    if (siglen)
        sig[0] = '\0';
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\0'))
        n--;
    if (n > 8 && memcmp(p, "stream: ", 8) == 0) { /* the name clamd gives an INSTREAM scan */
        p += 8;
        n -= 8;
    } else if (n > 0 && memchr(p, ':', n) && !ends_with(p, n, " ERROR")) {
        const char *colon = memchr(p, ':', n); /* "1: stream: OK" (IDSESSION) or another name */
        n -= (size_t)(colon + 1 - p);
        p = colon + 1;
        while (n > 0 && *p == ' ')
            p++, n--;
        if (n > 8 && memcmp(p, "stream: ", 8) == 0)
            p += 8, n -= 8;
    }
    if (n == 2 && memcmp(p, "OK", 2) == 0)
        return CLAMD_CLEAN;
    if (n > 6 && ends_with(p, n, " FOUND")) {
        clean_copy(sig, siglen, p, n - 6, 0);
        return sig[0] ? CLAMD_FOUND : CLAMD_ERROR;
    }
    n = len;
    while (n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == '\r' || reply[n - 1] == '\0'))
        n--;
    clean_copy(sig, siglen, reply, n, 1);
    if (!sig[0])
        snprintf(sig, siglen, "empty reply");
    return CLAMD_ERROR;
}

/* addr_tcp - "host:port" or "[v6]:port" with a literal address */
static int addr_tcp(const char *s, struct sockaddr_storage *sa, socklen_t *salen)
{
    char host[64];
    const char *colon = strrchr(s, ':'), *h = s;
    size_t hlen;
    char *end;
    long port;

    if (!colon)
        return -1;
    hlen = (size_t)(colon - s);
    if (hlen > 1 && s[0] == '[' && s[hlen - 1] == ']')
        h = s + 1, hlen -= 2;
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
        return -1;
    memset(sa, 0, sizeof(*sa));
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        *salen = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        *salen = sizeof(*v6);
        return 0;
    }
    return -1;
}

int clamd_addr_parse(const char *s, struct sockaddr_storage *sa, socklen_t *salen)
{
    struct sockaddr_un *un = (struct sockaddr_un *)sa;

    if (!s || !s[0])
        return -1;
    if (s[0] != '/')
        return addr_tcp(s, sa, salen);
    if (strlen(s) >= sizeof(un->sun_path))
        return -1;
    memset(sa, 0, sizeof(*sa));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, s, strlen(s) + 1);
    *salen = (socklen_t)sizeof(*un);
    return 0;
}
