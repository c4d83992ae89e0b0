/*
 * batv.c - the "batv" check: Bounce Address Tag Validation in Exim's prvs
 * form (policy/prvs.h), so that only bounces of mail we really sent reach
 * our users, and the backscatter of a Joe job is refused at RCPT.
 *
 * Configuration:
 *   batv { domains = {"example.test", ".sub.example.test"}  key = 1
 *          secrets = {"1:s3cret", "2:older"}  days = 7 }
 * domains: the BATV domains (".x" any subdomain of x, as routes); empty: the
 * check does nothing. secrets: "N:secret", N a key digit 0..9, the secret 1
 * to 64 octets (Exim's limit). key: the key number that signs (it needs a
 * secret); the others still validate, so a key is rotated by signing with
 * a new number and keeping the old secret for `days`. days: 1..365, how
 * long a new tag lives; keep 7 (Exim's fixed value) when Exim also checks
 * our tags, since Exim's prvscheck only copes with wrap-around for 7.
 *
 * MAIL (outbound signing): a client in relay_networks or authenticated
 * (SMTP AUTH, cl->login) sending from an
 * address of a BATV domain gets that sender signed with `key` (the
 * session uses cl->sender_rewrite as the envelope sender). Not signed: the
 * null sender, a sender already tagged, a quoted local part (the tag would
 * not be a valid address) and a local part over 48 octets (tagged, it
 * would exceed the 64 of RFC 5321 4.5.3.1.1 and our own parser would
 * refuse the bounce). Always DUNNO.
 *
 * RCPT (inbound), only for recipients of a BATV domain:
 *   - a bounce (null sender) from a client outside relay_networks must be
 *     addressed to a valid, unexpired tag of one of the secrets: then DUNNO
 *     and the tag is stripped (cl->rcpt_rewrite, and cl->rcpt points to it
 *     so that later checks, e.g. recipients, judge the real mailbox).
 *     Otherwise REJECT 550 5.7.1, reason "missing tag", "unknown key K",
 *     "bad signature key=K" or "expired day=DDD". An untagged bounce to
 *     postmaster passes: RFC 5321 4.5.1 wants postmaster to take mail.
 *   - mail with a non-null sender, and any mail from relay_networks (our
 *     own servers' reports), is not judged; a tag is stripped all the same.
 *
 * Addresses are taken in the canonical form of mail/address.h: the domains
 * (configured and seen) with A-labels, a needlessly quoted local part
 * unquoted ("prvs=...=u"@x is the tag prvs=...=u@x; "u"@x is signed as
 * u@x). The local part keeps its case: the tag's HMAC covers it exactly as
 * written, as Exim's does; "prvs=" and the hex digits are caseless.
 */
#include "policy/checks.h"

#include <confuse.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "policy/prvs.h"
#include "mail/address.h"

#define BATV_DAYS_MAX 365
#define BATV_SHOWN_ADDR 190 /* octets of the address in a reply (text[256]) */
/* the longest local part that still fits RFC 5321's 64 octets once tagged */
#define BATV_LOCAL_SIGN_MAX (SMTP_LOCAL_MAX - PRVS_TAG_LEN)

struct batv_state {
    char **domains;
    size_t ndomains;
    char *secret[PRVS_KEYS];
    struct prvs_secrets secrets; /* views of secret[] */
    int key;
    unsigned days;
    struct cidr *relay; /* a copy of relay_networks */
    size_t nrelay;
};

/* batv_today - days since the epoch by the check's clock */
static long batv_today(void)
{
    return prvs_today(clock_now());
}

/* batv_free - everything the state owns; secrets wiped */
static void batv_free(void *state)
{
    struct batv_state *st = state;

    if (!st)
        return;
    for (size_t i = 0; i < st->ndomains; i++)
        free(st->domains[i]);
    free(st->domains);
    for (int k = 0; k < PRVS_KEYS; k++) {
        if (st->secret[k])
            OPENSSL_cleanse(st->secret[k], strlen(st->secret[k]));
        free(st->secret[k]);
    }
    free(st->relay);
    free(st);
}

/* batv_domain_ok - a domain or ".domain" pattern (canonical): LDH labels and dots, <= 255 */
static int batv_domain_ok(const char *d)
{
    size_t n = strlen(d);

    if (n == 0 || n > SMTP_DOMAIN_MAX || strcmp(d, ".") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", d[i]))
            return 0;
    return 1;
}

/* batv_domains - copy and check the domains list */
static int batv_domains(const struct config *cfg, cfg_t *sec, struct batv_state *st, char *err,
                        size_t errlen)
{
    size_t n = cfg_size(sec, "domains");

    st->domains = xcalloc(n ? n : 1, sizeof(*st->domains));
    for (size_t i = 0; i < n; i++) {
        const char *d = cfg_getnstr(sec, "domains", (unsigned)i);
        char canon[SMTP_DOMAIN_MAX + 2];
        int dot = d && d[0] == '.';
        if (d && addr_canon_domain(d + dot, canon + dot, sizeof(canon) - 1) >= 0) {
            canon[0] = dot ? '.' : canon[0];
            d = canon;
        }
        if (!d || !batv_domain_ok(d)) {
            snprintf(err, errlen, "%s:%d: batv: domains: \"%s\" is not a domain", cfg->path,
                     sec->line, d ? d : "");
            return -1;
        }
        st->domains[st->ndomains++] = xstrdup(d);
    }
    return 0;
}

/* batv_secret - one "N:secret" entry into st->secret[N] */
static int batv_secret(const struct config *cfg, cfg_t *sec, const char *e, struct batv_state *st,
                       char *err, size_t errlen)
{
    size_t slen;
    int k;

    if (!e || e[0] < '0' || e[0] > '9' || e[1] != ':') {
        snprintf(err, errlen, "%s:%d: batv: secrets: an entry is not \"N:secret\" (N a digit)",
                 cfg->path, sec->line);
        return -1;
    }
    k = e[0] - '0';
    slen = strlen(e + 2);
    if (slen == 0 || slen > PRVS_SECRET_MAX) {
        snprintf(err, errlen, "%s:%d: batv: secrets: key %d: the secret must be 1 to %d octets",
                 cfg->path, sec->line, k, PRVS_SECRET_MAX);
        return -1;
    }
    if (st->secret[k]) {
        snprintf(err, errlen, "%s:%d: batv: secrets: key %d given twice", cfg->path, sec->line, k);
        return -1;
    }
    st->secret[k] = xstrdup(e + 2);
    st->secrets.secret[k] = st->secret[k];
    return 0;
}

/* batv_options - secrets, key and days, checked against each other */
static int batv_options(const struct config *cfg, cfg_t *sec, struct batv_state *st, char *err,
                        size_t errlen)
{
    long key = cfg_getint(sec, "key"), days = cfg_getint(sec, "days");

    for (unsigned i = 0; i < cfg_size(sec, "secrets"); i++)
        if (batv_secret(cfg, sec, cfg_getnstr(sec, "secrets", i), st, err, errlen) < 0)
            return -1;
    if (key < 0 || key >= PRVS_KEYS) {
        snprintf(err, errlen, "%s:%d: batv: key must be a digit 0..9, not %ld", cfg->path,
                 sec->line, key);
        return -1;
    }
    if (days < 1 || days > BATV_DAYS_MAX) {
        snprintf(err, errlen, "%s:%d: batv: days must be between 1 and %d, not %ld", cfg->path,
                 sec->line, BATV_DAYS_MAX, days);
        return -1;
    }
    if (st->ndomains && !st->secret[key]) {
        snprintf(err, errlen, "%s:%d: batv: key %ld has no secret in secrets", cfg->path, sec->line,
                 key);
        return -1;
    }
    st->key = (int)key;
    st->days = (unsigned)days;
    return 0;
}

/* batv_copy_relay - the relay networks, kept so the check does not depend on cfg later */
static void batv_copy_relay(const struct config *cfg, struct batv_state *st)
{
    st->relay = xcalloc(cfg->nrelay_networks ? cfg->nrelay_networks : 1, sizeof(*st->relay));
    if (cfg->nrelay_networks)
        memcpy(st->relay, cfg->relay_networks, cfg->nrelay_networks * sizeof(*st->relay));
    st->nrelay = cfg->nrelay_networks;
}

/* batv_init - read the batv section (its defaults when it is missing) */
static int batv_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "batv");
    struct batv_state *st;

    if (!sec) {
        snprintf(err, errlen, "%s:0: batv: no batv section", env->cfg->path);
        return -1;
    }
    st = xcalloc(1, sizeof(*st));
    if (batv_domains(env->cfg, sec, st, err, errlen) < 0 ||
        batv_options(env->cfg, sec, st, err, errlen) < 0) {
        batv_free(st);
        return -1;
    }
    batv_copy_relay(env->cfg, st);
    if (st->ndomains == 0)
        log_warn("event=config check=batv warning=\"no domains: nothing is signed or checked\"");
    *state = st;
    return 0;
}

/* batv_is_domain - is the domain of addr (canonical; after its last '@') a BATV domain */
static int batv_is_domain(const struct batv_state *st, const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;

    if (!at)
        return 0;
    for (size_t i = 0; i < st->ndomains; i++)
        if (addr_domain_match(at + 1, st->domains[i]))
            return 1;
    return 0;
}

/* batv_may_relay - the client is authenticated (SMTP AUTH) or in relay_networks */
static int batv_may_relay(const struct batv_state *st, const struct policy_client *cl)
{
    if (cl->login)
        return 1;
    for (size_t i = 0; i < st->nrelay; i++)
        if (cidr_match(&st->relay[i], (const struct sockaddr *)&cl->addr))
            return 1;
    return 0;
}

/* batv_sign - MAIL: sign the sender of a relay client when it is ours and signable */
static void batv_sign(const struct batv_state *st, struct policy_client *cl)
{
    struct prvs_parts parts;
    char out[PRVS_TAG_LEN + ADDR_CANON_MAX + 8], s[ADDR_CANON_MAX];

    if (!cl->sender || !*cl->sender || cl->sender_rewrite ||
        addr_canon(cl->sender, 0, s, sizeof(s)) <= 0 || !batv_is_domain(st, s) ||
        !batv_may_relay(st, cl) || s[0] == '"' || prvs_parse(s, &parts) == 0)
        return;
    if ((size_t)(strrchr(s, '@') - s) > BATV_LOCAL_SIGN_MAX) {
        log_debug("event=batv action=unsigned reason=\"local part too long to tag\"");
        return;
    }
    if (prvs_sign(s, st->key, st->secret[st->key], batv_today(), st->days, out, sizeof(out)) < 0) {
        log_warn("event=batv action=unsigned reason=\"cannot sign\"");
        return;
    }
    cl->sender_rewrite = xstrdup(out);
}

/* batv_strip - RCPT: deliver to the address inside the tag */
static void batv_strip(struct policy_client *cl, const struct prvs_parts *parts)
{
    if (cl->rcpt_rewrite) /* another check already decided where this goes */
        return;
    cl->rcpt_rewrite = xstrdup(parts->addr);
    cl->rcpt =
        cl->rcpt_rewrite; /* later checks judge the mailbox itself; the session resets rcpt */
}

/* batv_refuse - 550 5.7.1 for a bounce whose tag is missing, wrong or old */
static void batv_refuse(struct policy_verdict *v, const char *rcpt, int expired, const char *reason)
{
    policy_verdict_set(v, POLICY_REJECT, 550, "5.7.1", reason, "<%.*s>: %s", BATV_SHOWN_ADDR, rcpt,
                       expired ? "Bounce address tag expired (BATV)"
                               : "Invalid or missing bounce address tag (BATV)");
}

/* batv_judge - a bounce to a tagged address of ours: valid, or why not */
static void batv_judge(const struct batv_state *st, struct policy_client *cl,
                       const struct prvs_parts *parts, struct policy_verdict *v)
{
    char reason[64] = "";
    const char *rcpt = cl->rcpt;

    switch (prvs_check(parts, &st->secrets, batv_today(), st->days)) {
    case PRVS_VALID:
        batv_strip(cl, parts);
        return;
    case PRVS_UNKNOWN_KEY:
        snprintf(reason, sizeof(reason), "unknown key %d", parts->keynum);
        break;
    case PRVS_BAD_SIGNATURE:
        snprintf(reason, sizeof(reason), "bad signature key=%d", parts->keynum);
        break;
    case PRVS_EXPIRED:
        snprintf(reason, sizeof(reason), "expired day=%03d", parts->day);
        batv_refuse(v, rcpt, 1, reason);
        return;
    }
    batv_refuse(v, rcpt, 0, reason);
}

/* batv_rcpt - RCPT: strip our tags; refuse bounces from outside without a valid one */
static void batv_rcpt(const struct batv_state *st, struct policy_client *cl,
                      struct policy_verdict *v)
{
    struct prvs_parts parts;
    char r[ADDR_CANON_MAX];
    int tagged;

    if (!cl->rcpt || addr_canon_lax(cl->rcpt, 0, r, sizeof(r)) <= 0 || !batv_is_domain(st, r))
        return;
    tagged = prvs_parse(r, &parts) == 0;
    if ((cl->sender && cl->sender[0]) || batv_may_relay(st, cl)) {
        if (tagged)
            batv_strip(cl, &parts);
        return;
    }
    if (tagged) {
        batv_judge(st, cl, &parts, v);
        return;
    }
    if (strncasecmp(r, "postmaster@", 11) != 0)
        batv_refuse(v, cl->rcpt, 0, "missing tag");
}

/* batv_run - sign at MAIL, validate and strip at RCPT; always synchronous */
static void batv_run(void *state, struct policy_job *job, enum policy_stage stage,
                     struct policy_client *cl)
{
    const struct batv_state *st = state;
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    if (stage == POLICY_MAIL)
        batv_sign(st, cl);
    else if (stage == POLICY_RCPT)
        batv_rcpt(st, cl, &v);
    policy_job_done(job, &v);
}

static cfg_opt_t batv_opts[] = {
    CFG_STR_LIST("domains", "{}", CFGF_NONE),
    CFG_INT("key", 1, CFGF_NONE),             /* the key number that signs */
    CFG_STR_LIST("secrets", "{}", CFGF_NONE), /* "N:secret", N a digit */
    CFG_INT("days", 7, CFGF_NONE),            /* validity of a tag */
    CFG_END(),
};

static const struct config_section batv_section = {
    .name = "batv",
    .opts = batv_opts,
};

const struct policy_check_ops policy_check_batv = {
    .name = "batv",
    .trusted_too = 1,
    .stages = POLICY_STAGE(POLICY_MAIL) | POLICY_STAGE(POLICY_RCPT),
    .init = batv_init,
    .run = batv_run,
    .cancel = NULL, /* never pending: run decides at once */
    .reload = NULL,
    .free = batv_free,
    .disconnect = NULL,
    .section = &batv_section,
};
