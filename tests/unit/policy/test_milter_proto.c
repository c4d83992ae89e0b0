/* test_milter_proto.c - the milter codec: packets as Postfix sends them, replies validated */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "policy/milter_conf.h"
#include "policy/milter_proto.h"

/* parse - decode a payload given as a C string plus its length */
static int parse(const char *p, size_t len, struct milter_reply *r, const char **why)
{
    memset(r, 0, sizeof(*r));
    return milter_proto_parse((const unsigned char *)p, len, r, why);
}

static void test_optneg_packet(void **state)
{
    struct milter_pkt k = {0};
    static const unsigned char want[] = {0, 0, 0, 13,   'O', 0,    0,    0,   6,
                                         0, 0, 0, 0x3f, 0,   0x0f, 0xf7, 0xff};

    (void)state;
    milter_proto_optneg(&k, 0x3f, MILTER_PROTO_OFFER);
    assert_int_equal(k.len, sizeof(want));
    assert_memory_equal(k.p, want, sizeof(want));
    milter_proto_free(&k);
}

static void test_connect_macros_and_envelope(void **state)
{
    struct milter_pkt k = {0};
    const char *kv[] = {"j", "mx.test", "{auth_authen}", NULL, "i", "ABC"};
    static const char conn[] = "\0\0\0\x18"
                               "Cmail.test\0"
                               "4\x30\x39"
                               "192.0.2.1\0";
    static const char mac[] = "\0\0\0\x12"
                              "DCj\0mx.test\0i\0ABC\0";
    static const char rcpt[] = "\0\0\0\x09"
                               "R<a@b.c>\0";

    (void)state;
    milter_proto_connect(&k, "mail.test", '4', 12345, "192.0.2.1");
    assert_int_equal(k.len, sizeof(conn) - 1);
    assert_memory_equal(k.p, conn, k.len);
    milter_proto_macros(&k, 'C', kv, 3); /* the NULL value is left out */
    assert_int_equal(k.len, sizeof(mac) - 1);
    assert_memory_equal(k.p, mac, k.len);
    milter_proto_simple(&k, SMFIC_RCPT, "a@b.c");
    assert_int_equal(k.len, sizeof(rcpt) - 1);
    assert_memory_equal(k.p, rcpt, k.len);
    milter_proto_free(&k);
}

static void test_header_folds_become_lf(void **state)
{
    struct milter_pkt k = {0};
    const char *v = "a\r\n\tb";
    static const char want[] = "\0\0\0\x0b"
                               "LSubj\0a\n\tb\0";

    (void)state;
    milter_proto_header(&k, "Subj", v, strlen(v));
    assert_int_equal(k.len, sizeof(want) - 1);
    assert_memory_equal(k.p, want, k.len);
    milter_proto_free(&k);
}

static void test_frame_bounds(void **state)
{
    static const unsigned char zero[] = {0, 0, 0, 0}, big[] = {0, 0x10, 0, 0},
                               ok[] = {0, 0, 0, 1, 'c'};

    (void)state;
    assert_int_equal(milter_proto_frame(ok, 3), 0);
    assert_int_equal(milter_proto_frame(ok, 5), 1);
    assert_int_equal(milter_proto_frame(zero, 4), -1);
    assert_int_equal(milter_proto_frame(big, 4), -1);
}

static void test_replycode(void **state)
{
    struct milter_reply r;
    const char *why;
    static const char ok[] = "y554 5.7.1 Gtube pattern";
    static const char nostatus[] = "y451 try later";
    static const char multi[] = "y550-5.7.1 first\r\n550 5.7.1 second";

    (void)state;
    assert_int_equal(parse(ok, sizeof(ok), &r, &why), 0);
    assert_int_equal(r.code, 554);
    assert_string_equal(r.status, "5.7.1");
    assert_string_equal(r.text, "Gtube pattern");
    assert_int_equal(parse(nostatus, sizeof(nostatus), &r, &why), 0);
    assert_string_equal(r.status, "4.7.1");
    assert_string_equal(r.text, "try later");
    assert_int_equal(parse(multi, sizeof(multi), &r, &why), 0);
    assert_string_equal(r.text, "first");
}

static void test_replycode_refused(void **state)
{
    struct milter_reply r;
    const char *why;
    static const char *const bad[] = {"y250 2.0.0 ok", "y550 5.7.1 a\x1b[0m", "y5x0 no",
                                      "y550 5.7.1 a\0b", "y"};
    static const size_t len[] = {14, 17, 8, 14, 1};

    (void)state;
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(parse(bad[i], len[i], &r, &why), -1);
    /* unterminated */
    assert_int_equal(parse("y550 5.7.1 x", 12, &r, &why), -1);
    assert_string_equal(why, "no-nul");
    /* a status of the wrong class is text, the status is the default */
    static const char wrong[] = "y550 4.7.1 x";
    assert_int_equal(parse(wrong, sizeof(wrong), &r, &why), 0);
    assert_string_equal(r.status, "5.7.1");
    assert_string_equal(r.text, "4.7.1 x");
}

static void test_headers(void **state)
{
    struct milter_reply r;
    const char *why;
    static const char add[] = "hX-Spam\0Yes\n\tfolded";
    static const char chg[] = "m\0\0\0\x02Subject\0";
    static const char inj[] = "hX-A\0a\r\nBcc: x";
    static const char ctl[] = "hX-A\0a\x01";
    static const char name[] = "hX A\0v";
    static const char colon[] = "hX:A\0v";
    static const char nonul[] = "hX-A\0v";

    (void)state;
    assert_int_equal(parse(add, sizeof(add), &r, &why), 0);
    assert_string_equal(r.name, "X-Spam");
    assert_string_equal(r.value, "Yes\r\n\tfolded");
    milter_reply_clear(&r);
    assert_int_equal(parse(chg, sizeof(chg), &r, &why), 0);
    assert_int_equal(r.index, 2);
    assert_string_equal(r.value, "");
    milter_reply_clear(&r);
    assert_int_equal(parse(inj, sizeof(inj), &r, &why), -1);
    assert_string_equal(why, "header-value-break");
    assert_int_equal(parse(ctl, sizeof(ctl), &r, &why), -1);
    assert_int_equal(parse(name, sizeof(name), &r, &why), -1);
    assert_int_equal(parse(colon, sizeof(colon), &r, &why), -1);
    assert_int_equal(parse(nonul, sizeof(nonul) - 1, &r, &why), -1);
    assert_int_equal(parse("m\0\0", 3, &r, &why), -1);
}

static void test_simple_replies(void **state)
{
    struct milter_reply r;
    const char *why;
    static const char q[] = "qspam \x07 bell";
    static const char opt[] = "O\0\0\0\x06\0\0\0\x01\0\0\0\x10";

    (void)state;
    assert_int_equal(parse("r", 1, &r, &why), 0);
    assert_int_equal(r.code, 550);
    assert_int_equal(parse("t", 1, &r, &why), 0);
    assert_int_equal(r.code, 451);
    assert_int_equal(parse(q, sizeof(q), &r, &why), 0);
    assert_string_equal(r.arg, "spam ? bell");
    assert_int_equal(parse(opt, sizeof(opt) - 1, &r, &why), 0);
    assert_int_equal(r.version, 6);
    assert_int_equal(r.actions, 1);
    assert_int_equal(r.protocol, 0x10);
    assert_int_equal(parse("O\0\0", 3, &r, &why), -1);
    assert_int_equal(parse("Z", 1, &r, &why), -1);
    assert_string_equal(why, "unknown-reply");
}

static void test_conf_socket(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;

    (void)state;
    assert_int_equal(milter_conf_socket("inet:127.0.0.1:11332", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(milter_conf_socket("inet:[::1]:11332", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(milter_conf_socket("unix:/run/x.sock", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_UNIX);
    assert_int_equal(milter_conf_socket("inet:localhost:11332", &ss, &len), -1);
    assert_int_equal(milter_conf_socket("inet:127.0.0.1:0", &ss, &len), -1);
    assert_int_equal(milter_conf_socket("inet:127.0.0.1:", &ss, &len), -1);
    assert_int_equal(milter_conf_socket("unix:relative", &ss, &len), -1);
    assert_int_equal(milter_conf_socket("tcp:1.2.3.4:5", &ss, &len), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optneg_packet),
        cmocka_unit_test(test_connect_macros_and_envelope),
        cmocka_unit_test(test_header_folds_become_lf),
        cmocka_unit_test(test_frame_bounds),
        cmocka_unit_test(test_replycode),
        cmocka_unit_test(test_replycode_refused),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_simple_replies),
        cmocka_unit_test(test_conf_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
