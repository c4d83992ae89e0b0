/*
 * test_prvs.c - BATV prvs tags against fixed vectors computed apart from
 * this code, with Debian's Python and Exim's algorithm (src/src/expand.c,
 * prvs_hmac_sha1: HMAC-SHA1 keyed with the secret over key digit, three
 * day digits and the address as written; first three bytes, lowercase hex):
 *
 *   /usr/bin/python3 -c 'import hmac,hashlib,sys;k,n,d,a=sys.argv[1:];
 *     print("prvs=%s%s%s=%s"%(n,d,hmac.new(k.encode(),(n+d+a).encode(),
 *     hashlib.sha1).hexdigest()[:6],a))' SECRET KEYNUM DDD ADDRESS
 *
 * e.g. `... s3cret 1 007 user@example.test` -> prvs=1007b103fe=user@example.test.
 * The 64-octet key vector was also recomputed with Exim's own hand-made
 * HMAC (key XORed into 0x36/0x5c pads, two SHA-1 passes) in Python, which
 * agrees with the hmac module for every key of at most 64 octets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy/prvs.h"

/* day numbers: 20000 is 2024-10-04; DDD = (day + 7) % 1000 */
#define DAY_007 20000L /* signs 007 */
#define DAY_999 19992L /* signs 999 */
#define DAY_002 19995L /* signs 002: made before the wrap, expires after it */

struct vector {
    const char *secret;
    int keynum;
    long day; /* the signing day; expiry day + 7 */
    const char *addr;
    const char *tag;
};

/* Produced by the Python line above (secret, key, DDD, address). */
static const struct vector vectors[] = {
    {"s3cret", 1, DAY_007, "user@example.test", "prvs=1007b103fe=user@example.test"},
    {"s3cret", 1, DAY_999, "user@example.test", "prvs=1999d9d353=user@example.test"},
    {"s3cret", 1, DAY_002, "user@example.test", "prvs=10022d0e44=user@example.test"},
    {"older", 2, DAY_007, "user@example.test", "prvs=200709212f=user@example.test"},
    {"older", 2, DAY_007, "x@example.test", "prvs=20077130ee=x@example.test"},
    /* 2024-01-01 is day 19723: the case of the local part is hashed as written */
    {"s3cret", 1, 19723L, "Alice.Smith@example.test", "prvs=1730705591=Alice.Smith@example.test"},
    /* key number 0: what Exim's ${prvs} writes without a key number */
    {"s3cret", 0, 20116L, "bob@sub.example.test", "prvs=0123854d90=bob@sub.example.test"},
    /* a 64-octet secret, Exim's longest */
    {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", 1, DAY_007,
     "user@example.test", "prvs=1007d0a38c=user@example.test"},
};

static const struct prvs_secrets keys12 = {.secret = {[1] = "s3cret", [2] = "older"}};
static const struct prvs_secrets keys1 = {.secret = {[1] = "s3cret"}};

/* judge - parse tag (must parse) and check it on day today with validity days */
static enum prvs_result judge(const char *tag, const struct prvs_secrets *s, long today,
                              unsigned days)
{
    struct prvs_parts p;

    assert_int_equal(prvs_parse(tag, &p), 0);
    return prvs_check(&p, s, today, days);
}

/* every vector signs to exactly its tag */
static void test_sign_vectors(void **state)
{
    char out[256];

    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];
        int n = prvs_sign(v->addr, v->keynum, v->secret, v->day, 7, out, sizeof(out));
        assert_int_equal(n, (int)strlen(v->tag));
        assert_string_equal(out, v->tag);
    }
}

/* every vector parses back into its parts and validates on its signing day */
static void test_parse_and_check_vectors(void **state)
{
    struct prvs_parts p;

    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];
        struct prvs_secrets s = {0};
        s.secret[v->keynum] = v->secret;
        assert_int_equal(prvs_parse(v->tag, &p), 0);
        assert_int_equal(p.keynum, v->keynum);
        assert_int_equal(p.day, (int)((v->day + 7) % 1000));
        assert_string_equal(p.addr, v->addr);
        assert_int_equal(p.local_len, strchr(v->addr, '@') - v->addr);
        assert_int_equal(prvs_check(&p, &s, v->day, 7), PRVS_VALID);
    }
}

/* a tag lives from its signing day to its expiry day inclusive */
static void test_valid_until_expiry(void **state)
{
    const char *tag = "prvs=1007b103fe=user@example.test";

    for (long d = DAY_007; d <= DAY_007 + 7; d++)
        assert_int_equal(judge(tag, &keys1, d, 7), PRVS_VALID);
    assert_int_equal(judge(tag, &keys1, DAY_007 + 8, 7), PRVS_EXPIRED);
    assert_int_equal(judge(tag, &keys1, DAY_007 + 300, 7), PRVS_EXPIRED);
}

/* one changed hex digit of the signature, in either position of a byte */
static void test_altered_signature(void **state)
{
    assert_int_equal(judge("prvs=1007b103ff=user@example.test", &keys1, DAY_007, 7),
                     PRVS_BAD_SIGNATURE);
    assert_int_equal(judge("prvs=1007c103fe=user@example.test", &keys1, DAY_007, 7),
                     PRVS_BAD_SIGNATURE);
    assert_int_equal(judge("prvs=1007000000=user@example.test", &keys1, DAY_007, 7),
                     PRVS_BAD_SIGNATURE);
}

/* the signature covers local part, domain, day and key number */
static void test_altered_fields(void **state)
{
    static const char *const bad[] = {
        "prvs=1007b103fe=usEr@example.test", /* the case of the local part counts, as Exim */
        "prvs=1007b103fe=user2@example.test",
        "prvs=1007b103fe=other@example.test",
        "prvs=1007b103fe=user@example.tesu",
        "prvs=1006b103fe=user@example.test", /* day moved: a forged extension */
        "prvs=1008b103fe=user@example.test",
        "prvs=2007b103fe=user@example.test", /* key number swapped */
    };
    struct prvs_secrets both = {.secret = {[1] = "s3cret", [2] = "s3cret"}};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(judge(bad[i], &both, DAY_007, 7), PRVS_BAD_SIGNATURE);
}

/* expiry is only judged when the signature holds: a forgery is never "expired" */
static void test_expired_needs_good_signature(void **state)
{
    assert_int_equal(judge("prvs=1007b103fe=user@example.test", &keys1, DAY_007 + 9, 7),
                     PRVS_EXPIRED);
    assert_int_equal(judge("prvs=1007b103fd=user@example.test", &keys1, DAY_007 + 9, 7),
                     PRVS_BAD_SIGNATURE);
}

/* tags crossing day 999 -> 000 */
static void test_wrap_around(void **state)
{
    const char *t999 = "prvs=1999d9d353=user@example.test";
    const char *t002 = "prvs=10022d0e44=user@example.test";

    /* expires on 999: valid through 19999, expired on 20000 (000) */
    assert_int_equal(judge(t999, &keys1, 19992, 7), PRVS_VALID);
    assert_int_equal(judge(t999, &keys1, 19999, 7), PRVS_VALID);
    assert_int_equal(judge(t999, &keys1, 20000, 7), PRVS_EXPIRED);
    assert_int_equal(judge(t999, &keys1, 20001, 7), PRVS_EXPIRED);
    /* made on 995, expires on 002 of the next thousand: valid across the wrap */
    for (long d = 19995; d <= 20002; d++)
        assert_int_equal(judge(t002, &keys1, d, 7), PRVS_VALID);
    assert_int_equal(judge(t002, &keys1, 20003, 7), PRVS_EXPIRED);
    assert_int_equal(judge(t002, &keys1, 20500, 7), PRVS_EXPIRED);
    assert_int_equal(judge(t002, &keys1, 19500, 7), PRVS_EXPIRED);
    /* Exim's prvscheck would take 999 >= 500 on day 20500; a tag 501 days dead stays dead */
    assert_int_equal(judge(t999, &keys1, 20500, 7), PRVS_EXPIRED);
    assert_int_equal(judge(t999, &keys1, 20900, 7), PRVS_EXPIRED);
    /* whole thousands later the three digits cannot tell: the price of the format */
    assert_int_equal(judge(t002, &keys1, 21000, 7), PRVS_VALID);
}

/* a day too far ahead is a stale tag of an earlier thousand; days widens the window */
static void test_window_ahead(void **state)
{
    const char *tag = "prvs=1007b103fe=user@example.test"; /* expires 20007 */

    assert_int_equal(judge(tag, &keys1, DAY_007 - 1, 7), PRVS_EXPIRED);
    assert_int_equal(judge(tag, &keys1, DAY_007 - 1, 8), PRVS_VALID);
    assert_int_equal(judge(tag, &keys1, DAY_007 - 23, 30), PRVS_VALID);
    assert_int_equal(judge(tag, &keys1, DAY_007 - 24, 30), PRVS_EXPIRED);
    /* fewer days than Exim's 7 still accepts Exim's fresh 7-day tags */
    assert_int_equal(judge(tag, &keys1, DAY_007, 3), PRVS_VALID);
}

/* a tag made with key 2 validates while key 2's secret is configured */
static void test_key_rotation(void **state)
{
    const char *t2 = "prvs=200709212f=user@example.test";
    struct prvs_secrets wrong = {.secret = {[1] = "s3cret", [2] = "s3cret"}};
    char out[128];

    assert_int_equal(judge(t2, &keys12, DAY_007, 7), PRVS_VALID);
    assert_int_equal(judge(t2, &keys1, DAY_007, 7), PRVS_UNKNOWN_KEY);
    assert_int_equal(judge(t2, &wrong, DAY_007, 7), PRVS_BAD_SIGNATURE);
    assert_int_equal(judge("prvs=1007b103fe=user@example.test", &keys12, DAY_007, 7), PRVS_VALID);
    assert_int_equal(judge("prvs=9007b103fe=user@example.test", &keys12, DAY_007, 7),
                     PRVS_UNKNOWN_KEY);
    assert_int_equal(judge("prvs=0007b103fe=user@example.test", &keys12, DAY_007, 7),
                     PRVS_UNKNOWN_KEY);
    /* signing with the new key gives the key-2 vector */
    assert_int_equal(prvs_sign("user@example.test", 2, "older", DAY_007, 7, out, sizeof(out)), 33);
    assert_string_equal(out, t2);
}

/* "PRVS=" in any case, and the hex digits in either case, as Exim's caseless pattern */
static void test_case_insensitive(void **state)
{
    static const char *const forms[] = {
        "PRVS=1007b103fe=user@example.test", "Prvs=1007b103fe=user@example.test",
        "pRvS=1007b103fe=user@example.test", "prvs=1007B103FE=user@example.test",
        "PRVS=1007B103fe=user@example.test",
    };
    struct prvs_parts p;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        assert_int_equal(judge(forms[i], &keys1, DAY_007, 7), PRVS_VALID);
    assert_int_equal(prvs_parse(forms[3], &p), 0);
    assert_string_equal(p.sig, "B103FE"); /* kept as written */
    assert_string_equal(p.addr, "user@example.test");
}

/* the local part is everything before the last '@', as Exim's greedy pattern */
static void test_parse_last_at(void **state)
{
    struct prvs_parts p;

    assert_int_equal(prvs_parse("prvs=1007b103fe=\"a@b\"@example.test", &p), 0);
    assert_string_equal(p.addr, "\"a@b\"@example.test");
    assert_int_equal(p.local_len, 5);
    assert_int_equal(prvs_parse("prvs=1007b103fe=a=b=c@example.test", &p), 0);
    assert_string_equal(p.addr, "a=b=c@example.test");
}

/* what is not a tag */
static void test_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "user@example.test",
        "prvs=",
        "prvs",
        "prvs1007b103fe=user@example.test",
        "prvs=1007b103fe",
        "prvs=1007b103fe=",
        "prvs=1007b103fe=user",
        "prvs=1007b103fe=@example.test",
        "prvs=1007b103fe=user@",
        "prvs=1007b103feuser@example.test",
        "prvs=1007b103f=user@example.test",
        "prvs=1007b103fe0=user@example.test",
        "prvs=1007b103fg=user@example.test",
        "prvs=x007b103fe=user@example.test",
        "prvs=10a7b103fe=user@example.test",
        "prvs=107b103fe=user@example.test",
        "prvs=user=1007b103fe@example.test", /* the draft's other order: Exim takes only this one */
        "xprvs=1007b103fe=user@example.test",
        " prvs=1007b103fe=user@example.test",
    };
    struct prvs_parts p;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(prvs_parse(bad[i], &p), -1);
    assert_int_equal(prvs_parse(NULL, &p), -1);
}

/* tag_of_len - "prvs=1007b103fe=" and an inner address of exactly len octets into big */
static void tag_of_len(char *big, size_t len)
{
    size_t n = strlen("prvs=1007b103fe="), dom = strlen("@example.test");

    memcpy(big, "prvs=1007b103fe=", n);
    memset(big + n, 'a', len - dom);
    memcpy(big + n + len - dom, "@example.test", dom + 1);
}

/* an address longer than the parts can hold is not a tag (never cut) */
static void test_parse_too_long(void **state)
{
    static char big[PRVS_ADDR_MAX + 64];
    struct prvs_parts p;

    tag_of_len(big, PRVS_ADDR_MAX);
    assert_int_equal(prvs_parse(big, &p), -1);
    tag_of_len(big, PRVS_ADDR_MAX + 40);
    assert_int_equal(prvs_parse(big, &p), -1);
    tag_of_len(big, PRVS_ADDR_MAX - 1); /* just fits with its NUL */
    assert_int_equal(prvs_parse(big, &p), 0);
    assert_int_equal(strlen(p.addr), PRVS_ADDR_MAX - 1);
}

/* arguments prvs_sign refuses, and the exact size of out */
static void test_sign_rejects(void **state)
{
    char out[64], key65[66];
    const char *tag = "prvs=1007b103fe=user@example.test";

    memset(key65, 'k', 65);
    key65[65] = '\0';
    assert_int_equal(prvs_sign("user", 1, "s3cret", DAY_007, 7, out, sizeof(out)), -1);
    assert_int_equal(prvs_sign("@example.test", 1, "s3cret", DAY_007, 7, out, sizeof(out)), -1);
    assert_int_equal(prvs_sign("user@", 1, "s3cret", DAY_007, 7, out, sizeof(out)), -1);
    assert_int_equal(prvs_sign("user@example.test", 10, "s3cret", DAY_007, 7, out, sizeof(out)),
                     -1);
    assert_int_equal(prvs_sign("user@example.test", -1, "s3cret", DAY_007, 7, out, sizeof(out)),
                     -1);
    assert_int_equal(prvs_sign("user@example.test", 1, key65, DAY_007, 7, out, sizeof(out)), -1);
    assert_int_equal(prvs_sign("user@example.test", 1, "s3cret", DAY_007, 1000, out, sizeof(out)),
                     -1);
    assert_int_equal(prvs_sign("user@example.test", 1, "s3cret", -1, 7, out, sizeof(out)), -1);
    assert_int_equal(prvs_sign(NULL, 1, "s3cret", DAY_007, 7, out, sizeof(out)), -1);
    assert_int_equal(prvs_sign("user@example.test", 1, "s3cret", DAY_007, 7, out, strlen(tag)), -1);
    assert_int_equal(prvs_sign("user@example.test", 1, "s3cret", DAY_007, 7, out, strlen(tag) + 1),
                     33);
    assert_string_equal(out, tag);
}

/*
 * A secret over 64 octets: Exim refuses to sign with it, and standard HMAC
 * would first hash it, giving a tag Exim cannot make or check (013c1c, from
 * the Python line with 65 "k"). Neither that tag nor Exim's pad-style one
 * validates.
 */
static void test_long_secret_never_valid(void **state)
{
    char key65[66];
    struct prvs_secrets s = {0};

    memset(key65, 'k', 65);
    key65[65] = '\0';
    s.secret[1] = key65;
    assert_int_equal(judge("prvs=1007013c1c=user@example.test", &s, DAY_007, 7),
                     PRVS_BAD_SIGNATURE);
    assert_int_equal(judge("prvs=1007d0a38c=user@example.test", &s, DAY_007, 7),
                     PRVS_BAD_SIGNATURE);
}

/* the day arithmetic and the names */
static void test_today_and_names(void **state)
{
    assert_int_equal(prvs_today(0), 0);
    assert_int_equal(prvs_today(86399), 0);
    assert_int_equal(prvs_today(86400), 1);
    assert_int_equal(prvs_today((time_t)DAY_007 * 86400 + 86399), DAY_007);
    assert_string_equal(prvs_result_name(PRVS_VALID), "valid");
    assert_string_equal(prvs_result_name(PRVS_BAD_SIGNATURE), "bad-signature");
    assert_string_equal(prvs_result_name(PRVS_EXPIRED), "expired");
    assert_string_equal(prvs_result_name(PRVS_UNKNOWN_KEY), "unknown-key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vectors),
        cmocka_unit_test(test_parse_and_check_vectors),
        cmocka_unit_test(test_valid_until_expiry),
        cmocka_unit_test(test_altered_signature),
        cmocka_unit_test(test_altered_fields),
        cmocka_unit_test(test_expired_needs_good_signature),
        cmocka_unit_test(test_wrap_around),
        cmocka_unit_test(test_window_ahead),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_parse_last_at),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_sign_rejects),
        cmocka_unit_test(test_long_secret_never_valid),
        cmocka_unit_test(test_today_and_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
