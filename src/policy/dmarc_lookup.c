/*
 * dmarc_lookup.c - one author domain's DMARC outcome on the c-ares resolver.
 *
 * RFC 7489 6.6.3: TXT at _dmarc.<domain>; records that do not start with
 * v=DMARC1 are discarded; none left means the organisational domain's record
 * is asked for (if that is another domain). Several records, or a record
 * whose p is unusable (6.6.3 step 6), end policy discovery: no DMARC
 * processing, logged as permerror. A SERVFAIL or timeout is temperror (the
 * check's temperror action decides). With a record, aligned SPF or DKIM is a
 * pass; anything else fails and the record's policy applies: p for the
 * domain itself, sp for a subdomain, np (RFC 9091) for a subdomain that does
 * not exist (no A, AAAA or MX: asked only when np would change the outcome).
 */
#include "policy/dmarc_lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "dns/dns.h"
#include "policy/policy.h"

enum dmarc_phase { PH_DOMAIN, PH_ORG, PH_EXISTS };

static const enum dns_type dmarc_exists_types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX};

struct dmarc_lookup {
    const struct dmarc_lookup_env *env;
    const struct policy_client *cl;
    struct dmarc_domain *d;
    dmarc_domain_cb cb;
    void *arg;
    enum dmarc_phase phase;
    struct dmarc_record rec;
    struct dns_query *q[3]; /* PH_EXISTS asks A, AAAA and MX at once */
    int pending;
    int exists; /* PH_EXISTS: some answer had records, or could not tell */
};

const char *dmarc_result_name(enum dmarc_result r)
{
    static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};

    return r <= DMARC_PERMERROR ? names[r] : "?";
}

/* dmarc_done - the domain is decided: tell the caller, free the lookup */
static void dmarc_done(struct dmarc_lookup *l)
{
    dmarc_domain_cb cb = l->cb;
    struct dmarc_domain *d = l->d;
    void *arg = l->arg;

    free(l);
    cb(d, arg);
}

/* dmarc_stop - decided with result r and a problem for the log */
static void dmarc_stop(struct dmarc_lookup *l, enum dmarc_result r, const char *problem)
{
    l->d->result = r;
    snprintf(l->d->problem, sizeof(l->d->problem), "%s", problem);
    dmarc_done(l);
}

/* dmarc_downgrade - pct left this message out: the next less strict policy (6.6.4) */
static enum dmarc_policy dmarc_downgrade(enum dmarc_policy p)
{
    return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

/* dmarc_apply - a failing domain: the policy, sampled by pct */
static void dmarc_apply(struct dmarc_lookup *l, enum dmarc_policy p)
{
    struct dmarc_domain *d = l->d;

    d->result = DMARC_FAIL;
    d->published = p;
    d->applied = dmarc_sampled(l->rec.pct) ? p : dmarc_downgrade(p);
    dmarc_done(l);
}

/* dmarc_subdomain_policy - sp, else p */
static enum dmarc_policy dmarc_subdomain_policy(const struct dmarc_record *r)
{
    return r->sp != DMARC_P_UNSET ? r->sp : r->p;
}

static void dmarc_on_exists(const struct dns_result *res, void *arg);

/* dmarc_ask_exists - does the failing subdomain exist (RFC 9091 2.7: A, AAAA, MX) */
static void dmarc_ask_exists(struct dmarc_lookup *l)
{
    l->phase = PH_EXISTS;
    for (int i = 0; i < 3; i++) {
        l->q[i] = dns_lookup(l->env->dns, dmarc_exists_types[i], l->d->name, dmarc_on_exists, l);
        l->pending += l->q[i] != NULL;
    }
    if (!l->pending)
        dmarc_apply(l, dmarc_subdomain_policy(&l->rec));
}

/* dmarc_on_exists - one of the three answers; NXDOMAIN or NODATA for all: np */
static void dmarc_on_exists(const struct dns_result *res, void *arg)
{
    struct dmarc_lookup *l = arg;

    for (int i = 0; i < 3; i++)
        if (res->type == dmarc_exists_types[i])
            l->q[i] = NULL;
    /* a DNS error cannot tell: the domain is taken to exist (sp, not np) */
    if (res->status != DNS_NXDOMAIN && res->status != DNS_NODATA)
        l->exists = 1;
    if (--l->pending > 0)
        return;
    dmarc_apply(l, l->exists ? dmarc_subdomain_policy(&l->rec) : l->rec.np);
}

/* dmarc_evaluate - a usable record: alignment decides between pass and the policy */
static void dmarc_evaluate(struct dmarc_lookup *l)
{
    struct dmarc_domain *d = l->d;
    const struct policy_client *cl = l->cl;
    enum dmarc_policy p = d->from_org ? dmarc_subdomain_policy(&l->rec) : l->rec.p;

    d->pct = l->rec.pct;
    d->spf_aligned = dmarc_spf_aligned(l->env->psl, cl->auth, !cl->sender || !cl->sender[0],
                                       d->name, l->rec.aspf_strict);
    d->dkim_aligned = dmarc_dkim_aligned(l->env->psl, cl->auth, d->name, l->rec.adkim_strict) >= 0;
    if (d->spf_aligned || d->dkim_aligned) {
        d->result = DMARC_PASS;
        d->published = p;
        dmarc_done(l);
        return;
    }
    if (d->from_org && l->rec.np != DMARC_P_UNSET && l->rec.np != p) {
        dmarc_ask_exists(l);
        return;
    }
    dmarc_apply(l, p);
}

static void dmarc_on_txt(const struct dns_result *res, void *arg);

/* dmarc_ask - TXT of _dmarc.<name>; 0, or -1 when the name is too long to ask */
static int dmarc_ask(struct dmarc_lookup *l, const char *name)
{
    char q[DNS_NAME_SIZE + 8];

    if (snprintf(q, sizeof(q), "_dmarc.%s", name) >= (int)sizeof(q) || strlen(q) > 253)
        return -1;
    l->q[0] = dns_lookup(l->env->dns, DNS_T_TXT, q, dmarc_on_txt, l);
    return l->q[0] ? 0 : -1;
}

/* dmarc_pick - the DMARC records of an answer: 1 with *rec set, 0, or -1 (several
 * or an unusable one: no DMARC processing, problem says which) */
static int dmarc_pick(const struct dns_result *res, struct dmarc_record *rec, char *problem,
                      size_t plen)
{
    int found = 0, invalid = 0;
    struct dmarc_record r;

    for (size_t i = 0; res->status == DNS_OK && i < res->count; i++) {
        enum dmarc_parse st = dmarc_record_parse(res->str[i], res->len[i], &r);
        if (st == DMARC_REC_NOT)
            continue;
        found++;
        invalid = st == DMARC_REC_INVALID;
        *rec = r;
    }
    if (found > 1)
        snprintf(problem, plen, "several records");
    else if (found == 1 && invalid)
        snprintf(problem, plen, "record without a valid policy");
    return found > 1 || invalid ? -1 : found;
}

/* dmarc_on_txt - the record of the domain or of its organisational domain */
static void dmarc_on_txt(const struct dns_result *res, void *arg)
{
    struct dmarc_lookup *l = arg;
    struct dmarc_domain *d = l->d;
    int n;

    l->q[0] = NULL;
    if (res->status != DNS_OK && res->status != DNS_NXDOMAIN && res->status != DNS_NODATA) {
        dmarc_stop(l, DMARC_TEMPERROR, dns_status_str(res->status));
        return;
    }
    n = dmarc_pick(res, &l->rec, d->problem, sizeof(d->problem));
    if (n < 0) {
        d->from_org = l->phase == PH_ORG;
        dmarc_stop(l, DMARC_PERMERROR, d->problem);
    } else if (n == 1) {
        d->from_org = l->phase == PH_ORG;
        dmarc_evaluate(l);
    } else if (l->phase == PH_DOMAIN && strcmp(d->org, d->name) != 0) {
        l->phase = PH_ORG;
        if (dmarc_ask(l, d->org) < 0)
            dmarc_stop(l, DMARC_NONE, "name too long");
    } else {
        dmarc_stop(l, DMARC_NONE, "no record");
    }
}

struct dmarc_lookup *dmarc_lookup_start(const struct dmarc_lookup_env *env,
                                        const struct policy_client *cl, struct dmarc_domain *d,
                                        dmarc_domain_cb cb, void *arg)
{
    struct dmarc_lookup *l;
    int null_sender = !cl->sender || !cl->sender[0];

    d->result = DMARC_NONE;
    d->published = d->applied = DMARC_P_UNSET;
    d->pct = 100;
    dmarc_org_domain(env->psl, d->name, d->org, sizeof(d->org));
    /* relaxed alignment for the log of a domain without a record; a record's
     * adkim and aspf decide again in dmarc_evaluate */
    d->spf_aligned = dmarc_spf_aligned(env->psl, cl->auth, null_sender, d->name, 0);
    d->dkim_aligned = dmarc_dkim_aligned(env->psl, cl->auth, d->name, 0) >= 0;
    l = xcalloc(1, sizeof(*l));
    l->env = env;
    l->cl = cl;
    l->d = d;
    l->cb = cb;
    l->arg = arg;
    l->phase = PH_DOMAIN;
    if (dmarc_ask(l, d->name) < 0) {
        free(l);
        snprintf(d->problem, sizeof(d->problem), "name too long");
        return NULL;
    }
    return l;
}

void dmarc_lookup_cancel(struct dmarc_lookup *l)
{
    if (!l)
        return;
    for (int i = 0; i < 3; i++)
        dns_cancel(l->q[i]);
    free(l);
}
