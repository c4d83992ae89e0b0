/* test_senders.c - AUTH id = MAIL FROM (src/auth/senders.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth/senders.h"

/* test_own_and_map - own address by default, more from the map, @domain */
static void test_own_and_map(void **state)
{
    static const char map[] = "# map\nbob  bob.alias@Example.Test  \"b.b\"@x.test\n"
                              "admin@example.test @example.test\n";
    char err[256];
    struct senders *s = senders_parse("senders", map, strlen(map), err, sizeof err);

    (void)state;
    assert_non_null(s);
    assert_true(senders_allowed(s, "bob", "example.test", "bob@example.test"));
    assert_true(senders_allowed(s, "BOB", "example.test", "Bob@EXAMPLE.test"));
    assert_true(senders_allowed(s, "bob", "example.test", "bob.alias@example.test"));
    assert_true(senders_allowed(s, "bob", "example.test", "b.b@x.test"));
    assert_false(senders_allowed(s, "bob", "example.test", "alice@example.test"));
    assert_false(senders_allowed(s, "bob", NULL, "bob@example.test"));
    assert_true(senders_allowed(s, "alice@example.test", "other.test", "alice@example.test"));
    assert_false(senders_allowed(s, "alice@example.test", "other.test", "alice@other.test"));
    assert_true(senders_allowed(s, "admin@example.test", NULL, "anyone@example.test"));
    assert_false(senders_allowed(s, "admin@example.test", NULL, "anyone@sub.example.test"));
    assert_true(senders_allowed(s, "bob", NULL, ""));
    assert_true(senders_allowed(NULL, "carol@x.test", NULL, "carol@x.test"));
    senders_free(s);
}

/* test_errors - a malformed entry names its line */
static void test_errors(void **state)
{
    char err[256];

    (void)state;
    assert_null(senders_parse("senders", "bob\nbob nodomain\n", 16, err, sizeof err));
    assert_string_equal(err, "senders:2: not an address or @domain");
    assert_null(senders_parse("senders", "bob @bad..domain\n", 17, err, sizeof err));
    assert_string_equal(err, "senders:1: not an address or @domain");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_and_map),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
