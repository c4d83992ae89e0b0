/* sasl.c - strict base64 through OpenSSL and the PLAIN message */
#include "auth/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

int sasl_b64_decode(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in), pad = 0;
    int r;

    /* EVP_DecodeBlock skips blanks and ignores what follows '=': check the
     * alphabet and the shape first so "a b", "=AAA" or "AA=A" never pass */
    if (n == 0 || n % 4 != 0 ||
        strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789+/=") != n)
        return -1;
    while (pad < 2 && in[n - 1 - pad] == '=')
        pad++;
    if (memchr(in, '=', n - pad) || n / 4 * 3 + 1 > outlen)
        return -1;
    r = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
    if (r < 0 || (size_t)r < pad)
        return -1;
    r -= (int)pad; /* EVP_DecodeBlock counts the padding's zero octets */
    out[r] = '\0';
    return r;
}

int sasl_b64_encode(const char *in, size_t inlen, char *out, size_t outlen)
{
    if ((inlen + 2) / 3 * 4 + 1 > outlen)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)inlen);
}

/* plain_field - one NUL-separated field into dst; a field may not hold NUL itself */
static int plain_field(const char *p, size_t n, char *dst)
{
    if (n > SASL_FIELD_MAX || memchr(p, '\0', n))
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int sasl_plain_parse(const char *buf, size_t len, struct sasl_plain *p)
{
    const char *n1 = memchr(buf, '\0', len), *n2;

    memset(p, 0, sizeof(*p));
    if (!n1)
        return -1;
    n2 = memchr(n1 + 1, '\0', len - (size_t)(n1 + 1 - buf));
    if (!n2 || n2 == n1 + 1 || n2 + 1 == buf + len) /* authcid and passwd are required */
        return -1;
    if (plain_field(buf, (size_t)(n1 - buf), p->authzid) < 0 ||
        plain_field(n1 + 1, (size_t)(n2 - n1 - 1), p->authcid) < 0 ||
        plain_field(n2 + 1, (size_t)(buf + len - n2 - 1), p->passwd) < 0) {
        sasl_wipe(p, sizeof(*p));
        return -1;
    }
    return 0;
}

void sasl_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
