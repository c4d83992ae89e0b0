/*
 * sasl.h - the SASL pieces SMTP AUTH needs (RFC 4954): strict base64 and the
 * PLAIN message (RFC 4616). No I/O, no state: the session drives the exchange.
 */
#ifndef MXGATE_AUTH_SASL_H
#define MXGATE_AUTH_SASL_H

#include <stddef.h>

#define SASL_FIELD_MAX 255 /* authzid, authcid and password, each */

/* sasl_b64_decode - strict base64 (no blanks, correct padding) into out (NUL-terminated);
 * the decoded length, or -1 */
int sasl_b64_decode(const char *in, char *out, size_t outlen);

/* sasl_b64_encode - base64 of in into out (NUL-terminated); its length, or -1 */
int sasl_b64_encode(const char *in, size_t inlen, char *out, size_t outlen);

struct sasl_plain {
    char authzid[SASL_FIELD_MAX + 1];
    char authcid[SASL_FIELD_MAX + 1];
    char passwd[SASL_FIELD_MAX + 1];
};

/* sasl_plain_parse - "authzid NUL authcid NUL passwd" (decoded); 0, or -1 when malformed */
int sasl_plain_parse(const char *buf, size_t len, struct sasl_plain *p);

/* sasl_wipe - clear a secret so it does not linger in memory */
void sasl_wipe(void *p, size_t n);

#endif
