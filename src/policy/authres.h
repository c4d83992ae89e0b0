/*
 * authres.h - the Authentication-Results header field (RFC 8601) of a
 * message: what mxgate found (spf, dkim, dmarc, from cl->auth) for the mail
 * servers behind it, and whether an incoming field claims to be ours.
 */
#ifndef MX_POLICY_AUTHRES_H
#define MX_POLICY_AUTHRES_H

#include <stddef.h>

struct policy_client;

/* A buffer that holds any value authres_format makes, whatever the results hold
 * (8 DKIM results at most, every outside octet escaped) */
#define AUTHRES_MAX 16384

/*
 * authres_format - the field VALUE (without "Authentication-Results:"):
 *   authserv-id; spf=pass smtp.mailfrom=user@example.test;
 *     dkim=pass header.d=example.test header.s=sel header.b=abcdefgh;
 *     dmarc=pass header.from=example.test
 * or "authserv-id; none" when no method ran. A value that is not an RFC 2045
 * token (or local-part@domain) is a quoted-string; octets from outside that
 * are controls (CR, LF...) or ';' are written as '?', so nothing can add a
 * line or a resinfo. Folded ("\r\n\t") between resinfo and properties so
 * that lines stay within 78 octets where a value allows (counting the field
 * name before the value), and always under 998. 0, or -1 when outlen is too
 * small (out is then "").
 */
int authres_format(const struct policy_client *cl, const char *authserv_id, char *out,
                   size_t outlen);

/*
 * authres_claims - does the field value (len octets, as received, folded or
 * not) name authserv_id as its authserv-id (RFC 8601 5): CFWS and comments
 * before it skipped, a quoted-string unquoted, compared case-insensitively.
 * 1 or 0.
 */
int authres_claims(const char *value, size_t len, const char *authserv_id);

#endif
