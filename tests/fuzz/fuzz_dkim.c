/*
 * fuzz_dkim.c - libFuzzer harness for the DKIM engine (src/mail/dkim*.c): the
 * input is a DKIM-Signature value (first line), a key record (second line)
 * and a message (the rest: its header section up to the first empty line).
 * The signature and the key are parsed, the body hashed in both
 * canonicalisations in pieces whose sizes the input's first byte picks, and
 * when both parse the signature is verified against the message. Properties:
 * no crash or leak; every reason is a short printable string; what the
 * parser says about the field (where b= is, how many names h= has, the
 * domains) stays within it and its bounds; the body hash is the same however
 * the body arrives.
 */
#include <string.h>

#include "fuzz.h"
#include "mail/dkim.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* check_why - a reason is printable ASCII, NUL-terminated within its buffer */
static void check_why(const char *why, size_t len)
{
    FUZZ_ASSERT(memchr(why, '\0', len) != NULL);
    for (; *why; why++)
        FUZZ_ASSERT(*why >= 0x20 && *why < 0x7f);
}

/* body_hash - the body hashed at once and in pieces of step: the same */
static void body_hash(enum dkim_canon c, long long l, const char *b, size_t len, size_t step)
{
    struct dkim_body *one = dkim_body_new(c, l), *many = dkim_body_new(c, l);
    unsigned char h1[DKIM_HASH_LEN], h2[DKIM_HASH_LEN];
    int r1, r2;

    dkim_body_update(one, b, len);
    for (size_t i = 0; i < len; i += step)
        dkim_body_update(many, b + i, len - i < step ? len - i : step);
    r1 = dkim_body_final(one, h1);
    r2 = dkim_body_final(many, h2);
    FUZZ_ASSERT(r1 == r2 && memcmp(h1, h2, sizeof(h1)) == 0);
    FUZZ_ASSERT(dkim_body_length(one) == dkim_body_length(many));
    dkim_body_free(one);
    dkim_body_free(many);
}

/* check_sig - what a parsed signature says stays within the field and its bounds */
static void check_sig(const struct dkim_sig *s, size_t flen)
{
    FUZZ_ASSERT(s->b_off + s->b_len <= flen);
    FUZZ_ASSERT(s->nh >= 1 && s->nh <= DKIM_H_MAX);
    FUZZ_ASSERT(s->blen >= 1 && s->blen <= DKIM_B_MAX && s->bhlen <= DKIM_BH_MAX);
    FUZZ_ASSERT(strlen(s->d) <= DKIM_DOMAIN_MAX && strlen(s->s) <= DKIM_SELECTOR_MAX);
    FUZZ_ASSERT(strlen(s->b_prefix) <= 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *nl1, *nl2, *msg, *sep;
    static char field[DKIM_FIELD_MAX + 64];
    size_t step, vlen, klen, mlen, hlen;
    struct dkim_sig sig;
    struct dkim_key key;
    enum dkim_result rs, rk;
    char why[96];

    if (size < 3)
        return 0;
    step = (size_t)(data[0] % 13) + 1;
    in++, size--;
    nl1 = memchr(in, '\n', size);
    nl2 = nl1 ? memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - in)) : NULL;
    if (!nl2)
        return 0;
    vlen = (size_t)(nl1 - in);
    klen = (size_t)(nl2 - nl1 - 1);
    msg = nl2 + 1;
    mlen = size - (size_t)(msg - in);
    if (vlen > DKIM_FIELD_MAX)
        return 0;
    memcpy(field, "DKIM-Signature:", 15);
    memcpy(field + 15, in, vlen);
    memcpy(field + 15 + vlen, "\r\n", 2);
    rs = dkim_sig_parse(field, vlen + 17, &sig, why, sizeof(why));
    check_why(why, sizeof(why));
    if (rs == DKIM_PASS)
        check_sig(&sig, vlen + 17);
    rk = dkim_key_parse(nl1 + 1, klen, &key, why, sizeof(why));
    check_why(why, sizeof(why));
    FUZZ_ASSERT(rk == DKIM_PASS || key.pkey == NULL);
    sep = memmem(msg, mlen, "\r\n\r\n", 4);
    hlen = sep ? (size_t)(sep - msg) + 2 : mlen;
    body_hash(DKIM_CANON_SIMPLE, -1, msg + hlen, mlen - hlen, step);
    body_hash(DKIM_CANON_RELAXED, rs == DKIM_PASS ? sig.l : 7, msg + hlen, mlen - hlen, step);
    if (rs == DKIM_PASS && rk == DKIM_PASS) {
        unsigned char bh[DKIM_HASH_LEN] = {0};
        /* the claimed body hash, so that the header hash and the signature are reached */
        memcpy(bh, sig.bh, sig.bhlen < sizeof(bh) ? sig.bhlen : sizeof(bh));
        dkim_verify(&sig, field, vlen + 17, msg, hlen, bh, &key, why, sizeof(why));
        check_why(why, sizeof(why));
    }
    dkim_key_free(&key);
    return 0;
}
