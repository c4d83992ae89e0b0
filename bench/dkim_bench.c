/*
 * dkim_bench.c - what verifying a DKIM signature costs mxgate, in CPU per
 * message: rsa-sha256 (2048 bits) and ed25519-sha256, on 2 KiB and 100 KiB
 * messages, relaxed/relaxed as most signers use.
 *
 * Each message is signed once with dkim_sign (keys from tests/data/dkim/),
 * then verified N times the way the dkim check does it: the signature field
 * parsed, the body streamed through a body hasher in 16 KiB pieces (what
 * the session hands over), the key record parsed (a fresh DNS answer each
 * time), the header hash and the signature checked. CPU time is this
 * process's (CLOCK_PROCESS_CPUTIME_ID); the body hash and the rest are
 * also timed apart. No DNS, no sockets: the check's own cost.
 *
 *   make -C build dkim_bench   (or cmake --build build --target dkim_bench)
 *   build/dkim_bench [-n ROUNDS] [-k KEYDIR]      (from the source tree)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mail/dkim.h"
#include "mail/header.h"

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* make_message - a header section and a body of about size octets of text lines */
static char *make_message(size_t size, size_t *hlen)
{
    static const char hdr[] = "From: Alice Example <alice@bench.test>\r\n"
                              "To: bob@example.test\r\n"
                              "Subject: a benchmark message\r\n"
                              "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
                              "Message-ID: <bench@bench.test>\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n";
    char *m = malloc(sizeof(hdr) + size + 128);
    size_t o;

    if (!m)
        abort();
    memcpy(m, hdr, sizeof(hdr) - 1);
    *hlen = sizeof(hdr) - 1;
    o = *hlen;
    memcpy(m + o, "\r\n", 2);
    o += 2;
    for (size_t line = 0; o < *hlen + 2 + size; line++)
        o += (size_t)sprintf(
            m + o, "Line %05zu of the body,  with  some   white space and text.\r\n", line);
    m[o] = '\0';
    return m;
}

/* record_for - the key record of k */
static void record_for(EVP_PKEY *k, char *rec, size_t len)
{
    unsigned char der[1200], *p = der;
    char b64[1700];
    size_t n = sizeof(der);
    int ed = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;

    if (ed)
        EVP_PKEY_get_raw_public_key(k, der, &n);
    else
        n = (size_t)i2d_PUBKEY(k, &p);
    EVP_EncodeBlock((unsigned char *)b64, der, (int)n);
    snprintf(rec, len, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", b64);
}

/* sign - the signature field of message m */
static char *sign(EVP_PKEY *k, const char *m, size_t hlen)
{
    static const char *const hd[] = {"from",       "to",           "subject",     "date",
                                     "message-id", "mime-version", "content-type"};
    static const char *const over[] = {"from"};
    struct dkim_sign_req rq = {"bench.test", "sel", k, hd, 7, over, 1, 1767225600, -1};
    struct dkim_body *b = dkim_body_new(DKIM_CANON_RELAXED, -1);
    unsigned char bh[DKIM_HASH_LEN];
    char err[128], *sig;
    const char *body = m + hlen + 2;

    dkim_body_update(b, body, strlen(body));
    dkim_body_final(b, bh);
    dkim_body_free(b);
    if (!(sig = dkim_sign(&rq, m, hlen, bh, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return sig;
}

/* verify_once - the check's work for one message; the body hash's CPU into *body_s */
static void verify_once(const char *sig, const char *hdr, size_t hlen, const char *body,
                        const char *rec, double *body_s)
{
    struct dkim_sig s;
    struct dkim_key k;
    struct dkim_body *b;
    unsigned char bh[DKIM_HASH_LEN];
    char why[96];
    size_t blen = strlen(body), flen = strlen(sig);
    double t0;

    if (dkim_sig_parse(sig, flen, &s, why, sizeof(why)) != DKIM_PASS ||
        dkim_key_parse(rec, strlen(rec), &k, why, sizeof(why)) != DKIM_PASS)
        abort();
    t0 = cpu_now();
    b = dkim_body_new(s.bcanon, s.l);
    for (size_t i = 0; i < blen; i += 16384)
        dkim_body_update(b, body + i, blen - i < 16384 ? blen - i : 16384);
    dkim_body_final(b, bh);
    dkim_body_free(b);
    *body_s += cpu_now() - t0;
    if (dkim_verify(&s, sig, flen, hdr, hlen, bh, &k, why, sizeof(why)) != DKIM_PASS) {
        fprintf(stderr, "verify: %s\n", why);
        exit(1);
    }
    dkim_key_free(&k);
}

/* bench - one key and size: N verifications; prints a table row */
static void bench(const char *keydir, const char *keyname, size_t size, int rounds)
{
    char path[512], rec[2048];
    FILE *f;
    EVP_PKEY *k;
    size_t hlen;
    char *m = make_message(size, &hlen), *sig, *full;
    double t0, total, body = 0;

    snprintf(path, sizeof(path), "%s/%s.key", keydir, keyname);
    if (!(f = fopen(path, "r")) || !(k = PEM_read_PrivateKey(f, NULL, NULL, NULL))) {
        fprintf(stderr, "%s: cannot read the key (run from the source tree, or -k DIR)\n", path);
        exit(1);
    }
    fclose(f);
    record_for(k, rec, sizeof(rec));
    sig = sign(k, m, hlen);
    /* the header section as the check sees it: the signature on top */
    full = malloc(strlen(sig) + hlen + 1);
    sprintf(full, "%s%.*s", sig, (int)hlen, m);
    t0 = cpu_now();
    for (int i = 0; i < rounds; i++)
        verify_once(sig, full, strlen(full), m + hlen + 2, rec, &body);
    total = cpu_now() - t0;
    printf("%-16s %8zu %8d %12.1f %12.1f %12.0f\n", keyname, strlen(m + hlen + 2), rounds,
           total / rounds * 1e6, body / rounds * 1e6, rounds / total);
    free(full);
    free(sig);
    free(m);
    EVP_PKEY_free(k);
}

int main(int argc, char **argv)
{
    const char *keydir = "tests/data/dkim";
    int rounds = 2000, c;

    while ((c = getopt(argc, argv, "n:k:")) != -1) {
        if (c == 'n')
            rounds = atoi(optarg);
        else if (c == 'k')
            keydir = optarg;
        else {
            fprintf(stderr, "usage: dkim_bench [-n ROUNDS] [-k KEYDIR]\n");
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    printf("%-16s %8s %8s %12s %12s %12s\n", "key", "body", "rounds", "us/message", "us body hash",
           "messages/s");
    bench(keydir, "rsa2048", 2048, rounds);
    bench(keydir, "rsa2048", 102400, rounds / 4 + 1);
    bench(keydir, "ed25519", 2048, rounds);
    bench(keydir, "ed25519", 102400, rounds / 4 + 1);
    return 0;
}
