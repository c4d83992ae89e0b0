/*
 * dkim_sig.c - DKIM-Signature fields (RFC 6376 3.5): every tag checked
 * against its syntax and bounds before anything is looked up or hashed.
 *
 * A signature that cannot be used is a permerror with a short reason; the
 * verifier's own refusals (rsa-sha1, an expired x=) are a separate step,
 * dkim_sig_acceptable, so that the parse says only what the field is.
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/header.h"

/* dkim_lower_copy - value into out (outlen) lower-cased; -1 when it does not fit */
static int dkim_lower_copy(const char *v, size_t len, char *out, size_t outlen)
{
    if (len + 1 > outlen)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] - 'A' + 'a') : v[i];
    out[len] = '\0';
    return 0;
}

/* dkim_domain_ok - dot-separated labels of letters, digits, '-' and '_' (selectors
 * and the odd DNS name have it), none empty, none over 63 */
static int dkim_domain_ok(const char *s)
{
    size_t label = 0;

    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_') ||
            ++label > 63)
            return 0;
    }
    return label > 0;
}

/* dkim_number - 1*DIGIT of at most digits digits into *out; 0 or -1 */
static int dkim_number(const struct dkim_tag *t, size_t digits, long long *out)
{
    long long v = 0;

    if (t->val_len == 0 || t->val_len > digits)
        return -1;
    for (size_t i = 0; i < t->val_len; i++) {
        if (t->val[i] < '0' || t->val[i] > '9')
            return -1;
        v = v * 10 + (t->val[i] - '0');
    }
    *out = v;
    return 0;
}

/* dkim_list_has - a colon-separated list (FWS around items) holds item (any case) */
static int dkim_list_has(const char *v, size_t len, const char *item)
{
    size_t il = strlen(item), i = 0;

    while (i <= len) {
        size_t s, e;
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
            i++;
        s = i;
        while (i < len && v[i] != ':')
            i++;
        e = i;
        while (e > s &&
               (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n'))
            e--;
        if (e - s == il && strncasecmp(v + s, item, il) == 0)
            return 1;
        i++;
    }
    return 0;
}

/* dkim_sig_h - h=: the names, "from" among them */
static int dkim_sig_h(const struct dkim_tag *t, struct dkim_sig *sig, char *why, size_t whylen)
{
    size_t i = 0, len = t->val_len;
    int from = 0;

    sig->nh = 0;
    while (i <= len) {
        size_t s, e;
        while (i < len &&
               (t->val[i] == ' ' || t->val[i] == '\t' || t->val[i] == '\r' || t->val[i] == '\n'))
            i++;
        for (s = i; i < len && t->val[i] != ':'; i++)
            ;
        for (e = i; e > s && (t->val[e - 1] == ' ' || t->val[e - 1] == '\t' ||
                              t->val[e - 1] == '\r' || t->val[e - 1] == '\n');)
            e--;
        if (e == s || sig->nh == DKIM_H_MAX ||
            dkim_lower_copy(t->val + s, e - s, sig->h[sig->nh], sizeof(sig->h[0])) < 0) {
            snprintf(why, whylen, e == s ? "empty name in h=" : "h= too long");
            return -1;
        }
        for (size_t k = s; k < e; k++)
            if (t->val[k] <= 0x20 || t->val[k] >= 0x7f) {
                snprintf(why, whylen, "bad name in h=");
                return -1;
            }
        from |= strcmp(sig->h[sig->nh], "from") == 0;
        sig->nh++;
        i++;
    }
    if (!from)
        snprintf(why, whylen, "h= does not sign From");
    return from ? 0 : -1;
}

/* dkim_sig_a - a= and the key type it needs */
static int dkim_sig_a(const struct dkim_tag *t, struct dkim_sig *sig)
{
    static const struct {
        const char *name;
        enum dkim_algo algo;
        enum dkim_keytype kt;
    } algos[] = {{"rsa-sha256", DKIM_A_RSA_SHA256, DKIM_K_RSA},
                 {"ed25519-sha256", DKIM_A_ED25519_SHA256, DKIM_K_ED25519},
                 {"rsa-sha1", DKIM_A_RSA_SHA1, DKIM_K_RSA}};

    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
        if (t->val_len == strlen(algos[i].name) &&
            strncasecmp(t->val, algos[i].name, t->val_len) == 0) {
            sig->algo = algos[i].algo;
            sig->ktype = algos[i].kt;
            return 0;
        }
    return -1;
}

/* dkim_canon_name - "simple" or "relaxed" */
static int dkim_canon_name(const char *s, size_t len, enum dkim_canon *c)
{
    if (len == 6 && strncasecmp(s, "simple", 6) == 0)
        *c = DKIM_CANON_SIMPLE;
    else if (len == 7 && strncasecmp(s, "relaxed", 7) == 0)
        *c = DKIM_CANON_RELAXED;
    else
        return -1;
    return 0;
}

/* dkim_sig_c - c=header[/body]; the body's is simple when not given */
static int dkim_sig_c(const struct dkim_tag *t, struct dkim_sig *sig)
{
    const char *slash = memchr(t->val, '/', t->val_len);
    size_t hl = slash ? (size_t)(slash - t->val) : t->val_len;

    if (dkim_canon_name(t->val, hl, &sig->hcanon) < 0)
        return -1;
    sig->bcanon = DKIM_CANON_SIMPLE;
    return slash ? dkim_canon_name(slash + 1, t->val_len - hl - 1, &sig->bcanon) : 0;
}

/* dkim_sig_i - i=: [local-part] "@" domain, the domain d= or under it */
static int dkim_sig_i(const struct dkim_tag *t, struct dkim_sig *sig, char *why, size_t whylen)
{
    const char *at = t ? memrchr(t->val, '@', t->val_len) : NULL;
    size_t dl, l;

    if (!t) {
        snprintf(sig->i_domain, sizeof(sig->i_domain), "%s", sig->d);
        return 0;
    }
    if (!at ||
        dkim_lower_copy(at + 1, t->val_len - (size_t)(at + 1 - t->val), sig->i_domain,
                        sizeof(sig->i_domain)) < 0 ||
        !dkim_domain_ok(sig->i_domain)) {
        snprintf(why, whylen, "bad i=");
        return -1;
    }
    dl = strlen(sig->d);
    l = strlen(sig->i_domain);
    if (!(l == dl && strcmp(sig->i_domain, sig->d) == 0) &&
        !(l > dl && sig->i_domain[l - dl - 1] == '.' &&
          strcmp(sig->i_domain + l - dl, sig->d) == 0)) {
        snprintf(why, whylen, "i= not within d=");
        return -1;
    }
    return 0;
}

/* dkim_sig_b - b= and bh=; b= also where it sits, and its first characters */
static int dkim_sig_b(const struct dkim_tag *b, const struct dkim_tag *bh, const char *value,
                      size_t voff, struct dkim_sig *sig)
{
    size_t k = 0;

    if (dkim_b64_decode(b->val, b->val_len, sig->b, sizeof(sig->b), &sig->blen) < 0 ||
        sig->blen == 0 ||
        dkim_b64_decode(bh->val, bh->val_len, sig->bh, sizeof(sig->bh), &sig->bhlen) < 0 ||
        sig->bhlen == 0)
        return -1;
    for (size_t i = 0; i < b->val_len && k < 8; i++)
        if (b->val[i] > 0x20)
            sig->b_prefix[k++] = b->val[i];
    sig->b_prefix[k] = '\0';
    sig->b_off = voff + (size_t)(b->val - value);
    sig->b_len = b->val_len;
    return 0;
}

/* dkim_sig_numbers - l=, t=, x= */
static int dkim_sig_numbers(const struct dkim_tag *tags, size_t n, struct dkim_sig *sig, char *why,
                            size_t whylen)
{
    const struct dkim_tag *l = dkim_tag_get(tags, n, "l"), *t = dkim_tag_get(tags, n, "t"),
                          *x = dkim_tag_get(tags, n, "x");

    sig->l = sig->t = sig->x = -1;
    if ((l && dkim_number(l, 18, &sig->l) < 0) || (t && dkim_number(t, 12, &sig->t) < 0) ||
        (x && dkim_number(x, 12, &sig->x) < 0)) {
        snprintf(why, whylen, "bad %s=", l && sig->l < 0 ? "l" : t && sig->t < 0 ? "t" : "x");
        return -1;
    }
    if (t && x && sig->x < sig->t) {
        snprintf(why, whylen, "x= before t=");
        return -1;
    }
    return 0;
}

/* dkim_sig_tags - the tags of the value, each checked */
static int dkim_sig_tags(const struct dkim_tag *tg, size_t n, const char *value, size_t voff,
                         struct dkim_sig *sig, char *why, size_t whylen)
{
    const struct dkim_tag *v = dkim_tag_get(tg, n, "v"), *a = dkim_tag_get(tg, n, "a"),
                          *b = dkim_tag_get(tg, n, "b"), *bh = dkim_tag_get(tg, n, "bh"),
                          *d = dkim_tag_get(tg, n, "d"), *h = dkim_tag_get(tg, n, "h"),
                          *s = dkim_tag_get(tg, n, "s"), *c = dkim_tag_get(tg, n, "c"),
                          *q = dkim_tag_get(tg, n, "q");

    if (!v || !a || !b || !bh || !d || !h || !s) {
        snprintf(why, whylen, "missing %s=",
                 !v    ? "v"
                 : !a  ? "a"
                 : !b  ? "b"
                 : !bh ? "bh"
                 : !d  ? "d"
                 : !h  ? "h"
                       : "s");
        return -1;
    }
    if (v->val_len != 1 || v->val[0] != '1')
        return snprintf(why, whylen, "unsupported v="), -1;
    if (dkim_sig_a(a, sig) < 0)
        return snprintf(why, whylen, "unsupported a="), -1;
    sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
    if (c && dkim_sig_c(c, sig) < 0)
        return snprintf(why, whylen, "unsupported c="), -1;
    if (q && !dkim_list_has(q->val, q->val_len, "dns/txt"))
        return snprintf(why, whylen, "unsupported q="), -1;
    if (dkim_lower_copy(d->val, d->val_len, sig->d, sizeof(sig->d)) < 0 || !dkim_domain_ok(sig->d))
        return snprintf(why, whylen, "bad d="), -1;
    if (dkim_lower_copy(s->val, s->val_len, sig->s, sizeof(sig->s)) < 0 || !dkim_domain_ok(sig->s))
        return snprintf(why, whylen, "bad s="), -1;
    if (dkim_sig_b(b, bh, value, voff, sig) < 0)
        return snprintf(why, whylen, "bad b= or bh="), -1;
    if (dkim_sig_h(h, sig, why, whylen) < 0 ||
        dkim_sig_i(dkim_tag_get(tg, n, "i"), sig, why, whylen) < 0)
        return -1;
    return dkim_sig_numbers(tg, n, sig, why, whylen);
}

enum dkim_result dkim_sig_parse(const char *field, size_t len, struct dkim_sig *sig, char *why,
                                size_t whylen)
{
    struct dkim_tag tags[DKIM_TAGS_MAX];
    struct hdr_field f;
    size_t off = 0, n;

    memset(sig, 0, sizeof(*sig));
    if (whylen > 0)
        why[0] = '\0';
    if (len > DKIM_FIELD_MAX) {
        snprintf(why, whylen, "signature field too long");
        return DKIM_PERMERROR;
    }
    if (!hdr_next(field, len, &off, &f) || !hdr_is(&f, "DKIM-Signature")) {
        snprintf(why, whylen, "not a DKIM-Signature field");
        return DKIM_PERMERROR;
    }
    if (dkim_tags_parse(f.value, f.value_len, tags, DKIM_TAGS_MAX, &n, why, whylen) < 0 ||
        dkim_sig_tags(tags, n, f.value, (size_t)(f.value - field), sig, why, whylen) < 0)
        return DKIM_PERMERROR;
    return DKIM_PASS;
}

enum dkim_result dkim_sig_acceptable(const struct dkim_sig *sig, time_t now, char *why,
                                     size_t whylen)
{
    if (whylen > 0)
        why[0] = '\0';
    if (sig->algo == DKIM_A_RSA_SHA1) {
        snprintf(why, whylen, "rsa-sha1 is not accepted (RFC 8301)");
        return DKIM_POLICY;
    }
    if (sig->x >= 0 && (long long)now > sig->x) {
        snprintf(why, whylen, "signature expired");
        return DKIM_POLICY;
    }
    return DKIM_PASS;
}

int dkim_key_name(const struct dkim_sig *sig, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s._domainkey.%s", sig->s, sig->d);

    return n < 0 || (size_t)n >= outlen || n > DKIM_DOMAIN_MAX ? -1 : 0;
}
