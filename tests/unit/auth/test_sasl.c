/* test_sasl.c - strict base64 and the PLAIN message (src/auth/sasl.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth/sasl.h"

/* test_b64 - valid forms decode exactly; blanks, bad padding and junk are refused */
static void test_b64(void **state)
{
    static const char *bad[] = {"",     "QUJD=", "QU JD",    "QUJD\n", "=QUJ",
                                "QU=D", "QUJ*",  "QUJDRA=A", "Q===",   "QUJDRA"};
    char out[64];

    (void)state;
    assert_int_equal(sasl_b64_decode("QUJD", out, sizeof out), 3);
    assert_string_equal(out, "ABC");
    assert_int_equal(sasl_b64_decode("QUI=", out, sizeof out), 2);
    assert_string_equal(out, "AB");
    assert_int_equal(sasl_b64_decode("QQ==", out, sizeof out), 1);
    assert_string_equal(out, "A");
    assert_int_equal(sasl_b64_decode("AGJvYgBwdw==", out, sizeof out), 7);
    assert_memory_equal(out, "\0bob\0pw", 7);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (sasl_b64_decode(bad[i], out, sizeof out) >= 0)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(sasl_b64_decode("QUJDREVG", out, 6), -1); /* does not fit */
}

/* test_plain - authzid optional, authcid and password required, fields bounded */
static void test_plain(void **state)
{
    struct sasl_plain p;
    char big[600];

    (void)state;
    assert_int_equal(sasl_plain_parse("\0bob\0pw", 7, &p), 0);
    assert_string_equal(p.authzid, "");
    assert_string_equal(p.authcid, "bob");
    assert_string_equal(p.passwd, "pw");
    assert_int_equal(sasl_plain_parse("al\0bob\0p w", 10, &p), 0);
    assert_string_equal(p.authzid, "al");
    assert_string_equal(p.passwd, "p w");
    assert_int_equal(sasl_plain_parse("\0bob\0", 5, &p), -1);
    assert_int_equal(sasl_plain_parse("\0\0pw", 4, &p), -1);
    assert_int_equal(sasl_plain_parse("bob\0pw", 6, &p), -1);
    assert_int_equal(sasl_plain_parse("\0bob\0p\0w", 8, &p), -1);
    memset(big, 'x', sizeof big);
    big[0] = '\0';
    big[4] = '\0';
    assert_int_equal(sasl_plain_parse(big, sizeof big, &p), -1); /* password > 255 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
