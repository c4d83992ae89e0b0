/*
 * dkim_sign.c - a DKIM-Signature field (RFC 6376 5): relaxed/relaxed,
 * rsa-sha256 or ed25519-sha256, made with the very canonicalisation and
 * header selection the verifier uses (dkim_canon.c, dkim_header_data).
 *
 * The field is written with b= empty and last, hashed as the verifier will
 * see it (b= emptied, no final CRLF), signed, and the signature appended
 * folded: FWS inside b= is part of the value the verifier removes.
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "core/xmalloc.h"
#include "mail/header.h"

#define DKIM_LINE 76 /* fold before a line would pass this */

/* dkim_fold_add - s to the field, on a new line when the current one would grow too long */
static void dkim_fold_add(struct dkim_buf *b, size_t *col, const char *s, size_t len)
{
    if (*col > 1 && *col + len > DKIM_LINE) {
        dkim_buf_add(b, "\r\n\t", 3);
        *col = 1;
    }
    dkim_buf_add(b, s, len);
    *col += len;
}

static int dkim_in(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], name) == 0)
            return 1;
    return 0;
}

/* dkim_sign_names - h=: each name as often as hdr has it, oversigned ones once more
 * (in the order of headers, then the oversigned names that headers does not list) */
static size_t dkim_sign_names(const struct dkim_sign_req *rq, const char *hdr, size_t hlen,
                              const char **names)
{
    size_t n = 0;

    for (size_t pass = 0; pass < 2; pass++) {
        const char *const *list = pass ? rq->oversign : rq->headers;
        size_t nl = pass ? rq->noversign : rq->nheaders;
        for (size_t i = 0; i < nl; i++) {
            size_t c;
            if (pass && dkim_in(rq->headers, rq->nheaders, list[i]))
                continue; /* done in the first pass */
            c = hdr_count(hdr, hlen, list[i]) +
                (size_t)dkim_in(rq->oversign, rq->noversign, list[i]);
            for (; c > 0 && n < DKIM_H_MAX; c--)
                names[n++] = list[i];
        }
    }
    return n;
}

/* dkim_sign_field - the field up to and including "b=", folded */
static void dkim_sign_field(const struct dkim_sign_req *rq, int ed, const char **names, size_t nn,
                            const unsigned char *bh, struct dkim_buf *f)
{
    char tag[DKIM_DOMAIN_MAX + 64], b64[DKIM_HASH_LEN * 2];
    size_t col = 0;

    snprintf(tag, sizeof(tag), "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed;",
             ed ? "ed25519-sha256" : "rsa-sha256");
    dkim_fold_add(f, &col, tag, strlen(tag));
    snprintf(tag, sizeof(tag), " d=%s;", rq->domain);
    dkim_fold_add(f, &col, tag, strlen(tag));
    snprintf(tag, sizeof(tag), " s=%s;", rq->selector);
    dkim_fold_add(f, &col, tag, strlen(tag));
    if (rq->t >= 0) {
        snprintf(tag, sizeof(tag), " t=%lld;", rq->t);
        dkim_fold_add(f, &col, tag, strlen(tag));
    }
    if (rq->x >= 0) {
        snprintf(tag, sizeof(tag), " x=%lld;", rq->x);
        dkim_fold_add(f, &col, tag, strlen(tag));
    }
    for (size_t i = 0; i < nn; i++) {
        snprintf(tag, sizeof(tag), "%s%s%s", i == 0 ? " h=" : "", names[i], i + 1 < nn ? ":" : ";");
        dkim_fold_add(f, &col, tag, strlen(tag));
    }
    EVP_EncodeBlock((unsigned char *)b64, bh, DKIM_HASH_LEN);
    snprintf(tag, sizeof(tag), " bh=%s;", b64);
    dkim_fold_add(f, &col, tag, strlen(tag));
    dkim_fold_add(f, &col, " b=", 3);
}

/* dkim_crypto_sign - the signature over data; its length, 0 on failure */
static size_t dkim_crypto_sign(EVP_PKEY *key, int ed, const struct dkim_buf *data,
                               unsigned char *sig, size_t max)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char digest[DKIM_HASH_LEN];
    size_t len = max;
    int ok;

    if (!ctx)
        return 0;
    if (ed) {
        EVP_Digest(data->p, data->len, digest, NULL, dkim_sha256(), NULL);
        ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &len, digest, sizeof(digest)) == 1;
    } else {
        ok = EVP_DigestSignInit(ctx, NULL, dkim_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)data->p, data->len) == 1 &&
             len <= max &&
             EVP_DigestSign(ctx, sig, &len, (const unsigned char *)data->p, data->len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? len : 0;
}

/* dkim_sign_append - the signature as folded base64 after "b=" */
static void dkim_sign_append(struct dkim_buf *f, const unsigned char *sig, size_t len)
{
    char *b64 = xmalloc(4 * ((len + 2) / 3) + 1);
    size_t n = (size_t)EVP_EncodeBlock((unsigned char *)b64, sig, (int)len), col;
    const char *last = f->p;

    for (const char *p = f->p; p < f->p + f->len; p++)
        if (*p == '\n')
            last = p + 1;
    col = (size_t)(f->p + f->len - last);
    for (size_t i = 0; i < n;) {
        size_t k = col + (n - i) > DKIM_LINE ? (DKIM_LINE > col ? DKIM_LINE - col : 0) : n - i;
        if (k == 0) {
            dkim_buf_add(f, "\r\n\t", 3);
            col = 1;
            continue;
        }
        dkim_buf_add(f, b64 + i, k);
        i += k;
        col += k;
    }
    dkim_buf_add(f, "\r\n", 2);
    free(b64);
}

char *dkim_sign(const struct dkim_sign_req *rq, const char *hdr, size_t hlen,
                const unsigned char bh[DKIM_HASH_LEN], char *err, size_t errlen)
{
    const char *names[DKIM_H_MAX];
    struct dkim_buf f = {0}, data = {0};
    unsigned char sig[DKIM_B_MAX];
    int ed = EVP_PKEY_get_base_id(rq->key) == EVP_PKEY_ED25519;
    size_t nn, siglen;

    if (!ed && EVP_PKEY_get_base_id(rq->key) != EVP_PKEY_RSA) {
        snprintf(err, errlen, "dkim: the key is neither RSA nor Ed25519");
        return NULL;
    }
    if (!dkim_in(rq->headers, rq->nheaders, "from") &&
        !dkim_in(rq->oversign, rq->noversign, "from")) {
        snprintf(err, errlen, "dkim: From must be signed");
        return NULL;
    }
    nn = dkim_sign_names(rq, hdr, hlen, names);
    dkim_sign_field(rq, ed, names, nn, bh, &f);
    if (dkim_header_data(DKIM_CANON_RELAXED, names, nn, hdr, hlen, f.p, f.len, f.len, 0, &data) <
            0 ||
        (siglen = dkim_crypto_sign(rq->key, ed, &data, sig, sizeof(sig))) == 0) {
        snprintf(err, errlen, "dkim: cannot sign (header too large, or key unusable)");
        dkim_buf_free(&f);
        dkim_buf_free(&data);
        return NULL;
    }
    dkim_buf_free(&data);
    dkim_sign_append(&f, sig, siglen);
    return f.p; /* the caller frees it */
}
