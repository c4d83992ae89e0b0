/*
 * config.h - the configuration file (libconfuse), assembled from the sections
 * that the modules declare. The core knows only its own root scalars
 * (hostname, user, directories, domains, relay networks, log level); every
 * other section - its options, defaults and bounds - is declared next to the
 * code that reads it (a struct config_section) and handed to config_load by
 * the top layer (src/modules.c). Modules read their typed settings from the
 * parsed tree (config->raw).
 */
#ifndef MX_CORE_CONFIG_H
#define MX_CORE_CONFIG_H

#include <stdio.h>
#include <stddef.h>

#include "core/cidr.h"

typedef struct cfg_t cfg_t;
typedef struct cfg_opt_t cfg_opt_t;

/* Where errors and warnings go: every message is "path:line: message". */
struct config_diag {
    FILE *out;
    const char *path;
    unsigned errors;
    unsigned warnings;
};

/* config_error - an error tied to line (0 when it is not tied to a line) */
void config_error(struct config_diag *d, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* config_error_located - an error whose text already starts with "file:line: " (a list
 * file's line, found by the module that read it) */
void config_error_located(struct config_diag *d, const char *msg);
/* config_warn - "path:line: warning: message": a setting that has no effect */
void config_warn(struct config_diag *d, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An integer option's range, checked for every value the file sets by one
 * validator. option is relative to the section ("delay", or "zone|weight"). */
struct config_bound {
    const char *option;
    long min;
    long max;
};

/* A single option whose values need more than a range (libconfuse validator;
 * it reports with cfg_error and returns 0 so that parsing goes on). */
struct config_validator {
    const char *option;
    int (*fn)(cfg_t *sec, cfg_opt_t *opt);
};

struct config_section {
    const char *name;
    cfg_opt_t *opts;
    int flags;                                 /* libconfuse: CFGF_MULTI | CFGF_TITLE ... */
    const struct config_bound *bounds;         /* {NULL}-terminated, or NULL */
    const struct config_validator *validators; /* {NULL}-terminated, or NULL */
    /* check - after parsing: relations between options (of this section or
     * others: it sees the whole tree). May be NULL */
    void (*check)(cfg_t *root, struct config_diag *d);
};

#define CONFIG_ROOT_OPTS                                                                           \
    9 /* hostname, user, spool_dir, state_dir, log_level, domains,                                 \
         relay_networks, authserv_id, pidfile (read by src/main.c from raw) */

struct config {
    char *path;
    cfg_t *raw; /* the parsed libconfuse tree: modules read their own sections */
    char *hostname;
    char *authserv_id; /* Authentication-Results (RFC 8601): ours; default the hostname */
    char *user;        /* NULL: do not change user */
    char *spool_dir;   /* absolute */
    char *state_dir;   /* absolute */
    char *log_level;   /* "info" or "debug" */
    char **domains;
    size_t ndomains;
    struct cidr *relay_networks;
    size_t nrelay_networks;
    cfg_opt_t *opts;                  /* the assembled option table (kept while raw lives) */
    int root_lines[CONFIG_ROOT_OPTS]; /* where each root option was set (0: default) */
};

/*
 * config_load - parse path with the core's root options plus sections (a
 * NULL-terminated list), check every bound and every section's check. Each
 * error goes to errout as "path:line: message" (line 0 when the error is not
 * tied to a line); every error is reported, not just the first. Returns
 * NULL if there was any error.
 */
struct config *config_load(const char *path, const struct config_section *const *sections,
                           FILE *errout);
void config_free(struct config *cfg);

/* config_is_local_domain - is domain one of `domains` (case-insensitive) */
int config_is_local_domain(const struct config *cfg, const char *domain);
/* config_uint - an integer option of sec whose bound (struct config_bound) keeps it
 * within 0..INT_MAX, as unsigned */
unsigned config_uint(cfg_t *sec, const char *name);

/* config_line - the line that set root option name (hostname, user, ...), 0 if none */
int config_line(const struct config *cfg, const char *name);
/* config_control_socket - "<state_dir>/control.sock" into dst */
void config_control_socket(const struct config *cfg, char *dst, size_t dstlen);

/* config_strlist - a copy of a string list option (NULL-terminated, *n entries) */
char **config_strlist(cfg_t *sec, const char *name, size_t *n);
/* config_strlist_free - free what config_strlist made */
void config_strlist_free(char **v, size_t n);

#endif
