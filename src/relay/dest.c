/* dest.c - per-destination limits and the scheduler's feedback (dest.h) */
#include "relay/dest.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "tls/tls.h"

#define DEST_DEFAULT_CONCURRENCY 20
#define DEST_NEXTHOP_CONCURRENCY 100000 /* a relay next hop: the queue's max_deliveries limits */

/* A preset: the limits the named destinations get unless a section says otherwise. */
struct dest_preset {
    const char *preset;
    struct dest_conf conf;
    const char *domains[12];
};

/* The Japanese mobile carriers refuse or delay a sender that opens many connections
 * or sends fast; the large providers tolerate more but throttle bursts (421). */
static const struct dest_preset presets[] = {
    {"carrier",
     {2, 30, 60, 10, DEST_TLS_MAY},
     {"docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "ymobile.ne.jp",
      "emobile.ne.jp", "uqmobile.jp", NULL}},
    {"provider",
     {10, 600, 60, 100, DEST_TLS_MAY},
     {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "outlook.jp",
      "hotmail.co.jp", "yahoo.co.jp", "yahoo.com", "icloud.com", "aol.com", NULL}},
};

struct dests {
    char **name; /* the sections' titles */
    struct dest_conf *conf;
    SSL_CTX **verify; /* per section with tls = "verify": its CAs (ca_file, or the system's) */
    size_t n;
    struct dest **st; /* states, made by dests_get */
    size_t nst;
    const struct config *cfg; /* the configuration the sections come from */
    SSL_CTX **retired;        /* the verify contexts of sections a reload replaced */
    size_t nretired;
};

/* dest_preset_named - the preset called name, or NULL */
static const struct dest_preset *dest_preset_named(const char *name)
{
    for (size_t i = 0; name && i < sizeof(presets) / sizeof(presets[0]); i++)
        if (strcmp(presets[i].preset, name) == 0)
            return &presets[i];
    return NULL;
}

/* dest_preset_of - the preset that lists domain, or NULL */
static const struct dest_preset *dest_preset_of(const char *domain)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        for (size_t j = 0; presets[i].domains[j]; j++)
            if (strcasecmp(presets[i].domains[j], domain) == 0)
                return &presets[i];
    return NULL;
}

/* dest_valid_preset - validator of "preset" */
static int dest_valid_preset(cfg_t *cfg, cfg_opt_t *opt)
{
    if (!dest_preset_named(cfg_opt_getnstr(opt, 0)))
        cfg_error(cfg, "preset: unknown \"%s\" (want carrier or provider)",
                  cfg_opt_getnstr(opt, 0));
    return 0;
}

/* dest_valid_tls - validator of "tls" */
static int dest_valid_tls(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strcmp(v, "may") != 0 && strcmp(v, "encrypt") != 0 && strcmp(v, "verify") != 0)
        cfg_error(cfg, "tls: want \"may\", \"encrypt\" or \"verify\", not \"%s\"", v);
    return 0;
}

static cfg_opt_t dest_opts[] = {
    CFG_STR("tls", "may", CFGF_NONE),
    CFG_STR("ca_file", NULL, CFGF_NODEFAULT),
    CFG_STR("preset", NULL, CFGF_NODEFAULT),
    CFG_INT("concurrency", 0, CFGF_NODEFAULT),
    CFG_STR("rate", NULL, CFGF_NODEFAULT),
    CFG_INT("per_connection", 0, CFGF_NODEFAULT),
    CFG_END(),
};

static const struct config_bound dest_bounds[] = {
    {"concurrency", 1, 1000},
    {"per_connection", 0, 100000},
    {NULL, 0, 0},
};

static const struct config_validator dest_validators[] = {
    {"destination|rate", flow_valid_rate},
    {"destination|preset", dest_valid_preset},
    {"destination|tls", dest_valid_tls},
    {NULL, NULL},
};

const struct config_section dests_section = {
    .name = "destination",
    .opts = dest_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
    .bounds = dest_bounds,
    .validators = dest_validators,
};

/* dest_section_conf - a section over its preset (its own, or the one listing it) */
static void dest_section_conf(cfg_t *s, struct dest_conf *c)
{
    const struct dest_preset *p = cfg_getstr(s, "preset")
                                      ? dest_preset_named(cfg_getstr(s, "preset"))
                                      : dest_preset_of(cfg_title(s));

    *c = p ? p->conf : (struct dest_conf){DEST_DEFAULT_CONCURRENCY, 0, 0, 0, DEST_TLS_MAY};
    if (cfg_size(s, "concurrency"))
        c->concurrency = (unsigned)cfg_getint(s, "concurrency");
    if (cfg_getstr(s, "rate") &&
        flow_parse_rate(cfg_getstr(s, "rate"), &c->rate_n, &c->rate_secs) < 0)
        c->rate_n = c->rate_secs = 0;
    if (cfg_size(s, "per_connection"))
        c->per_connection = (unsigned)cfg_getint(s, "per_connection");
    c->tls = strcmp(cfg_getstr(s, "tls"), "verify") == 0    ? DEST_TLS_VERIFY
             : strcmp(cfg_getstr(s, "tls"), "encrypt") == 0 ? DEST_TLS_ENCRYPT
                                                            : DEST_TLS_MAY;
}

/* dests_sections - read cfg's destination sections into t (empty before) */
static void dests_sections(struct dests *t, const struct config *cfg)
{
    unsigned n = cfg && cfg->raw ? cfg_size(cfg->raw, "destination") : 0;

    t->n = 0;
    t->name = xcalloc(n + 1, sizeof(*t->name));
    t->conf = xcalloc(n + 1, sizeof(*t->conf));
    t->verify = xcalloc(n + 1, sizeof(*t->verify));
    for (unsigned i = 0; i < n; i++) {
        cfg_t *s = cfg_getnsec(cfg->raw, "destination", i);
        char err[512];
        t->name[t->n] = xstrdup(cfg_title(s));
        dest_section_conf(s, &t->conf[t->n]);
        /* no context: its mail waits (deferred), it is never sent unverified */
        if (t->conf[t->n].tls == DEST_TLS_VERIFY &&
            !(t->verify[t->n] = tls_client_verify_ctx(cfg_getstr(s, "ca_file"), err, sizeof(err))))
            log_warn("event=tls_verify_unavailable destination=%s error=%s", log_q(t->name[t->n]),
                     log_q(err));
        t->n++;
    }
}

/* dests_load - see dest.h */
struct dests *dests_load(const struct config *cfg)
{
    struct dests *t = xcalloc(1, sizeof(*t));

    dests_sections(t, cfg);
    t->cfg = cfg;
    return t;
}

/* dests_free - see dest.h */
void dests_free(struct dests *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->name[i]);
        SSL_CTX_free(t->verify[i]);
    }
    free(t->verify);
    for (size_t i = 0; i < t->nretired; i++)
        SSL_CTX_free(t->retired[i]);
    free(t->retired);
    for (size_t i = 0; i < t->nst; i++) {
        flow_free(&t->st[i]->flow);
        free(t->st[i]);
    }
    free(t->name);
    free(t->conf);
    free(t->st);
    free(t);
}

/* dest_conf_for - see dest.h */
void dest_conf_for(const struct dests *t, const char *domain, struct dest_conf *c)
{
    const struct dest_preset *p = dest_preset_of(domain);
    const struct dest_conf *star = NULL;

    for (size_t i = 0; t && i < t->n; i++) {
        if (strcasecmp(t->name[i], domain) == 0) {
            *c = t->conf[i];
            return;
        }
        if (strcmp(t->name[i], "*") == 0)
            star = &t->conf[i];
    }
    if (p)
        *c = p->conf;
    else if (star)
        *c = *star;
    else
        *c = (struct dest_conf){DEST_DEFAULT_CONCURRENCY, 0, 0, 0, DEST_TLS_MAY};
}

/* dest_limits - d's limits and TLS context from t's sections (its state stays) */
static void dest_limits(const struct dests *t, struct dest *d)
{
    if (d->nexthop)
        d->conf = (struct dest_conf){DEST_NEXTHOP_CONCURRENCY, 0, 0, 0, DEST_TLS_MAY};
    else
        dest_conf_for(t, d->name, &d->conf);
    flow_set_limits(&d->flow, d->conf.concurrency, d->conf.rate_n, d->conf.rate_secs);
    d->verify = NULL;
    for (size_t i = 0; !d->nexthop && i < t->n; i++)
        if (t->verify[i] &&
            (strcasecmp(t->name[i], d->name) == 0 || (strcmp(t->name[i], "*") == 0 && !d->verify)))
            d->verify = t->verify[i];
}

/* dests_make - the state named name (made on first use) */
static struct dest *dests_make(struct dests *t, const char *name, int nexthop)
{
    struct dest *d;

    for (size_t i = 0; i < t->nst; i++)
        if (t->st[i]->nexthop == nexthop && strcasecmp(t->st[i]->name, name) == 0)
            return t->st[i];
    d = xcalloc(1, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    for (char *p = d->name; *p && !nexthop; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    d->nexthop = nexthop;
    dest_limits(t, d);
    t->st = xreallocarray(t->st, t->nst + 1, sizeof(*t->st));
    t->st[t->nst++] = d;
    return d;
}

/* dests_get - see dest.h */
struct dest *dests_get(struct dests *t, const char *domain)
{
    return dests_make(t, domain, 0);
}

/* dests_get_nexthop - see dest.h */
struct dest *dests_get_nexthop(struct dests *t, const char *name)
{
    return dests_make(t, name, 1);
}

/* dests_reconfigure - see dest.h */
void dests_reconfigure(struct dests *t, const struct config *cfg)
{
    if (cfg && cfg == t->cfg)
        return; /* the start's own (reload_init): nothing to read again */
    t->cfg = cfg;
    t->retired = xreallocarray(t->retired, t->nretired + t->n + 1, sizeof(*t->retired));
    for (size_t i = 0; i < t->n; i++) {
        free(t->name[i]);
        if (t->verify[i])
            t->retired[t->nretired++] = t->verify[i];
    }
    free(t->name);
    free(t->conf);
    free(t->verify);
    dests_sections(t, cfg);
    for (size_t i = 0; i < t->nst; i++)
        dest_limits(t, t->st[i]);
}

/* dest_unreachable - see dest.h: the first probe after first_wait, doubling to max_wait */
int dest_unreachable(struct dest *d, double now, unsigned first_wait, unsigned max_wait)
{
    int news = d->unreachable_since == 0;

    if (news)
        d->unreachable_since = now;
    d->probe_wait = news || d->probe_wait == 0 ? first_wait : d->probe_wait * 2;
    if (d->probe_wait > max_wait)
        d->probe_wait = max_wait;
    if (d->probe_wait == 0)
        d->probe_wait = 1;
    d->probe_due = now + d->probe_wait;
    return news;
}

/* dest_reachable - see dest.h */
int dest_reachable(struct dest *d)
{
    int news = d->unreachable_since != 0;

    d->reached = 1;
    d->unreachable_since = d->probe_due = 0;
    d->probe_wait = 0;
    return news;
}

size_t dests_count(const struct dests *t)
{
    return t ? t->nst : 0;
}

const struct dest *dests_at(const struct dests *t, size_t i)
{
    return t && i < t->nst ? t->st[i] : NULL;
}

/* dest_may_start - see dest.h */
int dest_may_start(const struct dest *d, double now, double *wait)
{
    return flow_may_start(&d->flow, now, 1, wait);
}

/* dest_started - see dest.h */
void dest_started(struct dest *d, double now)
{
    flow_started(&d->flow, now, 1);
}

/* dest_finished - see dest.h */
void dest_finished(struct dest *d, double now, enum dest_outcome o)
{
    flow_finished(&d->flow, now, (enum flow_outcome)o);
}

/* dest_classify - see dest.h */
enum dest_outcome dest_classify(int code, const char *text)
{
    static const char *const words[] = {"too many", "try later", "try again later",
                                        "rate",     "throttl",   "busy"};

    if (code >= 200 && code < 300)
        return DEST_OK;
    if (code == 421)
        return DEST_THROTTLED;
    if (code >= 400 && code < 500 && text)
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcasestr(text, words[i]))
                return DEST_THROTTLED;
    return DEST_OTHER;
}
