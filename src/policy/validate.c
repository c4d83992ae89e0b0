/* validate.c - check names, every check's init, and settings that can have no effect */
#include "policy/validate.h"

#include <confuse.h>
#include <ctype.h>
#include <string.h>

#include "core/config.h"
#include "policy/policy.h"
#include "policy/registry.h"

#define VALIDATE_MAX_CHECKS 64

/* validate_located - does msg start with "file:line: " (a list file's line, or the config's) */
static int validate_located(const char *msg)
{
    const char *p = strstr(msg, ": ");

    if (!p || p == msg)
        return 0;
    for (const char *q = msg; q < p; q++)
        if (*q == ' ')
            return 0;
    while (p > msg && isdigit((unsigned char)p[-1]))
        p--;
    return p > msg + 1 && p[-1] == ':' && isdigit((unsigned char)*p);
}

/* validate_runs - does listener l run the check called name */
static int validate_runs(cfg_t *l, const char *name)
{
    for (unsigned i = 0; i < cfg_size(l, "checks"); i++)
        if (strcmp(cfg_getnstr(l, "checks", i), name) == 0)
            return 1;
    return 0;
}

/* validate_anyone_runs - does any listener run it */
static int validate_anyone_runs(cfg_t *root, const char *name)
{
    for (unsigned i = 0; i < cfg_size(root, "listen"); i++)
        if (validate_runs(cfg_getnsec(root, "listen", i), name))
            return 1;
    return 0;
}

/* validate_line - where to point at a check's trouble: its section, else the listener */
static int validate_line(cfg_t *root, const struct policy_check_ops *ops, int listener_line)
{
    cfg_t *sec;

    if (!ops->section || cfg_size(root, ops->section->name) == 0)
        return listener_line;
    sec = cfg_getnsec(root, ops->section->name, 0);
    return sec && sec->line ? sec->line : listener_line;
}

/* validate_report - an init error as "file:line: message". A line of a list or rule
 * file stays as it is; a file that cannot be opened (its line 0) and a message with
 * no place point at the line of the check's section, where the operator fixes it */
static void validate_report(struct config_diag *d, const char *cfgpath, const char *check, int line,
                            char *err)
{
    char *zero = strstr(err, ":0: ");
    size_t flen = zero ? (size_t)(zero - err) : 0;
    int at_zero = zero && flen > 0 && !memchr(err, ' ', flen);

    if (!at_zero && validate_located(err)) {
        config_error_located(d, err);
    } else if (!at_zero) {
        config_error(d, line, "%s", err);
    } else if (flen == strlen(cfgpath) && strncmp(err, cfgpath, flen) == 0) {
        config_error(d, line, "%s", zero + 4); /* our own file, no line known */
    } else {
        *zero = '\0';
        config_error(d, line, "%s: %s: %s", check, err, zero + 4);
    }
}

/* validate_init - one check initialised (and freed) as policy_new would */
static void validate_init(const struct policy_env *env, const struct policy_check_ops *ops,
                          int listener_line, struct config_diag *d)
{
    char err[512] = "";
    void *state = NULL;

    if (!ops->init)
        return;
    if (ops->init(env, &state, err, sizeof(err)) < 0) {
        validate_report(d, env->cfg->path, ops->name,
                        validate_line(env->cfg->raw, ops, listener_line), err);
        return;
    }
    if (ops->free)
        ops->free(state);
}

/* validate_checks - every name known; every distinct check initialised once */
static void validate_checks(const struct policy_env *env, struct config_diag *d)
{
    cfg_t *root = env->cfg->raw;
    const struct policy_check_ops *done[VALIDATE_MAX_CHECKS];
    size_t ndone = 0;

    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *l = cfg_getnsec(root, "listen", i);
        for (unsigned j = 0; j < cfg_size(l, "checks"); j++) {
            const char *name = cfg_getnstr(l, "checks", j);
            const struct policy_check_ops *ops = policy_check_find(name);
            size_t k = 0;
            if (!ops) {
                config_error(d, l->line, "listen %s: unknown check \"%s\"", cfg_title(l), name);
                continue;
            }
            while (k < ndone && done[k] != ops)
                k++;
            if (k < ndone || ndone == VALIDATE_MAX_CHECKS)
                continue;
            done[ndone++] = ops;
            validate_init(env, ops, l->line, d);
        }
    }
}

/* validate_marks - s25r marks clients for greylist; greylist's only_suspicious needs the mark */
static void validate_marks(cfg_t *root, struct config_diag *d)
{
    cfg_t *s25r = cfg_getsec(root, "s25r"), *gl = cfg_getsec(root, "greylist");
    int marks = strcmp(cfg_getstr(s25r, "action"), "greylist") == 0;
    int only = cfg_getbool(gl, "only_suspicious") == cfg_true;

    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *l = cfg_getnsec(root, "listen", i);
        int runs_s25r = validate_runs(l, "s25r"), runs_gl = validate_runs(l, "greylist");
        if (runs_s25r && marks && !runs_gl)
            config_warn(d, l->line,
                        "listen %s: s25r action \"greylist\" has no effect: the listener does "
                        "not run greylist (flagged clients pass)",
                        cfg_title(l));
        if (runs_gl && only && !(runs_s25r && marks))
            config_warn(d, gl->line,
                        "listen %s: greylist only_suspicious has no effect without s25r "
                        "(action \"greylist\") on the listener: no client is greylisted",
                        cfg_title(l));
    }
}

/* validate_unused - a check's section that no listener runs */
static void validate_unused(cfg_t *root, struct config_diag *d)
{
    const struct config_section *s;

    for (size_t i = 0; (s = policy_section(i)) != NULL; i++) {
        if (cfg_size(root, s->name) == 0 || cfg_getnsec(root, s->name, 0)->line == 0)
            continue; /* not in the file: the defaults */
        if (!validate_anyone_runs(root, s->name))
            config_warn(d, cfg_getnsec(root, s->name, 0)->line,
                        "%s section has no effect: no listener runs the %s check", s->name,
                        s->name);
    }
}

/* validate_score_spf - spf has an action per result; any of them may score */
static void validate_score_spf(cfg_t *root, struct config_diag *d)
{
    static const char *const results[] = {"pass", "fail",      "softfail", "neutral",
                                          "none", "temperror", "permerror"};
    cfg_t *sec = cfg_getsec(root, "spf");

    if (!sec || !validate_anyone_runs(root, "spf"))
        return;
    for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
        if (strcmp(cfg_getstr(sec, results[i]), "score") == 0)
            config_warn(d, sec->line,
                        "spf %s = \"score\" has no effect: nothing reads the score yet "
                        "(no check refuses on it)",
                        results[i]);
}

/* validate_score - SCORE verdicts add to a score that nothing reads yet */
static void validate_score(cfg_t *root, struct config_diag *d)
{
    static const char *const scorers[] = {"s25r", "dnsbl"};

    for (size_t i = 0; i < sizeof(scorers) / sizeof(scorers[0]); i++) {
        cfg_t *sec = cfg_getsec(root, scorers[i]);
        if (strcmp(cfg_getstr(sec, "action"), "score") == 0 &&
            validate_anyone_runs(root, scorers[i]))
            config_warn(d, sec->line,
                        "%s action \"score\" has no effect: nothing reads the score yet "
                        "(no check refuses on it)",
                        scorers[i]);
    }
    validate_score_spf(root, d);
}

void policy_validate(const struct policy_env *env, struct config_diag *d)
{
    struct policy_env e = *env;

    e.checking = 1;
    validate_checks(&e, d);
    validate_marks(env->cfg->raw, d);
    validate_unused(env->cfg->raw, d);
    validate_score(env->cfg->raw, d);
}
