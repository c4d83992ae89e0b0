/*
 * sender.c - the sender check: the names a client gives must exist, and our
 * own domains are not taken from outside.
 *
 *   HELO  the HELO name has an address or a real MX (helo_exists; an address
 *         literal is not checked). Its refusal waits for RCPT, as every HELO
 *         verdict (policy.h), and its points count for the whole session.
 *   MAIL  the MAIL FROM domain has a real MX, or no MX and an A or AAAA
 *         (domain_exists): 550 5.1.8 when it does not exist or has no such
 *         record, 550 5.7.27 for a null MX (RFC 7505 4.2), 451 4.1.8 when DNS
 *         cannot say. The null sender is not checked.
 *   RCPT  a client that relay_networks does not trust (the access list's
 *         trusted clients skip every check) that claims one of our `domains`
 *         as MAIL FROM is refused unless SPF passed for that domain
 *         (own_domains = "spf"; the spf check runs at MAIL, before or after
 *         this one: the RCPT stage sees its result). 550 5.7.1, 451 4.7.1 on
 *         an SPF temperror. Judged alike for every recipient of the transaction.
 *   END   the header From: domain exists, as MAIL FROM's (from_exists); not
 *         asked again when it is the MAIL FROM domain, judged at MAIL.
 *
 * Each part has an action: dunno (off), score (add `score` points), tempfail
 * (451) or reject. A DNS error gives `temperror` (tempfail or dunno) where the
 * part's action refuses, and no opinion where it only scores. Lookups run on
 * the daemon's c-ares resolver, MX, A and AAAA in parallel (exists.h).
 */
#include "policy/checks.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "mail/address.h"
#include "mail/from.h"
#include "policy/exists.h"

enum snd_action { SND_DUNNO, SND_SCORE, SND_TEMPFAIL, SND_REJECT };
static const char *const snd_action_names[] = {"dunno", "score", "tempfail", "reject"};

enum snd_own { OWN_DUNNO, OWN_SPF, OWN_REJECT };
static const char *const snd_own_names[] = {"dunno", "spf", "reject"};

/* the names the check judges */
enum snd_part { PART_HELO, PART_MAILFROM, PART_FROM };

struct snd_conf {
    const struct config *cfg;
    struct dns *dns;
    enum snd_action action[3]; /* by part */
    enum snd_action temperror; /* SND_TEMPFAIL or SND_DUNNO */
    enum snd_own own;
    int score;
};

/* One lookup of one stage of one session. */
struct snd_run {
    struct snd_conf *sc;
    struct policy_job *job;
    enum snd_part part;
    struct exists_query *q;
    char name[DNS_NAME_SIZE];
};

/* snd_parse - an action (or own_domains value) by name, or -1 */
static int snd_parse(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

#define SND_PARSE(names, s) snd_parse(names, sizeof(names) / sizeof(names[0]), s)

/* snd_valid_action - domain_exists, helo_exists, from_exists name an action */
static int snd_valid_action(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (SND_PARSE(snd_action_names, v) < 0)
        cfg_error(sec,
                  "sender: %s must be \"dunno\", \"score\", \"tempfail\" or \"reject\", not \"%s\"",
                  opt->name, v);
    return 0; /* reported; keep parsing to list every error */
}

/* snd_valid_temperror - what a DNS error gives */
static int snd_valid_temperror(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (strcmp(v, "tempfail") != 0 && strcmp(v, "dunno") != 0)
        cfg_error(sec, "sender: temperror must be \"tempfail\" or \"dunno\", not \"%s\"", v);
    return 0;
}

/* snd_valid_own - own_domains */
static int snd_valid_own(cfg_t *sec, cfg_opt_t *opt)
{
    const char *v = cfg_opt_getnstr(opt, 0);

    if (SND_PARSE(snd_own_names, v) < 0)
        cfg_error(sec, "sender: own_domains must be \"spf\", \"reject\" or \"dunno\", not \"%s\"",
                  v);
    return 0;
}

/* snd_domain - the canonical (A-label, lower-case) form of a domain into out
 * (DNS_NAME_SIZE): 1 a host name to look up, 0 an address literal (not checked),
 * -1 not a usable domain name */
static int snd_domain(const char *in, char *out)
{
    if (in[0] == '[')
        return 0;
    if (addr_canon_domain(in, out, DNS_NAME_SIZE) < 0 || !out[0])
        return -1;
    for (const char *p = out; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return -1; /* IDNA refused it: no DNS name */
    return addr_host_ok(out) ? 1 : -1;
}

/* snd_sender_domain - the domain of MAIL FROM, or NULL for the null sender */
static const char *snd_sender_domain(const struct policy_client *cl)
{
    const char *at = cl->sender ? strrchr(cl->sender, '@') : NULL;

    return at && at[1] ? at + 1 : NULL;
}

/* the words of each part's replies */
static const char *const part_subject[] = {"Helo command rejected: host name",
                                           "Sender address rejected: domain",
                                           "Message rejected: From: header domain"};
static const char *const part_key[] = {"helo", "mailfrom", "from"};

/* snd_missing_text - what is wrong with the name, for the reply */
static const char *snd_missing_text(enum exists_result r, enum snd_part part)
{
    switch (r) {
    case EXISTS_NXDOMAIN:
        return "does not exist";
    case EXISTS_NULLMX:
        return "accepts no mail (null MX, RFC 7505)";
    default:
        return part == PART_HELO ? "has no A, AAAA or MX record" : "has no MX, A or AAAA record";
    }
}

/* snd_result_verdict - the part's action for a lookup's result */
static void snd_result_verdict(const struct snd_conf *sc, enum snd_part part, const char *name,
                               enum exists_result r, const char *detail, struct policy_verdict *v)
{
    enum snd_action a = sc->action[part];
    char reason[sizeof(v->reason)];

    snprintf(reason, sizeof(reason), "part=%s domain=%s result=%s%s%s", part_key[part], name,
             exists_result_name(r), detail[0] ? " dns=" : "", detail);
    policy_verdict_dunno(v);
    if (r == EXISTS_YES || a == SND_DUNNO) {
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
    } else if (r == EXISTS_TEMPFAIL) {
        if (a == SND_SCORE || sc->temperror == SND_DUNNO)
            snprintf(v->reason, sizeof(v->reason), "%s", reason); /* our trouble: no points */
        else
            policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.1.8", reason,
                               "%s %s: cannot look it up (%s); try again later", part_subject[part],
                               name, detail[0] ? detail : "dns error");
    } else if (a == SND_SCORE) {
        policy_verdict_set(v, POLICY_SCORE, 0, "", "", "%s", "");
        v->score = sc->score;
        snprintf(v->reason, sizeof(v->reason), "%s score=%d", reason, sc->score);
    } else if (a == SND_TEMPFAIL) {
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.1.8", reason, "%s %s %s; try again later",
                           part_subject[part], name, snd_missing_text(r, part));
    } else {
        policy_verdict_set(v, POLICY_REJECT, 550, r == EXISTS_NULLMX ? "5.7.27" : "5.1.8", reason,
                           "%s %s %s", part_subject[part], name, snd_missing_text(r, part));
    }
}

/* snd_invalid_verdict - a name no lookup can find (not a host name, or one IDNA
 * refuses): the part's action as for a name that does not exist, without quoting it */
static void snd_invalid_verdict(const struct snd_conf *sc, enum snd_part part,
                                struct policy_verdict *v)
{
    enum snd_action a = sc->action[part];
    const char *reason = part == PART_HELO       ? "part=helo result=invalid"
                         : part == PART_MAILFROM ? "part=mailfrom result=invalid"
                                                 : "part=from result=invalid";

    policy_verdict_dunno(v);
    if (a == SND_SCORE) {
        policy_verdict_set(v, POLICY_SCORE, 0, "", "", "%s", "");
        v->score = sc->score;
        snprintf(v->reason, sizeof(v->reason), "%s score=%d", reason, sc->score);
    } else if (a == SND_TEMPFAIL || a == SND_REJECT) {
        policy_verdict_set(v, a == SND_REJECT ? POLICY_REJECT : POLICY_TEMPFAIL,
                           a == SND_REJECT ? 550 : 451, a == SND_REJECT ? "5.1.8" : "4.1.8", reason,
                           "%s is not a valid domain name", part_subject[part]);
    }
}

/* snd_on_exists - the lookup decided: the verdict, and the run ends */
static void snd_on_exists(enum exists_result r, const char *detail, void *arg)
{
    struct snd_run *run = arg;
    struct policy_job *job = run->job;
    struct policy_verdict v;

    snd_result_verdict(run->sc, run->part, run->name, r, detail, &v);
    policy_job_set_data(job, NULL);
    free(run);
    policy_job_done(job, &v); /* last: the pipeline may go on from here */
}

/* snd_lookup - judge name (as given by the client) for part: now, or after DNS */
static void snd_lookup(struct snd_conf *sc, struct policy_job *job, enum snd_part part,
                       const char *given)
{
    struct snd_run *run = xcalloc(1, sizeof(*run));
    struct policy_verdict v;
    int kind = snd_domain(given, run->name);

    run->sc = sc;
    run->job = job;
    run->part = part;
    if (kind > 0) {
        policy_job_set_data(job, run); /* before the start: a cancel finds it */
        run->q = exists_start(sc->dns, run->name, part == PART_HELO, snd_on_exists, run);
        if (run->q)
            return;
        policy_job_set_data(job, NULL);
    }
    if (kind < 0)
        snd_invalid_verdict(sc, part, &v);
    else
        policy_verdict_dunno(&v); /* an address literal, or no resolver */
    free(run);
    policy_job_done(job, &v);
}

/* snd_trusted - a client in relay_networks (our own servers) */
static int snd_trusted(const struct snd_conf *sc, const struct policy_client *cl)
{
    for (size_t i = 0; i < sc->cfg->nrelay_networks; i++)
        if (cidr_match(&sc->cfg->relay_networks[i], (const struct sockaddr *)&cl->addr))
            return 1;
    return 0;
}

/* snd_spf_for - the SPF result for the MAIL FROM identity of domain, or "none" */
static const char *snd_spf_for(const struct policy_client *cl, const char *domain)
{
    const struct policy_auth *a = cl->auth;

    if (!a->spf[0] || a->spf_helo || strcasecmp(a->spf_domain, domain) != 0)
        return "none";
    return a->spf;
}

/* snd_own_verdict - RCPT: one of our domains as MAIL FROM from outside */
static void snd_own_verdict(const struct snd_conf *sc, const struct policy_client *cl,
                            struct policy_verdict *v)
{
    const char *given = snd_sender_domain(cl);
    char dom[DNS_NAME_SIZE], reason[sizeof(v->reason)];
    const char *spf;

    policy_verdict_dunno(v);
    if (sc->own == OWN_DUNNO || !given || snd_domain(given, dom) <= 0 ||
        !(config_is_local_domain(sc->cfg, dom) || config_is_local_domain(sc->cfg, given)))
        return;
    if (snd_trusted(sc, cl)) {
        snprintf(v->reason, sizeof(v->reason), "part=own domain=%s relay-network", dom);
        return;
    }
    spf = snd_spf_for(cl, dom);
    snprintf(reason, sizeof(reason), "part=own domain=%s spf=%s", dom, spf);
    if (sc->own == OWN_SPF && strcmp(spf, "pass") == 0)
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
    else if (sc->own == OWN_SPF && strcmp(spf, "temperror") == 0)
        policy_verdict_set(v, POLICY_TEMPFAIL, 451, "4.7.1", reason,
                           "Sender address rejected: cannot verify SPF for our domain %s; try "
                           "again later",
                           dom);
    else if (sc->own == OWN_SPF)
        policy_verdict_set(v, POLICY_REJECT, 550, "5.7.1", reason,
                           "Sender address rejected: %s is our own domain and SPF does not "
                           "authorise this client for it (SPF %s)",
                           dom, spf);
    else
        policy_verdict_set(v, POLICY_REJECT, 550, "5.7.1", reason,
                           "Sender address rejected: %s is our own domain; its mail does not "
                           "come from outside",
                           dom);
}

/* snd_from_run - END: the header From: domain, unless MAIL judged the same domain */
static void snd_from_run(struct snd_conf *sc, struct policy_job *job, struct policy_client *cl)
{
    char dom[FROM_DOMAIN_SIZE], env[DNS_NAME_SIZE];
    const char *given = snd_sender_domain(cl);
    enum from_status st;
    struct policy_verdict v;

    policy_verdict_dunno(&v);
    st = cl->header ? from_author_domain(cl->header, cl->header_len, dom) : FROM_NONE;
    if (st != FROM_ONE) {
        /* no From:, several, or unusable: the dmarc check's business, not ours */
        snprintf(v.reason, sizeof(v.reason), "part=from status=%s", from_status_name(st));
        policy_job_done(job, &v);
        return;
    }
    if (given && sc->action[PART_MAILFROM] != SND_DUNNO && snd_domain(given, env) > 0 &&
        strcmp(env, dom) == 0) {
        snprintf(v.reason, sizeof(v.reason), "part=from domain=%s judged-at-mail", dom);
        policy_job_done(job, &v);
        return;
    }
    snd_lookup(sc, job, PART_FROM, dom);
}

/* sender_run - the part of the stage, when its action is not dunno */
static void sender_run(void *state, struct policy_job *job, enum policy_stage stage,
                       struct policy_client *cl)
{
    struct snd_conf *sc = state;
    struct policy_verdict v;
    const char *dom;

    policy_verdict_dunno(&v);
    if (stage == POLICY_HELO && sc->action[PART_HELO] != SND_DUNNO && cl->helo) {
        snd_lookup(sc, job, PART_HELO, cl->helo);
        return;
    }
    if (stage == POLICY_MAIL && sc->action[PART_MAILFROM] != SND_DUNNO &&
        (dom = snd_sender_domain(cl)) != NULL) {
        snd_lookup(sc, job, PART_MAILFROM, dom);
        return;
    }
    if (stage == POLICY_END && sc->action[PART_FROM] != SND_DUNNO) {
        snd_from_run(sc, job, cl);
        return;
    }
    if (stage == POLICY_RCPT)
        snd_own_verdict(sc, cl, &v);
    policy_job_done(job, &v);
}

/* sender_cancel - the session is gone: stop the lookup */
static void sender_cancel(void *state, struct policy_job *job)
{
    struct snd_run *run = policy_job_data(job);

    if (!run)
        return;
    policy_job_set_data(job, NULL);
    exists_cancel(run->q);
    free(run);
}

/* sender_init - the sender section */
static int sender_init(const struct policy_env *env, void **state, char *err, size_t errlen)
{
    cfg_t *sec = cfg_getsec(env->cfg->raw, "sender");
    static const char *const keys[] = {"helo_exists", "domain_exists", "from_exists"};
    struct snd_conf *sc;

    if (!env->dns && !env->checking) {
        snprintf(err, errlen, "%s:0: sender needs a dns section", env->cfg->path);
        return -1;
    }
    sc = xcalloc(1, sizeof(*sc));
    sc->cfg = env->cfg;
    sc->dns = env->dns;
    for (int i = 0; i < 3; i++)
        sc->action[i] = (enum snd_action)SND_PARSE(snd_action_names, cfg_getstr(sec, keys[i]));
    sc->temperror = strcmp(cfg_getstr(sec, "temperror"), "dunno") == 0 ? SND_DUNNO : SND_TEMPFAIL;
    sc->own = (enum snd_own)SND_PARSE(snd_own_names, cfg_getstr(sec, "own_domains"));
    sc->score = (int)cfg_getint(sec, "score");
    *state = sc;
    return 0;
}

/* sender_free - the configuration */
static void sender_free(void *state)
{
    free(state);
}

static cfg_opt_t snd_opts[] = {
    CFG_STR("domain_exists", "reject", CFGF_NONE),
    CFG_STR("helo_exists", "dunno", CFGF_NONE),
    CFG_STR("from_exists", "reject", CFGF_NONE),
    CFG_STR("temperror", "tempfail", CFGF_NONE),
    CFG_STR("own_domains", "spf", CFGF_NONE),
    CFG_INT("score", 5, CFGF_NONE),
    CFG_END(),
};

static const struct config_bound snd_bounds[] = {
    {"score", -1000, 1000},
    {NULL, 0, 0},
};

static const struct config_validator snd_validators[] = {
    {"sender|domain_exists", snd_valid_action}, {"sender|helo_exists", snd_valid_action},
    {"sender|from_exists", snd_valid_action},   {"sender|temperror", snd_valid_temperror},
    {"sender|own_domains", snd_valid_own},      {NULL, NULL},
};

static const struct config_section snd_section = {
    .name = "sender",
    .opts = snd_opts,
    .bounds = snd_bounds,
    .validators = snd_validators,
};

const struct policy_check_ops policy_check_sender = {
    .name = "sender",
    .stages = POLICY_STAGE(POLICY_HELO) | POLICY_STAGE(POLICY_MAIL) | POLICY_STAGE(POLICY_RCPT) |
              POLICY_STAGE(POLICY_END),
    .init = sender_init,
    .run = sender_run,
    .cancel = sender_cancel,
    .free = sender_free,
    .section = &snd_section,
};
