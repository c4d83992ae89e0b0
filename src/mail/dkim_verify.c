/*
 * dkim_verify.c - the header hash and the signature check (RFC 6376 5.4,
 * 6.1.3), with OpenSSL EVP.
 *
 * The fields h= names are taken from the bottom of the header up: the n-th
 * time a name appears in h= it takes the n-th instance from the bottom, and a
 * name with no instance left adds nothing (5.4.2), which is what makes a
 * listed-but-absent field ("oversigning") fail when someone adds it later.
 *
 * rsa-sha256 is PKCS#1 v1.5 over SHA-256 of the data; ed25519-sha256
 * (RFC 8463 3) is PureEdDSA over the 32-octet SHA-256 of the same data.
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core/xmalloc.h"
#include "mail/header.h"

/* dkim_collect - the fields of hdr in order; their count, or -1 when too many */
static long dkim_collect(const char *hdr, size_t hlen, struct hdr_field *f)
{
    size_t off = 0, n = 0;
    struct hdr_field one;

    while (hdr_next(hdr, hlen, &off, &one)) {
        if (n == DKIM_FIELDS_MAX)
            return -1;
        f[n++] = one;
    }
    return (long)n;
}

int dkim_header_data(enum dkim_canon c, const char *const *names, size_t nnames, const char *hdr,
                     size_t hlen, const char *field, size_t flen, size_t b_off, size_t b_len,
                     struct dkim_buf *out)
{
    struct hdr_field *f = xcalloc(DKIM_FIELDS_MAX, sizeof(*f));
    unsigned char *used = xcalloc(DKIM_FIELDS_MAX, 1);
    long nf = dkim_collect(hdr, hlen, f);
    struct dkim_buf sigf = {0};

    for (size_t k = 0; nf >= 0 && k < nnames; k++)
        for (long i = nf - 1; i >= 0; i--)
            if (!used[i] && hdr_is(&f[i], names[k])) {
                used[i] = 1;
                dkim_canon_header(c, f[i].raw, f[i].raw_len, out);
                break;
            }
    /* the signature itself: b= emptied, no CRLF at its end (3.7) */
    dkim_buf_add(&sigf, field, b_off);
    dkim_buf_add(&sigf, field + b_off + b_len, flen - b_off - b_len);
    dkim_canon_header(c, sigf.p, sigf.len, out);
    out->len -= 2;
    out->p[out->len] = '\0';
    dkim_buf_free(&sigf);
    free(f);
    free(used);
    return nf < 0 ? -1 : 0;
}

/* dkim_crypto_verify - the signature over data with the key; 1 when it verifies */
static int dkim_crypto_verify(const struct dkim_key *k, const unsigned char *data, size_t len,
                              const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char digest[DKIM_HASH_LEN];
    int ok = 0;

    if (!ctx)
        return 0;
    if (k->ktype == DKIM_K_ED25519) {
        EVP_Digest(data, len, digest, NULL, dkim_sha256(), NULL);
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, digest, sizeof(digest)) == 1;
    } else {
        ok = EVP_DigestVerifyInit(ctx, NULL, dkim_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    ERR_clear_error(); /* a failed check leaves errors that TLS code would read as its own */
    return ok;
}

/* dkim_key_fits - the key may verify this signature */
static enum dkim_result dkim_key_fits(const struct dkim_sig *sig, const struct dkim_key *key,
                                      char *why, size_t whylen)
{
    if (key->revoked)
        return snprintf(why, whylen, "key revoked"), DKIM_PERMERROR;
    if (key->ktype != sig->ktype)
        return snprintf(why, whylen, "key type does not match a="), DKIM_PERMERROR;
    if (!key->sha256_ok)
        return snprintf(why, whylen, "key h= does not allow sha256"), DKIM_PERMERROR;
    if (!key->email_ok)
        return snprintf(why, whylen, "key not for email (s=)"), DKIM_PERMERROR;
    if (key->strict && strcmp(sig->i_domain, sig->d) != 0)
        return snprintf(why, whylen, "i= is not d= (key t=s)"), DKIM_PERMERROR;
    if (key->ktype == DKIM_K_RSA && key->bits < DKIM_RSA_MIN_BITS)
        return snprintf(why, whylen, "RSA key under %d bits (RFC 8301)", DKIM_RSA_MIN_BITS),
               DKIM_POLICY;
    return DKIM_PASS;
}

enum dkim_result dkim_verify(const struct dkim_sig *sig, const char *field, size_t flen,
                             const char *hdr, size_t hlen, const unsigned char *bh,
                             const struct dkim_key *key, char *why, size_t whylen)
{
    const char *names[DKIM_H_MAX];
    struct dkim_buf data = {0};
    enum dkim_result r;
    int ok;

    if (whylen > 0)
        why[0] = '\0';
    r = dkim_key_fits(sig, key, why, whylen);
    if (r != DKIM_PASS)
        return r;
    if (sig->bhlen != DKIM_HASH_LEN || CRYPTO_memcmp(sig->bh, bh, DKIM_HASH_LEN) != 0) {
        snprintf(why, whylen, "body hash mismatch");
        return DKIM_FAIL;
    }
    for (size_t i = 0; i < sig->nh; i++)
        names[i] = sig->h[i];
    if (dkim_header_data(sig->hcanon, names, sig->nh, hdr, hlen, field, flen, sig->b_off,
                         sig->b_len, &data) < 0) {
        dkim_buf_free(&data);
        snprintf(why, whylen, "too many header fields");
        return DKIM_PERMERROR;
    }
    ok = dkim_crypto_verify(key, (const unsigned char *)data.p, data.len, sig->b, sig->blen);
    dkim_buf_free(&data);
    if (!ok) {
        snprintf(why, whylen, "signature did not verify");
        return DKIM_FAIL;
    }
    return DKIM_PASS;
}
