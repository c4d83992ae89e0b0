/* test_userlists.c - per-user lists: canonical entries, line parsing, the files'
 * table and the lookup order */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/userlists.h"

static void test_canon(void **st)
{
    char d[UL_ENTRY_MAX];

    assert_int_equal(ul_canon_rcpt("Bob@Example.TEST", d, sizeof(d)), 0);
    assert_string_equal(d, "bob@example.test");
    assert_int_equal(ul_canon_rcpt("@Example.TEST", d, sizeof(d)), 0);
    assert_string_equal(d, "@example.test");
    assert_int_equal(ul_canon_rcpt("user@bücher.example", d, sizeof(d)), 0);
    assert_string_equal(d, "user@xn--bcher-kva.example");
    assert_int_equal(ul_canon_pattern("Bücher.Example", d, sizeof(d)), 0);
    assert_string_equal(d, "@xn--bcher-kva.example");
    assert_int_equal(ul_canon_pattern("@client.test", d, sizeof(d)), 0);
    assert_string_equal(d, "@client.test");
    assert_int_equal(ul_canon_rcpt("example.test", d, sizeof(d)), -1); /* a recipient needs @ */
    assert_int_equal(ul_canon_rcpt("a|b@example.test", d, sizeof(d)), -1);
    assert_int_equal(ul_canon_pattern("@", d, sizeof(d)), -1);
    assert_int_equal(ul_canon_pattern("", d, sizeof(d)), -1);
    assert_int_equal(ul_canon_pattern("two words", d, sizeof(d)), -1);
    assert_int_equal(ul_canon_pattern("a@b@c", d, sizeof(d)), -1);
}

static void test_levels(void **st)
{
    char k[UL_LEVELS][UL_KEY_MAX];

    assert_int_equal(ul_levels("bob@example.test", "alice@client.test", k), 4);
    assert_string_equal(k[0], "bob@example.test|alice@client.test");
    assert_string_equal(k[1], "bob@example.test|@client.test");
    assert_string_equal(k[2], "@example.test|alice@client.test");
    assert_string_equal(k[3], "@example.test|@client.test");
    assert_int_equal(ul_levels("bob@example.test", "", k), 0); /* the null sender */
    assert_int_equal(ul_levels("postmaster", "a@b.test", k), 0);
}

static void test_parse_line(void **st)
{
    char line[256], key[UL_KEY_MAX];
    enum ul_kind kind;
    const char *why = NULL;

    strcpy(line, "  # only a comment\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), 0);
    strcpy(line, "Bob@Example.test\tallow  Alice@Client.Test # why\r\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), 1);
    assert_string_equal(key, "bob@example.test|alice@client.test");
    assert_int_equal(kind, UL_ALLOW);
    strcpy(line, "@example.test deny bad.test\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), 1);
    assert_string_equal(key, "@example.test|@bad.test");
    assert_int_equal(kind, UL_DENY);
    strcpy(line, "bob@other.test allow a@b.test\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), -1);
    assert_string_equal(why, "recipient of another domain than the file's");
    strcpy(line, "bob@example.test maybe a@b.test\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), -1);
    strcpy(line, "bob@example.test allow\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), -1);
    strcpy(line, "bob@example.test allow a@b.test extra\n");
    assert_int_equal(ul_table_parse_line("example.test", line, key, sizeof(key), &kind, &why), -1);
}

/* write_dir - a tmp dir with one file NAME holding text */
static void write_dir(char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    strcpy(dir, "/tmp/test_userlists.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_dir(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    rmdir(dir);
}

static void test_table(void **st)
{
    char dir[64], err[256];
    struct ul_table *t;

    write_dir(dir, "example.test",
              "bob@example.test allow a@b.test\n"
              "bob@example.test deny a@b.test\n" /* the later line wins */
              "@example.test allow @b.test\n");
    t = ul_table_load(dir, 100, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(ul_table_size(t), 2);
    assert_int_equal(ul_table_get(t, "bob@example.test|a@b.test"), UL_DENY);
    assert_int_equal(ul_table_get(t, "@example.test|@b.test"), UL_ALLOW);
    assert_int_equal(ul_table_get(t, "bob@example.test|@b.test"), UL_NONE);
    ul_table_free(t);
    assert_null(ul_table_load(dir, 1, err, sizeof(err))); /* bounded */
    assert_non_null(strstr(err, "example.test:2: more entries than max_entries"));
    rm_dir(dir, "example.test");

    write_dir(dir, "Example.TEST", "bob@example.test allow a@b.test\n");
    assert_null(ul_table_load(dir, 100, err, sizeof(err)));
    assert_non_null(strstr(err, "the file name must be a lower-case domain"));
    rm_dir(dir, "Example.TEST");

    t = ul_table_load("/nonexistent/userlists", 100, err, sizeof(err)); /* none: empty */
    assert_non_null(t);
    assert_int_equal(ul_table_size(t), 0);
    ul_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_parse_line),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
