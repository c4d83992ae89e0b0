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

/* validate_scoring_key - the first option of check's section set to "score" on a
 * listener that runs it, or NULL (s25r and dnsbl: action; spf: a result; sender: a part;
 * dmarc: a policy; dkim: fail or temperror) */
static const char *validate_scoring_key(cfg_t *root, const char *check)
{
    static const char *const spf[] = {"pass", "fail",      "softfail",  "neutral",
                                      "none", "temperror", "permerror", NULL};
    static const char *const sender[] = {"domain_exists", "helo_exists", "from_exists", NULL};
    static const char *const dmarc[] = {"reject", "quarantine", "none", NULL};
    static const char *const dkim[] = {"fail", "temperror", NULL};
    static const char *const action[] = {"action", NULL};
    const char *const *keys = strcmp(check, "spf") == 0      ? spf
                              : strcmp(check, "sender") == 0 ? sender
                              : strcmp(check, "dmarc") == 0  ? dmarc
                              : strcmp(check, "dkim") == 0   ? dkim
                                                             : action;
    cfg_t *sec = cfg_getsec(root, check);

    for (size_t i = 0; sec && keys[i]; i++)
        if (strcmp(cfg_getstr(sec, keys[i]), "score") == 0)
            return keys[i];
    return NULL;
}

/* validate_score - SCORE verdicts count only where the score check reads them */
static void validate_score(cfg_t *root, struct config_diag *d)
{
    static const char *const scorers[] = {"s25r", "dnsbl", "spf", "sender", "dkim", "dmarc"};

    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *l = cfg_getnsec(root, "listen", i);
        if (validate_runs(l, "score"))
            continue;
        for (size_t k = 0; k < sizeof(scorers) / sizeof(scorers[0]); k++) {
            const char *key = validate_scoring_key(root, scorers[k]);
            if (key && validate_runs(l, scorers[k]))
                config_warn(d, cfg_getsec(root, scorers[k])->line,
                            "listen %s: %s %s = \"score\" has no effect: the listener does not "
                            "run the score check",
                            cfg_title(l), scorers[k], key);
        }
    }
}

/* validate_position - where listener l lists check name (its index), or -1 */
static int validate_position(cfg_t *l, const char *name)
{
    for (unsigned i = 0; i < cfg_size(l, "checks"); i++)
        if (strcmp(cfg_getnstr(l, "checks", i), name) == 0)
            return (int)i;
    return -1;
}

/* validate_order - score judges the points of the checks before it; greylist's
 * dkim_pass = "defer" needs the dkim result, which a check after it has not given */
static void validate_order(cfg_t *root, struct config_diag *d)
{
    cfg_t *gl = cfg_getsec(root, "greylist");
    int defer = gl && strcmp(cfg_getstr(gl, "dkim_pass"), "defer") == 0;

    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *l = cfg_getnsec(root, "listen", i);
        int score = validate_position(l, "score"), g = validate_position(l, "greylist");
        if (score >= 0 && (unsigned)score + 1 != cfg_size(l, "checks"))
            config_warn(d, l->line,
                        "listen %s: score is not the last check: the points of the checks "
                        "after it are not judged",
                        cfg_title(l));
        if (defer && g >= 0 &&
            !(validate_position(l, "dkim") >= 0 && validate_position(l, "dkim") < g))
            config_warn(d, gl->line ? gl->line : l->line,
                        "listen %s: greylist dkim_pass = \"defer\" without dkim listed before "
                        "greylist: every deferred message gets 451 at the end of DATA",
                        cfg_title(l));
    }
}

/* validate_sender_spf - own_domains = "spf" needs SPF results: without the spf
 * check every sender of our domains from outside is refused */
static void validate_sender_spf(cfg_t *root, struct config_diag *d)
{
    cfg_t *sec = cfg_getsec(root, "sender");

    if (!sec || strcmp(cfg_getstr(sec, "own_domains"), "spf") != 0)
        return;
    for (unsigned i = 0; i < cfg_size(root, "listen"); i++) {
        cfg_t *l = cfg_getnsec(root, "listen", i);
        if (validate_runs(l, "sender") && !validate_runs(l, "spf"))
            config_warn(d, sec->line ? sec->line : l->line,
                        "listen %s: sender own_domains = \"spf\" without the spf check refuses "
                        "every sender of our domains from outside relay_networks",
                        cfg_title(l));
    }
}

void policy_validate(const struct policy_env *env, struct config_diag *d)
{
    struct policy_env e = *env;

    e.checking = 1;
    validate_checks(&e, d);
    validate_marks(env->cfg->raw, d);
    validate_unused(env->cfg->raw, d);
    validate_score(env->cfg->raw, d);
    validate_sender_spf(env->cfg->raw, d);
    validate_order(env->cfg->raw, d);
}
