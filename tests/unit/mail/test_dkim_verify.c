/* test_dkim_verify.c - DKIM-Signature and key parsing, the header selection, and
 * verification: messages signed by dkimpy and Mail::DKIM (tests/data/dkim/) and
 * by dkim_sign, intact and modified */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mail/dkim.h"
#include "mail/header.h"
#include "ts_dkim.h"

#define NOW 1767225700 /* just after the fixtures' t= */

struct outcome {
    size_t n;
    enum dkim_result r[8];
    char why[8][96];
};

/* verify_one - the whole path for one signature field of msg; record is its key */
static enum dkim_result verify_one(const struct hdr_field *f, const char *hdr, size_t hlen,
                                   const char *body, size_t blen, const char *record, char *why,
                                   size_t wl)
{
    struct dkim_sig sig;
    struct dkim_key key;
    struct dkim_body *b;
    unsigned char bh[DKIM_HASH_LEN];
    enum dkim_result r = dkim_sig_parse(f->raw, f->raw_len, &sig, why, wl);

    if (r == DKIM_PASS)
        r = dkim_sig_acceptable(&sig, NOW, why, wl);
    if (r != DKIM_PASS)
        return r;
    if (!record)
        record = ts_dkim_record(sig.s);
    if ((r = dkim_key_parse(record, strlen(record), &key, why, wl)) != DKIM_PASS)
        return r;
    b = dkim_body_new(sig.bcanon, sig.l);
    dkim_body_update(b, body, blen);
    if (dkim_body_final(b, bh) < 0) {
        snprintf(why, wl, "body shorter than l=");
        r = DKIM_FAIL;
    } else {
        r = dkim_verify(&sig, f->raw, f->raw_len, hdr, hlen, bh, &key, why, wl);
    }
    dkim_body_free(b);
    dkim_key_free(&key);
    return r;
}

/* verify_msg - every DKIM-Signature of msg, top down; record NULL: from keys.txt */
static struct outcome verify_msg(const char *msg, size_t len, const char *record)
{
    struct outcome o;
    struct hdr_field f;
    const char *body;
    size_t hlen, blen, off = 0;

    memset(&o, 0, sizeof(o));
    ts_dkim_split(msg, len, &hlen, &body, &blen);
    while (hdr_next(msg, hlen, &off, &f) && o.n < 8)
        if (hdr_is(&f, "DKIM-Signature")) {
            o.r[o.n] = verify_one(&f, msg, hlen, body, blen, record, o.why[o.n], 96);
            o.n++;
        }
    return o;
}

/* replace - msg with the first from replaced by to (malloc'd) */
static char *replace(const char *msg, const char *from, const char *to)
{
    const char *p = strstr(msg, from);
    char *out = malloc(strlen(msg) + strlen(to) + 1);

    assert_non_null(p);
    assert_non_null(out);
    sprintf(out, "%.*s%s%s", (int)(p - msg), msg, to, p + strlen(from));
    return out;
}

/* test_fixtures_verify - dkimpy's and Mail::DKIM's signatures pass, simple and relaxed,
 * rsa and ed25519, one or two of them; rsa-sha1 is refused as policy */
static void test_fixtures_verify(void **state)
{
    static const char *const good[] = {
        "py_rsa_relaxed.eml",   "py_rsa_simple.eml",   "py_ed25519.eml",    "py_rsa1024.eml",
        "perl_rsa_relaxed.eml", "perl_rsa_simple.eml", "py_rsa_length.eml", "py_two.eml",
    };
    struct outcome o;
    size_t len;
    char *m;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        m = ts_dkim_read(good[i], &len);
        o = verify_msg(m, len, NULL);
        assert_int_equal(o.n, strcmp(good[i], "py_two.eml") == 0 ? 2 : 1);
        for (size_t k = 0; k < o.n; k++)
            if (o.r[k] != DKIM_PASS)
                fail_msg("%s signature %zu: %s (%s)", good[i], k, dkim_result_name(o.r[k]),
                         o.why[k]);
        free(m);
    }
    m = ts_dkim_read("py_rsa_sha1.eml", &len);
    o = verify_msg(m, len, NULL);
    assert_int_equal(o.r[0], DKIM_POLICY);
    assert_string_equal(o.why[0], "rsa-sha1 is not accepted (RFC 8301)");
    free(m);
}

/* test_modified_fixtures_fail - a changed body word, a changed Subject; l= leaves the
 * appended text unsigned, but not the signed part */
static void test_modified_fixtures_fail(void **state)
{
    static const char *const names[] = {"py_rsa_relaxed.eml", "py_rsa_simple.eml", "py_ed25519.eml",
                                        "perl_rsa_relaxed.eml"};
    struct outcome o;
    char *m, *x;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        m = ts_dkim_read(names[i], NULL);
        x = replace(m, "Hello Bob", "Hello Eve");
        o = verify_msg(x, strlen(x), NULL);
        assert_int_equal(o.r[0], DKIM_FAIL);
        assert_string_equal(o.why[0], "body hash mismatch");
        free(x);
        x = replace(m, "Subject: A  test", "Subject: A  tent");
        o = verify_msg(x, strlen(x), NULL);
        assert_int_equal(o.r[0], DKIM_FAIL);
        assert_string_equal(o.why[0], "signature did not verify");
        free(x);
        free(m);
    }
    m = ts_dkim_read("py_rsa_length.eml", NULL);
    x = replace(m, "Appended after", "Changed after");
    assert_int_equal(verify_msg(x, strlen(x), NULL).r[0], DKIM_PASS);
    free(x);
    x = replace(m, "Hello Bob", "Hello Eve");
    assert_int_equal(verify_msg(x, strlen(x), NULL).r[0], DKIM_FAIL);
    free(x);
    /* shorter than l=: the signed end was cut off */
    x = replace(m, "A line that starts with a dot.\r\n", "");
    o = verify_msg(x, strlen(x), NULL);
    assert_int_equal(o.r[0], DKIM_FAIL);
    assert_string_equal(o.why[0], "body shorter than l=");
    free(x);
    free(m);
}

/* record_for - the key record of a key of ours (p= from its public part) */
static const char *record_for(EVP_PKEY *k, const char *extra)
{
    static char rec[2048];
    unsigned char der[1200], *p = der;
    char b64[1700];
    size_t len = sizeof(der);
    int ed = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;

    if (ed)
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, der, &len), 1);
    else
        len = (size_t)i2d_PUBKEY(k, &p);
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    snprintf(rec, sizeof(rec), "v=DKIM1; k=%s;%s p=%s", ed ? "ed25519" : "rsa", extra, b64);
    return rec;
}

static const char *const MSG = "Received: from a\r\n"
                               "From: Alice <alice@example.org>\r\n"
                               "To: bob@example.test\r\n"
                               "Subject: hello\r\n"
                               "\r\n"
                               "Body  text \r\n\r\n";

/* sign_msg - MSG (or msg) with a signature of ours on top (malloc'd) */
static char *sign_msg(const char *msg, EVP_PKEY *k, const char *const *hd, size_t nh,
                      const char *const *over, size_t no, long long x)
{
    struct dkim_sign_req rq = {"example.org", "sel", k, hd, nh, over, no, NOW - 5, x};
    struct dkim_body *b = dkim_body_new(DKIM_CANON_RELAXED, -1);
    unsigned char bh[DKIM_HASH_LEN];
    const char *body;
    size_t hlen, blen;
    char err[128] = "", *sig, *out;

    ts_dkim_split(msg, strlen(msg), &hlen, &body, &blen);
    dkim_body_update(b, body, blen);
    dkim_body_final(b, bh);
    dkim_body_free(b);
    sig = dkim_sign(&rq, msg, hlen, bh, err, sizeof(err));
    if (!sig)
        fail_msg("dkim_sign: %s", err);
    out = malloc(strlen(sig) + strlen(msg) + 1);
    assert_non_null(out);
    sprintf(out, "%s%s", sig, msg);
    free(sig);
    return out;
}

/* test_sign_then_verify - rsa-2048 and ed25519 signatures of ours pass, the lines are
 * folded under 78 octets; a changed body or header fails */
static void test_sign_then_verify(void **state)
{
    static const char *const hd[] = {"from", "to", "subject", "date"};
    static const char *const over[] = {"from"};
    const char *keys[] = {"rsa2048", "ed25519"};

    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *k = ts_dkim_key(keys[i]);
        char *m = sign_msg(MSG, k, hd, 4, over, 1, -1), *x, *line;
        const char *rec = record_for(k, "");
        struct outcome o = verify_msg(m, strlen(m), rec);

        if (o.r[0] != DKIM_PASS)
            fail_msg("%s: %s (%s)", keys[i], dkim_result_name(o.r[0]), o.why[0]);
        assert_non_null(strstr(m, i ? "a=ed25519-sha256; c=relaxed/relaxed;"
                                    : "a=rsa-sha256; c=relaxed/relaxed;"));
        assert_non_null(strstr(m, "h=from:from:to:subject;")); /* no Date: not signed */
        for (line = m; line < strstr(m, "Received:"); line = strstr(line, "\r\n") + 2)
            assert_true(strstr(line, "\r\n") - line <= 78);
        x = replace(m, "Body  text", "Body  test");
        assert_int_equal(verify_msg(x, strlen(x), rec).r[0], DKIM_FAIL);
        free(x);
        x = replace(m, "To: bob", "To: eve");
        assert_int_equal(verify_msg(x, strlen(x), rec).r[0], DKIM_FAIL);
        free(x);
        /* relaxed: white space changes in transit do not matter */
        x = replace(m, "Subject: hello", "Subject:    hello  ");
        assert_int_equal(verify_msg(x, strlen(x), rec).r[0], DKIM_PASS);
        free(x);
        free(m);
        EVP_PKEY_free(k);
    }
}

/* test_oversigning_and_bottom_up - a Subject added on top does not change what a
 * once-signed subject covers (the bottom one is taken), but an oversigned From or
 * Subject fails when one is added anywhere */
static void test_oversigning_and_bottom_up(void **state)
{
    static const char *const hd[] = {"from", "subject"};
    static const char *const over[] = {"from"};
    EVP_PKEY *k = ts_dkim_key("ed25519");
    const char *rec = record_for(k, "");
    char *m = sign_msg(MSG, k, hd, 2, over, 1, -1), *x;

    x = replace(m, "Received:", "Subject: forged\r\nReceived:");
    assert_int_equal(verify_msg(x, strlen(x), rec).r[0], DKIM_PASS);
    free(x);
    x = replace(m, "Received:", "From: mallory@evil.test\r\nReceived:");
    assert_int_equal(verify_msg(x, strlen(x), rec).r[0], DKIM_FAIL);
    free(x);
    free(m);
    m = sign_msg(MSG, k, hd, 2, hd, 2, -1); /* both oversigned */
    x = replace(m, "Received:", "Subject: forged\r\nReceived:");
    assert_int_equal(verify_msg(x, strlen(x), rec).r[0], DKIM_FAIL);
    free(x);
    free(m);
    EVP_PKEY_free(k);
}

/* test_header_selection - h=x:x:x:y over X 1, Y a, X 2: the bottom X first, then the
 * next one up, nothing for the third; the signature last, b= empty, no CRLF */
static void test_header_selection(void **state)
{
    static const char *const names[] = {"x", "x", "x", "y"};
    const char *hdr = "X: 1\r\nY:  a\r\nX: 2\r\n";
    const char *field = "DKIM-Signature: a=1; b=Zm9v\r\n YmFy; d=x\r\n";
    size_t boff = (size_t)(strstr(field, "Zm9v") - field), blen = 11;
    struct dkim_buf out = {0};

    assert_int_equal(dkim_header_data(DKIM_CANON_RELAXED, names, 4, hdr, strlen(hdr), field,
                                      strlen(field), boff, blen, &out),
                     0);
    assert_string_equal(out.p, "x:2\r\nx:1\r\ny:a\r\ndkim-signature:a=1; b=; d=x");
    dkim_buf_free(&out);
    assert_int_equal(dkim_header_data(DKIM_CANON_SIMPLE, names, 4, hdr, strlen(hdr), field,
                                      strlen(field), boff, blen, &out),
                     0);
    assert_string_equal(out.p, "X: 2\r\nX: 1\r\nY:  a\r\nDKIM-Signature: a=1; b=; d=x");
    dkim_buf_free(&out);
}

/* test_expiry_and_short_keys - an expired x= and an RSA key under 1024 bits are refused
 * as policy; an x= in the future passes */
static void test_expiry_and_short_keys(void **state)
{
    static const char *const hd[] = {"from"};
    EVP_PKEY *k = ts_dkim_key("rsa2048"),
             *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
    char *m = sign_msg(MSG, k, hd, 1, NULL, 0, NOW - 1);
    struct outcome o = verify_msg(m, strlen(m), record_for(k, ""));

    assert_int_equal(o.r[0], DKIM_POLICY);
    assert_string_equal(o.why[0], "signature expired");
    free(m);
    m = sign_msg(MSG, k, hd, 1, NULL, 0, NOW + 100);
    assert_int_equal(verify_msg(m, strlen(m), record_for(k, "")).r[0], DKIM_PASS);
    free(m);
    assert_non_null(small);
    m = sign_msg(MSG, small, hd, 1, NULL, 0, -1);
    o = verify_msg(m, strlen(m), record_for(small, ""));
    assert_int_equal(o.r[0], DKIM_POLICY);
    assert_string_equal(o.why[0], "RSA key under 1024 bits (RFC 8301)");
    free(m);
    EVP_PKEY_free(small);
    EVP_PKEY_free(k);
}

/* test_key_flags - t=s with an i= in a subdomain; a key of the other type; h= without
 * sha256; s= not email; a revoked key */
static void test_key_flags(void **state)
{
    static const char *const hd[] = {"from"};
    EVP_PKEY *k = ts_dkim_key("ed25519");
    char *m = sign_msg(MSG, k, hd, 1, NULL, 0, -1), *x;
    struct outcome o;

    x = replace(m, " d=example.org;", " d=example.org; i=@sub.example.org;");
    o = verify_msg(x, strlen(x), record_for(k, " t=y:s;"));
    assert_int_equal(o.r[0], DKIM_PERMERROR);
    assert_string_equal(o.why[0], "i= is not d= (key t=s)");
    free(x);
    o = verify_msg(m, strlen(m), ts_dkim_record("rsa2048"));
    assert_string_equal(o.why[0], "key type does not match a=");
    o = verify_msg(m, strlen(m), record_for(k, " h=sha1;"));
    assert_string_equal(o.why[0], "key h= does not allow sha256");
    o = verify_msg(m, strlen(m), record_for(k, " s=tlsrpt;"));
    assert_string_equal(o.why[0], "key not for email (s=)");
    assert_int_equal(verify_msg(m, strlen(m), record_for(k, " s=email:*; h=sha1:sha256;")).r[0],
                     DKIM_PASS);
    o = verify_msg(m, strlen(m), "v=DKIM1; k=ed25519; p=");
    assert_int_equal(o.r[0], DKIM_PERMERROR);
    assert_string_equal(o.why[0], "key revoked");
    free(m);
    EVP_PKEY_free(k);
}

/* test_key_errors - records that are no key, each with its reason */
static void test_key_errors(void **state)
{
    static const struct {
        const char *rec, *why;
    } cases[] = {
        {"k=rsa; v=DKIM1; p=AAAA", "key record is not DKIM1"},
        {"v=DKIM2; p=AAAA", "key record is not DKIM1"},
        {"v=DKIM1; k=dsa; p=AAAA", "unknown key type"},
        {"v=DKIM1; k=rsa", "key record without p="},
        {"v=DKIM1; p=!!!!", "bad p= in key (or key too large)"},
        {"v=DKIM1; p=AAAA", "bad RSA key"},
        {"v=DKIM1; k=ed25519; p=AAAA", "bad ed25519 key"},
        {"v=DKIM1; p", "tag p without ="},
    };
    struct dkim_key k;
    char why[96];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        assert_int_equal(dkim_key_parse(cases[i].rec, strlen(cases[i].rec), &k, why, sizeof(why)),
                         DKIM_PERMERROR);
        assert_string_equal(why, cases[i].why);
        assert_null(k.pkey);
    }
    assert_int_equal(dkim_key_parse("v=DKIM1; p=AA\0A", 15, &k, why, sizeof(why)), DKIM_PERMERROR);
    assert_string_equal(why, "NUL in key record");
}

/* test_sig_errors - signature fields that cannot be used, each with its reason */
static void test_sig_errors(void **state)
{
    static const char *const base = "v=1; a=rsa-sha256; d=example.org; s=sel; h=From:To; "
                                    "bh=AAAA; b=AAAA";
    static const struct {
        const char *from, *to, *why;
    } cases[] = {
        {"v=1; ", "", "missing v="},
        {" s=sel;", "", "missing s="},
        {"v=1", "v=2", "unsupported v="},
        {"rsa-sha256", "rsa-md5", "unsupported a="},
        {"h=From:To", "h=To:Subject", "h= does not sign From"},
        {"h=From:To", "h=From::To", "empty name in h="},
        {"d=example.org", "d=example..org", "bad d="},
        {"s=sel", "s=se l", "bad s="},
        {"b=AAAA", "b=A", "bad b= or bh="},
        {"bh=AAAA", "bh=", "bad b= or bh="},
        {"s=sel;", "s=sel; c=relaxed/fancy;", "unsupported c="},
        {"s=sel;", "s=sel; q=http/well-known;", "unsupported q="},
        {"s=sel;", "s=sel; i=a@example.com;", "i= not within d="},
        {"s=sel;", "s=sel; i=a@badexample.org;", "i= not within d="},
        {"s=sel;", "s=sel; i=nodomain;", "bad i="},
        {"s=sel;", "s=sel; l=12x;", "bad l="},
        {"s=sel;", "s=sel; t=200; x=100;", "x= before t="},
        {"s=sel;", "s=sel; x=1234567890123;", "bad x="},
        {"s=sel;", "s=sel; s=other;", "duplicate tag s"},
    };
    struct dkim_sig sig;
    char field[512], why[96];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = strstr(base, cases[i].from);
        assert_non_null(p);
        snprintf(field, sizeof(field), "DKIM-Signature: %.*s%s%s\r\n", (int)(p - base), base,
                 cases[i].to, p + strlen(cases[i].from));
        why[0] = '\0';
        assert_int_equal(dkim_sig_parse(field, strlen(field), &sig, why, sizeof(why)),
                         DKIM_PERMERROR);
        if (strcmp(why, cases[i].why) != 0)
            fail_msg("%s: \"%s\", not \"%s\"", field, why, cases[i].why);
    }
}

/* test_sig_fields - what a good field gives: defaults, lower-cased names, i= domain */
static void test_sig_fields(void **state)
{
    const char *f = "DKIM-Signature: v=1; a=ED25519-SHA256; c=relaxed; d=Example.ORG;\r\n"
                    "\ts=Sel; h=From : TO; i=user@Mail.Example.org; l=100; t=5; x=9;\r\n"
                    "\tbh=AAAA; b=abcd\r\n efgh ijkl\r\n";
    struct dkim_sig sig;
    char why[96] = "", name[300];

    assert_int_equal(dkim_sig_parse(f, strlen(f), &sig, why, sizeof(why)), DKIM_PASS);
    assert_int_equal(sig.algo, DKIM_A_ED25519_SHA256);
    assert_int_equal(sig.hcanon, DKIM_CANON_RELAXED);
    assert_int_equal(sig.bcanon, DKIM_CANON_SIMPLE);
    assert_string_equal(sig.d, "example.org");
    assert_string_equal(sig.i_domain, "mail.example.org");
    assert_int_equal(sig.nh, 2);
    assert_string_equal(sig.h[1], "to");
    assert_int_equal(sig.l, 100);
    assert_string_equal(sig.b_prefix, "abcdefgh");
    assert_memory_equal(f + sig.b_off, "abcd\r\n efgh ijkl", sig.b_len);
    assert_int_equal(dkim_key_name(&sig, name, sizeof(name)), 0);
    assert_string_equal(name, "sel._domainkey.example.org");
    assert_int_equal(dkim_sig_acceptable(&sig, 9, why, sizeof(why)), DKIM_PASS);
    assert_int_equal(dkim_sig_acceptable(&sig, 10, why, sizeof(why)), DKIM_POLICY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_verify),  cmocka_unit_test(test_modified_fixtures_fail),
        cmocka_unit_test(test_sign_then_verify), cmocka_unit_test(test_oversigning_and_bottom_up),
        cmocka_unit_test(test_header_selection), cmocka_unit_test(test_expiry_and_short_keys),
        cmocka_unit_test(test_key_flags),        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_sig_errors),       cmocka_unit_test(test_sig_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
