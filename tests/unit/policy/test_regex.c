/* test_regex.c - the operator patterns shared by access and s25r: slashes,
 * compile errors, caseless matching, and the CPU bound on a costly pattern */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "policy/regex.h"

/* compile - "/x/" or "x" through regex_unslash and regex_compile */
static pcre2_code *compile(const char *pat, char *err, size_t errlen)
{
    size_t len = regex_unslash(&pat, strlen(pat));

    return regex_compile(pat, len, err, errlen);
}

/* test_unslash - only a pattern wrapped in slashes loses them */
static void test_unslash(void **state)
{
    const char *p = "/abc/";

    (void)state;
    assert_int_equal(regex_unslash(&p, 5), 3);
    assert_memory_equal(p, "abc", 3);
    p = "abc";
    assert_int_equal(regex_unslash(&p, 3), 3);
    p = "/abc";
    assert_int_equal(regex_unslash(&p, 4), 4);
    p = "/";
    assert_int_equal(regex_unslash(&p, 1), 1);
    p = "//";
    assert_int_equal(regex_unslash(&p, 2), 0);
}

/* test_errors - empty and malformed patterns say why and where */
static void test_errors(void **state)
{
    char err[256] = "";

    (void)state;
    assert_null(compile("//", err, sizeof err));
    assert_string_equal(err, "empty regular expression");
    assert_null(compile("/a(b/", err, sizeof err));
    assert_non_null(strstr(err, "bad regular expression at offset 3: "));
}

/* test_match - caseless, unanchored unless the pattern anchors */
static void test_match(void **state)
{
    struct regex_matcher m;
    char err[256];
    pcre2_code *re = compile("/^[0-9]+\\.dyn\\.example\\.net$/", err, sizeof err);

    (void)state;
    assert_non_null(re);
    assert_int_equal(regex_matcher_init(&m), 0);
    assert_int_equal(regex_match(&m, re, "123.DYN.Example.NET", "test", 1), 1);
    assert_int_equal(regex_match(&m, re, "mail.example.net", "test", 1), 0);
    assert_int_equal(regex_match(&m, re, "x123.dyn.example.net", "test", 1), 0);
    pcre2_code_free(re);
    regex_matcher_free(&m);
    regex_matcher_free(&m); /* twice is harmless */
}

/* test_match_limit - catastrophic backtracking stops at the limit: no match */
static void test_match_limit(void **state)
{
    struct regex_matcher m;
    char err[256], subject[64];
    pcre2_code *re = compile("^(a+)+$", err, sizeof err);

    (void)state;
    assert_non_null(re);
    memset(subject, 'a', 40);
    subject[40] = 'b';
    subject[41] = '\0';
    assert_int_equal(regex_matcher_init(&m), 0);
    assert_int_equal(regex_match(&m, re, subject, "test", 7), 0);
    subject[40] = '\0';
    assert_int_equal(regex_match(&m, re, subject, "test", 7), 1); /* the limit is per subject */
    pcre2_code_free(re);
    regex_matcher_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unslash),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
