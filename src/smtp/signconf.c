/* signconf.c - the dkim_sign sections and their private keys (see signconf.h) */
#include "smtp/signconf.h"

#include <confuse.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/xmalloc.h"
#include "mail/dkim.h"

struct signconf {
    struct signconf_domain *d;
    size_t n;
};

const char *const signconf_headers[] = {
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    NULL,
};

/* What a receiver shows or acts on: adding one of these after signing must break the
 * signature (OpenDKIM's OversignHeaders). List-* are left out: a list may add them. */
const char *const signconf_oversign[] = {
    "from",       "reply-to",     "subject",      "date",
    "to",         "cc",           "message-id",   "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding",
    NULL,
};

static size_t signconf_len(const char *const *v)
{
    size_t n = 0;

    while (v[n])
        n++;
    return n;
}

size_t signconf_nheaders(void)
{
    return signconf_len(signconf_headers);
}

size_t signconf_noversign(void)
{
    return signconf_len(signconf_oversign);
}

/* signconf_name_ok - a DNS name of letters, digits, '-', '_' and dots (no empty label) */
static int signconf_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* signconf_read_key - path's private key: a regular file nobody but its owner may read
 * (as OpenSSH demands), of the wanted type (-1: RSA or Ed25519), RSA of 1024..4096 bits
 * (warn set under 2048); NULL with err */
static EVP_PKEY *signconf_read_key(const char *path, int want, char *err, size_t errlen, char *warn,
                                   size_t warnlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    EVP_PKEY *k = NULL;
    FILE *f;
    int type, bits;

    warn[0] = '\0';
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read key %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        snprintf(err, errlen,
                 S_ISREG(st.st_mode) ? "key %s: permissions %04o are too open: a private key "
                                       "must not be accessible by group or others (chmod 600)"
                                     : "key %s: not a regular file (%04o)",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    if (!(f = fdopen(fd, "r"))) {
        close(fd);
        snprintf(err, errlen, "cannot read key %s: %s", path, strerror(errno));
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!k) {
        snprintf(err, errlen, "key %s: not a PEM private key (unencrypted PKCS#8 or RSA)", path);
        return NULL;
    }
    type = EVP_PKEY_get_base_id(k);
    bits = EVP_PKEY_get_bits(k);
    if ((type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) || (want >= 0 && type != want)) {
        snprintf(err, errlen, "key %s: %s key wanted", path,
                 want == EVP_PKEY_ED25519 ? "an Ed25519" : "an RSA or Ed25519");
    } else if (type == EVP_PKEY_RSA && (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
        snprintf(err, errlen, "key %s: RSA of %d bits (%d to %d are accepted; use 2048)", path,
                 bits, DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
    } else {
        if (type == EVP_PKEY_RSA && bits < 2048)
            snprintf(warn, warnlen, "key %s: RSA of %d bits is weak (RFC 8301: use 2048)", path,
                     bits);
        return k;
    }
    EVP_PKEY_free(k);
    return NULL;
}

/* signconf_section_load - one section into dom; 0, or -1 with err (warn: a weak key) */
static int signconf_section_load(cfg_t *s, struct signconf_domain *dom, char *err, size_t errlen,
                                 char *warn, size_t warnlen)
{
    const char *title = cfg_title(s), *key = cfg_getstr(s, "key");
    const char *sel = cfg_getstr(s, "selector"), *ked = cfg_getstr(s, "key_ed25519");
    const char *seled = cfg_getstr(s, "selector_ed25519");
    char why[600];
    EVP_PKEY *k;

    memset(dom, 0, sizeof(*dom));
    warn[0] = '\0';
    if (!signconf_name_ok(title, DKIM_DOMAIN_MAX))
        return snprintf(err, errlen, "not a domain name"), -1;
    if (!key && !ked)
        return snprintf(err, errlen, "\"key\" (or \"key_ed25519\") is required"), -1;
    if ((key && !sel) || (ked && !seled))
        return snprintf(err, errlen, "each key needs its selector (selector, selector_ed25519)"),
               -1;
    if ((sel && !signconf_name_ok(sel, DKIM_SELECTOR_MAX)) ||
        (seled && !signconf_name_ok(seled, DKIM_SELECTOR_MAX)))
        return snprintf(err, errlen, "bad selector"), -1;
    if (key && ked && strcasecmp(sel, seled) == 0)
        return snprintf(err, errlen, "the two keys need two selectors (one DNS record each)"), -1;
    dom->domain = xstrdup(title);
    for (char *p = dom->domain; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    dom->subdomains = cfg_getbool(s, "subdomains");
    for (int i = 0; i < 2; i++) {
        const char *path = i ? ked : key;
        if (!path)
            continue;
        if (!(k = signconf_read_key(path, i ? EVP_PKEY_ED25519 : -1, err, errlen, why,
                                    sizeof(why))))
            return -1;
        if (why[0])
            snprintf(warn, warnlen, "%s", why);
        if (i && dom->nkeys && EVP_PKEY_get_base_id(dom->key[0].pkey) == EVP_PKEY_ED25519) {
            EVP_PKEY_free(k);
            return snprintf(err, errlen, "key is Ed25519 already: give an RSA key as key"), -1;
        }
        dom->key[dom->nkeys].pkey = k;
        dom->key[dom->nkeys].selector = xstrdup(i ? seled : sel);
        dom->key[dom->nkeys].algo =
            EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? "ed25519-sha256" : "rsa-sha256";
        dom->nkeys++;
    }
    return 0;
}

static void signconf_domain_free(struct signconf_domain *dom)
{
    for (size_t i = 0; i < dom->nkeys; i++) {
        EVP_PKEY_free(dom->key[i].pkey);
        free(dom->key[i].selector);
    }
    free(dom->domain);
    memset(dom, 0, sizeof(*dom));
}

void signconf_validate(const struct config *cfg, struct config_diag *d)
{
    for (unsigned i = 0; i < cfg_size(cfg->raw, "dkim_sign"); i++) {
        cfg_t *s = cfg_getnsec(cfg->raw, "dkim_sign", i);
        struct signconf_domain dom;
        char err[700], warn[700];
        if (signconf_section_load(s, &dom, err, sizeof(err), warn, sizeof(warn)) < 0)
            config_error(d, s->line, "dkim_sign %s: %s", cfg_title(s), err);
        else if (warn[0])
            config_warn(d, s->line, "dkim_sign %s: %s", cfg_title(s), warn);
        signconf_domain_free(&dom);
    }
}

struct signconf *signconf_load(const struct config *cfg, char *err, size_t errlen)
{
    struct signconf *sc = xcalloc(1, sizeof(*sc));
    unsigned n = cfg_size(cfg->raw, "dkim_sign");

    sc->d = xcalloc(n ? n : 1, sizeof(*sc->d));
    for (unsigned i = 0; i < n; i++, sc->n++) {
        cfg_t *s = cfg_getnsec(cfg->raw, "dkim_sign", i);
        char why[700], warn[700];
        if (signconf_section_load(s, &sc->d[i], why, sizeof(why), warn, sizeof(warn)) < 0) {
            snprintf(err, errlen, "dkim_sign %s: %s", cfg_title(s), why);
            signconf_domain_free(&sc->d[i]); /* what it loaded before the error */
            signconf_free(sc);
            return NULL;
        }
    }
    return sc;
}

void signconf_free(struct signconf *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->n; i++)
        signconf_domain_free(&sc->d[i]);
    free(sc->d);
    free(sc);
}

size_t signconf_count(const struct signconf *sc)
{
    return sc ? sc->n : 0;
}

const struct signconf_domain *signconf_find(const struct signconf *sc, const char *dom)
{
    for (const char *p = dom; sc && p && *p; p = strchr(p, '.'), p = p ? p + 1 : NULL)
        for (size_t i = 0; i < sc->n; i++)
            if (strcmp(sc->d[i].domain, p) == 0 && (p == dom || sc->d[i].subdomains))
                return &sc->d[i];
    return NULL;
}

static cfg_opt_t signconf_opts[] = {
    CFG_STR("selector", NULL, CFGF_NODEFAULT),         CFG_STR("key", NULL, CFGF_NODEFAULT),
    CFG_STR("selector_ed25519", NULL, CFGF_NODEFAULT), CFG_STR("key_ed25519", NULL, CFGF_NODEFAULT),
    CFG_BOOL("subdomains", cfg_false, CFGF_NONE),      CFG_END(),
};

const struct config_section signconf_section = {
    .name = "dkim_sign",
    .opts = signconf_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
};
