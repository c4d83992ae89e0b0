/* eightbit.c - non-ASCII in addresses, header and body */
#include "mail/eightbit.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define EB_CHUNK 8192

/* eightbit_mem - n octets hold one >= 0x80 */
static int eightbit_mem(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 1;
    return 0;
}

/* eightbit_str - see eightbit.h */
int eightbit_str(const char *s)
{
    return s && eightbit_mem(s, strlen(s));
}

/* eightbit_scan_init - see eightbit.h */
void eightbit_scan_init(struct eightbit_scan *sc)
{
    memset(sc, 0, sizeof(*sc));
}

/* eightbit_scan_line - see eightbit.h */
void eightbit_scan_line(struct eightbit_scan *sc, const char *line, size_t len)
{
    if (sc->in_body) {
        sc->body_8bit |= !sc->body_8bit && eightbit_mem(line, len);
        return;
    }
    if ((len == 2 && line[0] == '\r' && line[1] == '\n') || (len == 1 && line[0] == '\n')) {
        sc->in_body = 1;
        return;
    }
    sc->header_8bit |= !sc->header_8bit && eightbit_mem(line, len);
}

/*
 * eightbit_header_fd - the header ends at the first CRLF CRLF (or LF LF);
 * the state carries across chunks so that a line end split between two
 * reads is seen like one inside a read.
 */
int eightbit_header_fd(int fd, off_t off, uint64_t len)
{
    char buf[EB_CHUNK];
    int nl = 1; /* at a line start: an empty first line means no header */

    while (len > 0) {
        size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t n = pread(fd, buf, want, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : -1;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c >= 0x80)
                return 1;
            if (c == '\n') {
                if (nl)
                    return 0;
                nl = 1;
            } else if (c != '\r') {
                nl = 0;
            }
        }
        off += n;
        len -= (uint64_t)n;
    }
    return 0;
}
