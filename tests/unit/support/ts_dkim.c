/* ts_dkim.c - the DKIM fixtures, read from this source tree */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "ts_dkim.h"

void ts_dkim_path(const char *name, char *out, size_t outlen)
{
    char src[1024];

    snprintf(src, sizeof(src), "%s", __FILE__);
    snprintf(out, outlen, "%s/../../data/dkim/%s", dirname(src), name);
}

char *ts_dkim_read(const char *name, size_t *len)
{
    char path[1200];
    FILE *f;
    char *buf;
    long n;

    ts_dkim_path(name, path, sizeof(path));
    f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: missing (run tests/data/dkim/make_fixtures.py)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

EVP_PKEY *ts_dkim_key(const char *name)
{
    char path[1200], file[64];
    EVP_PKEY *k;
    FILE *f;

    snprintf(file, sizeof(file), "%s.key", name);
    ts_dkim_path(file, path, sizeof(path));
    f = fopen(path, "r");
    if (!f)
        fail_msg("%s: missing", path);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

const char *ts_dkim_record(const char *selector)
{
    static char rec[2048];
    char *all = ts_dkim_read("keys.txt", NULL), *line, *save = NULL;
    size_t sl = strlen(selector);

    rec[0] = '\0';
    for (line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, selector, sl) == 0 && strncmp(line + sl, "._domainkey.", 12) == 0)
            snprintf(rec, sizeof(rec), "%s", strchr(line, ' ') + 1);
    free(all);
    if (!rec[0])
        fail_msg("keys.txt has no record for %s", selector);
    return rec;
}

void ts_dkim_split(const char *msg, size_t len, size_t *hlen, const char **body, size_t *blen)
{
    const char *e = NULL;

    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(msg + i, "\r\n\r\n", 4) == 0) {
            e = msg + i;
            break;
        }
    assert_non_null(e);
    *hlen = (size_t)(e - msg) + 2;
    *body = e + 4;
    *blen = len - (size_t)(*body - msg);
}
