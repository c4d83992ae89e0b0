/* test_dkim_sign.c - what dkim_sign makes, checked by the others: dkimpy
 * (tests/data/dkim/verify_dkimpy.py, rsa and ed25519) and Mail::DKIM
 * (verify_mail_dkim.pl, rsa), on messages with folded fields, runs of blanks,
 * an empty body, repeated fields; a modified copy fails in both */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/dkim.h"
#include "ts_dkim.h"

static const char *const messages[] = {
    "From: Alice <alice@dkim.test>\r\nTo: bob@example.test\r\nSubject: plain\r\n"
    "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <a@dkim.test>\r\n\r\n"
    "Hello Bob.\r\n",
    "FROM:   Alice\r\n  <alice@dkim.test>  \r\nto: bob@example.test\r\n"
    "Subject: first\r\nSubject:\tsecond \t folded\r\n\t  here\r\n\r\n"
    "Hello Bob,  with\t\tblanks   \r\n \r\n\ttab led\r\n\r\n\r\n",
    "From: alice@dkim.test\r\nSubject: empty body\r\n\r\n",
    "From: alice@dkim.test\r\nSubject: blank lines only\r\n\r\n\r\n\r\n \r\n",
};

/* sign - msg with a signature of ours on top, into path; body modified when bad */
static void sign(const char *msg, const char *key, int bad, const char *path)
{
    static const char *const hd[] = {"from", "to", "subject", "date", "message-id"};
    static const char *const over[] = {"from"};
    EVP_PKEY *k = ts_dkim_key(key);
    struct dkim_sign_req rq = {"dkim.test", key, k, hd, 5, over, 1, 1767225600, 1867225600};
    const char *sep = strstr(msg, "\r\n\r\n");
    struct dkim_body *b = dkim_body_new(DKIM_CANON_RELAXED, -1);
    unsigned char bh[DKIM_HASH_LEN];
    char err[128] = "", *sig;
    FILE *f;

    dkim_body_update(b, sep + 4, strlen(sep + 4));
    dkim_body_final(b, bh);
    dkim_body_free(b);
    sig = dkim_sign(&rq, msg, (size_t)(sep - msg) + 2, bh, err, sizeof(err));
    if (!sig)
        fail_msg("dkim_sign: %s", err);
    f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%s%s%s", sig, msg, bad ? "One more line.\r\n" : "");
    fclose(f);
    free(sig);
    EVP_PKEY_free(k);
}

/* verify - run a checker script over the files; each line must be want_ok/bad */
static void verify(const char *cmd, const char *script, char files[][96], size_t n, const int *bad)
{
    char path[1200], line[512], *all = malloc(16384);
    size_t used;
    FILE *p;

    assert_non_null(all);
    ts_dkim_path(script, path, sizeof(path));
    used = (size_t)snprintf(all, 16384, "%s %s", cmd, path);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(all + used, 16384 - used, " %s", files[i]);
    p = popen(all, "r");
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        char *res;
        if (!fgets(line, sizeof(line), p))
            fail_msg("%s: no answer for %s", script, files[i]);
        res = strstr(line, ": ");
        assert_non_null(res);
        if ((strncmp(res + 2, "pass", 4) == 0) == bad[i])
            fail_msg("%s says %s (the message is %s)", script, line,
                     bad[i] ? "modified" : "intact");
    }
    assert_int_equal(pclose(p), 0);
    free(all);
}

/* test_others_verify_ours - every message, intact and modified, rsa and ed25519 */
static void test_others_verify_ours(void **state)
{
    char dir[] = "/tmp/test_dkim_sign.XXXXXX", files[32][96], rsa[32][96];
    int bad[32], rbad[32];
    size_t n = 0, nr = 0;
    const char *keys[] = {"rsa2048", "ed25519"};

    assert_non_null(mkdtemp(dir));
    for (size_t m = 0; m < sizeof(messages) / sizeof(messages[0]); m++)
        for (size_t k = 0; k < 2; k++)
            for (int b = 0; b < 2; b++) {
                snprintf(files[n], sizeof(files[n]), "%s/m%zu-%s-%s.eml", dir, m, keys[k],
                         b ? "bad" : "ok");
                sign(messages[m], keys[k], b, files[n]);
                bad[n] = b;
                if (k == 0) {
                    memcpy(rsa[nr], files[n], sizeof(rsa[nr]));
                    rbad[nr++] = b;
                }
                n++;
            }
    verify("/usr/bin/python3", "verify_dkimpy.py", files, n, bad);
    verify("perl", "verify_mail_dkim.pl", rsa, nr, rbad);
    for (size_t i = 0; i < n; i++)
        unlink(files[i]);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_others_verify_ours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
