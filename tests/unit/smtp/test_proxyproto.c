/* test_proxyproto.c - unit tests for the PROXY protocol header parser */
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

#include "core/cidr.h"
#include "smtp/proxyproto.h"

#define ANY (PROXYPROTO_V1 | PROXYPROTO_V2)

/* parse - n octets of p from an exact-size heap copy (ASan sees any read past them) */
static enum proxyproto_status parse(const void *p, size_t n, unsigned versions,
                                    struct proxyproto_result *r)
{
    uint8_t *copy = malloc(n ? n : 1);
    enum proxyproto_status st;

    assert_non_null(copy);
    memcpy(copy, p, n);
    st = proxyproto_parse(copy, n, versions, r);
    free(copy);
    return st;
}

/* src_ip - the client address and port as "ip:port" */
static const char *src_ip(const struct proxyproto_result *r)
{
    static char out[80];
    char ip[64];
    unsigned port = r->src.ss_family == AF_INET
                        ? ntohs(((const struct sockaddr_in *)&r->src)->sin_port)
                        : ntohs(((const struct sockaddr_in6 *)&r->src)->sin6_port);

    sockaddr_ip((const struct sockaddr *)&r->src, ip, sizeof(ip));
    snprintf(out, sizeof(out), "%s:%u", ip, port);
    return out;
}

static void test_v1_tcp4(void **state)
{
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";
    struct proxyproto_result r;

    assert_int_equal(parse(h, strlen(h), ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.local, 0);
    assert_int_equal(r.len, strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n"));
    assert_string_equal(src_ip(&r), "192.0.2.7:56324");
}

static void test_v1_tcp6_unknown(void **state)
{
    const char *h6 = "PROXY TCP6 2001:db8::1 2001:db8::25 65535 25\r\n";
    const char *hu = "PROXY UNKNOWN ffff::1 whatever\r\n";
    struct proxyproto_result r;

    assert_int_equal(parse(h6, strlen(h6), PROXYPROTO_V1, &r), PROXYPROTO_DONE);
    assert_string_equal(src_ip(&r), "2001:db8::1:65535");
    assert_int_equal(parse(hu, strlen(hu), ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.local, 1);
    assert_int_equal(r.len, strlen(hu));
    assert_int_equal(parse("PROXY UNKNOWN\r\n", 15, ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.local, 1);
}

/* every prefix of a good header asks for more, and all its octets are the header's */
static void test_v1_partial(void **state)
{
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";
    struct proxyproto_result r;

    for (size_t n = 1; n < strlen(h); n++) {
        assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_MORE);
        assert_int_equal(r.len, n);
    }
}

static void test_v1_bad(void **state)
{
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n",      /* bare LF */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\rX\r\n", /* bare CR */
        "PROXY TCP4  192.0.2.7 198.51.100.1 56324 25\r\n",   /* two spaces */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",       /* three fields */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25 1\r\n",  /* five */
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",    /* port range */
        "PROXY TCP4 192.0.2.7 198.51.100.1 025 25\r\n",      /* leading zero */
        "PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",       /* sign */
        "PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",      /* family */
        "PROXY TCP6 192.0.2.7 2001:db8::1 1 25\r\n",         /* family */
        "PROXY TCP4 192.0.2.300 198.51.100.1 1 25\r\n",      /* octet */
        "PROXY TCP4 192.0.2.7 198.51.100.1 1 25 \r\n",       /* trailing space */
        "PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",        /* protocol */
        "PROXY UNKNOWNX\r\n",                                /* not UNKNOWN */
        "proxy TCP4 192.0.2.7 198.51.100.1 1 25\r\n",        /* case */
        "EHLO client.example\r\n",                           /* no header at all */
    };
    struct proxyproto_result r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum proxyproto_status st = parse(bad[i], strlen(bad[i]), ANY, &r);
        if (st != PROXYPROTO_BAD)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(r.error);
    }
    /* an empty line may still become a v2 signature; to a v1 listener it is wrong */
    assert_int_equal(parse("\r\n", 2, ANY, &r), PROXYPROTO_MORE);
    assert_int_equal(parse("\r\n", 2, PROXYPROTO_V1, &r), PROXYPROTO_BAD);
}

/* v1 lines end within 107 octets: a longer one is refused as soon as it is */
static void test_v1_too_long(void **state)
{
    char h[200];
    struct proxyproto_result r;

    memset(h, 'A', sizeof(h));
    memcpy(h, "PROXY UNKNOWN ", 14);
    assert_int_equal(parse(h, PROXYPROTO_V1_MAX - 1, ANY, &r), PROXYPROTO_MORE);
    assert_int_equal(parse(h, PROXYPROTO_V1_MAX, ANY, &r), PROXYPROTO_BAD);
    memcpy(h + PROXYPROTO_V1_MAX - 2, "\r\n", 2);
    assert_int_equal(parse(h, PROXYPROTO_V1_MAX, ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.len, PROXYPROTO_V1_MAX);
}

/* v2_header - a v2 header: command, family, the block of len octets */
static size_t v2_header(uint8_t *out, uint8_t cmd, uint8_t fam, const uint8_t *block, size_t len)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

    memcpy(out, sig, 12);
    out[12] = (uint8_t)(0x20 | cmd);
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len)
        memcpy(out + 16, block, len);
    return 16 + len;
}

static void test_v2_tcp4_tlvs(void **state)
{
    /* 192.0.2.9 -> 198.51.100.1, 40000 -> 25, then a NOOP TLV and an AUTHORITY TLV */
    static const uint8_t block[] = {192,  0, 2, 9,    198,  51,   100, 1, 0x9c, 0x40, 0,  25,
                                    0x04, 0, 2, 0xaa, 0xbb, 0x02, 0,   3, 'a',  'b',  'c'};
    uint8_t h[64];
    size_t n = v2_header(h, 1, 0x11, block, sizeof(block));
    struct proxyproto_result r;

    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.len, n);
    assert_string_equal(src_ip(&r), "192.0.2.9:40000");
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(parse(h, i, PROXYPROTO_V2, &r), PROXYPROTO_MORE);
        assert_int_equal(r.len, i);
    }
    /* a TLV that runs past the header */
    h[15] = (uint8_t)(sizeof(block) - 1);
    assert_int_equal(parse(h, n - 1, ANY, &r), PROXYPROTO_BAD);
}

static void test_v2_tcp6_local_unspec(void **state)
{
    uint8_t block[36] = {0}, h[64];
    size_t n;
    struct proxyproto_result r;

    block[0] = 0x20;
    block[1] = 0x01;
    block[2] = 0x0d;
    block[3] = 0xb8;
    block[15] = 7;
    block[33] = 25; /* source port 25, destination 25 */
    block[35] = 25;
    n = v2_header(h, 1, 0x21, block, sizeof(block));
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_DONE);
    assert_string_equal(src_ip(&r), "2001:db8::7:25");
    n = v2_header(h, 0, 0x11, block, 12); /* LOCAL: the block is ignored */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.local, 1);
    n = v2_header(h, 1, 0x00, NULL, 0); /* PROXY, UNSPEC */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_DONE);
    assert_int_equal(r.local, 1);
}

static void test_v2_bad(void **state)
{
    uint8_t block[36] = {0}, h[64];
    size_t n;
    struct proxyproto_result r;

    n = v2_header(h, 1, 0x21, block, 12); /* TCP6 with an IPv4-sized block */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_BAD);
    n = v2_header(h, 1, 0x12, block, 12); /* UDP4 */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_BAD);
    n = v2_header(h, 1, 0x31, block, 36); /* UNIX stream */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_BAD);
    n = v2_header(h, 2, 0x11, block, 12); /* command 2 */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_BAD);
    n = v2_header(h, 1, 0x11, block, 12);
    h[12] = 0x11; /* version 1 in a binary header */
    assert_int_equal(parse(h, n, ANY, &r), PROXYPROTO_BAD);
    n = v2_header(h, 1, 0x11, block, 12);
    h[7] = 'X'; /* a broken signature, seen as soon as it differs */
    assert_int_equal(parse(h, 8, ANY, &r), PROXYPROTO_BAD);
    n = v2_header(h, 1, 0x11, block, 12);
    h[14] = 0x08; /* 2048 octets after the 16: over the bound */
    h[15] = 0x00;
    assert_int_equal(parse(h, 16, ANY, &r), PROXYPROTO_BAD);
}

/* a listener takes only the versions it is configured for */
static void test_versions(void **state)
{
    const char *h1 = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";
    uint8_t h2[64], block[12] = {192, 0, 2, 9, 198, 51, 100, 1, 0, 1, 0, 25};
    size_t n = v2_header(h2, 1, 0x11, block, sizeof(block));
    struct proxyproto_result r;

    assert_int_equal(parse(h1, strlen(h1), PROXYPROTO_V2, &r), PROXYPROTO_BAD);
    assert_string_equal(r.error, "no PROXY v2 header");
    assert_int_equal(parse(h2, n, PROXYPROTO_V1, &r), PROXYPROTO_BAD);
    assert_int_equal(parse(h2, n, PROXYPROTO_V2, &r), PROXYPROTO_DONE);
    assert_int_equal(parse(h1, 0, ANY, &r), PROXYPROTO_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6_unknown),
        cmocka_unit_test(test_v1_partial),
        cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_v1_too_long),
        cmocka_unit_test(test_v2_tcp4_tlvs),
        cmocka_unit_test(test_v2_tcp6_local_unspec),
        cmocka_unit_test(test_v2_bad),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
