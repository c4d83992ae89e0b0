/* test_policysrv_request.c - Postfix policy requests parsed strictly, and the actions answered */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"
#include "policysrv/policysrv.h"
#include "policysrv/request.h"

/* line - one attribute line from an exact-size heap copy (ASan sees reads past it) */
static int line(struct policysrv_req *r, const char *s, const char **err)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, s, n);
    rc = policysrv_req_line(r, copy, n, err);
    free(copy);
    return rc;
}

static void test_good_request(void **state)
{
    static const char *const lines[] = {"request=smtpd_access_policy",
                                        "protocol_state=RCPT",
                                        "protocol_name=ESMTP",
                                        "client_address=2001:db8::25",
                                        "client_name=unknown",
                                        "reverse_client_name=",
                                        "helo_name=mx.example.org",
                                        "sender=",
                                        "recipient=bob@example.test",
                                        "instance=1a2b.5f3c.1.0",
                                        "sasl_username=",
                                        "ccert_subject=",
                                        "policy_context=",
                                        "server_port=25",
                                        "stress="};
    struct policysrv_req r = {0};
    const char *err = NULL;

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_int_equal(line(&r, lines[i], &err), 0);
    assert_int_equal(policysrv_req_complete(&r, &err), 0);
    assert_string_equal(r.client_address, "2001:db8::25");
    assert_string_equal(r.sender, ""); /* the null sender */
    assert_string_equal(r.recipient, "bob@example.test");
    assert_string_equal(r.reverse_client_name, "");
    assert_string_equal(r.instance, "1a2b.5f3c.1.0");
    policysrv_req_clear(&r);
    assert_null(r.request);
    assert_int_equal(r.nattrs, 0);
}

static void test_bad_lines(void **state)
{
    static const struct {
        const char *line, *err;
    } bad[] = {
        {"no equals sign", "not a name=value line"},
        {"=value", "not a name=value line"},
        {"Name=value", "not a name=value line"},
        {"na me=value", "not a name=value line"},
        {"helo_name=a\rb", "control character in a value"},
        {"helo_name=a\tb", "control character in a value"},
        {"helo_name=a\x7f", "control character in a value"},
    };
    const char *err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct policysrv_req r = {0};
        err = NULL;
        assert_int_equal(line(&r, bad[i].line, &err), -1);
        assert_string_equal(err, bad[i].err);
        policysrv_req_clear(&r);
    }
}

static void test_bounds_and_duplicates(void **state)
{
    struct policysrv_req r = {0};
    const char *err = NULL;
    char big[POLICYSRV_LINE_MAX + 2];

    assert_int_equal(line(&r, "sender=a@b", &err), 0);
    assert_int_equal(line(&r, "sender=c@d", &err), -1);
    assert_string_equal(err, "attribute given twice");
    policysrv_req_clear(&r);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[1] = '=';
    assert_int_equal(line(&r, big, &err), -1);
    assert_string_equal(err, "attribute line too long");
    big[sizeof(big) - 2] = '\0'; /* exactly POLICYSRV_LINE_MAX: taken */
    assert_int_equal(line(&r, big, &err), 0);
    policysrv_req_clear(&r);
    for (int i = 0; i < POLICYSRV_ATTRS_MAX; i++)
        assert_int_equal(line(&r, "x=1", &err), 0);
    assert_int_equal(line(&r, "x=1", &err), -1);
    assert_string_equal(err, "too many attributes");
    policysrv_req_clear(&r);
}

static void test_complete(void **state)
{
    static const struct {
        const char *attrs[4], *err;
    } cases[] = {
        {{NULL}, "empty request"},
        {{"request=junk", "protocol_state=RCPT", "client_address=192.0.2.1"},
         "request is not smtpd_access_policy"},
        {{"request=smtpd_access_policy", "protocol_state=QUIT", "client_address=192.0.2.1"},
         "missing or unknown protocol_state"},
        {{"request=smtpd_access_policy", "protocol_state=MAIL", "client_address=192.0.2.256"},
         "missing or bad client_address"},
        {{"request=smtpd_access_policy", "protocol_state=MAIL"}, "missing or bad client_address"},
        {{"request=smtpd_access_policy", "protocol_state=RCPT", "client_address=192.0.2.1"},
         "RCPT without recipient"},
        {{"request=smtpd_access_policy", "protocol_state=END-OF-MESSAGE",
          "client_address=192.0.2.1"},
         NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policysrv_req r = {0};
        const char *err = NULL;
        for (size_t j = 0; j < 4 && cases[i].attrs[j]; j++)
            assert_int_equal(line(&r, cases[i].attrs[j], &err), 0);
        if (cases[i].err) {
            assert_int_equal(policysrv_req_complete(&r, &err), -1);
            assert_string_equal(err, cases[i].err);
        } else {
            assert_int_equal(policysrv_req_complete(&r, &err), 0);
        }
        policysrv_req_clear(&r);
    }
}

static void test_actions(void **state)
{
    struct policy_verdict v;
    char out[512];

    policy_verdict_set(&v, POLICY_TEMPFAIL, 451, "4.7.1", "new triplet",
                       "Greylisted, please try again in %d seconds", 300);
    v.check = "greylist";
    policysrv_action(&v, out, sizeof(out));
    assert_string_equal(out, "DEFER_IF_PERMIT 4.7.1 Greylisted, please try again in 300 seconds");
    v.check = "ratelimit";
    policysrv_action(&v, out, sizeof(out));
    assert_string_equal(out, "451 4.7.1 Greylisted, please try again in 300 seconds");
    policy_verdict_set(&v, POLICY_TEMPFAIL, 421, "4.7.0", "", "Too busy");
    v.check = "greylist";
    policysrv_action(&v, out, sizeof(out));
    assert_string_equal(out, "421 4.7.0 Too busy");
    policy_verdict_set(&v, POLICY_REJECT, 554, "5.7.1", "", "listed\nx\ry");
    v.check = "dnsbl";
    policysrv_action(&v, out, sizeof(out));
    assert_string_equal(out, "554 5.7.1 listed?x?y"); /* one line whatever the text */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_request),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_bounds_and_duplicates),
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_actions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
