/*
 * access.c - the "access" check: the operator's allow and deny lists for the
 * client address, its rDNS name, the HELO name, the envelope sender and each
 * recipient.
 *
 * Configuration (every file optional; a relative path is taken against the
 * directory the daemon was started in):
 *
 *   access { client = FILE  rdns = FILE  helo = FILE  sender = FILE  rcpt = FILE }
 *
 * Every file has one entry per line:  KEY ACTION [TEXT]
 *   ACTION  "allow" or "deny".
 *   TEXT    the rest of the line: the reply text of a deny (printable ASCII;
 *           default "Access denied"). Ignored for allow.
 * Blank lines and lines whose first non-blank character is '#' are ignored.
 * A malformed line is an error "FILE:LINE: message": at start-up the daemon
 * refuses to run; on reload (SIGHUP) the old lists stay in force and a
 * warning is logged.
 *
 * client  KEY is an IPv4 or IPv6 address or network: 192.0.2.0/24,
 *         2001:db8::/32, 198.51.100.7. The most specific (longest prefix)
 *         match wins; between equal prefixes, the earlier line.
 * rdns    KEY is a PCRE2 regular expression, optionally written /like this/,
 *         without blanks (write \s or \x20). It is matched case-insensitively
 *         against the client's forward-confirmed name, or against the word
 *         "unknown" when the client has none. The first matching line wins.
 * helo    as rdns, against the HELO/EHLO argument.
 * sender  KEY is one of
 *           user@example.test   that address
 *           @example.test       any address at exactly that domain
 *           example.test        any address at that domain or its subdomains
 *           .example.test       any address at a subdomain (not the domain)
 *           <>                  the null sender
 *         compared in the canonical form of mail/address.h: "ceo"@x and
 *         ceo@x are one address, bücher.example and xn--bcher-kva.example
 *         one domain, and the local part too is compared case-insensitively
 *         (an operator who lists ceo@ means CEO@ as well, and a deny list
 *         must not be dodged by capitals). An exact address beats every domain
 *         entry; among domain entries the longest domain wins, then the
 *         @domain form, then the earlier line.
 * rcpt    as sender, against each recipient.
 *
 * Stages: CONNECT (client, then rdns), HELO (helo), MAIL (sender), RCPT (rcpt).
 * allow -> OK; at CONNECT it also marks the client allowlisted, so the
 * pipeline skips every other check for the rest of the session; at RCPT it
 * lets the recipient past a held connect/HELO refusal (policy.h).
 * deny  -> REJECT 554 5.7.1 TEXT, reason "client 192.0.2.0/24",
 * "rdns /regex/", "helo /regex/", "sender @example.test", "rcpt user@x.test".
 */

#include "core/fsutil.h"
#include "core/xmalloc.h"
#include "mail/address.h"
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

#define ACCESS_LINE_MAX 2048 /* a longer line is an error, never silently cut */
#define ACCESS_DEFAULT_TEXT "Access denied"

enum access_kind { AK_CLIENT, AK_RDNS, AK_HELO, AK_SENDER, AK_RCPT, AK_N };

static const char *const access_keys[AK_N] = {"client", "rdns", "helo", "sender", "rcpt"};

/* the forms of a sender/rcpt key */
enum access_pat { AP_ADDRESS, AP_NULL, AP_ATDOMAIN, AP_DOMAIN, AP_SUBDOMAINS };

struct access_entry {
    char *key;  /* as written (regex without slashes): the log reason */
    char *text; /* deny reply text; NULL: the default */
    int allow;
    unsigned line;
    struct cidr net;      /* client */
    pcre2_code *re;       /* rdns, helo */
    enum access_pat form; /* sender, rcpt */
    char *canon;          /* sender, rcpt: the address or domain in canonical form */
    const char *domain;   /* sender, rcpt: the canonical domain, points into canon */
};

struct access_list {
    struct access_entry *v;
    size_t n, cap;
};

struct access_state {
    char *path[AK_N]; /* absolute; NULL: that list is not configured */
    struct access_list list[AK_N];
    struct regex_matcher rm;
};

/* access_entry_clear - what one entry owns */
static void access_entry_clear(struct access_entry *e)
{
    free(e->key);
    free(e->canon);
    free(e->text);
    pcre2_code_free(e->re);
    memset(e, 0, sizeof(*e));
}

/* access_list_clear - every entry and the array */
static void access_list_clear(struct access_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        access_entry_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* access_push - append e (ownership moves into the list) */
static void access_push(struct access_list *l, struct access_entry *e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *e;
    memset(e, 0, sizeof(*e));
}

/* access_parse_regex - compile the key, case-insensitive; /slashes/ are optional */
static int access_parse_regex(struct access_entry *e, char *err, size_t errlen)
{
    const char *pat = e->key;
    size_t len = regex_unslash(&pat, strlen(e->key));

    /* The key is kept without its slashes: that is how reasons show it. */
    memmove(e->key, pat, len);
    e->key[len] = '\0';
    e->re = regex_compile(e->key, len, err, errlen);
    return e->re ? 0 : -1;
}

/* access_parse_addr - classify a sender/rcpt key and keep its canonical form */
static int access_parse_addr(struct access_entry *e, char *err, size_t errlen)
{
    const char *k = e->key, *at = strrchr(k, '@'), *dom;
    char canon[ADDR_CANON_MAX];
    int n;

    if (strcmp(k, "<>") == 0) {
        e->form = AP_NULL;
        return 0;
    }
    if (*k == '@') {
        e->form = AP_ATDOMAIN;
        dom = k + 1;
    } else if (at) {
        e->form = AP_ADDRESS;
        dom = at + 1;
    } else if (*k == '.') {
        e->form = AP_SUBDOMAINS;
        dom = k + 1;
    } else {
        e->form = AP_DOMAIN;
        dom = k;
    }
    if (!*dom || strchr(dom, '@') || *dom == '.' || dom[strlen(dom) - 1] == '.' ||
        strchr(dom, '<')) {
        snprintf(err, errlen, "bad address or domain \"%s\"", k);
        return -1;
    }
    n = e->form == AP_ADDRESS ? addr_canon(k, ADDR_CANON_FOLD, canon, sizeof(canon))
                              : addr_canon_domain(dom, canon, sizeof(canon));
    if (n < 0) {
        snprintf(err, errlen, "bad address or domain \"%s\"", k);
        return -1;
    }
    e->canon = xstrdup(canon);
    e->domain = e->form == AP_ADDRESS ? strrchr(e->canon, '@') + 1 : e->canon;
    return 0;
}

/* access_parse_key - the key according to the list it belongs to */
static int access_parse_key(enum access_kind kind, struct access_entry *e, char *err, size_t errlen)
{
    switch (kind) {
    case AK_CLIENT:
        if (cidr_parse(e->key, &e->net) < 0) {
            snprintf(err, errlen, "bad address or network \"%s\"", e->key);
            return -1;
        }
        return 0;
    case AK_RDNS:
    case AK_HELO:
        return access_parse_regex(e, err, errlen);
    default:
        return access_parse_addr(e, err, errlen);
    }
}

/* access_parse_text - the reply text: what follows the action, trimmed, printable ASCII */
static int access_parse_text(struct access_entry *e, char *rest, char *err, size_t errlen)
{
    char *end;

    rest += strspn(rest, " \t");
    end = rest + strlen(rest);
    while (end > rest && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    for (const char *p = rest; *p; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            snprintf(err, errlen, "reply text must be printable ASCII");
            return -1;
        }
    }
    if (*rest)
        e->text = xstrdup(rest);
    return 0;
}

/* access_parse_line - "KEY allow|deny [TEXT]" into e (blank and comment lines never get here) */
static int access_parse_line(enum access_kind kind, char *line, struct access_entry *e, char *err,
                             size_t errlen)
{
    char *save = NULL, *key = strtok_r(line, " \t", &save);
    char *action = strtok_r(NULL, " \t", &save);

    if (!action) {
        snprintf(err, errlen, "missing action (allow or deny) after \"%s\"", key);
        return -1;
    }
    if (strcmp(action, "allow") == 0) {
        e->allow = 1;
    } else if (strcmp(action, "deny") != 0) {
        snprintf(err, errlen, "action must be allow or deny, not \"%s\"", action);
        return -1;
    }
    e->key = xstrdup(key);
    if (access_parse_key(kind, e, err, errlen) < 0)
        return -1;
    return access_parse_text(e, save, err, errlen); /* save: the rest of the line */
}

/* access_client_cmp - longest prefix first, then file order: the first match is the best */
static int access_client_cmp(const void *a, const void *b)
{
    const struct access_entry *x = a, *y = b;

    if (x->net.bits != y->net.bits)
        return y->net.bits - x->net.bits;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* access_take_line - strip the line end; 1 for an entry, 0 to skip, -1 when too long */
static int access_take_line(char *line, ssize_t len)
{
    const char *p;

    if (len > ACCESS_LINE_MAX)
        return -1;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    p = line + strspn(line, " \t");
    return *p != '\0' && *p != '#';
}

/* access_line - one entry line: parse it and append it to l */
static int access_line(enum access_kind kind, char *line, unsigned lineno, struct access_list *l,
                       char *msg, size_t msglen)
{
    struct access_entry e = {.line = lineno};

    msg[0] = '\0';
    if (access_parse_line(kind, line, &e, msg, msglen) == 0) {
        access_push(l, &e);
        return 0;
    }
    access_entry_clear(&e);
    return -1;
}

/* access_read - parse every line of path into l */
static int access_read(enum access_kind kind, const char *path, FILE *f, struct access_list *l,
                       char *err, size_t errlen)
{
    char *line = NULL, msg[256];
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int rc = 0, take;

    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        take = access_take_line(line, len);
        if (take < 0)
            snprintf(msg, sizeof(msg), "line longer than %d octets", ACCESS_LINE_MAX);
        else if (take > 0 && access_line(kind, line, lineno, l, msg, sizeof(msg)) < 0)
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
    return rc;
}

/* access_load - one list file; on error l is left empty */
static int access_load(enum access_kind kind, const char *path, struct access_list *l, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    int rc;

    memset(l, 0, sizeof(*l));
    if (!f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    rc = access_read(kind, path, f, l, err, errlen);
    fclose(f);
    if (rc < 0) {
        access_list_clear(l);
        return -1;
    }
    if (kind == AK_CLIENT && l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), access_client_cmp);
    return 0;
}

/* access_load_all - every configured list into out; all or nothing */
static int access_load_all(const struct access_state *st, struct access_list out[AK_N], char *err,
                           size_t errlen)
{
    for (int k = 0; k < AK_N; k++) {
        memset(&out[k], 0, sizeof(out[k]));
        if (st->path[k] &&
            access_load((enum access_kind)k, st->path[k], &out[k], err, errlen) < 0) {
            for (int j = 0; j < k; j++)
                access_list_clear(&out[j]);
            return -1;
        }
    }
    return 0;
}

/* access_free - everything the state owns */
static void access_free(void *state)
{
    struct access_state *st = state;

    if (!st)
        return;
    for (int k = 0; k < AK_N; k++) {
        access_list_clear(&st->list[k]);
        free(st->path[k]);
    }
    regex_matcher_free(&st->rm);
    free(st);
}

/* access_paths - the configured file names, made absolute */
static int access_paths(struct access_state *st, cfg_t *sec, char *err, size_t errlen)
{
    for (int k = 0; sec && k < AK_N; k++) {
        const char *p = cfg_getstr(sec, access_keys[k]);
        if (!p || !*p)
            continue;
        if (!(st->path[k] = fs_abspath(p))) {
            snprintf(err, errlen, "access: %s: cannot make \"%s\" absolute", access_keys[k], p);
            return -1;
        }
    }
    return 0;
}

/* access_init - read the section and load the lists */
static int access_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    struct access_state *st = xcalloc(1, sizeof(*st));

    if (regex_matcher_init(&st->rm) < 0) {
        snprintf(err, errlen, "access: out of memory");
        access_free(st);
        return -1;
    }
    if (access_paths(st, cfg_getsec(env->cfg->raw, "access"), err, errlen) < 0 ||
        access_load_all(st, st->list, err, errlen) < 0) {
        access_free(st);
        return -1;
    }
    *state = st;
    return 0;
}

/* access_reload - SIGHUP: new lists replace the old only when every file loaded */
static void access_reload(void *state)
{
    struct access_state *st = state;
    struct access_list fresh[AK_N];
    char err[512], q[600];
    size_t total = 0;

    if (access_load_all(st, fresh, err, sizeof(err)) < 0) {
        log_warn("event=reload check=access status=failed error=%s keeping=old-lists",
                 log_quote(q, sizeof(q), err));
        return;
    }
    for (int k = 0; k < AK_N; k++) {
        access_list_clear(&st->list[k]);
        st->list[k] = fresh[k];
        total += fresh[k].n;
    }
    log_info("event=reload check=access status=ok entries=%zu", total);
}

/* access_match_client - the list is sorted longest prefix first */
static const struct access_entry *access_match_client(const struct access_list *l,
                                                      const struct policy_client *cl)
{
    for (size_t i = 0; i < l->n; i++)
        if (cidr_match(&l->v[i].net, (const struct sockaddr *)&cl->addr))
            return &l->v[i];
    return NULL;
}

/* access_match_regex - the first entry whose regex matches s */
static const struct access_entry *access_match_regex(const struct access_state *st,
                                                     const struct access_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (regex_match(&st->rm, l->v[i].re, s, "access", l->v[i].line))
            return &l->v[i];
    return NULL;
}

/* access_addr_score - how specifically e matches addr (canonical; domain dom, NULL if none) */
static size_t access_addr_score(const struct access_entry *e, const char *addr, const char *dom)
{
    size_t dl, sl;

    if (e->form == AP_NULL)
        return *addr == '\0' ? SIZE_MAX : 0;
    if (e->form == AP_ADDRESS)
        return strcmp(e->canon, addr) == 0 ? SIZE_MAX : 0;
    if (!dom)
        return 0;
    dl = strlen(e->domain);
    sl = strlen(dom);
    if (sl == dl && strcmp(dom, e->domain) == 0) {
        if (e->form == AP_SUBDOMAINS)
            return 0;
        return 4 * dl + (e->form == AP_ATDOMAIN ? 2 : 1);
    }
    if (e->form == AP_ATDOMAIN || sl <= dl || dom[sl - dl - 1] != '.')
        return 0;
    return strcmp(dom + sl - dl, e->domain) == 0 ? 4 * dl + 1 : 0;
}

/* access_match_addr - the most specific entry for raw, compared in canonical form */
static const struct access_entry *access_match_addr(const struct access_list *l, const char *raw)
{
    char addr[ADDR_CANON_MAX];
    const char *at, *dom;
    const struct access_entry *best = NULL;
    size_t best_score = 0;

    if (addr_canon_lax(raw, ADDR_CANON_FOLD, addr, sizeof(addr)) < 0)
        return NULL; /* longer than any address */
    at = strrchr(addr, '@');
    dom = at && at[1] ? at + 1 : NULL;
    for (size_t i = 0; i < l->n; i++) {
        size_t s = access_addr_score(&l->v[i], addr, dom);
        if (s > best_score) {
            best_score = s;
            best = &l->v[i];
        }
    }
    return best;
}

/* access_verdict - allow or deny from entry e of list kind */
static void access_verdict(struct policy_verdict *v, const struct access_entry *e,
                           enum access_kind kind, enum policy_stage stage, struct policy_client *cl)
{
    char reason[sizeof(v->reason)];

    if (!e) {
        policy_verdict_dunno(v);
        return;
    }
    if (kind == AK_RDNS || kind == AK_HELO)
        snprintf(reason, sizeof(reason), "%s /%s/", access_keys[kind], e->key);
    else
        snprintf(reason, sizeof(reason), "%s %s", access_keys[kind], e->key);
    if (!e->allow) {
        policy_verdict_set(v, POLICY_REJECT, 554, "5.7.1", reason, "%s",
                           e->text ? e->text : ACCESS_DEFAULT_TEXT);
        return;
    }
    if (stage == POLICY_CONNECT)
        cl->allowlisted = 1; /* address or confirmed name: trusted for the whole session */
    policy_verdict_set(v, POLICY_OK, 0, NULL, reason, "%s", "");
}

/* access_run - look the stage's item up in its list; always synchronous */
static void access_run(void *state, struct policy_job *job, enum policy_stage stage,
                       struct policy_client *cl)
{
    struct access_state *st = state;
    const struct access_entry *e = NULL;
    enum access_kind kind = AK_N;
    struct policy_verdict v;

    if (stage == POLICY_CONNECT) {
        kind = AK_CLIENT;
        e = access_match_client(&st->list[AK_CLIENT], cl);
        if (!e) {
            kind = AK_RDNS;
            e = access_match_regex(st, &st->list[AK_RDNS],
                                   cl->rdns_name ? cl->rdns_name : "unknown");
        }
    } else if (stage == POLICY_HELO && cl->helo) {
        kind = AK_HELO;
        e = access_match_regex(st, &st->list[AK_HELO], cl->helo);
    } else if (stage == POLICY_MAIL && cl->sender) {
        kind = AK_SENDER;
        e = access_match_addr(&st->list[AK_SENDER], cl->sender);
    } else if (stage == POLICY_RCPT && cl->rcpt) {
        kind = AK_RCPT;
        e = access_match_addr(&st->list[AK_RCPT], cl->rcpt);
    }
    access_verdict(&v, e, kind, stage, cl);
    policy_job_done(job, &v);
}

static cfg_opt_t access_opts[] = {
    CFG_STR("client", NULL, CFGF_NODEFAULT), CFG_STR("rdns", NULL, CFGF_NODEFAULT),
    CFG_STR("helo", NULL, CFGF_NODEFAULT),   CFG_STR("sender", NULL, CFGF_NODEFAULT),
    CFG_STR("rcpt", NULL, CFGF_NODEFAULT),   CFG_END(),
};

static const struct config_section access_section = {
    .name = "access",
    .opts = access_opts,
};

const struct policy_check_ops policy_check_access = {
    .name = "access",
    .trusted_too = 1,
    .passes_held = 1, /* an allowed recipient (abuse@) passes a held connect/HELO refusal */
    .stages = POLICY_STAGE(POLICY_CONNECT) | POLICY_STAGE(POLICY_HELO) | POLICY_STAGE(POLICY_MAIL) |
              POLICY_STAGE(POLICY_RCPT),
    .init = access_init,
    .run = access_run,
    .cancel = NULL, /* run always decides before it returns: nothing is ever pending */
    .reload = access_reload,
    .free = access_free,
    .section = &access_section,
};
