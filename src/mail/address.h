/* address.h - RFC 5321 paths: mailbox syntax, domains, and relay tricks */
#ifndef MX_MAIL_ADDRESS_H
#define MX_MAIL_ADDRESS_H

#include <stddef.h>

#define SMTP_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, includes < > */

enum addr_err {
    ADDR_OK = 0,
    ADDR_EMPTY,      /* "" where a mailbox is required */
    ADDR_SYNTAX,     /* not a Mailbox per RFC 5321 4.1.2 */
    ADDR_TOO_LONG,   /* local part, domain or path over the limits */
    ADDR_NO_DOMAIN,  /* "user" without @domain */
    ADDR_BAD_DOMAIN, /* domain or address literal malformed */
    ADDR_8BIT,       /* non-ASCII without SMTPUTF8 */
};

/* Properties that must never open a relay; set by addr_parse. */
struct addr {
    char local[SMTP_LOCAL_MAX * 4 + 3]; /* as written; quoted form keeps its quotes */
    char domain[SMTP_DOMAIN_MAX + 1];   /* lower-cased ASCII; "[1.2.3.4]" for literals */
    int quoted;                         /* local part was a quoted-string */
    int had_route;                      /* "@a,@b:user@dom" source route was given (and dropped) */
    int has_percent;                    /* '%' in the local part: user%other@gw */
    int has_bang;                       /* '!' in the local part: host!user@gw */
    int has_at_in_local;                /* '@' inside a quoted local part: "a@b"@gw */
    int is_literal;                     /* domain is an address literal [..] */
};

/*
 * addr_parse - parse the inside of a path (between < and >) into a.
 * An empty string is the null path: returns ADDR_EMPTY with a zeroed a.
 * Source routes are accepted syntactically and dropped (RFC 5321 4.1.2,
 * C.) but flagged. utf8: SMTPUTF8 was given, so UTF-8 is allowed in
 * local part and domain. Domain names are checked label by label (LDH, no
 * empty label, each label <= 63) and lower-cased.
 */
enum addr_err addr_parse(const char *path, int utf8, struct addr *a);

/* addr_format - "local@domain" into dst (NUL-terminated; returns length or -1 if too small) */
int addr_format(const struct addr *a, char *dst, size_t dstlen);

/*
 * addr_is_relay_trick - true when the address carries a form that some MTA
 * behind us could reinterpret as a route to another host: %, !, a source
 * route, or @ inside a quoted local part. Such recipients never relay.
 */
int addr_is_relay_trick(const struct addr *a);

/* addr_domain_match - case-insensitive equality of a domain with a pattern
 * ("example.test" exact; ".example.test" any subdomain) */
int addr_domain_match(const char *domain, const char *pattern);

/*
 * addr_host_ok - s is an RFC 5321 Domain in ASCII (LDH labels of 1..63
 * octets, '_' taken like a letter as Postfix does, at most 255 in all, no
 * trailing dot) or an address literal
 * "[192.0.2.1]" / "[IPv6:2001:db8::1]": what HELO/EHLO must name, and
 * all a Received header may show of it. General literals are refused.
 */
int addr_host_ok(const char *s);

const char *addr_strerror(enum addr_err e);

/*
 * The canonical form: how addresses are compared, never how they are
 * delivered (the envelope keeps what the client wrote).
 *   local part  unquoted when its content is a Dot-string ("ceo" -> ceo);
 *               otherwise quoted with only '"' and '\' escaped
 *               ("a\ b" -> "a b"). With ADDR_CANON_FOLD, ASCII letters are
 *               lower-cased (RFC 5321 leaves local-part case to the
 *               receiving host; each consumer documents its choice).
 *   domain      lower-cased; U-labels to A-labels by IDNA2008 with UTS #46
 *               mapping (libidn2), so bücher.example, BÜCHER.example and
 *               xn--bcher-kva.example are one domain; a name libidn2
 *               refuses stays as written (it can equal only itself).
 *               Address literals: [IPv6:...] in inet_ntop form, IPv4
 *               without leading zeros.
 */
#define ADDR_CANON_MAX (SMTP_LOCAL_MAX + 1 + SMTP_DOMAIN_MAX + 1) /* with the NUL */
#define ADDR_CANON_FOLD 1u /* lower-case the local part too */

/*
 * addr_canon - the canonical form of addr ("local@domain" as addr_format
 * writes it, UTF-8 allowed; "" stays ""; a bare postmaster is allowed)
 * into dst. Its length, or -1 when addr is not an address or dst is too
 * small (ADDR_CANON_MAX always suffices).
 */
int addr_canon(const char *addr, unsigned flags, char *dst, size_t dstlen);

/*
 * addr_canon_lax - addr_canon, and for a string that is not an address
 * (never the case for one the session accepted) the string itself, with
 * ASCII lower-cased where addr_canon would lower-case. -1 only when dst
 * is too small. For consumers that must compare whatever they are given.
 */
int addr_canon_lax(const char *addr, unsigned flags, char *dst, size_t dstlen);

/* addr_canon_parsed - the same for an address addr_parse accepted */
int addr_canon_parsed(const struct addr *a, unsigned flags, char *dst, size_t dstlen);

/*
 * addr_canon_domain - a domain (from a list or the configuration) in the
 * canonical form above: lower-cased, A-labels. Its length, or -1 when it
 * does not fit (SMTP_DOMAIN_MAX + 1 suffices for a domain that fits RFC 5321).
 */
int addr_canon_domain(const char *domain, char *dst, size_t dstlen);

#endif
