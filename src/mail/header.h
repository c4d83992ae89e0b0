/*
 * header.h - the header section of a message (RFC 5322 2.2): fields one at
 * a time, their names compared case-insensitively, values unfolded.
 *
 * Input is a header section as stored: CRLF lines, no empty line. Nothing
 * here trusts it: a line without a colon ends nothing and is skipped as a
 * field of its own with an empty name, and every output is bounded.
 */
#ifndef MX_MAIL_HEADER_H
#define MX_MAIL_HEADER_H

#include <stddef.h>

struct hdr_field {
    const char *raw; /* the field's first octet: "Name: value" */
    size_t raw_len;  /* through the CRLF of its last continuation line */
    const char *name;
    size_t name_len;   /* 0 for a line with no colon (malformed) */
    const char *value; /* after the colon (folded, with its CRLFs) */
    size_t value_len;  /* up to, not including, the final CRLF */
};

/* hdr_next - the field at *off of h (len octets), and *off moved past it;
 * 0 when there is none left */
int hdr_next(const char *h, size_t len, size_t *off, struct hdr_field *f);

/* hdr_is - the field's name is name (ASCII, case-insensitive) */
int hdr_is(const struct hdr_field *f, const char *name);

/* hdr_unfold - the value with CRLFs removed and leading/trailing white space
 * trimmed (RFC 5322 2.2.3), NUL-terminated in out; -1 when it did not fit */
int hdr_unfold(const struct hdr_field *f, char *out, size_t outlen);

/* hdr_count - how many fields of h are named name */
size_t hdr_count(const char *h, size_t len, const char *name);

/* hdr_line_continues - a header line that starts with WSP continues the field before it */
int hdr_line_continues(const char *line, size_t len);

#endif
