/* test_log.c - log values: plain tokens, quoting and escapes, the cut of a long line */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* q - log_quote into a fresh buffer of the usual size */
static const char *q(const char *s)
{
    static char buf[LOG_QUOTE_MAX];

    return log_quote(buf, sizeof(buf), s);
}

static void test_plain_tokens(void **state)
{
    (void)state;
    assert_string_equal(q("abc"), "abc");
    assert_string_equal(q("user@example.test"), "user@example.test");
    assert_string_equal(q("<a@b.example>"), "<a@b.example>");
    assert_string_equal(q("1.2.3.4"), "1.2.3.4");
}

static void test_quoted_and_escaped(void **state)
{
    (void)state;
    assert_string_equal(q(""), "\"\"");
    assert_string_equal(q(NULL), "\"\"");
    assert_string_equal(q("a b"), "\"a b\"");
    assert_string_equal(q("k=v"), "\"k=v\"");
    assert_string_equal(q("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
    assert_string_equal(q("a\r\nevent=forged"), "\"a\\x0d\\x0aevent=forged\"");
    assert_string_equal(q("tab\there"), "\"tab\\x09here\"");
    assert_string_equal(q("del\x7f"), "\"del\\x7f\"");
}

static void test_eight_bit(void **state)
{
    (void)state;
    /* well-formed UTF-8 stays readable, but quoted: it is no plain token */
    assert_string_equal(q("j\xc3\xbcrgen@b\xc3\xa4r.example"),
                        "\"j\xc3\xbcrgen@b\xc3\xa4r.example\"");
    /* octets that are not UTF-8, overlongs, a cut sequence */
    assert_string_equal(q("a\xff"), "\"a\\xff\"");
    assert_string_equal(q("\xc0\xaf"), "\"\\xc0\\xaf\"");
    assert_string_equal(q("x\xe2\x82"), "\"x\\xe2\\x82\"");
    /* C1 CSI, RIGHT-TO-LEFT OVERRIDE, LINE SEPARATOR: escaped octet by octet */
    assert_string_equal(q("\xc2\x9b"), "\"\\xc2\\x9b\"");
    assert_string_equal(q("a\xe2\x80\xae"), "\"a\\xe2\\x80\\xae\"");
    assert_string_equal(q("\xe2\x80\xa8"), "\"\\xe2\\x80\\xa8\"");
    /* NO-BREAK SPACE is printable: kept */
    assert_string_equal(q("\xc2\xa0"), "\"\xc2\xa0\"");
}

static void test_truncation(void **state)
{
    char small[8];

    (void)state;
    /* never half an escape, always the closing quote */
    assert_string_equal(log_quote(small, sizeof(small), "a\nbcdef"), "\"a\\x0a\"");
    assert_string_equal(log_quote(small, sizeof(small), "ab\"cdef"), "\"ab\\\"c\"");
    assert_string_equal(log_quote(small, 2, "a b"), "");
    assert_string_equal(log_quote(small, sizeof(small), "abcdefghij"), "abcdefg");
}

static void test_addr(void **state)
{
    char buf[LOG_QUOTE_MAX];

    (void)state;
    assert_string_equal(log_quote_addr(buf, sizeof(buf), "a@b.example"), "<a@b.example>");
    assert_string_equal(log_quote_addr(buf, sizeof(buf), ""), "<>");
    assert_string_equal(log_quote_addr(buf, sizeof(buf), "\"a b=c\"@x.example"),
                        "\"<\\\"a b=c\\\"@x.example>\"");
    /* the macros: one buffer per use, so two values in one call stay apart */
    snprintf(buf, sizeof(buf), "%s %s", log_q("x y"), log_qaddr("z"));
    assert_string_equal(buf, "\"x y\" <z>");
}

/* A line longer than the limit loses the value the cut went through, even a
 * quoted one, and says it was cut: it still parses. */
static void test_long_line_sealed(void **state)
{
    char path[] = "/tmp/test_log.XXXXXX", v[1001], *line = malloc(20000), *p;
    int fd = mkstemp(path), saved = dup(2), quotes = 0;
    FILE *f;

    (void)state;
    assert_true(fd >= 0 && saved >= 0 && line);
    memset(v, 'x', 1000);
    v[1000] = '\0';
    v[10] = ' '; /* each value is quoted */
    dup2(fd, 2);
    log_init("test_log", 1, 0);
    log_info("event=test v1=%s v2=%s v3=%s v4=%s v5=%s v6=%s v7=%s v8=%s v9=%s end=1", log_q(v),
             log_q(v), log_q(v), log_q(v), log_q(v), log_q(v), log_q(v), log_q(v), log_q(v));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    f = fdopen(fd, "r");
    rewind(f);
    assert_non_null(fgets(line, 20000, f));
    p = strstr(line, "event=");
    assert_non_null(p);
    assert_true(strlen(p) < 8192 + 16);
    assert_non_null(strstr(p, " v7=\""));
    assert_null(strstr(p, " v9="));
    assert_string_equal(p + strlen(p) - 16, "\" truncated=yes\n");
    for (; *p; p++)
        quotes += *p == '"';
    assert_int_equal(quotes % 2, 0);
    fclose(f);
    unlink(path);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_tokens), cmocka_unit_test(test_quoted_and_escaped),
        cmocka_unit_test(test_eight_bit),    cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_addr),         cmocka_unit_test(test_long_line_sealed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
