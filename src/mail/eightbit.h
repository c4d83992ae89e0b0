/*
 * eightbit.h - where a message needs more than 7-bit SMTP: non-ASCII in an
 * address or a header field (SMTPUTF8, RFC 6531/6532) or in the body
 * (8BITMIME, RFC 6152). The session scans each text line as it arrives;
 * delivery scans a stored message's header before choosing MAIL parameters.
 */
#ifndef MX_MAIL_EIGHTBIT_H
#define MX_MAIL_EIGHTBIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct eightbit_scan {
    int in_body;     /* the empty line that ends the header was seen */
    int header_8bit; /* an octet >= 0x80 in the header section */
    int body_8bit;   /* an octet >= 0x80 in the body */
};

/* eightbit_str - s holds an octet >= 0x80 */
int eightbit_str(const char *s);

/* eightbit_scan_init - a fresh scan, at the start of the header */
void eightbit_scan_init(struct eightbit_scan *sc);

/* eightbit_scan_line - one text line as received, with its line end (CRLF
 * or whatever the client sent); the first empty line ends the header */
void eightbit_scan_line(struct eightbit_scan *sc, const char *line, size_t len);

/*
 * eightbit_header_fd - BLOCKING (a few preads of the stored header): does
 * the header section of the message stored at fd, off, len (CRLF lines)
 * hold an octet >= 0x80. 1 yes, 0 no, -1 read error (errno set).
 */
int eightbit_header_fd(int fd, off_t off, uint64_t len);

#endif
