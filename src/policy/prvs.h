/*
 * prvs.h - BATV bounce address tags in Exim's "prvs" form, the pure
 * algorithm (no I/O, no event loop).
 *
 *   prvs=KDDDSSSSSS=local@domain
 *
 * K      key number, one digit (Exim writes 0 when no key number is given)
 * DDD    expiry day: the last three decimal digits of days since the epoch
 * SSSSSS first three bytes, in lowercase hex, of HMAC-SHA1 keyed with the
 *        secret over the octets K DDD local@domain, the address exactly as
 *        it stands in the tag (no case folding)
 *
 * This is what Exim's ${prvs{address}{secret}{keynum}} produces and what
 * ${prvscheck{...}} recomputes (src/src/expand.c, prvs_hmac_sha1), so tags
 * made by either validate in the other. Exim refuses secrets longer than
 * 64 octets (its HMAC does not hash long keys first), so these functions
 * do too.
 */
#ifndef MX_POLICY_PRVS_H
#define MX_POLICY_PRVS_H

#include <stddef.h>
#include <time.h>

#define PRVS_TAG_LEN 16    /* "prvs=" K DDD SSSSSS "=" */
#define PRVS_SECRET_MAX 64 /* octets, as Exim */
#define PRVS_KEYS 10       /* key numbers 0..9 */
#define PRVS_EXIM_DAYS 7   /* Exim's ${prvs} always signs 7 days ahead */
#define PRVS_ADDR_MAX 1024 /* local@domain inside a tag, with the NUL */

/* A tagged address taken apart by prvs_parse. */
struct prvs_parts {
    int keynum;               /* 0..9 */
    int day;                  /* expiry day, 0..999 */
    char sig[7];              /* the six hex digits as written */
    char addr[PRVS_ADDR_MAX]; /* local@domain, the tag removed */
    size_t local_len;         /* octets before the last '@' of addr */
};

/* The secrets by key number; NULL: that key is not configured. */
struct prvs_secrets {
    const char *secret[PRVS_KEYS];
};

enum prvs_result { PRVS_VALID, PRVS_BAD_SIGNATURE, PRVS_EXPIRED, PRVS_UNKNOWN_KEY };

/* prvs_today - whole days since the epoch (UTC), as Exim's day stamp counts them */
long prvs_today(time_t now);

/*
 * prvs_sign - tag addr ("local@domain", non-empty local part and domain)
 * with key keynum (0..9) and its secret, expiring days after now_days.
 * Writes the NUL-terminated tagged address into out; returns its length,
 * or -1 (bad argument, secret over PRVS_SECRET_MAX, out too small).
 */
int prvs_sign(const char *addr, int keynum, const char *secret, long now_days, unsigned days,
              char *out, size_t outlen);

/*
 * prvs_parse - is addr a tag as Exim's prvscheck recognises it:
 * case-insensitive "prvs=", a digit, three digits, six hex digits, "=",
 * then local@domain (split at the last '@', both non-empty)? 0 with parts
 * filled, or -1 (not a tag; parts unspecified).
 */
int prvs_parse(const char *addr, struct prvs_parts *parts);

/*
 * prvs_check - judge a parsed tag on day now_days: UNKNOWN_KEY when no
 * secret has its key number, BAD_SIGNATURE when the HMAC differs (hex
 * compared without regard to case, in constant time), EXPIRED when the
 * expiry day is not within [today, today + max(days, PRVS_EXIM_DAYS)]
 * counted modulo 1000 (so the window crosses day 999 -> 000). The
 * signature is checked before the day, as Exim does, so a forged tag is
 * never reported as merely expired. (Exim's own prvscheck accepts any
 * expiry day >= today's three digits, patched for the wrap, which brings
 * long-expired tags back to life after day 999; this window accepts every
 * tag Exim makes for as long as it lives, and refuses those.)
 */
enum prvs_result prvs_check(const struct prvs_parts *parts, const struct prvs_secrets *secrets,
                            long now_days, unsigned days);

/* prvs_result_name - "valid", "bad-signature", "expired", "unknown-key" */
const char *prvs_result_name(enum prvs_result r);

#endif
