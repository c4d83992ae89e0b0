/* routes.c - the route sections and the table made of them */
#include "relay/routes.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/xmalloc.h"
#include "mail/address.h"

struct routes {
    struct routes_entry *e;
    size_t n;
};

/* routes_valid_to - "to" must be a route target */
static int routes_valid_to(cfg_t *cfg, cfg_opt_t *opt)
{
    struct route_target t;
    char err[256];

    if (route_target_parse(cfg_opt_getnstr(opt, 0), &t, err, sizeof(err)) < 0)
        cfg_error(cfg, "route %s: %s", cfg_title(cfg), err);
    return 0; /* reported; keep parsing to list every error */
}

/* routes_valid_domains - each of `domains` must be a domain name (they are routed here) */
static int routes_valid_domains(cfg_t *cfg, cfg_opt_t *opt)
{
    struct addr a;
    char probe[SMTP_DOMAIN_MAX + 16];

    for (unsigned i = 0; i < opt->nvalues; i++) {
        snprintf(probe, sizeof(probe), "x@%s", cfg_opt_getnstr(opt, i));
        if (addr_parse(probe, 1, &a) != ADDR_OK || a.is_literal) {
            cfg_error(cfg, "domains: bad domain \"%s\"", cfg_opt_getnstr(opt, i));
            return 0; /* reported; keep parsing to list every error */
        }
    }
    return 0;
}

/* routes_match - the ".parent" pattern rule of routes_find, over the tree */
static int routes_covered(cfg_t *root, const char *domain)
{
    for (unsigned i = 0; i < cfg_size(root, "route"); i++) {
        const char *pat = cfg_title(cfg_getnsec(root, "route", i));
        if (strcmp(pat, "*") == 0 || strcasecmp(pat, domain) == 0 ||
            (pat[0] == '.' && addr_domain_match(domain, pat)))
            return 1;
    }
    return 0;
}

/* routes_check - "to" is required; every domain of `domains` must have a route */
static void routes_check(cfg_t *root, struct config_diag *d)
{
    for (unsigned i = 0; i < cfg_size(root, "route"); i++) {
        cfg_t *s = cfg_getnsec(root, "route", i);
        struct route_target t;
        char err[256];
        if (!cfg_getstr(s, "to"))
            config_error(d, s->line, "route %s: \"to\" is required", cfg_title(s));
        else if (cfg_getbool(s, "create") &&
                 route_target_parse(cfg_getstr(s, "to"), &t, err, sizeof(err)) == 0 &&
                 t.kind != ROUTE_MAILDIR)
            config_error(d, s->line, "route %s: create is for maildir routes", cfg_title(s));
    }
    for (unsigned i = 0; i < cfg_size(root, "domains"); i++)
        if (!routes_covered(root, cfg_getnstr(root, "domains", i)))
            config_error(d, 0, "domain %s has no route", cfg_getnstr(root, "domains", i));
}

static cfg_opt_t routes_opts[] = {
    CFG_STR("to", NULL, CFGF_NODEFAULT),
    CFG_BOOL("create", cfg_false, CFGF_NONE), /* maildir: make unknown mailboxes */
    CFG_END(),
};

static const struct config_validator routes_validators[] = {
    {"route|to", routes_valid_to},
    {"domains", routes_valid_domains},
    {NULL, NULL},
};

const struct config_section routes_section = {
    .name = "route",
    .opts = routes_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
    .validators = routes_validators,
    .check = routes_check,
};

struct routes *routes_load(const struct config *cfg)
{
    struct routes *rt = xcalloc(1, sizeof(*rt));
    char err[256];

    rt->e = xcalloc(cfg_size(cfg->raw, "route") + 1, sizeof(*rt->e));
    for (unsigned i = 0; i < cfg_size(cfg->raw, "route"); i++) {
        cfg_t *s = cfg_getnsec(cfg->raw, "route", i);
        struct routes_entry *e = &rt->e[rt->n];
        if (!cfg_getstr(s, "to") ||
            route_target_parse(cfg_getstr(s, "to"), &e->target, err, sizeof(err)) < 0)
            continue; /* reported by config_load */
        e->create = cfg_getbool(s, "create");
        e->domain = xstrdup(cfg_title(s));
        rt->n++;
    }
    return rt;
}

void routes_free(struct routes *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->n; i++)
        free(rt->e[i].domain);
    free(rt->e);
    free(rt);
}

size_t routes_count(const struct routes *rt)
{
    return rt ? rt->n : 0;
}

const struct routes_entry *routes_at(const struct routes *rt, size_t i)
{
    return rt && i < rt->n ? &rt->e[i] : NULL;
}

const struct routes_entry *routes_find(const struct routes *rt, const char *domain)
{
    const struct routes_entry *best = NULL, *star = NULL;

    for (size_t i = 0; rt && i < rt->n; i++) {
        const char *pat = rt->e[i].domain;
        if (strcmp(pat, "*") == 0)
            star = &rt->e[i];
        else if (strcasecmp(pat, domain) == 0)
            return &rt->e[i];
        else if (pat[0] == '.' && addr_domain_match(domain, pat) &&
                 (!best || strlen(pat) > strlen(best->domain)))
            best = &rt->e[i];
    }
    return best ? best : star;
}
