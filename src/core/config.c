/* config.c - the configuration file: the core's root options plus the modules' sections */
#include "core/fsutil.h"
#include "core/config.h"
#include "core/xmalloc.h"

#include <confuse.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* libconfuse's error and validation callbacks carry no user data: the load in
 * progress (one at a time, at start) is here */
static struct config_diag *config_cur;
static const struct config_section *const *config_cur_sections;
static int config_cur_lines[CONFIG_ROOT_OPTS];

/* config_vreport - one "path:line: [warning: ]message" line */
static void config_vreport(struct config_diag *d, int line, const char *kind, const char *fmt,
                           va_list ap)
{
    fprintf(d->out, "%s:%d: %s", d->path, line, kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
}

void config_error(struct config_diag *d, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_vreport(d, line, "", fmt, ap);
    va_end(ap);
    d->errors++;
}

void config_error_located(struct config_diag *d, const char *msg)
{
    fprintf(d->out, "%s\n", msg);
    d->errors++;
}

void config_warn(struct config_diag *d, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_vreport(d, line, "warning: ", fmt, ap);
    va_end(ap);
    d->warnings++;
}

/* config_errfunc - every libconfuse error as "path:line: message" */
static void config_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
    struct config_diag stray = {.out = stderr, .path = cfg && cfg->filename ? cfg->filename : "?"};
    struct config_diag *d = config_cur ? config_cur : &stray; /* a lookup after the load */

    config_vreport(d, cfg ? cfg->line : 0, "", fmt, ap);
    d->errors++;
}

/* config_find_bound - the bound of option opt in section sec (of the load in progress):
 * the last two parts of "section|option" (or "section|sub|option") are sec's name and opt's */
static const struct config_bound *config_find_bound(cfg_t *sec, cfg_opt_t *opt)
{
    char want[256], path[256];
    size_t wl = (size_t)snprintf(want, sizeof(want), "|%s|%s", sec->name, opt->name);

    for (size_t i = 0; config_cur_sections[i]; i++) {
        const struct config_section *s = config_cur_sections[i];
        for (const struct config_bound *b = s->bounds; b && b->option; b++) {
            size_t pl = (size_t)snprintf(path, sizeof(path), "|%s|%s", s->name, b->option);
            if (pl >= wl && pl < sizeof(path) && strcmp(path + pl - wl, want) == 0)
                return b;
        }
    }
    return NULL;
}

/* config_valid_bound - the one range check of every bounded integer option */
static int config_valid_bound(cfg_t *sec, cfg_opt_t *opt)
{
    const struct config_bound *b = config_find_bound(sec, opt);

    for (unsigned i = 0; b && i < opt->nvalues; i++) {
        long v = cfg_opt_getnint(opt, i);
        if (v < b->min || v > b->max) {
            if (sec->title)
                cfg_error(sec, "%s %s: %s must be between %ld and %ld", sec->name, sec->title,
                          opt->name, b->min, b->max);
            else
                cfg_error(sec, "%s: %s must be between %ld and %ld", sec->name, opt->name, b->min,
                          b->max);
            return 0; /* reported; keep parsing to list every error */
        }
    }
    return 0;
}

/* config_valid_log_level - info or debug */
static int config_valid_log_level(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strcmp(v, "info") && strcmp(v, "debug"))
        cfg_error(cfg, "log_level must be \"info\" or \"debug\"");
    return 0;
}

/* config_valid_networks - each relay network is a CIDR */
static int config_valid_networks(cfg_t *cfg, cfg_opt_t *opt)
{
    struct cidr c;

    for (unsigned i = 0; i < opt->nvalues; i++) {
        if (cidr_parse(cfg_opt_getnstr(opt, i), &c) < 0) {
            cfg_error(cfg, "relay_networks: bad network \"%s\"", cfg_opt_getnstr(opt, i));
            return 0; /* reported; keep parsing to list every error */
        }
    }
    return 0;
}

/* config_note_line - remember where a root option was set (libconfuse keeps
 * no line per option), then apply that option's own validator */
static int config_note_line(cfg_t *cfg, cfg_opt_t *opt);

/* The core's own root options; every other section comes from a module. */
static const cfg_opt_t config_root_opts[] = {
    CFG_STR("hostname", NULL, CFGF_NODEFAULT),       CFG_STR("user", NULL, CFGF_NODEFAULT),
    CFG_STR("spool_dir", "var/spool", CFGF_NONE),    CFG_STR("state_dir", "var/state", CFGF_NONE),
    CFG_STR("log_level", "info", CFGF_NONE),         CFG_STR_LIST("domains", "{}", CFGF_NONE),
    CFG_STR_LIST("relay_networks", "{}", CFGF_NONE), CFG_STR("authserv_id", NULL, CFGF_NODEFAULT),
    CFG_STR("pidfile", NULL, CFGF_NODEFAULT),
};
#define CONFIG_NROOT (sizeof(config_root_opts) / sizeof(config_root_opts[0]))
_Static_assert(CONFIG_NROOT == CONFIG_ROOT_OPTS, "CONFIG_ROOT_OPTS counts the root options");

/* config_root_index - the slot of a root option, or -1 */
static int config_root_index(const char *name)
{
    for (size_t i = 0; i < CONFIG_NROOT; i++)
        if (strcmp(config_root_opts[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* config_valid_authserv_id - it goes into a header field of every message: a
 * host-name-like token (letters, digits, '.', '-', '_'), as RFC 8601 2.5 advises */
static int config_valid_authserv_id(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);
    size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");

    if (v[n] != '\0' || n > 253)
        cfg_error(cfg, "authserv_id must be a host name (letters, digits, '.', '-', '_')");
    return 0; /* reported; keep parsing to list every error */
}

static int config_note_line(cfg_t *cfg, cfg_opt_t *opt)
{
    int i = config_root_index(opt->name);

    if (i >= 0)
        config_cur_lines[i] = cfg->line;
    if (strcmp(opt->name, "relay_networks") == 0)
        return config_valid_networks(cfg, opt);
    if (strcmp(opt->name, "log_level") == 0)
        return config_valid_log_level(cfg, opt);
    if (strcmp(opt->name, "authserv_id") == 0)
        return config_valid_authserv_id(cfg, opt);
    return 0;
}

int config_line(const struct config *c, const char *name)
{
    int i = config_root_index(name);

    return i >= 0 ? c->root_lines[i] : 0;
}

/* config_assemble - root options, then one CFG_SEC per module section, then CFG_END */
static cfg_opt_t *config_assemble(const struct config_section *const *sections)
{
    size_t n = 0;
    cfg_opt_t *opts;

    while (sections[n])
        n++;
    opts = xcalloc(CONFIG_NROOT + n + 1, sizeof(*opts));
    memcpy(opts, config_root_opts, sizeof(config_root_opts));
    for (size_t i = 0; i < n; i++)
        opts[CONFIG_NROOT + i] = (cfg_opt_t)CFG_SEC(sections[i]->name, sections[i]->opts,
                                                    (cfg_flag_t)sections[i]->flags);
    opts[CONFIG_NROOT + n] = (cfg_opt_t)CFG_END();
    return opts;
}

/* config_set_validators - hook the checks that must report the offending line */
static void config_set_validators(cfg_t *root, const struct config_section *const *sections)
{
    char path[256];

    for (size_t i = 0; i < CONFIG_NROOT; i++)
        cfg_set_validate_func(root, config_root_opts[i].name, config_note_line);
    for (size_t i = 0; sections[i]; i++) {
        const struct config_section *s = sections[i];
        for (const struct config_bound *b = s->bounds; b && b->option; b++) {
            snprintf(path, sizeof(path), "%s|%s", s->name, b->option);
            cfg_set_validate_func(root, path, config_valid_bound);
        }
        for (const struct config_validator *v = s->validators; v && v->option; v++)
            cfg_set_validate_func(root, v->option, v->fn);
    }
}

char **config_strlist(cfg_t *cfg, const char *name, size_t *n)
{
    char **v;

    *n = cfg_size(cfg, name);
    v = xcalloc(*n + 1, sizeof(*v));
    for (size_t i = 0; v && i < *n; i++)
        v[i] = xstrdup(cfg_getnstr(cfg, name, (unsigned)i));
    return v;
}

void config_strlist_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* config_take_root - top-level scalars and lists */
static void config_take_root(struct config *c, cfg_t *root)
{
    char host[256];
    size_t n;
    char **nets;

    if (cfg_getstr(root, "hostname")) {
        c->hostname = xstrdup(cfg_getstr(root, "hostname"));
    } else {
        if (gethostname(host, sizeof(host)) < 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        c->hostname = xstrdup(host);
    }
    c->authserv_id = xstrdup(cfg_getstr(root, "authserv_id") && *cfg_getstr(root, "authserv_id")
                                 ? cfg_getstr(root, "authserv_id")
                                 : c->hostname);
    if (cfg_getstr(root, "user") && *cfg_getstr(root, "user"))
        c->user = xstrdup(cfg_getstr(root, "user"));
    c->spool_dir = fs_abspath(cfg_getstr(root, "spool_dir"));
    c->state_dir = fs_abspath(cfg_getstr(root, "state_dir"));
    c->log_level = xstrdup(cfg_getstr(root, "log_level"));
    c->domains = config_strlist(root, "domains", &c->ndomains);
    for (size_t i = 0; i < c->ndomains; i++)
        for (char *p = c->domains[i]; *p; p++)
            *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    nets = config_strlist(root, "relay_networks", &n);
    c->relay_networks = xcalloc(n ? n : 1, sizeof(*c->relay_networks));
    c->nrelay_networks = n;
    for (size_t i = 0; i < n; i++)
        cidr_parse(nets[i], &c->relay_networks[i]); /* validated while parsing */
    config_strlist_free(nets, n);
}

/* config_parse - the tree, or NULL after reporting why */
static cfg_t *config_parse(const char *path, cfg_opt_t *opts,
                           const struct config_section *const *sections, struct config_diag *d)
{
    cfg_t *root = cfg_init(opts, CFGF_NONE);
    int rc;

    if (!root)
        return NULL;
    config_cur = d;
    config_cur_sections = sections;
    memset(config_cur_lines, 0, sizeof(config_cur_lines));
    cfg_set_error_function(root, config_errfunc);
    config_set_validators(root, sections);
    rc = cfg_parse(root, path);
    if (rc == CFG_FILE_ERROR) {
        config_error(d, 0, "cannot read: %s", strerror(errno));
        cfg_free(root);
        return NULL;
    }
    if (rc != CFG_SUCCESS) {
        cfg_free(root);
        return NULL;
    }
    /* relations between options, every section's, so that all errors are listed (the
     * tree is whole: a value out of its bound was reported but stored) */
    for (size_t i = 0; sections[i]; i++)
        if (sections[i]->check)
            sections[i]->check(root, d);
    return root;
}

struct config *config_load(const char *path, const struct config_section *const *sections,
                           FILE *errout)
{
    struct config_diag d = {.out = errout, .path = path};
    cfg_opt_t *opts = config_assemble(sections);
    struct config *c;
    cfg_t *root;

    if (!opts) {
        config_error(&d, 0, "out of memory");
        return NULL;
    }
    root = config_parse(path, opts, sections, &d);
    config_cur = NULL;
    config_cur_sections = NULL;
    if (!root || d.errors) {
        if (root)
            cfg_free(root);
        free(opts);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->path = fs_abspath(path);
    c->raw = root;
    c->opts = opts;
    memcpy(c->root_lines, config_cur_lines, sizeof(c->root_lines));
    config_take_root(c, root);
    return c;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    config_strlist_free(c->domains, c->ndomains);
    free(c->relay_networks);
    free(c->path);
    free(c->hostname);
    free(c->authserv_id);
    free(c->user);
    free(c->spool_dir);
    free(c->state_dir);
    free(c->log_level);
    if (c->raw)
        cfg_free(c->raw);
    free(c->opts);
    free(c);
}

int config_is_local_domain(const struct config *c, const char *domain)
{
    for (size_t i = 0; i < c->ndomains; i++)
        if (strcasecmp(c->domains[i], domain) == 0)
            return 1;
    return 0;
}

void config_control_socket(const struct config *c, char *dst, size_t dstlen)
{
    snprintf(dst, dstlen, "%s/control.sock", c->state_dir);
}

/* config_uint - see config.h */
unsigned config_uint(cfg_t *sec, const char *name)
{
    return (unsigned)cfg_getint(sec, name);
}
