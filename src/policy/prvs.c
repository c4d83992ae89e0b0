/*
 * prvs.c - BATV tags in Exim's prvs form (see prvs.h for the format).
 *
 * The HMAC input is the key digit, the three-digit day and the address as
 * written in the tag, exactly the octets Exim's prvs_hmac_sha1 hashes; its
 * hand-made HMAC (key XORed into 64-octet pads, keys over 64 octets
 * refused) equals the standard HMAC-SHA1 for every key it accepts, so
 * OpenSSL's HMAC() gives the same digest.
 */
#include "policy/prvs.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PRVS_DAYS_WRAP 1000 /* DDD counts days modulo 1000 */
#define PRVS_SIG_HEX 6

/* prvs_today - whole days since the epoch (UTC), as Exim's day stamp counts them */
long prvs_today(time_t now)
{
    return (long)(now / 86400);
}

/* prvs_mod - n modulo PRVS_DAYS_WRAP in 0..999, also for negative n */
static int prvs_mod(long n)
{
    long m = n % PRVS_DAYS_WRAP;

    return (int)(m < 0 ? m + PRVS_DAYS_WRAP : m);
}

/* prvs_hmac_hex - the six lowercase hex digits of HMAC-SHA1(secret, K DDD addr). 0 or -1 */
static int prvs_hmac_hex(const char *secret, int keynum, int day, const char *addr, char hex[7])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char data[PRVS_ADDR_MAX + 4], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t slen = strlen(secret), alen = strlen(addr);

    if (slen > PRVS_SECRET_MAX || alen >= PRVS_ADDR_MAX || keynum < 0 || keynum > 9 || day < 0 ||
        day >= PRVS_DAYS_WRAP)
        return -1;
    snprintf((char *)data, 5, "%d%03d", keynum, day);
    memcpy(data + 4, addr, alen);
    /* an empty key still gives a valid HMAC; OpenSSL wants a non-NULL pointer for it */
    if (!HMAC(EVP_sha1(), slen ? secret : "", (int)slen, data, 4 + alen, md, &mdlen) || mdlen < 3)
        return -1;
    for (int i = 0; i < 3; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    hex[PRVS_SIG_HEX] = '\0';
    return 0;
}

/* prvs_split_ok - addr has a non-empty local part and domain around its last '@' */
static int prvs_split_ok(const char *addr, size_t *local_len)
{
    const char *at = strrchr(addr, '@');

    if (!at || at == addr || at[1] == '\0')
        return 0;
    *local_len = (size_t)(at - addr);
    return 1;
}

/* prvs_sign - "prvs=" K DDD SSSSSS "=" addr into out */
int prvs_sign(const char *addr, int keynum, const char *secret, long now_days, unsigned days,
              char *out, size_t outlen)
{
    char hex[7];
    size_t local_len;
    int day, n;

    if (!addr || !secret || !out || !prvs_split_ok(addr, &local_len) || now_days < 0 ||
        days >= PRVS_DAYS_WRAP)
        return -1;
    day = prvs_mod(now_days + (long)days);
    if (prvs_hmac_hex(secret, keynum, day, addr, hex) < 0)
        return -1;
    n = snprintf(out, outlen, "prvs=%d%03d%s=%s", keynum, day, hex, addr);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    return n;
}

/* prvs_digits - n decimal digits at s into *val. 1 or 0 */
static int prvs_digits(const char *s, int n, int *val)
{
    *val = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *val = *val * 10 + (s[i] - '0');
    }
    return 1;
}

/* prvs_parse - "prvs=" [0-9] [0-9]{3} [0-9a-fA-F]{6} "=" local "@" domain */
int prvs_parse(const char *addr, struct prvs_parts *parts)
{
    const char *p;
    size_t len;

    if (!addr || !parts || strncasecmp(addr, "prvs=", 5) != 0)
        return -1;
    p = addr + 5;
    if (!prvs_digits(p, 1, &parts->keynum) || !prvs_digits(p + 1, 3, &parts->day))
        return -1;
    p += 4;
    for (int i = 0; i < PRVS_SIG_HEX; i++)
        if (p[i] == '\0' || !strchr("0123456789abcdefABCDEF", p[i]))
            return -1;
    memcpy(parts->sig, p, PRVS_SIG_HEX);
    parts->sig[PRVS_SIG_HEX] = '\0';
    p += PRVS_SIG_HEX;
    if (*p++ != '=')
        return -1;
    len = strnlen(p, PRVS_ADDR_MAX);
    if (len >= PRVS_ADDR_MAX || !prvs_split_ok(p, &parts->local_len))
        return -1;
    memcpy(parts->addr, p, len + 1);
    return 0;
}

/* prvs_sig_equal - six hex digits equal regardless of case, in constant time */
static int prvs_sig_equal(const char *given, const char *mine)
{
    char low[PRVS_SIG_HEX];

    for (int i = 0; i < PRVS_SIG_HEX; i++)
        low[i] = (char)(given[i] >= 'A' && given[i] <= 'F' ? given[i] - 'A' + 'a' : given[i]);
    return CRYPTO_memcmp(low, mine, PRVS_SIG_HEX) == 0;
}

/* prvs_check - key known, signature right, expiry day within the window */
enum prvs_result prvs_check(const struct prvs_parts *parts, const struct prvs_secrets *secrets,
                            long now_days, unsigned days)
{
    const char *secret;
    char hex[7];
    unsigned horizon = days > PRVS_EXIM_DAYS ? days : PRVS_EXIM_DAYS;

    if (parts->keynum < 0 || parts->keynum >= PRVS_KEYS ||
        !(secret = secrets->secret[parts->keynum]))
        return PRVS_UNKNOWN_KEY;
    if (prvs_hmac_hex(secret, parts->keynum, parts->day, parts->addr, hex) < 0 ||
        !prvs_sig_equal(parts->sig, hex))
        return PRVS_BAD_SIGNATURE;
    /* days from today to the expiry day, counted forward modulo 1000 */
    if ((unsigned)prvs_mod((long)parts->day - now_days) > horizon)
        return PRVS_EXPIRED;
    return PRVS_VALID;
}

/* prvs_result_name - for logs */
const char *prvs_result_name(enum prvs_result r)
{
    switch (r) {
    case PRVS_VALID:
        return "valid";
    case PRVS_BAD_SIGNATURE:
        return "bad-signature";
    case PRVS_EXPIRED:
        return "expired";
    case PRVS_UNKNOWN_KEY:
        return "unknown-key";
    }
    return "?";
}
