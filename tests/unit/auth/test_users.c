/* test_users.c - unit tests for the users file (src/auth/users.c) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth/users.h"

static struct users *parse(const char *s, char *err, size_t errlen)
{
    return users_parse("users", s, strlen(s), err, errlen);
}

/* test_lookup - logins, hashes and attributes; login case-insensitive */
static void test_lookup(void **state)
{
    char err[256] = "";
    struct users *u = parse("# comment\n\nalice@example.test:$y$j9T$abc$def:created=2026-01-02,"
                            "admin=yes\r\nbob:$6$salt$hash\n",
                            err, sizeof err);
    const struct users_entry *e;

    (void)state;
    assert_non_null(u);
    assert_int_equal(users_count(u), 2);
    e = users_find(u, "ALICE@example.TEST");
    assert_non_null(e);
    assert_string_equal(e->login, "alice@example.test");
    assert_string_equal(e->hash, "$y$j9T$abc$def");
    assert_int_equal(e->nattrs, 2);
    assert_string_equal(users_attr(e, "created"), "2026-01-02");
    assert_string_equal(users_attr(e, "admin"), "yes");
    assert_null(users_attr(e, "missing"));
    e = users_find(u, "bob");
    assert_non_null(e);
    assert_string_equal(e->hash, "$6$salt$hash");
    assert_int_equal(e->nattrs, 0);
    assert_int_equal(e->line, 4);
    assert_null(users_find(u, "carol"));
    assert_null(users_find(NULL, "bob"));
    users_free(u);
}

/* test_errors - every malformed line names the file and line, no table */
static void test_errors(void **state)
{
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"alice\n", "users:1: expected login:hash"},
        {"ok:x\n:hash\n", "users:2: bad login"},
        {"al ice:hash\n", "users:1: bad login"},
        {"alice:\n", "users:1: bad hash"},
        {"alice:ha sh\n", "users:1: bad hash"},
        {"alice:h:created\n", "users:1: attribute is not key=value"},
        {"alice:h:Cr=1\n", "users:1: attribute key"},
        {"alice:h:a=1,a=2\n", "users:1: duplicate attribute"},
        {"alice:h:a=x y\n", "users:1: attribute value"},
        {"alice:h\nbob:h\nALICE:h\n", "users:3: duplicate login (first on line 1)"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = '\0';
        assert_null(parse(cases[i].in, err, sizeof err));
        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("%s: got \"%s\"", cases[i].in, err);
    }
    assert_null(users_parse("users", "a:b\0c\n", 6, err, sizeof err));
    assert_string_equal(err, "users:1: NUL byte");
}

/* test_load - from a file; a missing file is an error */
static void test_load(void **state)
{
    char path[] = "/tmp/test_users.XXXXXX", err[256];
    int fd = mkstemp(path);
    struct users *u;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x:y\n", 4), 4);
    close(fd);
    u = users_load(path, err, sizeof err);
    assert_non_null(u);
    assert_non_null(users_find(u, "X"));
    users_free(u);
    unlink(path);
    assert_null(users_load(path, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
