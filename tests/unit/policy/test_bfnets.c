/* test_bfnets.c - the busiest networks of a flood's bounces, for the hook */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "policy/bfnets.h"

/* add - n bounces from ip (IPv4 or IPv6 text) */
static void add(struct bfnets *b, const char *ip, int n)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else {
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        s6->sin6_family = AF_INET6;
    }
    while (n-- > 0)
        bfnets_add(b, (struct sockaddr *)&ss);
}

static void test_top_order_and_prefixes(void **state)
{
    struct bfnets *b = calloc(1, sizeof(*b));
    char out[256];

    add(b, "192.0.2.7", 2);
    add(b, "192.0.2.200", 3); /* the same /24 */
    add(b, "198.51.100.1", 4);
    add(b, "2001:db8:1:2::25", 1);
    bfnets_top(b, 16, out, sizeof(out));
    assert_string_equal(out, "192.0.2.0/24 198.51.100.0/24 2001:db8:1::/48");
    bfnets_top(b, 2, out, sizeof(out));
    assert_string_equal(out, "192.0.2.0/24 198.51.100.0/24");
    bfnets_top(b, 16, out, 20); /* no half network */
    assert_string_equal(out, "192.0.2.0/24");
    bfnets_clear(b);
    bfnets_top(b, 16, out, sizeof(out));
    assert_string_equal(out, "");
    free(b);
}

/* many networks sending one bounce each cannot push out the one that floods */
static void test_bounded_keeps_the_busiest(void **state)
{
    struct bfnets *b = calloc(1, sizeof(*b));
    char ip[32], out[1024];

    add(b, "203.0.113.9", 50);
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
        add(b, ip, 1);
    }
    assert_int_equal(b->used, BFNETS_SLOTS);
    bfnets_top(b, 1, out, sizeof(out));
    assert_string_equal(out, "203.0.113.0/24");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_order_and_prefixes),
        cmocka_unit_test(test_bounded_keeps_the_busiest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
