/*
 * s25r.c - the "s25r" check: Selective SMTP Rejection (S25R, Yasuhito Asami,
 * https://www.gabacho-net.jp/en/anti-spam/). Spam comes mostly from end-user
 * and dynamically addressed hosts, whose reverse names follow a few generic
 * patterns; real mail servers rarely look like that and retry when refused
 * temporarily. So a client whose name fits a pattern is greylisted (the
 * default), refused temporarily or for good, or scored.
 *
 * Configuration:
 *   s25r { action = "greylist" | "tempfail" | "reject" | "score"   (default greylist)
 *          rules = FILE  exceptions = FILE  no_ptr = true  unconfirmed = true  score = 5 }
 *
 * Rules: the six published rules are compiled in (conf/s25r.rules is the
 * same text). A rules FILE adds the operator's own; a line naming a built-in
 * rule (rule1..rule6) replaces it. One rule per line:  NAME  REGEX
 * NAME is [A-Za-z0-9_.-]{1,47} ("no-ptr" and "unconfirmed" are reserved);
 * REGEX is PCRE2, the rest of the line, optionally written /like this/,
 * matched case-insensitively (as Postfix regexp tables) against the client's
 * forward-confirmed name. The first rule that matches fires.
 * Two more rules of their own: "no-ptr" (no PTR record; when no_ptr) and
 * "unconfirmed" (a PTR whose name does not resolve back to the client; when
 * unconfirmed).
 *
 * Exceptions FILE, one entry per line, exempting the client from every rule:
 *   192.0.2.25  or  198.51.100.0/24  or  2001:db8::/48   the client address
 *   /^mail[0-9]*\.example\.net$/                         its confirmed name
 * (a name that is not forward-confirmed is forgeable and never exempts).
 * In both files blank lines and lines starting with '#' are ignored; an
 * error is "FILE:LINE: message". Both are re-read on reload (SIGHUP); on an
 * error the old rules and exceptions stay in force and a warning is logged.
 *
 * Verdicts at CONNECT (reason "rule=RULE name=NAME", NAME "unknown" for no PTR):
 *   greylist  SCORE 0, reason "... action=greylist"; marks cl->suspicious with
 *             suspicious_why "s25r:RULE" for greylist's only_suspicious mode
 *   tempfail  TEMPFAIL 450 4.7.1 "Client host rejected: WHAT, try again later (S25R rule=RULE)"
 *   reject    REJECT 550 5.7.1 "Client host rejected: WHAT (S25R rule=RULE)"
 *   score     SCORE `score`
 * WHAT: "cannot find your hostname" (no-ptr), "cannot confirm your hostname"
 * (unconfirmed), "looks like a dynamic/end-user address" (a name rule).
 * DNS trouble while looking the name up (RDNS_TEMPFAIL): TEMPFAIL 451 4.4.3
 * "Client host name lookup failed; try again later" (reason "dns-tempfail")
 * when dns { on_timeout = "tempfail" }, else no opinion. No resolver: no opinion.
 */

#include "core/fsutil.h"
#include "core/xmalloc.h"
#include "policy/checks.h"
#include "policy/regex.h"

#include <confuse.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"

#define S25R_LINE_MAX 2048  /* a longer line is an error, never silently cut */
#define S25R_NAME_MAX 48    /* rule names, with the NUL */
#define S25R_SHOWN_NAME 100 /* how much of a client name goes into the log reason */

/*
 * The six S25R rules as published (Postfix regexp table, case-insensitive)
 * on https://www.gabacho-net.jp/en/anti-spam/anti-spam-system.html; checked
 * against the transcriptions in milter-manager's manual (its S25R applicable
 * condition) and a PHP port quoting the Japanese original. Keep in step with
 * conf/s25r.rules.
 */
static const struct {
    const char *name, *re;
} s25r_builtin[] = {
    /* lowest label: two digit runs split by non-digits (p1234-ipbf.example.jp) */
    {"rule1", "^[^.]*[0-9][^0-9.]+[0-9].*\\."},
    /* lowest label: five or more digits in a row (host12345.example.net) */
    {"rule2", "^[^.]*[0-9]{5}"},
    /* below the top three labels, the lowest or second-lowest starts with a digit */
    {"rule3", "^([^.]+\\.)?[0-9][^.]*\\.[^.]+\\..+\\.[a-z]"},
    /* lowest ends with a digit; the second has digit runs split by a hyphen */
    {"rule4", "^[^.]*[0-9]\\.[^.]*[0-9]-[0-9]"},
    /* five or more labels, the lowest two both ending with a digit */
    {"rule5", "^[^.]*[0-9]\\.[^.]*[0-9]\\.[^.]+\\..+\\."},
    /* lowest label starts with dhcp, dialup, ppp or xDSL and has a digit */
    {"rule6", "^(dhcp|dialup|ppp|[achrsvx]?dsl)[^.]*[0-9]"},
};

#define S25R_NBUILTIN (sizeof(s25r_builtin) / sizeof(s25r_builtin[0]))

enum s25r_action { S25R_GREYLIST, S25R_TEMPFAIL, S25R_REJECT, S25R_SCORE };

static const char *const s25r_actions[] = {"greylist", "tempfail", "reject", "score"};

struct s25r_rule {
    char name[S25R_NAME_MAX];
    pcre2_code *re;
    unsigned line; /* in the rules file; 0: built in */
};

struct s25r_exc {
    pcre2_code *re; /* a name pattern, or NULL for a network */
    struct cidr net;
    unsigned line;
};

struct s25r_set {
    struct s25r_rule *rule;
    size_t nrule, caprule;
    struct s25r_exc *exc;
    size_t nexc, capexc;
};

struct s25r_state {
    enum s25r_action action;
    int no_ptr, unconfirmed, score;
    int dns_tempfail; /* dns on_timeout = "tempfail" */
    char *rules_path; /* absolute; NULL: the built-in rules only */
    char *exc_path;   /* absolute; NULL: no exceptions */
    struct s25r_set set;
    struct regex_matcher rm;
};

/* the parser of one line of a file, into set */
typedef int (*s25r_line_fn)(struct s25r_set *set, char *line, unsigned lineno, char *msg,
                            size_t msglen);

/* s25r_set_clear - every compiled rule and exception */
static void s25r_set_clear(struct s25r_set *set)
{
    for (size_t i = 0; i < set->nrule; i++)
        pcre2_code_free(set->rule[i].re);
    for (size_t i = 0; i < set->nexc; i++)
        pcre2_code_free(set->exc[i].re);
    free(set->rule);
    free(set->exc);
    memset(set, 0, sizeof(*set));
}

/* s25r_grow - room for one more element of size sz in *v */
static void s25r_grow(void **v, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return;
    *cap = *cap ? *cap * 2 : 16;
    *v = xrealloc(*v, *cap * sz);
}

/* s25r_compile - a case-insensitive PCRE2; /slashes/ around it are optional */
static pcre2_code *s25r_compile(const char *pat, char *msg, size_t msglen)
{
    size_t len = regex_unslash(&pat, strlen(pat));

    return regex_compile(pat, len, msg, msglen);
}

/* s25r_rule_find - the rule called name, or NULL */
static struct s25r_rule *s25r_rule_find(struct s25r_set *set, const char *name)
{
    for (size_t i = 0; i < set->nrule; i++)
        if (strcmp(set->rule[i].name, name) == 0)
            return &set->rule[i];
    return NULL;
}

/* s25r_rule_add - add a rule, or replace the built-in of that name; re is taken over */
static int s25r_rule_add(struct s25r_set *set, const char *name, pcre2_code *re, unsigned line,
                         char *msg, size_t msglen)
{
    struct s25r_rule *r = s25r_rule_find(set, name);

    if (r && r->line) {
        snprintf(msg, msglen, "rule \"%s\" already defined on line %u", name, r->line);
        pcre2_code_free(re);
        return -1;
    }
    if (!r) {
        s25r_grow((void **)&set->rule, set->nrule, &set->caprule, sizeof(*r));
        r = &set->rule[set->nrule++];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", name);
    }
    pcre2_code_free(r->re);
    r->re = re;
    r->line = line;
    return 0;
}

/* s25r_name_ok - rule names go into replies and logs: a short plain token */
static int s25r_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n >= S25R_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
                     "XYZ0123456789_.-") != n)
        return 0;
    return strcmp(name, "no-ptr") != 0 && strcmp(name, "unconfirmed") != 0;
}

/* s25r_rule_line - "NAME REGEX" */
static int s25r_rule_line(struct s25r_set *set, char *line, unsigned lineno, char *msg,
                          size_t msglen)
{
    char *save = NULL, *name = strtok_r(line, " \t", &save);
    char *re = save + strspn(save, " \t"), *end = re + strlen(re);
    pcre2_code *code;

    while (end > re && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    if (!s25r_name_ok(name)) {
        snprintf(msg, msglen,
                 "bad rule name \"%s\" (want [A-Za-z0-9_.-], at most %d, not no-ptr/unconfirmed)",
                 name, S25R_NAME_MAX - 1);
        return -1;
    }
    if (!*re) {
        snprintf(msg, msglen, "rule %s: missing regular expression", name);
        return -1;
    }
    if (!(code = s25r_compile(re, msg, msglen)))
        return -1;
    return s25r_rule_add(set, name, code, lineno, msg, msglen);
}

/* s25r_exc_line - "IP", "IP/BITS" or "/REGEX/" */
static int s25r_exc_line(struct s25r_set *set, char *line, unsigned lineno, char *msg,
                         size_t msglen)
{
    char *save = NULL, *tok = strtok_r(line, " \t", &save);
    struct s25r_exc x = {.line = lineno};
    size_t len = strlen(tok);

    if (strtok_r(NULL, " \t", &save)) {
        snprintf(msg, msglen, "one entry per line: unexpected text after \"%s\"", tok);
        return -1;
    }
    if (tok[0] == '/' && (len < 2 || tok[len - 1] != '/')) {
        snprintf(msg, msglen, "a name pattern is written /regex/");
        return -1;
    }
    if (tok[0] == '/' && !(x.re = s25r_compile(tok, msg, msglen)))
        return -1;
    if (!x.re && cidr_parse(tok, &x.net) < 0) {
        snprintf(msg, msglen, "bad entry \"%s\" (want an address, a network or /regex/)", tok);
        return -1;
    }
    s25r_grow((void **)&set->exc, set->nexc, &set->capexc, sizeof(x));
    set->exc[set->nexc++] = x;
    return 0;
}

/* s25r_take_line - strip the line end; 1 for an entry, 0 to skip, -1 when too long */
static int s25r_take_line(char *line, ssize_t len)
{
    const char *p;

    if (len > S25R_LINE_MAX)
        return -1;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    p = line + strspn(line, " \t");
    return *p != '\0' && *p != '#';
}

/* s25r_read - every line of path through fn; "FILE:LINE: message" on error */
static int s25r_read(const char *path, s25r_line_fn fn, struct s25r_set *set, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, msg[256];
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int rc = 0, take;

    if (!f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((take = s25r_take_line(line, len)) < 0)
            snprintf(msg, sizeof(msg), "line longer than %d octets", S25R_LINE_MAX);
        else if (take > 0 && fn(set, line, lineno, msg, sizeof(msg)) < 0)
            take = -1;
        if (take < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s:%u: read error: %s", path, lineno, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* s25r_load - built-in rules, then the files; on error set is left empty */
static int s25r_load(const struct s25r_state *st, struct s25r_set *set, char *err, size_t errlen)
{
    char msg[256];

    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < S25R_NBUILTIN; i++) {
        pcre2_code *re = s25r_compile(s25r_builtin[i].re, msg, sizeof(msg));
        if (!re || s25r_rule_add(set, s25r_builtin[i].name, re, 0, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "s25r: built-in %s: %s", s25r_builtin[i].name, msg);
            s25r_set_clear(set);
            return -1;
        }
    }
    if ((st->rules_path && s25r_read(st->rules_path, s25r_rule_line, set, err, errlen) < 0) ||
        (st->exc_path && s25r_read(st->exc_path, s25r_exc_line, set, err, errlen) < 0)) {
        s25r_set_clear(set);
        return -1;
    }
    return 0;
}

/* s25r_free - everything the state owns */
static void s25r_free(void *state)
{
    struct s25r_state *st = state;

    if (!st)
        return;
    s25r_set_clear(&st->set);
    free(st->rules_path);
    free(st->exc_path);
    regex_matcher_free(&st->rm);
    free(st);
}

/* s25r_path - an optional file option, made absolute into *out. 0 or -1 */
static int s25r_path(cfg_t *sec, const char *key, char **out, char *err, size_t errlen)
{
    const char *p = sec ? cfg_getstr(sec, key) : NULL;

    if (!p || !*p)
        return 0;
    if (!(*out = fs_abspath(p))) {
        snprintf(err, errlen, "s25r: %s: cannot make \"%s\" absolute", key, p);
        return -1;
    }
    return 0;
}

/* s25r_config - the s25r section and dns on_timeout */
static int s25r_config(struct s25r_state *st, const struct config *cfg, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "s25r"), *dns = cfg_getsec(cfg->raw, "dns");
    const char *action = sec ? cfg_getstr(sec, "action") : "greylist";
    const char *on_timeout = dns ? cfg_getstr(dns, "on_timeout") : NULL;
    size_t i, n = sizeof(s25r_actions) / sizeof(s25r_actions[0]);

    for (i = 0; i < n && !(action && strcmp(action, s25r_actions[i]) == 0); i++)
        ;
    if (i == n) {
        snprintf(err, errlen, "s25r: action must be greylist, tempfail, reject or score");
        return -1;
    }
    st->action = (enum s25r_action)i;
    st->no_ptr = !sec || cfg_getbool(sec, "no_ptr") == cfg_true;
    st->unconfirmed = !sec || cfg_getbool(sec, "unconfirmed") == cfg_true;
    st->score = sec ? (int)cfg_getint(sec, "score") : 5;
    st->dns_tempfail = !on_timeout || strcmp(on_timeout, "pass") != 0;
    if (s25r_path(sec, "rules", &st->rules_path, err, errlen) < 0 ||
        s25r_path(sec, "exceptions", &st->exc_path, err, errlen) < 0)
        return -1;
    return 0;
}

/* s25r_init - configuration, rules and exceptions */
static int s25r_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    struct s25r_state *st = xcalloc(1, sizeof(*st));

    if (regex_matcher_init(&st->rm) < 0) {
        snprintf(err, errlen, "s25r: out of memory");
        s25r_free(st);
        return -1;
    }
    if (s25r_config(st, env->cfg, err, errlen) < 0 || s25r_load(st, &st->set, err, errlen) < 0) {
        s25r_free(st);
        return -1;
    }
    *state = st;
    return 0;
}

/* s25r_reload - SIGHUP: the new rules and exceptions replace the old only when both loaded */
static void s25r_reload(void *state)
{
    struct s25r_state *st = state;
    struct s25r_set fresh;
    char err[512], q[600];

    if (s25r_load(st, &fresh, err, sizeof(err)) < 0) {
        log_warn("event=reload check=s25r status=failed error=%s keeping=old-rules",
                 log_quote(q, sizeof(q), err));
        return;
    }
    s25r_set_clear(&st->set);
    st->set = fresh;
    log_info("event=reload check=s25r status=ok rules=%zu exceptions=%zu", fresh.nrule, fresh.nexc);
}

/* s25r_matches - does re match s; a regex error (match limit) counts as no match */
static int s25r_matches(const struct s25r_state *st, const pcre2_code *re, const char *s)
{
    return regex_match(&st->rm, re, s, "s25r", 0);
}

/* s25r_excepted - is the client exempt: by address always, by name only when confirmed */
static int s25r_excepted(const struct s25r_state *st, const struct policy_client *cl)
{
    for (size_t i = 0; i < st->set.nexc; i++) {
        const struct s25r_exc *x = &st->set.exc[i];
        if (x->re ? (cl->rdns == RDNS_CONFIRMED && cl->rdns_name &&
                     s25r_matches(st, x->re, cl->rdns_name))
                  : cidr_match(&x->net, (const struct sockaddr *)&cl->addr)) {
            log_debug("event=s25r-exception client=%s line=%u", cl->ip, x->line);
            return 1;
        }
    }
    return 0;
}

/* s25r_first_rule - the name of the first rule matching the confirmed name, or NULL */
static const char *s25r_first_rule(const struct s25r_state *st, const char *name)
{
    for (size_t i = 0; i < st->set.nrule; i++)
        if (s25r_matches(st, st->set.rule[i].re, name))
            return st->set.rule[i].name;
    return NULL;
}

/* s25r_shown - a DNS name as a log token: bounded, odd octets as '?' */
static void s25r_shown(char *dst, size_t dstlen, const char *name)
{
    size_t i;

    for (i = 0; name[i] && i + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)name[i];
        dst[i] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    dst[i] = '\0';
}

/* s25r_what - the reply's words for what is wrong with the client */
static const char *s25r_what(const char *rule)
{
    if (strcmp(rule, "no-ptr") == 0)
        return "cannot find your hostname";
    if (strcmp(rule, "unconfirmed") == 0)
        return "cannot confirm your hostname";
    return "looks like a dynamic/end-user address";
}

/* s25r_fire - the verdict of the configured action for rule on the client named name */
static void s25r_fire(const struct s25r_state *st, struct policy_verdict *v, const char *rule,
                      const char *name, struct policy_client *cl)
{
    char shown[S25R_SHOWN_NAME], reason[sizeof(v->reason)];

    s25r_shown(shown, sizeof(shown), name);
    snprintf(reason, sizeof(reason), "rule=%s name=%s%s", rule, shown,
             st->action == S25R_GREYLIST ? " action=greylist" : "");
    switch (st->action) {
    case S25R_GREYLIST:
        /* no refusal here: greylist (only_suspicious) refuses and names the rule */
        cl->suspicious = 1;
        snprintf(cl->suspicious_why, sizeof(cl->suspicious_why), "s25r:%s", rule);
        policy_verdict_set(v, POLICY_SCORE, 0, NULL, reason, "%s", "");
        break;
    case S25R_TEMPFAIL:
        policy_verdict_set(v, POLICY_TEMPFAIL, 450, "4.7.1", reason,
                           "Client host rejected: %s, try again later (S25R rule=%s)",
                           s25r_what(rule), rule);
        break;
    case S25R_REJECT:
        policy_verdict_set(v, POLICY_REJECT, 550, "5.7.1", reason,
                           "Client host rejected: %s (S25R rule=%s)", s25r_what(rule), rule);
        break;
    case S25R_SCORE:
        policy_verdict_set(v, POLICY_SCORE, 0, NULL, "", "%s", "");
        v->score = st->score;
        snprintf(v->reason, sizeof(v->reason), "%s score=%d", reason, st->score);
        break;
    }
}

/* s25r_judge - the verdict for cl at CONNECT */
static void s25r_judge(const struct s25r_state *st, struct policy_verdict *v,
                       struct policy_client *cl)
{
    const char *rule = NULL, *name = "unknown";

    policy_verdict_dunno(v);
    if (s25r_excepted(st, cl))
        return;
    switch (cl->rdns) {
    case RDNS_CONFIRMED:
        if (cl->rdns_name && (rule = s25r_first_rule(st, cl->rdns_name)))
            name = cl->rdns_name;
        break;
    case RDNS_NONE:
        rule = st->no_ptr ? "no-ptr" : NULL;
        break;
    case RDNS_UNCONFIRMED:
        rule = st->unconfirmed ? "unconfirmed" : NULL;
        name = cl->ptr_name ? cl->ptr_name : "unknown";
        break;
    case RDNS_TEMPFAIL:
        if (st->dns_tempfail)
            policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.4.3", "dns-tempfail",
                               "Client host name lookup failed; try again later");
        break;
    case RDNS_UNCHECKED:
        break;
    }
    if (rule)
        s25r_fire(st, v, rule, name, cl);
}

/* s25r_run - always synchronous: the names are already known at CONNECT */
static void s25r_run(void *state, struct policy_job *job, enum policy_stage stage,
                     struct policy_client *cl)
{
    struct policy_verdict v;

    if (stage == POLICY_CONNECT)
        s25r_judge(state, &v, cl);
    else
        policy_verdict_dunno(&v);
    policy_job_done(job, &v);
}

static cfg_opt_t s25r_opts[] = {
    CFG_STR("action", "greylist", CFGF_NONE), /* greylist | tempfail | reject | score */
    CFG_STR("rules", NULL, CFGF_NODEFAULT),   /* default: the shipped six rules */
    CFG_STR("exceptions", NULL, CFGF_NODEFAULT),
    CFG_BOOL("no_ptr", cfg_true, CFGF_NONE),
    CFG_BOOL("unconfirmed", cfg_true, CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),
    CFG_END(),
};

static const struct config_section s25r_section = {
    .name = "s25r",
    .opts = s25r_opts,
};

const struct policy_check_ops policy_check_s25r = {
    .name = "s25r",
    .stages = POLICY_STAGE(POLICY_CONNECT),
    .init = s25r_init,
    .run = s25r_run,
    .cancel = NULL, /* run always decides before it returns: nothing is ever pending */
    .reload = s25r_reload,
    .free = s25r_free,
    .section = &s25r_section,
};
