/*
 * signconf.h - DKIM signing (RFC 6376, RFC 8463) for mail leaving through us:
 * the dkim_sign sections, their private keys, and which section signs a
 * message of a given author domain.
 *
 *   dkim_sign "example.test" {
 *       selector = "s2026"            key = "/etc/mxgate/dkim/example.test.s2026.key"
 *       selector_ed25519 = "e2026"    key_ed25519 = "/etc/mxgate/dkim/example.test.e2026.key"
 *       subdomains = false            # also sign mail From: x.example.test (d=example.test)
 *   }
 *
 * `key` is an RSA (or, alone, an Ed25519) key; `key_ed25519` adds an Ed25519
 * key beside it: both sign every message. Keys are read at start and at each
 * reload; a key that cannot be read, is of another type, is RSA under 1024
 * bits (a warning under 2048) or can be read by group or others is an error.
 */
#ifndef MX_SMTP_SIGNCONF_H
#define MX_SMTP_SIGNCONF_H

#include <stddef.h>

#include <openssl/evp.h>

#include "core/config.h"

#define SIGNCONF_KEYS_MAX 2 /* per domain: rsa and ed25519 */

struct signconf_key {
    char *selector;
    EVP_PKEY *pkey;
    const char *algo; /* "rsa-sha256" or "ed25519-sha256", for the log */
};

struct signconf_domain {
    char *domain; /* lower case, A-label */
    int subdomains;
    struct signconf_key key[SIGNCONF_KEYS_MAX];
    size_t nkeys;
};

struct signconf;

extern const struct config_section signconf_section;

/* the fields signed when present, each as often as present (NULL-terminated) */
extern const char *const signconf_headers[];
/* those signed once more than present (RFC 6376 8.15: none can be added unseen) */
extern const char *const signconf_oversign[];
size_t signconf_nheaders(void);
size_t signconf_noversign(void);

/* signconf_validate - every dkim_sign key loaded and checked; errors and warnings to d */
void signconf_validate(const struct config *cfg, struct config_diag *d);

/* signconf_load - the sections with their keys; NULL and err when a key fails (a
 * configuration without sections gives an empty table, never NULL) */
struct signconf *signconf_load(const struct config *cfg, char *err, size_t errlen);
void signconf_free(struct signconf *sc);

/* signconf_count - how many domains sign */
size_t signconf_count(const struct signconf *sc);

/* signconf_find - the section that signs mail of author domain dom (lower case): the
 * exact one, else the closest parent whose subdomains is true; NULL when none */
const struct signconf_domain *signconf_find(const struct signconf *sc, const char *dom);

#endif
