/* test_fdlimit.c - the daemon takes its descriptor limit up to what it needs */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "core/fdlimit.h"

/* test_raises_soft_to_hard - a low soft limit goes up to the hard one */
static void test_raises_soft_to_hard(void **state)
{
    struct rlimit rl, low;
    long got;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 300)
        skip();
    low.rlim_cur = 64;
    low.rlim_max = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    got = fdlimit_raise(300);
    assert_true(got >= 300);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true((long)rl.rlim_cur == got || rl.rlim_cur == RLIM_INFINITY);
}

/* test_enough_already - no change asked, none made; the limit in force comes back */
static void test_enough_already(void **state)
{
    struct rlimit before, after;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    assert_true(fdlimit_raise(16) >= 16);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
    assert_true(after.rlim_cur >= before.rlim_cur);
    assert_true(after.rlim_max == before.rlim_max);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raises_soft_to_hard),
        cmocka_unit_test(test_enough_already),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
