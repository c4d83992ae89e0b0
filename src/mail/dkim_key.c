/*
 * dkim_key.c - key records (RFC 6376 3.6.1, RFC 8463 for ed25519): v=, k=,
 * p= (empty: revoked), h=, s= and the t= flags, into an OpenSSL key.
 *
 * An RSA p= is a SubjectPublicKeyInfo (what everyone publishes) or, as some
 * old records have, a bare RSAPublicKey; an ed25519 p= is the raw 32-octet
 * public key. Key sizes are bounded before OpenSSL sees the octets.
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

/* dkim_key_list - a colon-separated list holds item (any case; FWS around items) */
static int dkim_key_list(const struct dkim_tag *t, const char *item)
{
    size_t i = 0, il = strlen(item);

    while (i <= t->val_len) {
        size_t s, e;
        while (i < t->val_len &&
               (t->val[i] == ' ' || t->val[i] == '\t' || t->val[i] == '\r' || t->val[i] == '\n'))
            i++;
        for (s = i; i < t->val_len && t->val[i] != ':'; i++)
            ;
        for (e = i; e > s && (t->val[e - 1] == ' ' || t->val[e - 1] == '\t' ||
                              t->val[e - 1] == '\r' || t->val[e - 1] == '\n');)
            e--;
        if (e - s == il && strncasecmp(t->val + s, item, il) == 0)
            return 1;
        i++;
    }
    return 0;
}

/* dkim_key_rsa - DER of an RSA key: SubjectPublicKeyInfo, else RSAPublicKey */
static EVP_PKEY *dkim_key_rsa(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);

    if (pk && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    if (!pk) {
        p = der;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
    }
    ERR_clear_error(); /* a failed try leaves errors that TLS code would read as its own */
    return pk;
}

/* dkim_key_p - p= into the key: revoked, RSA or ed25519 */
static enum dkim_result dkim_key_p(const struct dkim_tag *p, struct dkim_key *k, char *why,
                                   size_t whylen)
{
    unsigned char der[DKIM_RSA_MAX_BITS / 8 + 64];
    size_t len;

    if (p->val_len == 0) {
        k->revoked = 1;
        return DKIM_PASS;
    }
    if (dkim_b64_decode(p->val, p->val_len, der, sizeof(der), &len) < 0) {
        snprintf(why, whylen, "bad p= in key (or key too large)");
        return DKIM_PERMERROR;
    }
    if (k->ktype == DKIM_K_ED25519) {
        if (len != 32 ||
            !(k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, len))) {
            ERR_clear_error();
            snprintf(why, whylen, "bad ed25519 key");
            return DKIM_PERMERROR;
        }
        k->bits = 256;
        return DKIM_PASS;
    }
    if (!(k->pkey = dkim_key_rsa(der, len))) {
        snprintf(why, whylen, "bad RSA key");
        return DKIM_PERMERROR;
    }
    k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
    if (k->bits > DKIM_RSA_MAX_BITS) {
        snprintf(why, whylen, "RSA key over %d bits", DKIM_RSA_MAX_BITS);
        return DKIM_PERMERROR;
    }
    return DKIM_PASS;
}

/* dkim_key_tags - v=, k=, h=, s=, t= */
static enum dkim_result dkim_key_tags(const struct dkim_tag *tg, size_t n, struct dkim_key *k,
                                      char *why, size_t whylen)
{
    const struct dkim_tag *v = dkim_tag_get(tg, n, "v"), *kt = dkim_tag_get(tg, n, "k"),
                          *h = dkim_tag_get(tg, n, "h"), *s = dkim_tag_get(tg, n, "s"),
                          *t = dkim_tag_get(tg, n, "t");

    /* v= is optional, but when there it must be first and DKIM1 (3.6.1) */
    if (v && (v != &tg[0] || v->val_len != 5 || memcmp(v->val, "DKIM1", 5) != 0)) {
        snprintf(why, whylen, "key record is not DKIM1");
        return DKIM_PERMERROR;
    }
    k->ktype = DKIM_K_RSA;
    if (kt && kt->val_len == 7 && strncasecmp(kt->val, "ed25519", 7) == 0)
        k->ktype = DKIM_K_ED25519;
    else if (kt && !(kt->val_len == 3 && strncasecmp(kt->val, "rsa", 3) == 0)) {
        snprintf(why, whylen, "unknown key type");
        return DKIM_PERMERROR;
    }
    k->sha256_ok = !h || dkim_key_list(h, "sha256");
    k->email_ok = !s || dkim_key_list(s, "*") || dkim_key_list(s, "email");
    k->testing = t && dkim_key_list(t, "y");
    k->strict = t && dkim_key_list(t, "s");
    return DKIM_PASS;
}

enum dkim_result dkim_key_parse(const char *txt, size_t len, struct dkim_key *k, char *why,
                                size_t whylen)
{
    struct dkim_tag tags[DKIM_TAGS_MAX];
    const struct dkim_tag *p;
    enum dkim_result r;
    size_t n;

    memset(k, 0, sizeof(*k));
    if (whylen > 0)
        why[0] = '\0';
    if (len > DKIM_KEY_TXT_MAX) {
        snprintf(why, whylen, "key record too long");
        return DKIM_PERMERROR;
    }
    if (memchr(txt, '\0', len) ||
        dkim_tags_parse(txt, len, tags, DKIM_TAGS_MAX, &n, why, whylen) < 0) {
        if (memchr(txt, '\0', len))
            snprintf(why, whylen, "NUL in key record");
        return DKIM_PERMERROR;
    }
    r = dkim_key_tags(tags, n, k, why, whylen);
    if (r != DKIM_PASS)
        return r;
    if (!(p = dkim_tag_get(tags, n, "p"))) {
        snprintf(why, whylen, "key record without p=");
        return DKIM_PERMERROR;
    }
    r = dkim_key_p(p, k, why, whylen);
    if (r != DKIM_PASS)
        dkim_key_free(k);
    return r;
}

void dkim_key_free(struct dkim_key *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}
