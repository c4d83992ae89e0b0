/*
 * dmarc_lookup.h - the DMARC outcome of one author domain: its policy record
 * from DNS (RFC 7489 6.6.3, with the organisational domain's record as the
 * fallback), SPF and DKIM alignment, the policy that applies (p, sp, or np
 * for a subdomain that does not exist, RFC 9091) and its pct sampling.
 */
#ifndef MX_POLICY_DMARC_LOOKUP_H
#define MX_POLICY_DMARC_LOOKUP_H

#include "mail/from.h"
#include "policy/dmarc.h"

struct dns;
struct policy_client;
struct dmarc_lookup;

/* Debian's publicsuffix package: updated with the distribution, unlike the
 * copy built into libpsl when libpsl itself was built */
#define DMARC_PSL_DEFAULT "/usr/share/publicsuffix/public_suffix_list.dat"

/* RFC 8601 result tokens of the dmarc method */
enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };

struct dmarc_domain {
    char name[FROM_DOMAIN_SIZE]; /* the author domain (lower-case A-label) */
    char org[FROM_DOMAIN_SIZE];  /* its organisational domain */
    enum dmarc_result result;
    enum dmarc_policy published; /* the record's policy for it (p, sp or np); UNSET: no record */
    enum dmarc_policy applied;   /* after pct; UNSET unless the result is fail */
    int pct;
    int from_org;     /* the record is the organisational domain's */
    int spf_aligned;  /* SPF passed for an aligned MAIL FROM domain */
    int dkim_aligned; /* a passing DKIM signature has an aligned d= */
    char problem[64]; /* why there is no usable record: for the log */
};

struct dmarc_lookup_env {
    struct dns *dns;
    const psl_ctx_t *psl;
};

typedef void (*dmarc_domain_cb)(struct dmarc_domain *d, void *arg);

/* dmarc_lookup_start - decide d (its name set) for the message of cl; cb runs
 * later, from the loop, once. NULL when d was decided at once (cb never runs) */
struct dmarc_lookup *dmarc_lookup_start(const struct dmarc_lookup_env *env,
                                        const struct policy_client *cl, struct dmarc_domain *d,
                                        dmarc_domain_cb cb, void *arg);
/* dmarc_lookup_cancel - stop its queries; cb never runs. NULL is ignored */
void dmarc_lookup_cancel(struct dmarc_lookup *l);

const char *dmarc_result_name(enum dmarc_result r);

#endif
