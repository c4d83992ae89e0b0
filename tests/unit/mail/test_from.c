/* test_from.c - the author domain of a message, and header fields one at a time */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/from.h"
#include "mail/header.h"

/* author - the status and domain of a header section */
static enum from_status author(const char *hdr, char *dom)
{
    return from_author_domain(hdr, strlen(hdr), dom);
}

/* test_forms - the mailbox forms of RFC 5322 3.4 */
static void test_forms(void **state)
{
    char d[FROM_DOMAIN_SIZE];
    (void)state;

    assert_int_equal(author("From: a@Example.TEST\r\n", d), FROM_ONE);
    assert_string_equal(d, "example.test");
    assert_int_equal(author("From: \"Doe, John\" <john@b.example.test>\r\n", d), FROM_ONE);
    assert_string_equal(d, "b.example.test");
    assert_int_equal(author("From: John (at x@evil.test) <j@c.example.test> (c)\r\n", d), FROM_ONE);
    assert_string_equal(d, "c.example.test");
    assert_int_equal(author("From: \"x@evil.test\" <j@d.example.test>\r\n", d), FROM_ONE);
    assert_string_equal(d, "d.example.test");
    assert_int_equal(author("Subject: x\r\nfrom:\r\n  j@e.example.test\r\nTo: y\r\n", d), FROM_ONE);
    assert_string_equal(d, "e.example.test");
    assert_int_equal(author("From: a@f.example.test, b@F.example.test\r\n", d), FROM_ONE);
    assert_string_equal(d, "f.example.test");
    assert_int_equal(author("From: Friends: a@g.example.test, b@g.example.test;\r\n", d), FROM_ONE);
    assert_string_equal(d, "g.example.test");
    assert_int_equal(author("From: \"q@x\"@h.example.test\r\n", d), FROM_ONE);
    assert_string_equal(d, "h.example.test");
    /* an IDN domain is compared as its A-label */
    assert_int_equal(author("From: a@b\xc3\xbc\x63her.example\r\n", d), FROM_ONE);
    assert_string_equal(d, "xn--bcher-kva.example");
}

/* test_refused - no author domain DMARC could use */
static void test_refused(void **state)
{
    char d[FROM_DOMAIN_SIZE];
    (void)state;

    assert_int_equal(author("Subject: x\r\n", d), FROM_NONE);
    assert_int_equal(author("From: undisclosed:;\r\n", d), FROM_NONE);
    assert_int_equal(author("From: a@x.test\r\nFrom: b@x.test\r\n", d), FROM_MANY);
    assert_int_equal(author("From: a@x.test, b@y.test\r\n", d), FROM_MANY);
    assert_string_equal(d, "");
    assert_int_equal(author("From: nobody\r\n", d), FROM_BAD);
    assert_int_equal(author("From: a@[192.0.2.1]\r\n", d), FROM_BAD);
    assert_int_equal(author("From: <a@x.test\r\n", d), FROM_BAD);
    assert_int_equal(author("From: a@localhost\r\n", d), FROM_BAD);
    assert_int_equal(author("From: a@bad_host!.test\r\n", d), FROM_BAD);
    assert_int_equal(author("From: a@x y.test\r\n", d), FROM_BAD);
}

/* test_fields - names, folding, a line without a colon */
static void test_fields(void **state)
{
    const char *h = "Subject: one\r\n two\r\nbroken line\r\nX-A:\tv \r\n";
    struct hdr_field f;
    size_t off = 0;
    char v[64];
    (void)state;

    assert_true(hdr_next(h, strlen(h), &off, &f));
    assert_true(hdr_is(&f, "subject"));
    assert_int_equal(hdr_unfold(&f, v, sizeof(v)), 0);
    assert_string_equal(v, "one two");
    assert_int_equal(f.raw_len, strlen("Subject: one\r\n two\r\n"));
    assert_true(hdr_next(h, strlen(h), &off, &f));
    assert_int_equal(f.name_len, 0);
    assert_true(hdr_next(h, strlen(h), &off, &f));
    assert_true(hdr_is(&f, "X-A"));
    assert_int_equal(hdr_unfold(&f, v, sizeof(v)), 0);
    assert_string_equal(v, "v");
    assert_int_equal(hdr_unfold(&f, v, 1), -1);
    assert_false(hdr_next(h, strlen(h), &off, &f));
    assert_int_equal(hdr_count(h, strlen(h), "SUBJECT"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
