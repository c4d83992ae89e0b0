/*
 * dmarc_record.c - a DMARC policy record (RFC 7489 6.3, 6.4, 6.6.3; np from
 * RFC 9091 4.1).
 *
 * The record comes from the sender's DNS: it is read with its length (a TXT
 * string may hold NUL) and nothing in it is trusted. "v=DMARC1" must come
 * first and match exactly, or the record is not a DMARC record at all. p must
 * follow somewhere; a missing or bad p (or a bad sp) makes the record unusable
 * unless rua holds a valid URI, in which case the record counts as p=none
 * (6.6.3 step 6). Bad values of the other tags fall back to their defaults
 * ("syntax errors in the remainder of the record SHOULD be discarded in
 * favor of default values", 6.3); unknown tags are ignored.
 */
#include "policy/dmarc.h"

#include <string.h>
#include <strings.h>

#define DMARC_TAG_MAX 16
#define DMARC_VALUE_MAX 512

struct dmarc_tag {
    char name[DMARC_TAG_MAX];
    char value[DMARC_VALUE_MAX];
};

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* dmarc_next_tag - the tag=value at *pos of txt, trimmed, and *pos past its ';'.
 * 1 with tag filled, 0 at the end, -1 for a part that is no tag=value */
static int dmarc_next_tag(const char *txt, size_t len, size_t *pos, struct dmarc_tag *t)
{
    size_t i = *pos, end, eq, a, b;

    while (i < len && (is_wsp(txt[i]) || txt[i] == ';'))
        i++;
    if (i >= len)
        return 0;
    for (end = i; end < len && txt[end] != ';'; end++)
        ;
    *pos = end;
    if (memchr(txt + i, '\0', end - i))
        return -1; /* NUL inside: not text */
    for (eq = i; eq < end && txt[eq] != '='; eq++)
        ;
    if (eq == end)
        return -1;
    for (b = eq; b > i && is_wsp(txt[b - 1]); b--)
        ;
    if (b == i || b - i >= sizeof(t->name))
        return -1;
    memcpy(t->name, txt + i, b - i);
    t->name[b - i] = '\0';
    for (a = eq + 1; a < end && is_wsp(txt[a]); a++)
        ;
    for (b = end; b > a && is_wsp(txt[b - 1]); b--)
        ;
    if (b - a >= sizeof(t->value))
        b = a + sizeof(t->value) - 1; /* a long rua: cut, it is only looked at */
    memcpy(t->value, txt + a, b - a);
    t->value[b - a] = '\0';
    return 1;
}

/* dmarc_policy_of - "none", "quarantine", "reject" (case-insensitive), else UNSET */
static enum dmarc_policy dmarc_policy_of(const char *v)
{
    if (strcasecmp(v, "none") == 0)
        return DMARC_P_NONE;
    if (strcasecmp(v, "quarantine") == 0)
        return DMARC_P_QUARANTINE;
    if (strcasecmp(v, "reject") == 0)
        return DMARC_P_REJECT;
    return DMARC_P_UNSET;
}

/* dmarc_uri_ok - one DMARC URI (6.4): scheme ":" something, optionally "!size" */
static int dmarc_uri_ok(const char *u, size_t len)
{
    size_t i = 0;

    while (len && is_wsp(u[len - 1]))
        len--;
    while (i < len && is_wsp(u[i]))
        i++;
    if (i >= len || !((u[i] | 0x20) >= 'a' && (u[i] | 0x20) <= 'z'))
        return 0;
    for (; i < len && u[i] != ':'; i++)
        if (!((u[i] | 0x20) >= 'a' && (u[i] | 0x20) <= 'z') && !(u[i] >= '0' && u[i] <= '9') &&
            u[i] != '+' && u[i] != '-' && u[i] != '.')
            return 0;
    return i + 1 < len; /* something after the colon */
}

/* dmarc_rua_ok - rua holds at least one syntactically valid URI (comma-separated) */
static int dmarc_rua_ok(const char *v)
{
    const char *p = v;

    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (dmarc_uri_ok(p, n))
            return 1;
        if (!c)
            return 0;
        p = c + 1;
    }
}

/* dmarc_pct - 0..100 in at most three digits, else -1 */
static int dmarc_pct(const char *v)
{
    int n = 0;
    size_t len = strlen(v);

    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n <= 100 ? n : -1;
}

/* dmarc_mode - "r" 0, "s" 1, else the default (relaxed) */
static int dmarc_mode(const char *v)
{
    return strcasecmp(v, "s") == 0;
}

/* dmarc_version_ok - the first tag is v=DMARC1, exactly (6.3: "MUST match precisely") */
static int dmarc_version_ok(const char *txt, size_t len, size_t *pos)
{
    struct dmarc_tag t;

    *pos = 0;
    return dmarc_next_tag(txt, len, pos, &t) == 1 && strcasecmp(t.name, "v") == 0 &&
           strcmp(t.value, "DMARC1") == 0;
}

enum dmarc_parse dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r)
{
    struct dmarc_tag t;
    size_t pos;
    int rc, seen_p = 0, seen_sp = 0, bad_sp = 0, rua = 0;

    memset(r, 0, sizeof(*r));
    r->p = r->sp = r->np = DMARC_P_UNSET;
    r->pct = 100;
    if (!dmarc_version_ok(txt, len, &pos))
        return DMARC_REC_NOT;
    while ((rc = dmarc_next_tag(txt, len, &pos, &t)) != 0) {
        if (rc < 0)
            continue; /* a part that is no tag: ignored as a syntax error */
        if (strcasecmp(t.name, "p") == 0 && !seen_p++)
            r->p = dmarc_policy_of(t.value);
        else if (strcasecmp(t.name, "sp") == 0 && !seen_sp++)
            bad_sp = (r->sp = dmarc_policy_of(t.value)) == DMARC_P_UNSET;
        else if (strcasecmp(t.name, "np") == 0 && r->np == DMARC_P_UNSET)
            r->np = dmarc_policy_of(t.value); /* a bad np is ignored: sp or p applies */
        else if (strcasecmp(t.name, "pct") == 0)
            r->pct = dmarc_pct(t.value) >= 0 ? dmarc_pct(t.value) : 100;
        else if (strcasecmp(t.name, "adkim") == 0)
            r->adkim_strict = dmarc_mode(t.value);
        else if (strcasecmp(t.name, "aspf") == 0)
            r->aspf_strict = dmarc_mode(t.value);
        else if (strcasecmp(t.name, "rua") == 0)
            rua |= dmarc_rua_ok(t.value);
    }
    if (r->p == DMARC_P_UNSET || bad_sp) {
        if (!rua)
            return DMARC_REC_INVALID;
        r->p = DMARC_P_NONE; /* 6.6.3 6.1: as if the record said p=none */
        r->sp = DMARC_P_UNSET;
        r->p_from_rua = 1;
    }
    return DMARC_REC_OK;
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    static const char *const names[] = {"none", "quarantine", "reject"};

    return p >= DMARC_P_NONE && p <= DMARC_P_REJECT ? names[p] : "unset";
}
