/* test_signconf.c - what the signer signs (signconf_headers, signconf_oversign through
 * dkim_sign): each listed field as often as present, the oversigned ones once more,
 * present or not; our trace fields and unknown fields not at all; and which dkim_sign
 * section a From: domain finds (exact, then a parent with subdomains = true) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/config.h"
#include "mail/dkim.h"
#include "smtp/signconf.h"
#include "ts_dkim.h"
#include "ts_fs.h"

static const char hdr[] = "Received: from a by b; Thu, 01 Jan 2026 00:00:00 +0000\r\n"
                          "From: Alice <alice@dkim.test>\r\n"
                          "To: bob@example.test\r\n"
                          "To: carol@example.test\r\n"
                          "Cc: dave@example.test\r\n"
                          "Subject: hello\r\n"
                          "List-Id: <list.dkim.test>\r\n"
                          "X-Mailer: something\r\n"
                          "Received: from c by d; Thu, 01 Jan 2026 00:00:00 +0000\r\n";

static const unsigned char bh[DKIM_HASH_LEN] = {1, 2, 3};

/* sign_hdr - our signature for h (rsa2048), parsed into sig; the field malloc'd */
static char *sign_hdr(const char *h, struct dkim_sig *sig)
{
    EVP_PKEY *k = ts_dkim_key("rsa2048");
    struct dkim_sign_req rq = {.domain = "dkim.test",
                               .selector = "rsa2048",
                               .key = k,
                               .headers = signconf_headers,
                               .nheaders = signconf_nheaders(),
                               .oversign = signconf_oversign,
                               .noversign = signconf_noversign(),
                               .t = 1767225600,
                               .x = -1};
    char err[256], why[256];
    char *f = dkim_sign(&rq, h, strlen(h), bh, err, sizeof(err));

    assert_non_null(f);
    assert_int_equal(dkim_sig_parse(f, strlen(f), sig, why, sizeof(why)), DKIM_PASS);
    EVP_PKEY_free(k);
    return f;
}

static size_t count(const struct dkim_sig *sig, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < sig->nh; i++)
        n += strcasecmp(sig->h[i], name) == 0;
    return n;
}

static void test_header_selection(void **state)
{
    struct dkim_sig sig;
    char *f = sign_hdr(hdr, &sig);

    (void)state;
    assert_int_equal(count(&sig, "from"), 2); /* present once, oversigned */
    assert_int_equal(count(&sig, "to"), 3);   /* twice, oversigned */
    assert_int_equal(count(&sig, "cc"), 2);
    assert_int_equal(count(&sig, "subject"), 2);
    assert_int_equal(count(&sig, "date"), 1); /* absent: none may be added */
    assert_int_equal(count(&sig, "reply-to"), 1);
    assert_int_equal(count(&sig, "list-id"), 1); /* signed, not oversigned: lists add them */
    assert_int_equal(count(&sig, "list-post"), 0);
    assert_int_equal(count(&sig, "received"), 0); /* trace fields: later hops add them */
    assert_int_equal(count(&sig, "x-mailer"), 0);
    assert_int_equal(count(&sig, "dkim-signature"), 0);
    assert_int_equal(sig.l, -1);
    assert_int_equal(sig.t, 1767225600);
    assert_int_equal(sig.hcanon, DKIM_CANON_RELAXED);
    assert_int_equal(sig.bcanon, DKIM_CANON_RELAXED);
    free(f);
}

/* verify_with - does f still verify over header h */
static enum dkim_result verify_with(const char *f, const char *h)
{
    const char *rec = ts_dkim_record("rsa2048");
    struct dkim_key key;
    struct dkim_sig sig;
    char why[256];
    enum dkim_result r;

    assert_int_equal(dkim_sig_parse(f, strlen(f), &sig, why, sizeof(why)), DKIM_PASS);
    assert_int_equal(dkim_key_parse(rec, strlen(rec), &key, why, sizeof(why)), DKIM_PASS);
    r = dkim_verify(&sig, f, strlen(f), h, strlen(h), bh, &key, why, sizeof(why));
    dkim_key_free(&key);
    return r;
}

static void test_oversigning_protects(void **state)
{
    struct dkim_sig sig;
    char *f = sign_hdr(hdr, &sig), more[2048];

    (void)state;
    assert_int_equal(verify_with(f, hdr), DKIM_PASS);
    snprintf(more, sizeof(more), "%sReceived: from e by f; Thu, 01 Jan 2026\r\n", hdr);
    assert_int_equal(verify_with(f, more), DKIM_PASS); /* a later hop's trace field */
    snprintf(more, sizeof(more), "%sX-Spam-Status: No\r\n", hdr);
    assert_int_equal(verify_with(f, more), DKIM_PASS);
    snprintf(more, sizeof(more), "From: Mallory <m@evil.test>\r\n%s", hdr);
    assert_int_equal(verify_with(f, more), DKIM_FAIL);
    snprintf(more, sizeof(more), "%sFrom: Mallory <m@evil.test>\r\n", hdr);
    assert_int_equal(verify_with(f, more), DKIM_FAIL);
    snprintf(more, sizeof(more), "%sReply-To: m@evil.test\r\n", hdr);
    assert_int_equal(verify_with(f, more), DKIM_FAIL);
    snprintf(more, sizeof(more), "%sDate: Fri, 02 Jan 2026 00:00:00 +0000\r\n", hdr);
    assert_int_equal(verify_with(f, more), DKIM_FAIL);
    free(f);
}

/* load - a configuration of dkim_sign sections (%s: the key's path) */
static struct signconf *load(const char *dir, const char *text, char *err, size_t errlen)
{
    static const struct config_section *const sections[] = {&signconf_section, NULL};
    char path[512], key[512], conf[2048];
    char *pem = ts_dkim_read("rsa2048.key", NULL);
    struct config *cfg;
    struct signconf *sc;

    ts_write_file(dir, "k.key", pem, key, sizeof(key));
    free(pem);
    assert_int_equal(chmod(key, 0600), 0);
    snprintf(conf, sizeof(conf), text, key, key, key);
    ts_write_file(dir, "mxgate.conf", conf, path, sizeof(path));
    cfg = config_load(path, sections, stderr);
    assert_non_null(cfg);
    sc = signconf_load(cfg, err, errlen);
    config_free(cfg);
    return sc;
}

static void test_find(void **state)
{
    char dir[256], err[512] = "";
    struct signconf *sc;

    (void)state;
    assert_int_equal(ts_tmpdir_make(dir, sizeof(dir), "test_signconf"), 0);
    sc = load(dir,
              "dkim_sign \"Example.TEST\" { selector = \"a\" key = \"%s\" }\n"
              "dkim_sign \"parent.test\" { selector = \"b\" key = \"%s\" subdomains = true }\n"
              "dkim_sign \"mail.parent.test\" { selector = \"c\" key = \"%s\" }\n",
              err, sizeof(err));
    assert_non_null(sc);
    assert_int_equal(signconf_count(sc), 3);
    assert_string_equal(signconf_find(sc, "example.test")->domain, "example.test");
    assert_null(signconf_find(sc, "sub.example.test")); /* subdomains = false */
    assert_null(signconf_find(sc, "test"));
    assert_null(signconf_find(sc, "xexample.test"));
    assert_string_equal(signconf_find(sc, "parent.test")->key[0].selector, "b");
    assert_string_equal(signconf_find(sc, "a.b.parent.test")->key[0].selector, "b");
    assert_string_equal(signconf_find(sc, "x.mail.parent.test")->key[0].selector, "b");
    assert_string_equal(signconf_find(sc, "mail.parent.test")->key[0].selector, "c");
    assert_string_equal(signconf_find(sc, "mail.parent.test")->key[0].algo, "rsa-sha256");
    signconf_free(sc);
    sc = load(
        dir,
        "dkim_sign \"x.test\" { selector = \"a\" key_ed25519 = \"%s\" selector_ed25519 = \"b\" }\n",
        err, sizeof(err));
    assert_null(sc);
    assert_non_null(strstr(err, "an Ed25519 key wanted"));
    sc = load(dir, "dkim_sign \"x.test\" { key = \"%s\" }\n", err, sizeof(err));
    assert_null(sc);
    assert_non_null(strstr(err, "needs its selector"));
    assert_int_equal(ts_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_selection),
        cmocka_unit_test(test_oversigning_protects),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
