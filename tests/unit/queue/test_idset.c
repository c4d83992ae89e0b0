/* test_idset.c - the set of ids the start's listing skips: members found,
 * others not, growth keeps every member, non-ids ignored */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "queue/idset.h"

static void test_members(void **state)
{
    struct idset *s = idset_new();

    (void)state;
    assert_false(idset_has(s, "0123456789abcdef"));
    idset_add(s, "0123456789abcdef");
    idset_add(s, "0123456789abcdef");
    assert_true(idset_has(s, "0123456789abcdef"));
    assert_false(idset_has(s, "0123456789abcdee"));
    assert_int_equal(idset_count(s), 1);
    assert_false(idset_has(NULL, "0123456789abcdef"));
    idset_free(s);
}

static void test_growth(void **state)
{
    struct idset *s = idset_new();
    char id[32];

    (void)state;
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "%016x", (unsigned)i * 2654435761u);
        idset_add(s, id);
    }
    assert_int_equal(idset_count(s), 20000);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "%016x", (unsigned)i * 2654435761u);
        assert_true(idset_has(s, id));
        snprintf(id, sizeof(id), "%015xg", (unsigned)i);
        assert_false(idset_has(s, id));
    }
    idset_free(s);
}

static void test_not_ids(void **state)
{
    struct idset *s = idset_new();

    (void)state;
    idset_add(s, "");
    idset_add(s, "0123456789abcdef0"); /* longer than any queue id */
    assert_int_equal(idset_count(s), 0);
    assert_false(idset_has(s, ""));
    assert_false(idset_has(s, "0123456789abcdef0"));
    idset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_not_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
