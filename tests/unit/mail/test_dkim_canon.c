/* test_dkim_canon.c - DKIM tag lists, base64, and canonicalisation (RFC 6376 3.2, 3.4),
 * with the example of RFC 6376 3.4.5 and the body streamed in pieces of every size */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "mail/dkim.h"

/* sha256_b64 - the base64 SHA-256 of s (as bh= shows it) */
static const char *sha256_b64(const void *s, size_t len)
{
    static char out[64];
    unsigned char d[32];

    EVP_Digest(s, len, d, NULL, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, 32);
    return out;
}

/* body_b64 - the body hash of body fed in pieces of step octets (0: at once) */
static const char *body_b64(enum dkim_canon c, long long limit, const char *body, size_t step,
                            int *rc)
{
    static char out[64];
    struct dkim_body *b = dkim_body_new(c, limit);
    size_t len = strlen(body);
    unsigned char d[DKIM_HASH_LEN];

    for (size_t i = 0; i < len; i += step ? step : len)
        dkim_body_update(b, body + i, step && len - i > step ? step : len - i);
    *rc = dkim_body_final(b, d);
    dkim_body_free(b);
    EVP_EncodeBlock((unsigned char *)out, d, 32);
    return out;
}

/* expect_body - body canonicalises to want, in pieces of any size */
static void expect_body(enum dkim_canon c, const char *body, const char *want)
{
    char w[64];
    int rc;

    snprintf(w, sizeof(w), "%s", sha256_b64(want, strlen(want)));
    for (size_t step = 0; step <= 7; step++) {
        if (strcmp(body_b64(c, -1, body, step, &rc), w) != 0)
            fail_msg("%s body %s in steps of %zu: not the hash of the expected form",
                     c == DKIM_CANON_SIMPLE ? "simple" : "relaxed", body, step);
        assert_int_equal(rc, 0);
    }
}

/* canon_header - one field canonicalised, as a string */
static const char *canon_header(enum dkim_canon c, const char *field)
{
    static char out[512];
    struct dkim_buf b = {0};

    dkim_canon_header(c, field, strlen(field), &b);
    snprintf(out, sizeof(out), "%s", b.p);
    dkim_buf_free(&b);
    return out;
}

/* test_rfc6376_example - 3.4.5: the same header and body, both ways */
static void test_rfc6376_example(void **state)
{
    const char *body = " C \r\nD \t E\r\n\r\n\r\n";

    assert_string_equal(canon_header(DKIM_CANON_RELAXED, "A: X\r\n"), "a:X\r\n");
    assert_string_equal(canon_header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n"), "b:Y Z\r\n");
    assert_string_equal(canon_header(DKIM_CANON_SIMPLE, "A: X\r\n"), "A: X\r\n");
    assert_string_equal(canon_header(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n"),
                        "B : Y\t\r\n\tZ  \r\n");
    expect_body(DKIM_CANON_RELAXED, body, " C\r\nD E\r\n");
    expect_body(DKIM_CANON_SIMPLE, body, " C \r\nD \t E\r\n");
}

/* test_empty_and_blank_bodies - the well-known hashes of an empty body; trailing
 * empty lines go, inner ones stay; a last line without CRLF gets one */
static void test_empty_and_blank_bodies(void **state)
{
    int rc;

    assert_string_equal(body_b64(DKIM_CANON_SIMPLE, -1, "", 0, &rc),
                        "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
    assert_string_equal(body_b64(DKIM_CANON_RELAXED, -1, "", 0, &rc),
                        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    expect_body(DKIM_CANON_SIMPLE, "\r\n\r\n\r\n", "\r\n");
    expect_body(DKIM_CANON_RELAXED, "\r\n \t\r\n\r\n", "");
    expect_body(DKIM_CANON_SIMPLE, "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n");
    expect_body(DKIM_CANON_RELAXED, "a\r\n \t \r\nb  \r\n  \r\n", "a\r\n\r\nb\r\n");
    expect_body(DKIM_CANON_SIMPLE, "abc", "abc\r\n");
    expect_body(DKIM_CANON_RELAXED, "abc  ", "abc\r\n");
    expect_body(DKIM_CANON_SIMPLE, "a \r\n\t\r\n", "a \r\n\t\r\n");
    expect_body(DKIM_CANON_RELAXED, "\t lead\r\n", " lead\r\n");
    /* single spaces are copied with the words around them, runs become one */
    expect_body(DKIM_CANON_RELAXED, "a b  c\t d e \r\nf g\r\n", "a b c d e\r\nf g\r\n");
    expect_body(DKIM_CANON_SIMPLE, "a b  c\t d e \r\nf\rg\r\n", "a b  c\t d e \r\nf\rg\r\n");
    /* a bare CR is content: the SP before it is not at the end of the line */
    expect_body(DKIM_CANON_RELAXED, "x\ry \r\r\n", "x\ry \r\r\n");
}

/* test_length_limit - l= hashes the first octets of the canonical body; a body
 * shorter than l= is an error; the length counts the whole canonical body */
static void test_length_limit(void **state)
{
    struct dkim_body *b;
    unsigned char d[DKIM_HASH_LEN];
    int rc;

    assert_string_equal(body_b64(DKIM_CANON_RELAXED, 5, "hello   world\r\n", 1, &rc),
                        sha256_b64("hello", 5));
    assert_int_equal(rc, 0);
    assert_string_equal(body_b64(DKIM_CANON_SIMPLE, 0, "anything\r\n", 3, &rc), sha256_b64("", 0));
    assert_int_equal(rc, 0);
    body_b64(DKIM_CANON_RELAXED, 100, "short\r\n", 0, &rc);
    assert_int_equal(rc, -1);
    /* held empty lines count only when content follows them */
    b = dkim_body_new(DKIM_CANON_SIMPLE, 9);
    dkim_body_update(b, "abc\r\n\r\n\r\n", 9);
    assert_int_equal(dkim_body_final(b, d), -1); /* canonical "abc\r\n" is 5 */
    assert_int_equal(dkim_body_length(b), 5);
    assert_int_equal(dkim_body_final(b, d), -1); /* again: the same */
    dkim_body_free(b);
}

/* test_tags - FWS around names and values, inner FWS kept, a final ';' */
static void test_tags(void **state)
{
    const char *s = " v=1; a = rsa-sha256 ;\r\n\tb=abc def\r\n ghi ;  ";
    struct dkim_tag t[DKIM_TAGS_MAX];
    const struct dkim_tag *b;
    char why[96] = "";
    size_t n;

    assert_int_equal(dkim_tags_parse(s, strlen(s), t, DKIM_TAGS_MAX, &n, why, sizeof(why)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(t[1].val_len, 10);
    assert_memory_equal(t[1].val, "rsa-sha256", 10);
    b = dkim_tag_get(t, n, "b");
    assert_non_null(b);
    assert_int_equal(b->val_len, 13);
    assert_memory_equal(b->val, "abc def\r\n ghi", 13);
    assert_null(dkim_tag_get(t, n, "B")); /* names are case-sensitive */
    assert_int_equal(dkim_tags_parse("", 0, t, DKIM_TAGS_MAX, &n, why, sizeof(why)), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dkim_tags_parse("p=", 2, t, DKIM_TAGS_MAX, &n, why, sizeof(why)), 0);
    assert_int_equal(t[0].val_len, 0);
}

/* test_tag_errors - each with its reason */
static void test_tag_errors(void **state)
{
    static const struct {
        const char *in, *why;
    } cases[] = {
        {"a=1; a=2", "duplicate tag a"},
        {"a=1; b", "tag b without ="},
        {"1a=x", "bad tag name"},
        {"a=1;;b=2", "bad tag name"},
        {"a=x\001y", "bad character in tag a"},
    };
    struct dkim_tag t[4];
    char why[96];
    size_t n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        assert_int_equal(
            dkim_tags_parse(cases[i].in, strlen(cases[i].in), t, 4, &n, why, sizeof(why)), -1);
        assert_string_equal(why, cases[i].why);
    }
    assert_int_equal(dkim_tags_parse("a=1;b=2;c=3;d=4;e=5", 19, t, 4, &n, why, sizeof(why)), -1);
    assert_string_equal(why, "more than 4 tags");
}

/* test_base64 - FWS anywhere, padding only at the end, bounded output */
static void test_base64(void **state)
{
    unsigned char out[16];
    size_t n;

    assert_int_equal(dkim_b64_decode("SGVs\r\n bG8=", 11, out, sizeof(out), &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "Hello", 5);
    assert_int_equal(dkim_b64_decode("SGVsbG8", 7, out, sizeof(out), &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(dkim_b64_decode("SGV*", 4, out, sizeof(out), &n), -1);
    assert_int_equal(dkim_b64_decode("S", 1, out, sizeof(out), &n), -1);
    assert_int_equal(dkim_b64_decode("SG=V", 4, out, sizeof(out), &n), -1);
    assert_int_equal(dkim_b64_decode("SGVsbG8=", 8, out, 4, &n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6376_example), cmocka_unit_test(test_empty_and_blank_bodies),
        cmocka_unit_test(test_length_limit),    cmocka_unit_test(test_tags),
        cmocka_unit_test(test_tag_errors),      cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
