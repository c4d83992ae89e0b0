/* test_received.c - the Received header shows only plain names in its from clause */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/received.h"

/* from_line - the first line of the header for this HELO and rDNS name */
static const char *from_line(const char *helo, const char *name)
{
    static char hdr[2048];
    struct received_info ri = {
        .helo = helo,
        .client_name = name,
        .client_ip = "192.0.2.7",
        .by = "mx.example.test",
        .esmtp = 1,
        .id = "ID1",
        .rcpt = "u@example.test",
        .when = 0,
    };
    int n = received_format(&ri, hdr, sizeof(hdr));

    assert_true(n > 0);
    *strstr(hdr, "\r\n") = '\0';
    return hdr;
}

/* test_plain - a domain or a literal is shown as given */
static void test_plain(void **state)
{
    (void)state;
    assert_string_equal(from_line("mail.client.test", "host.client.test"),
                        "Received: from mail.client.test (host.client.test [192.0.2.7])");
    assert_string_equal(from_line("[192.0.2.7]", "unknown"),
                        "Received: from [192.0.2.7] (unknown [192.0.2.7])");
    assert_string_equal(from_line("[IPv6:2001:db8::1]", "host_1.client.test"),
                        "Received: from [IPv6:2001:db8::1] (host_1.client.test [192.0.2.7])");
}

/* test_forged - parentheses, brackets, spaces, CR/LF, 8-bit: "unknown" instead */
static void test_forged(void **state)
{
    static const char *const bad[] = {
        "x (trusted.example [10.0.0.1])",
        "a(b",
        "a)b",
        "[10.0.0.1",
        "a b",
        "a\r\nX-Evil: 1",
        "a\rb",
        "caf\xc3\xa9.test",
        "\xff",
        "",
        "[x:(y)]",
        "a;b",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_string_equal(from_line(bad[i], "host.client.test"),
                            "Received: from unknown (host.client.test [192.0.2.7])");
        assert_string_equal(from_line("mail.client.test", bad[i]),
                            "Received: from mail.client.test (unknown [192.0.2.7])");
    }
    assert_string_equal(from_line(NULL, NULL), "Received: from unknown (unknown [192.0.2.7])");
}

/* main - run the Received tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
