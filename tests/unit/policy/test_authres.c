/* test_authres.c - the Authentication-Results value (RFC 8601): methods, quoting
 * of outside values, folding, and recognising a field that claims our id */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy/authres.h"
#include "policy/policy.h"

static char out[AUTHRES_MAX];

/* unfolded - the value with its folds ("\r\n\t") made single spaces */
static const char *unfolded(const char *v)
{
    static char u[AUTHRES_MAX];
    size_t o = 0;

    for (size_t i = 0; v[i]; i++) {
        if (v[i] == '\r' && v[i + 1] == '\n' && v[i + 2] == '\t') {
            u[o++] = ' ';
            i += 2;
        } else {
            u[o++] = v[i];
        }
    }
    u[o] = '\0';
    return u;
}

/* lines_ok - every line (the first after the 24 octets of the name) within max,
 * and every line break a fold */
static void lines_ok(const char *v, size_t max)
{
    size_t col = 24;

    for (const char *p = v; *p; p++) {
        if (*p == '\r') {
            assert_true(p[1] == '\n' && p[2] == '\t');
            assert_true(col <= max);
            col = 0;
            p++;
            continue;
        }
        assert_true(*p != '\n');
        col++;
    }
    assert_true(col <= max);
}

static void dkim(struct policy_client *cl, const char *res, const char *d, const char *s,
                 const char *b, const char *reason)
{
    struct policy_auth_dkim *k = &cl->auth->dkim[cl->auth->ndkim++];

    snprintf(k->result, sizeof(k->result), "%s", res);
    snprintf(k->domain, sizeof(k->domain), "%s", d);
    snprintf(k->selector, sizeof(k->selector), "%s", s);
    snprintf(k->b, sizeof(k->b), "%s", b);
    snprintf(k->reason, sizeof(k->reason), "%s", reason);
}

/* test_none - no method ran */
static void test_none(void **state)
{
    struct policy_client cl;
    struct policy_auth auth = {0};

    memset(&cl, 0, sizeof(cl));
    cl.auth = &auth;
    assert_int_equal(authres_format(&cl, "mx.example.test", out, sizeof(out)), 0);
    assert_string_equal(out, "mx.example.test; none");
}

/* test_all_methods - spf, dkim, dmarc in that order, as the issue shows */
static void test_all_methods(void **state)
{
    struct policy_client cl;
    struct policy_auth auth = {0};

    memset(&cl, 0, sizeof(cl));
    cl.auth = &auth;
    strcpy(cl.auth->spf, "pass");
    strcpy(cl.auth->spf_domain, "example.test");
    strcpy(cl.auth->spf_identity, "user@example.test");
    dkim(&cl, "pass", "example.test", "sel", "abcdefgh", "");
    strcpy(cl.auth->dmarc, "pass");
    strcpy(cl.auth->from_domain, "example.test");
    assert_int_equal(authres_format(&cl, "mx.example.test", out, sizeof(out)), 0);
    assert_string_equal(unfolded(out),
                        "mx.example.test; spf=pass smtp.mailfrom=user@example.test; dkim=pass "
                        "header.d=example.test header.s=sel header.b=abcdefgh; dmarc=pass "
                        "header.from=example.test");
    lines_ok(out, 78);
}

/* test_failures - a DKIM reason, the DMARC policy applied, the HELO identity */
static void test_failures(void **state)
{
    struct policy_client cl;
    struct policy_auth auth = {0};

    memset(&cl, 0, sizeof(cl));
    cl.auth = &auth;
    strcpy(cl.auth->spf, "fail");
    cl.auth->spf_helo = 1;
    strcpy(cl.auth->spf_identity, "helo.example.test");
    dkim(&cl, "fail", "example.test", "sel", "abcdefgh", "body hash mismatch");
    dkim(&cl, "pass", "esp.test", "s1", "AbC+/9==", "");
    strcpy(cl.auth->dmarc, "fail");
    strcpy(cl.auth->dmarc_policy, "reject");
    strcpy(cl.auth->from_domain, "example.test");
    assert_int_equal(authres_format(&cl, "mx.example.test", out, sizeof(out)), 0);
    assert_string_equal(unfolded(out),
                        "mx.example.test; spf=fail smtp.helo=helo.example.test; dkim=fail "
                        "reason=\"body hash mismatch\" header.d=example.test header.s=sel "
                        "header.b=abcdefgh; dkim=pass header.d=esp.test header.s=s1 "
                        "header.b=\"AbC+/9==\"; dmarc=fail (p=reject) header.from=example.test");
    lines_ok(out, 78);
}

/* test_hostile_values - an address with odd characters is quoted; nothing from
 * outside adds a line, a field or a resinfo */
static void test_hostile_values(void **state)
{
    struct policy_client cl;
    struct policy_auth auth = {0};
    const char *u;

    memset(&cl, 0, sizeof(cl));
    cl.auth = &auth;
    strcpy(cl.auth->spf, "pass");
    strcpy(cl.auth->spf_identity, "\"a b\\\"c\"@example.test");
    dkim(&cl, "fail", "example.test", "x;dkim=pass", "ab\r\ncd", "evil\r\nX-Spam: no; dkim=pass");
    assert_int_equal(authres_format(&cl, "mx.example.test", out, sizeof(out)), 0);
    u = unfolded(out);
    assert_null(strchr(u, '\r'));
    assert_null(strchr(u, '\n'));
    assert_string_equal(u, "mx.example.test; spf=pass smtp.mailfrom=\"\\\"a b\\\\\\\"c\\\"@"
                           "example.test\"; dkim=fail reason=\"evil??X-Spam: no? dkim=pass\" "
                           "header.d=example.test header.s=\"x?dkim=pass\" header.b=\"ab??cd\"");
    /* exactly two resinfo separators: ours */
    assert_null(strchr(strchr(strchr(u, ';') + 1, ';') + 1, ';'));
    lines_ok(out, 998);
}

/* test_folding - eight signatures fold into lines of at most 78 octets; a value
 * longer than a line stays whole on a line of its own, under 998 */
static void test_folding(void **state)
{
    struct policy_client cl;
    struct policy_auth auth = {0};
    char longaddr[500];

    memset(&cl, 0, sizeof(cl));
    cl.auth = &auth;
    for (int i = 0; i < POLICY_DKIM_MAX; i++)
        dkim(&cl, "pass", "a-rather-long-signing-domain.example.test", "selector2026", "abcdefgh",
             "");
    assert_int_equal(authres_format(&cl, "mx.example.test", out, sizeof(out)), 0);
    lines_ok(out, 78);
    assert_non_null(strstr(out, ";\r\n\tdkim=pass"));
    memset(longaddr, 'x', sizeof(longaddr));
    strcpy(longaddr + 300, "@example.test");
    strcpy(cl.auth->spf, "pass");
    snprintf(cl.auth->spf_identity, sizeof(cl.auth->spf_identity), "%s", longaddr);
    assert_int_equal(authres_format(&cl, "mx.example.test", out, sizeof(out)), 0);
    lines_ok(out, 998);
    assert_non_null(strstr(out, "\r\n\tsmtp.mailfrom=xxxx"));
    assert_int_equal(authres_format(&cl, "mx.example.test", out, 40), -1);
    assert_string_equal(out, "");
}

/* test_authserv_id_quoted - an id that is no token is quoted */
static void test_authserv_id_quoted(void **state)
{
    struct policy_client cl;
    struct policy_auth auth = {0};

    memset(&cl, 0, sizeof(cl));
    cl.auth = &auth;
    assert_int_equal(authres_format(&cl, "mx example", out, sizeof(out)), 0);
    assert_string_equal(out, "\"mx example\"; none");
}

static int claims(const char *v, const char *id)
{
    return authres_claims(v, strlen(v), id);
}

/* test_claims - the authserv-id after CFWS and comments, any case, quoted or not */
static void test_claims(void **state)
{
    assert_true(claims("mx.example.test; spf=pass", "mx.example.test"));
    assert_true(claims(" MX.Example.TEST;dkim=pass", "mx.example.test"));
    assert_true(claims("\r\n\t (our (nested) comment) mx.example.test 1; none", "mx.example.test"));
    assert_true(claims("\"mx.example.test\"; none", "mx.example.test"));
    assert_true(claims("mx.example.test(c); none", "mx.example.test"));
    assert_true(claims("mx.example.test.; none", "mx.example.test"));
    assert_true(claims("mx.example.test", "mx.example.test"));
    assert_false(
        claims("other.example.test; spf=pass smtp.mailfrom=mx.example.test", "mx.example.test"));
    assert_false(claims("mx.example.test.evil; none", "mx.example.test"));
    assert_false(claims("xmx.example.test; none", "mx.example.test"));
    assert_false(claims("(mx.example.test) other; none", "mx.example.test"));
    assert_false(claims("(never closed mx.example.test; none", "mx.example.test"));
    assert_false(claims("\"mx.example.test; none", "mx.example.test"));
    assert_false(claims("", "mx.example.test"));
    assert_false(claims("mx.example.test; none", ""));
    assert_false(authres_claims("mx.example.test; none", 5, "mx.example.test"));
    assert_true(authres_claims("mx.example.test; none", 15, "mx.example.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none),     cmocka_unit_test(test_all_methods),
        cmocka_unit_test(test_failures), cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_folding),  cmocka_unit_test(test_authserv_id_quoted),
        cmocka_unit_test(test_claims),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
