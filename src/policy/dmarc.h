/*
 * dmarc.h - the parts of the dmarc check (RFC 7489) that stand alone: the
 * policy record, organisational domains and identifier alignment, and the
 * random source of `pct` sampling. The check itself is dmarc.c.
 */
#ifndef MX_POLICY_DMARC_H
#define MX_POLICY_DMARC_H

#include <stddef.h>

struct policy_auth;
typedef struct psl_ctx_st psl_ctx_t;

enum dmarc_policy { DMARC_P_UNSET = -1, DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

/* A parsed record (RFC 7489 6.3; np from RFC 9091). Unset tags take their defaults. */
struct dmarc_record {
    enum dmarc_policy p;  /* never UNSET in a record that parsed */
    enum dmarc_policy sp; /* UNSET: p applies to subdomains */
    enum dmarc_policy np; /* UNSET: sp (or p) applies to non-existent subdomains */
    int pct;              /* 0..100, default 100 */
    int adkim_strict;     /* adkim=s (default r, relaxed) */
    int aspf_strict;      /* aspf=s */
    int p_from_rua;       /* p or sp was invalid: p=none because rua is valid (6.6.3 6.1) */
};

enum dmarc_parse {
    DMARC_REC_OK,      /* a DMARC record, usable */
    DMARC_REC_NOT,     /* does not start with v=DMARC1: not a DMARC record, discarded */
    DMARC_REC_INVALID, /* v=DMARC1 but no valid p (or a bad sp) and no valid rua: no DMARC */
};

/* dmarc_record_parse - one TXT record (len octets, may hold NUL): v=DMARC1 first,
 * unknown tags ignored, bad values of the other tags replaced by their defaults */
enum dmarc_parse dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r);

const char *dmarc_policy_name(enum dmarc_policy p);

/* dmarc_psl_load - the Public Suffix List from file (".dat" or ".dafsa"), or
 * libpsl's built-in list when file is "" ; NULL when it cannot be loaded */
psl_ctx_t *dmarc_psl_load(const char *file);
void dmarc_psl_free(psl_ctx_t *psl);

/* dmarc_org_domain - the organisational domain of a lower-case domain
 * (RFC 7489 3.2): its public suffix and one more label; a domain that is
 * itself a public suffix is its own. Into out (256 octets) */
void dmarc_org_domain(const psl_ctx_t *psl, const char *domain, char *out, size_t outlen);

/* dmarc_aligned - are two lower-case domains aligned: equal (strict), or with
 * one organisational domain (relaxed, RFC 7489 3.1) */
int dmarc_aligned(const psl_ctx_t *psl, const char *a, const char *b, int strict);

/* dmarc_spf_aligned - SPF passed for the MAIL FROM identity (for the null sender,
 * the HELO name: RFC 7208 2.4) and its domain aligns with from (aspf) */
int dmarc_spf_aligned(const psl_ctx_t *psl, const struct policy_auth *a, int null_sender,
                      const char *from, int strict);

/* dmarc_dkim_aligned - the index of a passing DKIM signature whose d= aligns with
 * from (adkim), or -1 */
int dmarc_dkim_aligned(const psl_ctx_t *psl, const struct policy_auth *a, const char *from,
                       int strict);

/* dmarc_set_random - tests only: the source of pct sampling, returning 0..bound-1;
 * NULL restores arc4random_uniform */
void dmarc_set_random(unsigned (*fn)(unsigned bound));
/* dmarc_sampled - is this message one of pct percent that the policy applies to */
int dmarc_sampled(int pct);

#endif
