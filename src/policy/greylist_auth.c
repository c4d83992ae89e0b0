/* greylist_auth.c - SPF and DKIM identities for the greylist (greylist_auth.h) */
#include "policy/greylist_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "mail/address.h"
#include "mail/from.h"
#include "policy/dmarc.h"

struct glauth_entry {
    const struct policy_client *cl;
    char *key;
    struct glauth_entry *next;
};

struct glauth_defer {
    struct glauth_entry *head; /* only sessions with a deferred recipient: few */
};

/* glauth_sender_domain - the canonical MAIL FROM domain into out; 0, or -1 (none) */
static int glauth_sender_domain(const struct policy_client *cl, char *out, size_t outlen)
{
    const char *at = cl->sender ? strrchr(cl->sender, '@') : NULL;

    if (!at || !at[1] || addr_canon_domain(at + 1, out, outlen) < 0)
        return -1;
    return 0;
}

int glauth_spf_domain(const struct policy_client *cl, char *out, size_t outlen)
{
    const struct policy_auth *a = cl->auth;

    if (strcmp(a->spf, "pass") != 0 || a->spf_helo || !a->spf_domain[0] ||
        glauth_sender_domain(cl, out, outlen) < 0)
        return 0;
    /* the result is the one of this transaction's MAIL FROM domain */
    return strcasecmp(out, a->spf_domain) == 0;
}

const char *glauth_dkim_aligned(const struct policy_client *cl, const psl_ctx_t *psl)
{
    char env[256] = "", hdr[FROM_DOMAIN_SIZE] = "";
    const struct policy_auth *a = cl->auth;
    int i = -1;

    if (glauth_sender_domain(cl, env, sizeof(env)) < 0)
        env[0] = '\0';
    if (a->from_domain[0])
        snprintf(hdr, sizeof(hdr), "%s", a->from_domain);
    else if (!cl->header || from_author_domain(cl->header, cl->header_len, hdr) != FROM_ONE)
        hdr[0] = '\0';
    if (env[0])
        i = dmarc_dkim_aligned(psl, a, env, 0);
    if (i < 0 && hdr[0])
        i = dmarc_dkim_aligned(psl, a, hdr, 0);
    return i >= 0 ? a->dkim[i].domain : NULL;
}

struct glauth_defer *glauth_defer_new(void)
{
    return xcalloc(1, sizeof(struct glauth_defer));
}

void glauth_defer_free(struct glauth_defer *d)
{
    while (d && d->head) {
        struct glauth_entry *e = d->head;
        d->head = e->next;
        free(e->key);
        free(e);
    }
    free(d);
}

void glauth_defer_mark(struct glauth_defer *d, const struct policy_client *cl, const char *key)
{
    struct glauth_entry *e;

    for (e = d->head; e; e = e->next)
        if (e->cl == cl)
            return; /* the first recipient's key names the transaction in the log */
    e = xcalloc(1, sizeof(*e));
    e->cl = cl;
    e->key = xstrdup(key);
    e->next = d->head;
    d->head = e;
}

int glauth_defer_take(struct glauth_defer *d, const struct policy_client *cl, char *key,
                      size_t keylen)
{
    for (struct glauth_entry **p = &d->head; *p; p = &(*p)->next) {
        struct glauth_entry *e = *p;
        if (e->cl != cl)
            continue;
        snprintf(key, keylen, "%s", e->key);
        *p = e->next;
        free(e->key);
        free(e);
        return 1;
    }
    return 0;
}

void glauth_defer_forget(struct glauth_defer *d, const struct policy_client *cl)
{
    char key[8];

    if (d)
        glauth_defer_take(d, cl, key, sizeof(key));
}
