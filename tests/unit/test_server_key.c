/* test_server_key.c - the key max_connections_per_ip counts clients under */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/server.h"

/* key_of - the key of a textual address (IPv4 or IPv6) under prefix */
static void key_of(const char *ip, unsigned prefix, uint8_t key[16])
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

    if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
        server_client_key((struct sockaddr *)&sin, prefix, key);
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    server_client_key((struct sockaddr *)&sin6, prefix, key);
}

/* same - do a and b count as one client under prefix */
static int same(const char *a, const char *b, unsigned prefix)
{
    uint8_t ka[16], kb[16];

    key_of(a, prefix, ka);
    key_of(b, prefix, kb);
    return memcmp(ka, kb, 16) == 0;
}

/* test_ipv6_prefix - one /64 is one client by default; other prefixes cut where told */
static void test_ipv6_prefix(void **state)
{
    (void)state;
    assert_true(same("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 64));
    assert_false(same("2001:db8:1:2::1", "2001:db8:1:3::1", 64));
    assert_true(same("2001:db8:1:2::1", "2001:db8:1:3::1", 48));
    assert_false(same("2001:db8:1:2::1", "2001:db8:1:2::2", 128));
    assert_true(same("2001:db8:1:2::1", "2001:db8:1:2::1", 128));
    assert_true(same("2001:db8:1:2::", "2001:db8:1:2:0:ff::", 65)); /* bit 65 is 0 in both */
    assert_false(same("2001:db8:1:2::", "2001:db8:1:2:8000::", 65));
    assert_true(same("::1", "::2", 64));
}

/* test_ipv4 - IPv4 clients count by their whole address, v4-mapped the same as plain */
static void test_ipv4(void **state)
{
    (void)state;
    assert_false(same("192.0.2.1", "192.0.2.2", 64));
    assert_true(same("192.0.2.1", "192.0.2.1", 64));
    assert_true(same("192.0.2.1", "::ffff:192.0.2.1", 64));
    assert_false(same("::ffff:192.0.2.1", "::ffff:192.0.2.2", 64));
    assert_false(same("::ffff:192.0.2.1", "::ffff:192.0.2.2", 16));
}

/* main - run the grouping key tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_prefix),
        cmocka_unit_test(test_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
