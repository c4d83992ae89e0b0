/*
 * from.h - the author domain of a message: the domain of the address in the
 * header From: field (RFC 5322 3.6.2), as DMARC (RFC 7489 3.1) and the
 * sender check need it.
 *
 * Display names, quoted strings, comments and groups are understood well
 * enough to find each mailbox's addr-spec; everything is bounded.
 */
#ifndef MX_MAIL_FROM_H
#define MX_MAIL_FROM_H

#include <stddef.h>

#include "mail/address.h"

#define FROM_MAX_ADDRS 8
#define FROM_DOMAIN_SIZE 256

enum from_status {
    FROM_ONE,  /* one From: field whose addresses all share one domain */
    FROM_NONE, /* no From: field, or one without an address */
    FROM_MANY, /* several From: fields, or addresses of several domains */
    FROM_BAD,  /* an address without a usable domain, or a field too long */
};

/* from_domains - the canonical domains (lower-case A-labels) of the mailboxes
 * of one unfolded From: value, up to max; their count, or -1 when a mailbox
 * has no usable domain */
int from_domains(const char *value, char dom[][FROM_DOMAIN_SIZE], int max);

/* from_author_domain - the author domain of a header section (CRLF lines)
 * into dom (FROM_DOMAIN_SIZE octets; "" unless FROM_ONE) */
enum from_status from_author_domain(const char *hdr, size_t len, char *dom);

/* from_addresses - the canonical addresses (mail/address.h, ADDR_CANON_FOLD) of the
 * mailboxes of the one From: field of a header section, up to max; their count, or
 * -1 when there is not exactly one From: field or a mailbox is not an address */
int from_addresses(const char *hdr, size_t len, char addrs[][ADDR_CANON_MAX], int max);

const char *from_status_name(enum from_status st);

#endif
