/*
 * ctl_dkim.c - mxgatectl dkim keygen DOMAIN SELECTOR [--type rsa|ed25519]
 * [--bits N] [--dir DIR]: a new DKIM private key for a dkim_sign section,
 * written as PEM (PKCS#8) to DIR/DOMAIN.SELECTOR.key, mode 0600, never over an
 * existing file (O_EXCL, no symlink followed); the TXT record to publish on
 * stdout, its value in strings of at most 255 octets (RFC 1035 character-strings).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "version.h"

#define DKIM_TXT_CHUNK 255

/* dkim_name_ok - a domain or selector: letters, digits, '-', '_', inner dots */
static int dkim_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.' || s[0] == '-' || strstr(s, ".."))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* dkim_default_dir - the configuration file's directory + "/dkim" */
static void dkim_default_dir(char *dst, size_t len)
{
    const char *slash = strrchr(MXGATE_CONFIG_FILE, '/');

    snprintf(dst, len, "%.*s/dkim", slash ? (int)(slash - MXGATE_CONFIG_FILE) : 1,
             slash ? MXGATE_CONFIG_FILE : ".");
}

/* dkim_write_key - k as PEM into path, created 0600 (refusing an existing file); 0 or -1 */
static int dkim_write_key(EVP_PKEY *k, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f;
    int ok;

    if (fd < 0) {
        fprintf(stderr, "mxgatectl: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (an existing key is never overwritten)" : "");
        return -1;
    }
    if (fchmod(fd, 0600) < 0 || !(f = fdopen(fd, "w"))) {
        fprintf(stderr, "mxgatectl: %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    ok = (fflush(f) == 0 && fsync(fileno(f)) == 0) && ok;
    if (fclose(f) != 0 || !ok) {
        fprintf(stderr, "mxgatectl: %s: cannot write the key\n", path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* dkim_public - p=: the SubjectPublicKeyInfo (RSA) or the raw key (Ed25519, RFC 8463)
 * in base64, malloc'd; NULL on failure */
static char *dkim_public(EVP_PKEY *k, int ed)
{
    unsigned char raw[32], *der = NULL;
    size_t rawlen = sizeof(raw);
    int len = ed ? (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) == 1 ? (int)rawlen : -1)
                 : i2d_PUBKEY(k, &der);
    char *b64;

    if (len <= 0)
        return NULL;
    if ((b64 = malloc(4 * (((size_t)len + 2) / 3) + 1)))
        EVP_EncodeBlock((unsigned char *)b64, ed ? raw : der, len);
    OPENSSL_free(der);
    return b64;
}

/* dkim_print_record - the zone line, the value in quoted strings of at most 255 octets */
static void dkim_print_record(const char *domain, const char *selector, int ed, const char *p)
{
    char *value;
    size_t n;

    if (asprintf(&value, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", p) < 0)
        return;
    printf("%s._domainkey.%s. IN TXT", selector, domain);
    n = strlen(value);
    for (size_t i = 0; i < n; i += DKIM_TXT_CHUNK)
        printf(" \"%.*s\"", (int)(n - i < DKIM_TXT_CHUNK ? n - i : DKIM_TXT_CHUNK), value + i);
    printf("\n");
    free(value);
}

/* dkim_keygen - parse the options, make the key, write it, print the record */
static int dkim_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"type", required_argument, NULL, 't'},
                                         {"bits", required_argument, NULL, 'b'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    char dir[4096], path[4200], *end, *pub;
    const char *type = "rsa";
    long bits = 2048;
    EVP_PKEY *k;
    int ch, ed, rc;

    dkim_default_dir(dir, sizeof(dir));
    optind = 0; /* GNU getopt: start again (main parsed with "+") */
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 't')
            type = optarg;
        else if (ch == 'b' && ((bits = strtol(optarg, &end, 10)), *end == '\0'))
            continue;
        else if (ch == 'd')
            snprintf(dir, sizeof(dir), "%s", optarg);
        else
            usage();
    }
    if (argc - optind != 2 || (strcmp(type, "rsa") != 0 && strcmp(type, "ed25519") != 0))
        usage();
    ed = strcmp(type, "ed25519") == 0;
    if (!dkim_name_ok(argv[optind], 253) || !dkim_name_ok(argv[optind + 1], 63)) {
        fprintf(stderr, "mxgatectl: a domain name and a selector (letters, digits, '-', '_', "
                        "'.') are wanted\n");
        return 2;
    }
    if (!ed && (bits < 2048 || bits > 4096)) {
        fprintf(stderr, "mxgatectl: --bits: 2048 to 4096 (RFC 8301; larger keys do not fit "
                        "what receivers accept)\n");
        return 2;
    }
    k = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
           : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (!k || !(pub = dkim_public(k, ed))) {
        fprintf(stderr, "mxgatectl: cannot make the key\n");
        EVP_PKEY_free(k);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s.%s.key", dir, argv[optind], argv[optind + 1]);
    rc = dkim_write_key(k, path);
    if (rc == 0) {
        fprintf(stderr, "mxgatectl: wrote %s (mode 0600); publish this record:\n", path);
        dkim_print_record(argv[optind], argv[optind + 1], ed, pub);
    }
    free(pub);
    EVP_PKEY_free(k);
    return rc == 0 ? 0 : 1;
}

int dkim_command(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "keygen") == 0)
        return dkim_keygen(argc, argv);
    usage();
}
