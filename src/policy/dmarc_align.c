/*
 * dmarc_align.c - organisational domains from the Public Suffix List (libpsl)
 * and identifier alignment (RFC 7489 3.1, 3.2), and the random source of pct.
 */
#include "policy/dmarc.h"

#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

psl_ctx_t *dmarc_psl_load(const char *file)
{
    if (!file || !file[0])
        return (psl_ctx_t *)psl_builtin();
    return psl_load_file(file);
}

void dmarc_psl_free(psl_ctx_t *psl)
{
    /* the built-in list is static in libpsl: psl_free ignores it */
    psl_free(psl);
}

void dmarc_org_domain(const psl_ctx_t *psl, const char *domain, char *out, size_t outlen)
{
    const char *reg = psl ? psl_registrable_domain(psl, domain) : NULL;

    /* NULL: the domain is a public suffix itself (or the list has no rule for
     * it): no label above the suffix to take, the domain stands for itself */
    snprintf(out, outlen, "%s", reg ? reg : domain);
}

int dmarc_aligned(const psl_ctx_t *psl, const char *a, const char *b, int strict)
{
    char oa[256], ob[256];

    if (!a[0] || !b[0])
        return 0;
    if (strcmp(a, b) == 0)
        return 1;
    if (strict)
        return 0;
    dmarc_org_domain(psl, a, oa, sizeof(oa));
    dmarc_org_domain(psl, b, ob, sizeof(ob));
    return strcmp(oa, ob) == 0;
}

int dmarc_spf_aligned(const psl_ctx_t *psl, const struct policy_auth *a, int null_sender,
                      const char *from, int strict)
{
    if (strcmp(a->spf, "pass") != 0)
        return 0;
    /* a HELO result stands for the MAIL FROM identity only for the null sender
     * (postmaster@HELO, RFC 7208 2.4); a HELO checked first does not */
    if (a->spf_helo && !null_sender)
        return 0;
    return dmarc_aligned(psl, a->spf_domain, from, strict);
}

int dmarc_dkim_aligned(const psl_ctx_t *psl, const struct policy_auth *a, const char *from,
                       int strict)
{
    for (size_t i = 0; i < a->ndkim && i < POLICY_DKIM_MAX; i++)
        if (strcmp(a->dkim[i].result, "pass") == 0 &&
            dmarc_aligned(psl, a->dkim[i].domain, from, strict))
            return (int)i;
    return -1;
}

static unsigned dmarc_random_default(unsigned bound)
{
    return arc4random_uniform(bound);
}

static unsigned (*dmarc_random)(unsigned) = dmarc_random_default;

void dmarc_set_random(unsigned (*fn)(unsigned bound))
{
    dmarc_random = fn ? fn : dmarc_random_default;
}

int dmarc_sampled(int pct)
{
    if (pct >= 100)
        return 1;
    if (pct <= 0)
        return 0;
    return dmarc_random(100) < (unsigned)pct;
}
