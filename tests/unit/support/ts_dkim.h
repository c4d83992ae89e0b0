/* ts_dkim.h - the DKIM fixtures of tests/data/dkim/ (made by make_fixtures.py with
 * dkimpy and Mail::DKIM): messages, keys and the key records to publish */
#ifndef TS_DKIM_H
#define TS_DKIM_H

#include <stddef.h>

#include <openssl/evp.h>

/* ts_dkim_path - the path of tests/data/dkim/<name> in this source tree */
void ts_dkim_path(const char *name, char *out, size_t outlen);
/* ts_dkim_read - tests/data/dkim/<name>, malloc'd and NUL-terminated, *len set (may be
 * NULL); fails the test when it is missing (a shipped file never skips) */
char *ts_dkim_read(const char *name, size_t *len);
/* ts_dkim_key - the private key tests/data/dkim/<name>.key */
EVP_PKEY *ts_dkim_key(const char *name);
/* ts_dkim_record - the record keys.txt publishes for selector (a static buffer) */
const char *ts_dkim_record(const char *selector);
/* ts_dkim_split - the header section of msg (through the CRLF of its last field) and
 * the body after the empty line */
void ts_dkim_split(const char *msg, size_t len, size_t *hlen, const char **body, size_t *blen);

#endif
