/*
 * recipients.c - the "recipients" check: recipient verification at RCPT
 * time, so that mail for an unknown user of our own domains is refused
 * during the session and mxgate never bounces it (backscatter).
 *
 * Configuration, one section per verified domain (a recipient whose domain
 * has no section is not verified; the title matches the domain exactly,
 * case-insensitively, subdomains are not included):
 *
 *   recipients "example.test" { file = FILE }
 *   recipients "probe.test"   { probe = true  positive_ttl = 86400  negative_ttl = 3600 }
 *
 * file   one entry per line: an address (user@example.test), or @domain,
 *        a catch-all: every address at exactly that domain is known.
 *        Compared in the canonical form of mail/address.h ("bob"@x is
 *        bob@x; bücher.example is xn--bcher-kva.example), the local part
 *        case-insensitively too: mail servers behind a gateway almost all
 *        treat Bob@ and bob@ as one mailbox, and refusing Bob@ would make
 *        the sender's MTA bounce mail the user expects. Blank lines and lines whose first
 *        non-blank character is '#' are ignored; a '#' after blanks ends an
 *        entry line. The addresses live in a hash table. A relative path is
 *        taken against the directory the daemon was started in. SIGHUP
 *        reloads it; a file that fails to load keeps its old entries (a
 *        warning is logged). postmaster@ is always accepted (RFC 5321 4.5.1).
 * probe  ask the domain's route (its smtp or lmtp next hop; a maildir route
 *        cannot answer) with a session MAIL FROM:<>, RCPT TO:<addr>, QUIT.
 *        2xx: known. 5xx: unknown. 4xx or no answer (refused, timeout,
 *        MAIL refused): 451, never "accept and bounce later". Known and
 *        unknown are cached in the store as "rv:<canonical address>" =
 *        "1" / "0" for positive_ttl / negative_ttl seconds (0: not cached);
 *        a temporary failure is never cached. A route that names a host is
 *        resolved for each probe by relay/resolve (in the thread pool,
 *        never on the event loop). The probe waits
 *        RV_CONNECT_TIMEOUT seconds for the connection and
 *        RV_COMMAND_TIMEOUT for each reply; at most RV_PROBES_MAX probes run
 *        at once (beyond: 451).
 * Both   an address listed in the file is known at once; any other is probed.
 *
 * Verdicts (stage RCPT):
 *   unknown  REJECT 550 5.1.1 <addr>: Recipient address rejected: User unknown
 *            reason "unknown source=file", "probe 550", "cache negative"
 *   trouble  TEMPFAIL 451 4.4.0 <addr>: Recipient address verification failed,
 *            try again later   reason "probe 421", "probe no-answer: <why>"
 *   known    DUNNO (nothing to count or log)
 * Every unknown recipient refused also counts for the harvest check: the
 * store counter "hv:n:<client ip>" (store_incr, expiring after the harvest
 * section's window) is raised before the verdict is given.
 */
#include "policy/checks.h"

#include <confuse.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/address.h"
#include "relay/client.h"
#include "relay/resolve.h"
#include "relay/routes.h"
#include "store/store.h"

#define RV_LINE_MAX 2048           /* a longer file line is an error, never silently cut */
#define RV_ADDR_MAX ADDR_CANON_MAX /* an address in canonical form, with the NUL */
#define RV_CONNECT_TIMEOUT 10      /* seconds for the probe's connection */
#define RV_COMMAND_TIMEOUT 30      /* seconds for each probe reply */
#define RV_PROBES_MAX 64           /* probes under way at once, all sessions together */
#define RV_HARVEST_WINDOW 600      /* the harvest window when the harvest section's is unusable */

/* The addresses of a file: open addressing, canonical strings, cap a power of 2. */
struct rv_table {
    char **slot;
    size_t cap, n;
};

struct rv_domain {
    char *name; /* canonical (lower-case, A-labels) */
    char *path; /* absolute; NULL: no file */
    struct rv_table table;
    int probe;
    int lmtp;
    const struct route_target *target; /* the route's next hop (in the configuration) */
    unsigned positive_ttl, negative_ttl;
};

struct rv_state {
    struct event_base *base;
    struct pool *pool;
    struct store *store; /* NULL: no cache, no harvest counting */
    const char *helo;
    unsigned harvest_window;
    unsigned nprobes;
    struct rv_domain *dom;
    size_t ndom;
};

/* One recipient being verified asynchronously (store, probe, store). */
struct rv_job {
    struct rv_state *st;
    struct rv_domain *d;
    struct policy_job *job;
    int store_pending;               /* a store callback will come */
    int cancelled;                   /* ... and must only free the job */
    struct smtp_client *client;      /* a probe under way */
    struct relay_resolve *resolving; /* its next hop's name being looked up */
    const char *rcpts[1];
    struct policy_verdict v;
    char ip[64];
    char addr[RV_ADDR_MAX + 1];
    char key[RV_ADDR_MAX + 4]; /* "rv:" + the address in canonical form */
};

/* rv_hash - FNV-1a of a lower-case string */
static size_t rv_hash(const char *s)
{
    size_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* rv_table_clear - every entry and the slots */
static void rv_table_clear(struct rv_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i]);
    free(t->slot);
    memset(t, 0, sizeof(*t));
}

/* rv_table_slot - the slot holding s, or the empty one where it would go */
static size_t rv_table_slot(const struct rv_table *t, const char *s)
{
    size_t i = rv_hash(s) & (t->cap - 1);

    while (t->slot[i] && strcmp(t->slot[i], s) != 0)
        i = (i + 1) & (t->cap - 1);
    return i;
}

/* rv_table_grow - twice the slots (at least 64), entries rehashed */
static void rv_table_grow(struct rv_table *t)
{
    struct rv_table bigger = {.cap = t->cap ? t->cap * 2 : 64};

    bigger.slot = xcalloc(bigger.cap, sizeof(*bigger.slot));
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i])
            bigger.slot[rv_table_slot(&bigger, t->slot[i])] = t->slot[i];
    bigger.n = t->n;
    free(t->slot);
    *t = bigger;
}

/* rv_table_add - insert a copy of s (duplicates are kept once) */
static void rv_table_add(struct rv_table *t, const char *s)
{
    size_t i;

    if ((t->n + 1) * 2 > t->cap)
        rv_table_grow(t);
    i = rv_table_slot(t, s);
    if (t->slot[i])
        return;
    t->slot[i] = xstrdup(s);
    t->n++;
}

/* rv_table_has - is s (lower-case) an entry */
static int rv_table_has(const struct rv_table *t, const char *s)
{
    return t->cap && t->slot[rv_table_slot(t, s)] != NULL;
}

/* rv_entry_canon - an address or @domain into its canonical form; NULL, or why not */
static const char *rv_entry_canon(const char *e, char *out, size_t outlen)
{
    if (e[0] == '@') {
        if (e[1] == '\0' || strpbrk(e + 1, "@\"<> ") ||
            addr_canon_domain(e + 1, out + 1, outlen - 1) < 0)
            return "not an address or @domain";
        out[0] = '@';
        return NULL;
    }
    if (!strchr(e, '@') || addr_canon(e, ADDR_CANON_FOLD, out, outlen) < 0)
        return "not an address or @domain";
    return NULL;
}

/* rv_token_end - the end of the entry at p: a blank, except inside "quoted local part" */
static char *rv_token_end(char *p)
{
    int quoted = 0;

    for (; *p; p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && (*p == ' ' || *p == '\t'))
            break;
    }
    return p;
}

/* rv_parse_line - the entry of one line into out (canonical): 1, 0 to skip, -1 (why set) */
static int rv_parse_line(char *line, char *out, size_t outlen, const char **why)
{
    char *tok = line + strspn(line, " \t"), *end;

    if (*tok == '\0' || *tok == '#')
        return 0;
    end = rv_token_end(tok);
    if (*end) {
        *end++ = '\0';
        end += strspn(end, " \t");
        if (*end && *end != '#') {
            *why = "one address per line";
            return -1;
        }
    }
    if (strlen(tok) > SMTP_PATH_MAX - 2) {
        *why = "address too long";
        return -1;
    }
    return (*why = rv_entry_canon(tok, out, outlen)) != NULL ? -1 : 1;
}

/* rv_line - one raw line of len octets into t: NULL, or why it is refused */
static const char *rv_line(char *line, ssize_t len, struct rv_table *t)
{
    char entry[RV_ADDR_MAX + 1];
    const char *why = "bad line";
    int r;

    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (len > RV_LINE_MAX)
        return "line too long";
    if ((size_t)len != strlen(line))
        return "NUL octet in line";
    r = rv_parse_line(line, entry, sizeof(entry), &why);
    if (r < 0)
        return why;
    if (r > 0)
        rv_table_add(t, entry);
    return NULL;
}

/* rv_read - every line of f into t; -1 with "path:line: message" in err */
static int rv_read(const char *path, FILE *f, struct rv_table *t, char *err, size_t errlen)
{
    char *line = NULL;
    const char *why = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;

    while (!why && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        why = rv_line(line, len, t);
    }
    if (!why && ferror(f))
        why = strerror(errno);
    free(line);
    if (!why)
        return 0;
    snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
    return -1;
}

/* rv_load - the file at path into a fresh table t; on error t is empty */
static int rv_load(const char *path, struct rv_table *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    int rc;

    memset(t, 0, sizeof(*t));
    if (!f) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    rc = rv_read(path, f, t, err, errlen);
    fclose(f);
    if (rc < 0)
        rv_table_clear(t);
    return rc;
}

/* rv_route - the route of a probed domain must be smtp or lmtp */
static int rv_route(struct rv_domain *d, const struct routes *routes, char *err, size_t errlen)
{
    const struct routes_entry *r = routes_find(routes, d->name);

    if (!r || r->target.kind == ROUTE_MAILDIR || r->target.kind == ROUTE_MX) {
        snprintf(err, errlen, "recipients %s: probe needs an smtp or lmtp route", d->name);
        return -1;
    }
    struct relay_addr ra;

    d->lmtp = r->target.kind == ROUTE_LMTP;
    d->target = &r->target;
    if (relay_target_addr(d->target, &ra) && ra.err) {
        snprintf(err, errlen, "recipients %s: bad address [%s] in route", d->name, d->target->host);
        return -1;
    }
    return 0;
}

static cfg_opt_t rv_opts[] = {
    CFG_STR("file", NULL, CFGF_NODEFAULT),   /* addresses and @domain catch-alls, SIGHUP reloads */
    CFG_BOOL("probe", cfg_false, CFGF_NONE), /* ask the route's server: MAIL FROM:<> RCPT TO: */
    CFG_INT("positive_ttl", 86400, CFGF_NONE), CFG_INT("negative_ttl", 3600, CFGF_NONE), CFG_END(),
};

/* TTLs: 0 (not cached) up to ten years */
static const struct config_bound rv_bounds[] = {
    {"positive_ttl", 0, 315360000L},
    {"negative_ttl", 0, 315360000L},
    {NULL, 0, 0},
};

static const struct config_section rv_section = {
    .name = "recipients",
    .opts = rv_opts,
    .flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
    .bounds = rv_bounds,
};

/* rv_domain_init - one section: name, file, probe route and TTLs */
static int rv_domain_init(struct rv_domain *d, cfg_t *sec, const struct routes *routes, char *err,
                          size_t errlen)
{
    const char *file = cfg_getstr(sec, "file");
    char name[SMTP_DOMAIN_MAX + 1];

    if (addr_canon_domain(cfg_title(sec), name, sizeof(name)) <= 0 || strchr(name, '@') ||
        !(d->name = xstrdup(name))) {
        snprintf(err, errlen, "recipients \"%s\": not a domain", cfg_title(sec));
        return -1;
    }
    d->probe = cfg_getbool(sec, "probe");
    if ((!file || !*file) && !d->probe) {
        snprintf(err, errlen, "recipients %s: needs a file or probe = true", d->name);
        return -1;
    }
    d->positive_ttl = (unsigned)cfg_getint(sec, "positive_ttl"); /* bounded by config_load */
    d->negative_ttl = (unsigned)cfg_getint(sec, "negative_ttl");
    if (file && *file) {
        if (!(d->path = fs_abspath(file))) {
            snprintf(err, errlen, "recipients %s: cannot make \"%s\" absolute", d->name, file);
            return -1;
        }
        if (rv_load(d->path, &d->table, err, errlen) < 0)
            return -1;
    }
    return d->probe ? rv_route(d, routes, err, errlen) : 0;
}

/* rv_domain_find - the section of domain (both canonical), or NULL */
static struct rv_domain *rv_domain_find(struct rv_state *st, const char *domain)
{
    for (size_t i = 0; i < st->ndom; i++)
        if (strcmp(st->dom[i].name, domain) == 0)
            return &st->dom[i];
    return NULL;
}

/* recipients_free - everything the state owns */
static void recipients_free(void *state)
{
    struct rv_state *st = state;

    if (!st)
        return;
    for (size_t i = 0; i < st->ndom; i++) {
        rv_table_clear(&st->dom[i].table);
        free(st->dom[i].name);
        free(st->dom[i].path);
    }
    free(st->dom);
    free(st);
}

/* rv_harvest_window - the harvest section's window: the counter's lifetime */
static unsigned rv_harvest_window(const struct config *cfg)
{
    cfg_t *sec = cfg_getsec(cfg->raw, "harvest");
    long w = sec ? cfg_getint(sec, "window") : 0;

    return w > 0 && w <= 86400L * 365 ? (unsigned)w : RV_HARVEST_WINDOW;
}

/* recipients_init - every recipients section */
static int recipients_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    struct rv_state *st = xcalloc(1, sizeof(*st));
    unsigned n = cfg_size(env->cfg->raw, "recipients");

    st->dom = xcalloc(n ? n : 1, sizeof(*st->dom));
    st->base = env->base;
    st->pool = env->pool;
    st->store = env->store;
    st->helo = env->cfg->hostname;
    st->harvest_window = rv_harvest_window(env->cfg);
    for (unsigned i = 0; i < n; i++) {
        cfg_t *sec = cfg_getnsec(env->cfg->raw, "recipients", i);
        int bad = rv_domain_init(&st->dom[i], sec, env->routes, err, errlen) < 0;
        if (!bad && rv_domain_find(st, st->dom[i].name)) {
            snprintf(err, errlen, "recipients %s: domain given twice", st->dom[i].name);
            bad = 1;
        }
        st->ndom++; /* after the search, which must not find the section itself */
        if (bad) {
            recipients_free(st);
            return -1;
        }
    }
    *state = st;
    return 0;
}

/* recipients_reload - SIGHUP: each file anew; a failure keeps the old */
static void recipients_reload(void *state)
{
    struct rv_state *st = state;
    char err[512], q[600];

    for (size_t i = 0; i < st->ndom; i++) {
        struct rv_domain *d = &st->dom[i];
        struct rv_table fresh;
        if (d->path && rv_load(d->path, &fresh, err, sizeof(err)) < 0) {
            log_warn("event=reload check=recipients domain=%s status=failed error=%s "
                     "keeping=old-list",
                     log_q(d->name), log_quote(q, sizeof(q), err));
        } else if (d->path) {
            rv_table_clear(&d->table);
            d->table = fresh;
            log_info("event=reload check=recipients domain=%s status=ok entries=%zu",
                     log_q(d->name), fresh.n);
        }
    }
}

/* rv_unknown_verdict - 550 5.1.1 for addr */
static void rv_unknown_verdict(struct policy_verdict *v, const char *addr, const char *reason)
{
    policy_verdict_set(v, POLICY_REJECT, 550, "5.1.1", reason,
                       "<%s>: Recipient address rejected: User unknown", addr);
}

/* rv_tempfail_verdict - 451 4.4.0 for addr: the probe could not decide */
static void rv_tempfail_verdict(struct policy_verdict *v, const char *addr, const char *reason)
{
    policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.4.0", reason,
                       "<%s>: Recipient address verification failed, try again later", addr);
}

/* rv_job_new - a job for cl's recipient in d, verdict DUNNO until decided; NULL: no memory */
static struct rv_job *rv_job_new(struct rv_state *st, struct rv_domain *d, struct policy_job *job,
                                 const struct policy_client *cl, const char *canon)
{
    struct rv_job *j = xcalloc(1, sizeof(*j));

    j->st = st;
    j->d = d;
    j->job = job;
    policy_verdict_dunno(&j->v);
    snprintf(j->ip, sizeof(j->ip), "%s", cl->ip);
    snprintf(j->addr, sizeof(j->addr), "%s", cl->rcpt);
    snprintf(j->key, sizeof(j->key), "rv:%s", canon);
    j->rcpts[0] = j->addr;
    policy_job_set_data(job, j);
    return j;
}

/* rv_finish - give the job's verdict and free it */
static void rv_finish(struct rv_job *j)
{
    struct policy_job *job = j->job;
    struct policy_verdict v = j->v;

    policy_job_set_data(job, NULL);
    free(j);
    policy_job_done(job, &v);
}

/* rv_store_warn - a store operation failed: the check goes on without it */
static void rv_store_warn(const struct rv_job *j, const char *op, const char *why)
{
    char q[128];

    log_warn("event=store_error check=recipients op=%s key=%s error=%s", op, log_q(j->key),
             log_quote(q, sizeof(q), why));
}

/* rv_on_counted - the harvest counter went up: now the refusal */
static void rv_on_counted(void *arg, int status, int64_t value)
{
    struct rv_job *j = arg;

    if (j->cancelled) {
        free(j);
        return;
    }
    j->store_pending = 0;
    if (status != STORE_OK && status != STORE_EDOWN) /* an outage: logged once by the store */
        rv_store_warn(j, "incr", store_strerror(status));
    rv_finish(j);
}

/* rv_refuse_unknown - j's verdict is "unknown": count it for harvest, then refuse */
static void rv_refuse_unknown(struct rv_job *j, const char *reason)
{
    char key[96];
    int n = snprintf(key, sizeof(key), "hv:n:%s", j->ip);

    rv_unknown_verdict(&j->v, j->addr, reason);
    if (!j->st->store || n <= 5 || (size_t)n >= sizeof(key)) {
        rv_finish(j);
        return;
    }
    j->store_pending = 1;
    if (store_incr(j->st->store, key, (size_t)n, 1, j->st->harvest_window, rv_on_counted, j) < 0) {
        j->store_pending = 0;
        rv_store_warn(j, "incr", strerror(errno));
        rv_finish(j);
    }
}

/* rv_cache_put - remember a probe's answer ("1" known, "0" unknown) for ttl seconds */
static void rv_cache_put(const struct rv_job *j, int known)
{
    unsigned ttl = known ? j->d->positive_ttl : j->d->negative_ttl;

    if (!j->st->store || ttl == 0)
        return;
    if (store_set(j->st->store, j->key, strlen(j->key), known ? "1" : "0", 1, ttl, NULL, NULL) < 0)
        rv_store_warn(j, "set", strerror(errno));
}

/* rv_on_probe - the internal server answered the RCPT, or could not */
static void rv_on_probe(void *arg, const struct smtp_client_result *res)
{
    struct rv_job *j = arg;
    const struct smtp_client_rcpt *r = &res->rcpt[0];
    char reason[sizeof(j->v.reason)];

    j->client = NULL;
    j->st->nprobes--;
    if (r->code / 100 == 2) {
        rv_cache_put(j, 1);
        snprintf(j->v.reason, sizeof(j->v.reason), "probe %d", r->code);
        rv_finish(j);
    } else if (r->code / 100 == 5) {
        rv_cache_put(j, 0);
        snprintf(reason, sizeof(reason), "probe %d", r->code);
        rv_refuse_unknown(j, reason);
    } else {
        if (r->code)
            snprintf(reason, sizeof(reason), "probe %d %s", r->code, r->text);
        else
            snprintf(reason, sizeof(reason), "probe no-answer: %s", r->text);
        rv_tempfail_verdict(&j->v, j->addr, reason);
        rv_finish(j);
    }
}

/* rv_has_8bit - does s need SMTPUTF8 */
static int rv_has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* rv_probe_at - ask the route's server at ra about j's recipient */
static void rv_probe_at(struct rv_job *j, const struct relay_addr *ra)
{
    struct smtp_client_req req = {
        .lmtp = j->d->lmtp,
        .addrlen = ra->addrlen,
        .helo = j->st->helo,
        .sender = "",
        .rcpts = j->rcpts,
        .nrcpt = 1,
        .body_fd = -1,
        .smtputf8 = rv_has_8bit(j->addr),
        .connect_timeout = RV_CONNECT_TIMEOUT,
        .command_timeout = RV_COMMAND_TIMEOUT,
        .probe = 1,
        .done = rv_on_probe,
        .arg = j,
    };

    memcpy(&req.addr, &ra->addr, sizeof(req.addr));
    if (!(j->client = smtp_client_start(j->st->base, &req))) {
        j->st->nprobes--;
        rv_tempfail_verdict(&j->v, j->addr, "probe no-answer: out of memory");
        rv_finish(j);
    }
}

/* rv_resolved - the probe host's address, or why there is none */
static void rv_resolved(void *arg, const struct relay_addr *ra)
{
    struct rv_job *j = arg;
    char reason[sizeof(j->v.reason)];

    j->resolving = NULL;
    if (ra->err == 0) {
        rv_probe_at(j, ra);
        return;
    }
    j->st->nprobes--;
    snprintf(reason, sizeof(reason), "probe no-answer: %s", ra->text);
    rv_tempfail_verdict(&j->v, j->addr, reason);
    rv_finish(j);
}

/* rv_probe - ask the route's server about j's recipient (its name looked
 * up off the loop first) */
static void rv_probe(struct rv_job *j)
{
    struct relay_addr ra;

    if (j->st->nprobes >= RV_PROBES_MAX) {
        rv_tempfail_verdict(&j->v, j->addr, "probe busy");
        rv_finish(j);
        return;
    }
    j->st->nprobes++;
    if (relay_target_addr(j->d->target, &ra)) {
        rv_resolved(j, &ra);
        return;
    }
    if (!j->st->pool ||
        !(j->resolving = relay_resolve(j->st->pool, j->d->target, rv_resolved, j))) {
        j->st->nprobes--;
        rv_tempfail_verdict(&j->v, j->addr, "probe no-answer: cannot resolve the route's host");
        rv_finish(j);
    }
}

/* rv_on_cache - the cached answer, or none: then the probe */
static void rv_on_cache(void *arg, int status, const void *val, size_t vlen)
{
    struct rv_job *j = arg;

    if (j->cancelled) {
        free(j);
        return;
    }
    j->store_pending = 0;
    if (status == STORE_OK && vlen == 1 && *(const char *)val == '1') {
        snprintf(j->v.reason, sizeof(j->v.reason), "cache positive");
        rv_finish(j);
    } else if (status == STORE_OK && vlen == 1 && *(const char *)val == '0') {
        rv_refuse_unknown(j, "cache negative");
    } else {
        if (status != STORE_OK && status != STORE_NOTFOUND && status != STORE_EDOWN)
            rv_store_warn(j, "get", store_strerror(status));
        rv_probe(j); /* without the cache: ask the internal server */
    }
}

/* rv_verify - the file said nothing: the cache, then the probe */
static void rv_verify(struct rv_job *j)
{
    if (!j->st->store) {
        rv_probe(j);
        return;
    }
    j->store_pending = 1;
    if (store_get(j->st->store, j->key, strlen(j->key), rv_on_cache, j) < 0) {
        j->store_pending = 0;
        rv_store_warn(j, "get", strerror(errno));
        rv_probe(j);
    }
}

/* rv_in_file - is addr (canonical, domain dom) listed or covered by a catch-all */
static int rv_in_file(const struct rv_domain *d, const char *addr, const char *dom)
{
    char catchall[RV_ADDR_MAX + 2];

    if (rv_table_has(&d->table, addr))
        return 1;
    snprintf(catchall, sizeof(catchall), "@%s", dom);
    return rv_table_has(&d->table, catchall);
}

/* recipients_run - RCPT: known, unknown, or ask (cache, then probe) */
static void recipients_run(void *state, struct policy_job *job, enum policy_stage stage,
                           struct policy_client *cl)
{
    struct rv_state *st = state;
    char canon[RV_ADDR_MAX];
    const char *at = cl->rcpt && addr_canon_lax(cl->rcpt, ADDR_CANON_FOLD, canon, sizeof(canon)) > 0
                         ? strrchr(canon, '@')
                         : NULL;
    struct rv_domain *d = at ? rv_domain_find(st, at + 1) : NULL;
    struct policy_verdict v;
    struct rv_job *j;

    policy_verdict_dunno(&v);
    if (!d || (d->path && rv_in_file(d, canon, at + 1)) || strncmp(canon, "postmaster@", 11) == 0) {
        /* not verified here, listed, or postmaster, which RFC 5321 4.5.1 requires us to take */
        policy_job_done(job, &v);
        return;
    }
    j = rv_job_new(st, d, job, cl, canon);
    if (!d->probe) {
        rv_refuse_unknown(j, "unknown source=file");
    } else {
        rv_verify(j);
    }
}

/* recipients_cancel - the session is gone: stop the probe, or orphan the store callback */
static void recipients_cancel(void *state, struct policy_job *job)
{
    struct rv_job *j = policy_job_data(job);

    policy_job_set_data(job, NULL);
    if (!j)
        return;
    if (j->client || j->resolving) {
        smtp_client_cancel(j->client);
        relay_resolve_cancel(j->resolving);
        j->st->nprobes--;
    }
    if (j->store_pending)
        j->cancelled = 1; /* the callback frees it */
    else
        free(j);
}

const struct policy_check_ops policy_check_recipients = {
    .name = "recipients",
    .stages = POLICY_STAGE(POLICY_RCPT),
    .init = recipients_init,
    .run = recipients_run,
    .cancel = recipients_cancel,
    .reload = recipients_reload,
    .free = recipients_free,
    .section = &rv_section,
};
