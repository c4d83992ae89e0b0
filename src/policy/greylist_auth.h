/*
 * greylist_auth.h - what sender authentication tells the greylist: the
 * sender domain SPF authorised the client for (so that a large sender's pool
 * retrying from another of its addresses finds its triplet), an aligned DKIM
 * pass at the end of DATA, and the sessions whose greylisting waits for it.
 */
#ifndef MX_POLICY_GREYLIST_AUTH_H
#define MX_POLICY_GREYLIST_AUTH_H

#include <stddef.h>

#include "policy/policy.h"

/* glauth_spf_domain - when SPF passed for the MAIL FROM identity of cl (not
 * the HELO's), its domain, lower-case, into out; 1, else 0 */
int glauth_spf_domain(const struct policy_client *cl, char *out, size_t outlen);

typedef struct psl_ctx_st psl_ctx_t;

/* glauth_dkim_aligned - END stage: the d= of a DKIM pass aligned with the MAIL
 * FROM or the header From: domain in DMARC's relaxed sense (one organisational
 * domain by the Public Suffix List psl, RFC 7489 3.1), or NULL */
const char *glauth_dkim_aligned(const struct policy_client *cl, const psl_ctx_t *psl);

/* The sessions whose greylisting at RCPT waits for the end of DATA: one entry
 * per session (by its policy_client), with the first triplet key deferred. */
struct glauth_defer;

struct glauth_defer *glauth_defer_new(void);
void glauth_defer_free(struct glauth_defer *d);
/* glauth_defer_mark - a recipient of cl's transaction was deferred (key: its triplet) */
void glauth_defer_mark(struct glauth_defer *d, const struct policy_client *cl, const char *key);
/* glauth_defer_take - did cl's transaction defer any recipient; the first key into
 * key; the entry is gone afterwards. 1 or 0 */
int glauth_defer_take(struct glauth_defer *d, const struct policy_client *cl, char *key,
                      size_t keylen);
/* glauth_defer_forget - a new transaction, or the session ended */
void glauth_defer_forget(struct glauth_defer *d, const struct policy_client *cl);

#endif
