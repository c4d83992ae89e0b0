/* mxhost.c - the mx_host sections and each MX host's flow control (mxhost.h) */
#include "relay/mxhost.h"

#include <confuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/xmalloc.h"

#define MXHOST_DEFAULT_CONCURRENCY 10

struct mxhost_section {
    char pattern[256]; /* canonical: "*", "*.suffix" or a host name */
    unsigned concurrency, rate_n, rate_secs, per_connection;
};

struct mxhosts {
    struct mxhost_section *sec;
    size_t nsec;
    struct mxhost **st; /* states, made by mxhosts_get; never freed before the table */
    size_t nst;
    const struct config *cfg;
};

static cfg_opt_t mxhost_opts[] = {
    CFG_INT("concurrency", MXHOST_DEFAULT_CONCURRENCY, CFGF_NONE),
    CFG_STR("rate", NULL, CFGF_NODEFAULT),
    CFG_INT("per_connection", 0, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound mxhost_bounds[] = {
    {"concurrency", 1, 1000},
    {"per_connection", 0, 100000},
    {NULL, 0, 0},
};

static const struct config_validator mxhost_validators[] = {
    {"mx_host|rate", flow_valid_rate},
    {NULL, NULL},
};

/* mxhost_canon - see mxhost.h */
int mxhost_canon(const char *name, char *dst, size_t dstlen)
{
    size_t n = strlen(name), label = 0;

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253 || n >= dstlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return -1;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                   (c == '-' && label > 0)) {
            label++;
        } else if (c >= 'A' && c <= 'Z') {
            c = (char)(c + 32);
            label++;
        } else {
            return -1;
        }
        if (label > 63)
            return -1;
        dst[i] = c;
    }
    if (label == 0 || name[n - 1] == '-')
        return -1;
    dst[n] = '\0';
    return 0;
}

/* mxhost_pattern - a section title in canonical form: "*", "*." + a host name, or a
 * host name; -1 when it is none of these */
static int mxhost_pattern(const char *title, char *dst, size_t dstlen)
{
    if (strcmp(title, "*") == 0) {
        snprintf(dst, dstlen, "*");
        return 0;
    }
    if (strncmp(title, "*.", 2) == 0 && dstlen > 2) {
        dst[0] = '*';
        dst[1] = '.';
        return mxhost_canon(title + 2, dst + 2, dstlen - 2);
    }
    return mxhost_canon(title, dst, dstlen);
}

/* mxhost_match - see mxhost.h */
int mxhost_match(const char *pattern, const char *host)
{
    size_t pl, hl;

    if (strcmp(pattern, "*") == 0)
        return 1;
    if (strncmp(pattern, "*.", 2) != 0)
        return strcmp(pattern, host) == 0 ? INT_MAX : 0;
    pl = strlen(pattern + 1); /* ".suffix" */
    hl = strlen(host);
    if (hl <= pl || strcmp(host + hl - pl, pattern + 1) != 0)
        return 0;
    return 2 + (int)pl;
}

/* mxhosts_check - every title is a host name or a wildcard, none twice */
static void mxhosts_check(cfg_t *root, struct config_diag *d)
{
    unsigned n = cfg_size(root, "mx_host");
    char a[256], b[256];

    for (unsigned i = 0; i < n; i++) {
        cfg_t *s = cfg_getnsec(root, "mx_host", i);
        if (mxhost_pattern(cfg_title(s), a, sizeof(a)) < 0) {
            config_error(d, s->line,
                         "mx_host \"%s\": not a host name, \"*.SUFFIX\" or \"*\" (the MX host "
                         "name, e.g. \"mx1.example.net\")",
                         cfg_title(s));
            continue;
        }
        for (unsigned k = 0; k < i; k++)
            if (mxhost_pattern(cfg_title(cfg_getnsec(root, "mx_host", k)), b, sizeof(b)) == 0 &&
                strcmp(a, b) == 0)
                config_error(d, s->line, "mx_host \"%s\": the same host as an earlier section",
                             cfg_title(s));
    }
}

const struct config_section mxhosts_section = {
    .name = "mx_host",
    .opts = mxhost_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
    .bounds = mxhost_bounds,
    .validators = mxhost_validators,
    .check = mxhosts_check,
};

/* mxhosts_sections - read cfg's sections into t (empty before); a bad title (only
 * when the check did not run) is skipped */
static void mxhosts_sections(struct mxhosts *t, const struct config *cfg)
{
    unsigned n = cfg && cfg->raw ? cfg_size(cfg->raw, "mx_host") : 0;

    t->nsec = 0;
    t->sec = xcalloc(n + 1, sizeof(*t->sec));
    for (unsigned i = 0; i < n; i++) {
        cfg_t *s = cfg_getnsec(cfg->raw, "mx_host", i);
        struct mxhost_section *m = &t->sec[t->nsec];
        if (mxhost_pattern(cfg_title(s), m->pattern, sizeof(m->pattern)) < 0)
            continue;
        m->concurrency = config_uint(s, "concurrency");
        m->per_connection = config_uint(s, "per_connection");
        if (!cfg_getstr(s, "rate") ||
            flow_parse_rate(cfg_getstr(s, "rate"), &m->rate_n, &m->rate_secs) < 0)
            m->rate_n = m->rate_secs = 0;
        t->nsec++;
    }
}

/* mxhosts_section_for - the section that names host best, or NULL */
static const struct mxhost_section *mxhosts_section_for(const struct mxhosts *t, const char *host)
{
    const struct mxhost_section *best = NULL;
    int best_m = 0;

    for (size_t i = 0; i < t->nsec; i++) {
        int m = mxhost_match(t->sec[i].pattern, host);
        if (m > best_m) {
            best_m = m;
            best = &t->sec[i];
        }
    }
    return best;
}

/* mxhost_limits - h's limits from t's sections (its state stays) */
static void mxhost_limits(const struct mxhosts *t, struct mxhost *h)
{
    const struct mxhost_section *s = mxhosts_section_for(t, h->name);

    snprintf(h->section, sizeof(h->section), "%s", s ? s->pattern : "");
    h->per_connection = s ? s->per_connection : 0;
    if (s)
        flow_set_limits(&h->flow, s->concurrency, s->rate_n, s->rate_secs);
    else /* no limit now: its running connections still end on it */
        flow_set_limits(&h->flow, UINT_MAX, 0, 0);
}

/* mxhosts_load - see mxhost.h */
struct mxhosts *mxhosts_load(const struct config *cfg)
{
    struct mxhosts *t = xcalloc(1, sizeof(*t));

    mxhosts_sections(t, cfg);
    t->cfg = cfg;
    return t;
}

/* mxhosts_free - see mxhost.h */
void mxhosts_free(struct mxhosts *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nst; i++) {
        flow_free(&t->st[i]->flow);
        free(t->st[i]);
    }
    free(t->st);
    free(t->sec);
    free(t);
}

/* mxhosts_reconfigure - see mxhost.h */
void mxhosts_reconfigure(struct mxhosts *t, const struct config *cfg)
{
    if (!t || (cfg && cfg == t->cfg))
        return; /* the start's own (reload_init): nothing to read again */
    t->cfg = cfg;
    free(t->sec);
    mxhosts_sections(t, cfg);
    for (size_t i = 0; i < t->nst; i++)
        mxhost_limits(t, t->st[i]);
}

/* mxhosts_get - see mxhost.h */
struct mxhost *mxhosts_get(struct mxhosts *t, const char *host)
{
    char name[256];
    struct mxhost *h;

    if (!t || mxhost_canon(host, name, sizeof(name)) < 0)
        return NULL;
    for (size_t i = 0; i < t->nst; i++)
        if (strcmp(t->st[i]->name, name) == 0)
            return t->st[i]->section[0] ? t->st[i] : NULL;
    if (!mxhosts_section_for(t, name))
        return NULL; /* no state for a host without limits: the table stays small */
    h = xcalloc(1, sizeof(*h));
    memcpy(h->name, name, sizeof(name));
    mxhost_limits(t, h);
    t->st = xreallocarray(t->st, t->nst + 1, sizeof(*t->st));
    t->st[t->nst++] = h;
    return h;
}

size_t mxhosts_count(const struct mxhosts *t)
{
    return t ? t->nst : 0;
}

const struct mxhost *mxhosts_at(const struct mxhosts *t, size_t i)
{
    return t && i < t->nst ? t->st[i] : NULL;
}
