/* spf_record.c - SPF record syntax (RFC 7208 4.5, 4.6, 5, 6; ABNF in section 12)
 *
 * The whole record is checked before any term is evaluated (4.6: syntax
 * errors anywhere are a permerror, even after a matching "all").
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "policy/spf_internal.h"
#include "core/xmalloc.h"

int spf_is_record(const char *txt, size_t len)
{
    if (len < 6 || strncasecmp(txt, "v=spf1", 6) != 0)
        return 0;
    return len == 6 || txt[6] == ' ';
}

int spf_name_valid(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        /* %_ puts spaces in names (7.3); a backslash would be read as an
         * escape by the resolver and ask for another name than expanded */
        if (c < ' ' || c >= 0x7f || c == '\\')
            return 0;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (++label > 63) {
            return 0;
        }
    }
    return label > 0;
}

/* A CIDR length: 1*DIGIT without leading zeros, at most max. -1 if not. */
static int cidr_len(const char *s, int max)
{
    int v = 0;

    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 3)
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v <= max ? v : -1;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Cut dual-cidr-length ("/24", "//64", "/24//64") off the end of rest. 0 or -1 */
static int strip_dual_cidr(char *rest, int *cidr4, int *cidr6)
{
    char *slash = strrchr(rest, '/');

    if (slash == NULL || !all_digits(slash + 1))
        return 0;
    if (slash > rest && slash[-1] == '/') {
        if ((*cidr6 = cidr_len(slash + 1, 128)) < 0)
            return -1;
        slash[-1] = '\0';
        slash = strrchr(rest, '/');
        if (slash == NULL || !all_digits(slash + 1))
            return 0;
    }
    if ((*cidr4 = cidr_len(slash + 1, 32)) < 0)
        return -1;
    *slash = '\0';
    return 0;
}

/* ":" domain-spec after a mechanism name; optional when opt. 0 or -1 */
static int parse_target(char *rest, int opt, const char **spec)
{
    *spec = NULL;
    if (rest[0] == '\0')
        return opt ? 0 : -1;
    if (rest[0] != ':' || spf_domain_spec_check(rest + 1) < 0)
        return -1;
    *spec = rest + 1;
    return 0;
}

/* "ip4:" / "ip6:" network [ "/" length ] */
static int parse_ip(char *rest, int family, struct spf_term *t)
{
    int max = family == AF_INET ? 32 : 128, len = max;
    char *slash;

    if (rest[0] != ':')
        return -1;
    if ((slash = strchr(rest + 1, '/')) != NULL) {
        if ((len = cidr_len(slash + 1, max)) < 0)
            return -1;
        *slash = '\0';
    }
    if (inet_pton(family, rest + 1, t->ip) != 1)
        return -1;
    if (family == AF_INET)
        t->cidr4 = len;
    else
        t->cidr6 = len;
    return 0;
}

static const struct {
    const char *name;
    enum spf_mech mech;
} mechs[] = {{"all", SPF_M_ALL}, {"include", SPF_M_INCLUDE}, {"a", SPF_M_A},
             {"mx", SPF_M_MX},   {"ptr", SPF_M_PTR},         {"ip4", SPF_M_IP4},
             {"ip6", SPF_M_IP6}, {"exists", SPF_M_EXISTS}};

static int parse_directive(char *s, struct spf_term *t)
{
    static const char quals[] = "+-~?";
    static const enum spf_result qres[] = {SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL};
    const char *q = *s ? strchr(quals, *s) : NULL;
    size_t n, i;

    t->qual = SPF_PASS;
    if (q != NULL) {
        t->qual = qres[q - quals];
        s++;
    }
    n = strcspn(s, ":/");
    for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
        if (strlen(mechs[i].name) == n && strncasecmp(s, mechs[i].name, n) == 0)
            break;
    if (i == sizeof mechs / sizeof mechs[0])
        return -1;
    t->mech = mechs[i].mech;
    t->cidr4 = 32;
    t->cidr6 = 128;
    s += n;
    switch (t->mech) {
    case SPF_M_ALL:
        return *s == '\0' ? 0 : -1;
    case SPF_M_INCLUDE:
    case SPF_M_EXISTS:
        return parse_target(s, 0, &t->spec);
    case SPF_M_PTR:
        return parse_target(s, 1, &t->spec);
    case SPF_M_A:
    case SPF_M_MX:
        if (strip_dual_cidr(s, &t->cidr4, &t->cidr6) < 0)
            return -1;
        return parse_target(s, 1, &t->spec);
    case SPF_M_IP4:
        return parse_ip(s, AF_INET, t);
    case SPF_M_IP6:
        return parse_ip(s, AF_INET6, t);
    }
    return -1;
}

/* name "=" value. 1: a modifier (handled); 0: not a modifier; -1: bad one. */
static int parse_modifier(char *s, struct spf_record *r, char *err, size_t errlen)
{
    char *eq = s;
    const char **slot = NULL;

    if (!isalpha((unsigned char)*s))
        return 0;
    while (isalnum((unsigned char)*eq) || *eq == '-' || *eq == '_' || *eq == '.')
        eq++;
    if (*eq != '=')
        return 0;
    *eq++ = '\0';
    if (strcasecmp(s, "redirect") == 0)
        slot = &r->redirect;
    else if (strcasecmp(s, "exp") == 0)
        slot = &r->exp;
    if (slot == NULL) {
        if (spf_macro_check(eq, SPF_MACRO_EXP) == 0)
            return 1;
        snprintf(err, errlen, "bad macro in modifier %s", s);
        return -1;
    }
    if (*slot != NULL) {
        snprintf(err, errlen, "%s= appears twice", s);
        return -1;
    }
    if (spf_domain_spec_check(eq) < 0) {
        snprintf(err, errlen, "bad domain in %s=", s);
        return -1;
    }
    *slot = eq;
    return 1;
}

/* Check the bytes and count the terms after "v=spf1". -1 with err set. */
static long scan_record(const char *txt, size_t len, char *err, size_t errlen)
{
    long n = 0;

    if (len > SPF_RECORD_MAX) {
        snprintf(err, errlen, "record longer than %d bytes", SPF_RECORD_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)txt[i];
        if (c < ' ' || c > '~') {
            snprintf(err, errlen, "control or non-ASCII byte in record");
            return -1;
        }
        if (c != ' ' && (i == 0 || txt[i - 1] == ' '))
            n++;
    }
    if (n - 1 > SPF_MAX_TERMS) {
        snprintf(err, errlen, "more than %d terms", SPF_MAX_TERMS);
        return -1;
    }
    return n - 1; /* without "v=spf1" */
}

static struct spf_record *record_alloc(const char *txt, size_t len, long nterms)
{
    struct spf_record *r = xcalloc(1, sizeof *r);

    r->orig = xmalloc(len + 1);
    r->buf = xmalloc(len + 1);
    r->terms = xcalloc(nterms ? (size_t)nterms : 1, sizeof *r->terms);
    memcpy(r->orig, txt, len);
    r->orig[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (r->orig[i] == ' ')
            r->orig[i] = '\0';
    memcpy(r->buf, r->orig, len + 1);
    return r;
}

struct spf_record *spf_record_parse(const char *txt, size_t len, char *err, size_t errlen)
{
    long nterms = scan_record(txt, len, err, errlen);
    struct spf_record *r;
    size_t i = 6; /* after "v=spf1" */

    if (nterms < 0)
        return NULL;
    r = record_alloc(txt, len, nterms);
    while (i < len) {
        char *s = r->buf + i;
        size_t n = strlen(s);
        int m;
        if (n == 0) {
            i++;
            continue;
        }
        if ((m = parse_modifier(s, r, err, errlen)) < 0)
            goto bad;
        if (m == 0) {
            struct spf_term *t = &r->terms[r->nterms];
            t->text = r->orig + i;
            if (parse_directive(s, t) < 0) {
                snprintf(err, errlen, "bad term %.64s", r->orig + i);
                goto bad;
            }
            r->nterms++;
        }
        i += n;
    }
    return r;
bad:
    spf_record_free(r);
    return NULL;
}

void spf_record_free(struct spf_record *r)
{
    if (r == NULL)
        return;
    free(r->orig);
    free(r->buf);
    free(r->terms);
    free(r);
}
