/*
 * dkim.h - DKIM (RFC 6376) for the verifier (policy/dkim.c) and the signer:
 * tag lists, canonicalisation, DKIM-Signature fields, key records, the
 * header hash and the signature itself, with OpenSSL.
 *
 * Algorithms: rsa-sha256 and ed25519-sha256 (RFC 8463). rsa-sha1 is parsed
 * so that it can be named, and refused (RFC 8301), as are RSA keys under
 * 1024 bits. Everything read from a message or from DNS is bounded by the
 * limits below; what exceeds them is an error, never a longer buffer.
 *
 * The signer and the verifier share the canonicalisation (dkim_canon.c) and
 * the header selection (dkim_verify.c), so what one signs the other checks
 * with the same code.
 */
#ifndef MX_MAIL_DKIM_H
#define MX_MAIL_DKIM_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#define DKIM_FIELD_MAX 8192    /* octets of a DKIM-Signature field looked at */
#define DKIM_TAGS_MAX 32       /* tags in one tag list */
#define DKIM_H_MAX 64          /* names in h= */
#define DKIM_HNAME_MAX 64      /* octets of one name in h= */
#define DKIM_B_MAX 512         /* decoded b= octets: a 4096-bit RSA signature */
#define DKIM_BH_MAX 64         /* decoded bh= octets */
#define DKIM_DOMAIN_MAX 253    /* d=, and the key's DNS name */
#define DKIM_SELECTOR_MAX 63   /* s= */
#define DKIM_KEY_TXT_MAX 2048  /* octets of a key record */
#define DKIM_RSA_MIN_BITS 1024 /* RFC 8301 */
#define DKIM_RSA_MAX_BITS 4096 /* larger keys are refused (bounded CPU) */
#define DKIM_FIELDS_MAX 1024   /* header fields of a message considered for h= */
#define DKIM_HASH_LEN 32       /* SHA-256 */

/* RFC 8601 results; DKIM_PASS from a parse function means "no error" */
enum dkim_result {
    DKIM_PASS,
    DKIM_FAIL,
    DKIM_NEUTRAL,
    DKIM_POLICY,
    DKIM_PERMERROR,
    DKIM_TEMPERROR,
};

enum dkim_canon { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };
enum dkim_algo { DKIM_A_RSA_SHA256, DKIM_A_ED25519_SHA256, DKIM_A_RSA_SHA1 };
enum dkim_keytype { DKIM_K_RSA, DKIM_K_ED25519 };

/* dkim_result_name - "pass", "fail", ... (RFC 8601) */
const char *dkim_result_name(enum dkim_result r);
/* dkim_algo_name - "rsa-sha256", "ed25519-sha256", "rsa-sha1" */
const char *dkim_algo_name(enum dkim_algo a);

/* ---- tag lists (RFC 6376 3.2), dkim_tags.c ---- */

struct dkim_tag {
    const char *name; /* into the parsed text */
    size_t name_len;
    const char *val; /* the value, leading and trailing FWS trimmed (inner FWS kept) */
    size_t val_len;
};

/* dkim_tags_parse - the tag list s (len octets) into t (at most max tags), *n set;
 * 0, or -1 with why (syntax, duplicate tag, too many tags) */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tag *t, size_t max, size_t *n, char *why,
                    size_t whylen);
/* dkim_tag_get - the tag named name (exact, tag names are case-sensitive), or NULL */
const struct dkim_tag *dkim_tag_get(const struct dkim_tag *t, size_t n, const char *name);
/* dkim_b64_decode - base64 with FWS anywhere (b=, bh=, p=); the octets into out
 * (outmax), *outlen set; 0, or -1 (bad character, bad padding, too long) */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t outmax, size_t *outlen);

/* ---- canonicalisation (RFC 6376 3.4), dkim_canon.c ---- */

/* A growing buffer (core/xmalloc); free p when done. */
struct dkim_buf {
    char *p;
    size_t len, cap;
};
void dkim_buf_add(struct dkim_buf *b, const void *data, size_t len);
/* dkim_sha256 - the SHA-256 implementation, fetched once (any thread) */
const EVP_MD *dkim_sha256(void);
void dkim_buf_free(struct dkim_buf *b);

/* dkim_canon_header - one header field (name, colon, value, with or without its final
 * CRLF) canonicalised into out, ending in CRLF */
void dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct dkim_buf *out);

/*
 * The body hash, streamed: body octets as they arrive (CRLF lines, no dot-
 * stuffing) in pieces of any size. Trailing empty lines are held back until
 * a non-empty line follows them, so nothing is buffered but a count. limit
 * is l= (-1: the whole body): canonical octets past it are not hashed.
 */
struct dkim_body;
struct dkim_body *dkim_body_new(enum dkim_canon c, long long limit);
void dkim_body_update(struct dkim_body *b, const char *data, size_t len);
/* dkim_body_final - the SHA-256 of the canonical body (once: later calls give the
 * same); 0, or -1 when the canonical body is shorter than the limit */
int dkim_body_final(struct dkim_body *b, unsigned char out[DKIM_HASH_LEN]);
/* dkim_body_length - canonical octets of the whole body (past the limit too) */
unsigned long long dkim_body_length(const struct dkim_body *b);
enum dkim_canon dkim_body_canon(const struct dkim_body *b);
long long dkim_body_limit(const struct dkim_body *b);
void dkim_body_free(struct dkim_body *b);

/* ---- DKIM-Signature fields (RFC 6376 3.5), dkim_sig.c ---- */

struct dkim_sig {
    enum dkim_algo algo;
    enum dkim_keytype ktype;
    enum dkim_canon hcanon, bcanon;
    char d[DKIM_DOMAIN_MAX + 1]; /* lower case */
    char s[DKIM_SELECTOR_MAX + 1];
    char i_domain[DKIM_DOMAIN_MAX + 1]; /* the domain of i= (d= when absent), lower case */
    char h[DKIM_H_MAX][DKIM_HNAME_MAX + 1];
    size_t nh;
    unsigned char b[DKIM_B_MAX];
    size_t blen;
    char b_prefix[9]; /* the first 8 characters of b= (header.b, RFC 6008) */
    unsigned char bh[DKIM_BH_MAX];
    size_t bhlen;
    long long l;         /* -1: none */
    long long t;         /* -1: none */
    long long x;         /* -1: none */
    size_t b_off, b_len; /* where b='s value sits in the field (removed for the hash) */
};

/* dkim_sig_parse - a DKIM-Signature field ("DKIM-Signature: ..." through its CRLF);
 * DKIM_PASS, or DKIM_PERMERROR with why (syntax, a tag missing or unusable). Here and
 * below, why is always a string: "" when there is nothing to say */
enum dkim_result dkim_sig_parse(const char *field, size_t len, struct dkim_sig *sig, char *why,
                                size_t whylen);
/* dkim_sig_acceptable - what the verifier refuses before any DNS: rsa-sha1 (RFC 8301)
 * and an expired x= give DKIM_POLICY; else DKIM_PASS */
enum dkim_result dkim_sig_acceptable(const struct dkim_sig *sig, time_t now, char *why,
                                     size_t whylen);
/* dkim_key_name - "selector._domainkey.domain" into out; 0, or -1 when too long */
int dkim_key_name(const struct dkim_sig *sig, char *out, size_t outlen);

/* ---- key records (RFC 6376 3.6.1), dkim_key.c ---- */

struct dkim_key {
    enum dkim_keytype ktype;
    int revoked;   /* p= empty */
    int testing;   /* t=y */
    int strict;    /* t=s: i= must be d= exactly */
    int sha256_ok; /* h= absent or lists sha256 */
    int email_ok;  /* s= absent, "*" or "email" */
    unsigned bits;
    EVP_PKEY *pkey; /* NULL when revoked */
};

/* dkim_key_parse - a TXT key record; DKIM_PASS, or DKIM_PERMERROR with why */
enum dkim_result dkim_key_parse(const char *txt, size_t len, struct dkim_key *k, char *why,
                                size_t whylen);
void dkim_key_free(struct dkim_key *k);

/* ---- verification, dkim_verify.c ---- */

/* dkim_header_data - what the header hash covers: the fields named by h= picked bottom
 * up (RFC 6376 5.4.2; a name with no field left adds nothing), then the signature
 * field (field, flen) with b= emptied and no final CRLF, canonicalised; 0, or -1 (more
 * than DKIM_FIELDS_MAX fields) */
int dkim_header_data(enum dkim_canon c, const char *const *names, size_t nnames, const char *hdr,
                     size_t hlen, const char *field, size_t flen, size_t b_off, size_t b_len,
                     struct dkim_buf *out);

/* dkim_verify - check sig (its field, flen) against the message's header section hdr,
 * its body hash bh (of the sig's canonicalisation and l=) and the key; DKIM_PASS or
 * the result with why */
enum dkim_result dkim_verify(const struct dkim_sig *sig, const char *field, size_t flen,
                             const char *hdr, size_t hlen, const unsigned char *bh,
                             const struct dkim_key *key, char *why, size_t whylen);

/* ---- signing, dkim_sign.c ---- */

struct dkim_sign_req {
    const char *domain;   /* d= */
    const char *selector; /* s= */
    EVP_PKEY *key;        /* RSA (sha256) or Ed25519 */
    /* names to sign, each as often as the header has it; those also in oversign once
     * more (RFC 6376 8.15: no such field can be added unseen), even when absent */
    const char *const *headers;
    size_t nheaders;
    const char *const *oversign;
    size_t noversign;
    long long t; /* signature time, -1: none */
    long long x; /* expiry, -1: none */
};

/* dkim_sign - the DKIM-Signature field (relaxed/relaxed, folded, CRLF-terminated,
 * malloc'd) for the header section hdr and the relaxed body hash bh; NULL with err */
char *dkim_sign(const struct dkim_sign_req *rq, const char *hdr, size_t hlen,
                const unsigned char bh[DKIM_HASH_LEN], char *err, size_t errlen);

#endif
