/*
 * session_sign.c - DKIM signatures on the mail our own clients send (relay_networks,
 * or an authenticated session), made while the message arrives: the body is
 * hashed line by line as it is stored (never read again), and at the final dot
 * the header section as stored (what the servers behind us will pass on) is
 * signed with each key of the dkim_sign section of the From: domain. Inbound
 * mail is never signed. The signatures go on top of the message; our own
 * Received, Received-SPF and Authentication-Results fields are not among the
 * fields they cover: later hops may remove them. A check's edits (a milter's
 * changed fields, a replaced body, the fields it adds) come first, so the
 * signatures cover the message as it leaves (session_sign_rebody, and the
 * header copy session_edit.c keeps).
 */
#include "smtp/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/dkim.h"
#include "mail/from.h"
#include "smtp/server.h"
#include "smtp/signconf.h"

/* sign_relay_client - our own client: in relay_networks, or authenticated */
static int sign_relay_client(const struct session *s)
{
    const struct config *cfg = s->gen->cfg;

    if (s->cl.login)
        return 1;
    for (size_t i = 0; i < cfg->nrelay_networks; i++)
        if (cidr_match(&cfg->relay_networks[i], (const struct sockaddr *)&s->peer))
            return 1;
    return 0;
}

void session_sign_begin(struct session *s)
{
    if (signconf_count(s->gen->sign) > 0 && sign_relay_client(s))
        s->tx->sign_body = dkim_body_new(DKIM_CANON_RELAXED, -1);
}

void session_sign_body(struct session *s, const char *line, size_t len)
{
    if (s->tx->sign_body)
        dkim_body_update(s->tx->sign_body, line, len);
}

static void body_add(void *arg, const char *p, size_t n)
{
    dkim_body_update(arg, p, n);
}

void session_sign_rebody(struct session *s, const char *body, size_t len)
{
    struct smtp_tx *tx = s->tx;

    if (!tx->sign_body)
        return;
    dkim_body_free(tx->sign_body);
    tx->sign_body = dkim_body_new(DKIM_CANON_RELAXED, -1);
    session_unstuffed(body, len, body_add, tx->sign_body);
}

/* sign_one - one key's DKIM-Signature field over the header section h onto out; 0, or
 * -1 (logged) */
static int sign_one(struct session *s, const struct signconf_domain *d,
                    const struct signconf_key *k, const char *h, size_t hlen,
                    const unsigned char *bh, char **out, size_t *len)
{
    struct smtp_tx *tx = s->tx;
    struct dkim_sign_req rq = {.domain = d->domain,
                               .selector = k->selector,
                               .key = k->pkey,
                               .headers = signconf_headers,
                               .nheaders = signconf_nheaders(),
                               .oversign = signconf_oversign,
                               .noversign = signconf_noversign(),
                               .t = (long long)clock_now(),
                               .x = -1};
    char err[256];
    char *f = dkim_sign(&rq, h, hlen, bh, err, sizeof(err));
    size_t n;

    if (!f) {
        log_err("event=dkim_sign status=error sid=%s id=%s domain=%s selector=%s error=%s", s->sid,
                tx->id, log_q(d->domain), log_q(k->selector), log_q(err));
        return -1;
    }
    n = strlen(f);
    *out = xrealloc(*out, *len + n + 1);
    memcpy(*out + *len, f, n + 1);
    *len += n;
    free(f);
    log_info("event=dkim_signed sid=%s id=%s domain=%s selector=%s algo=%s", s->sid, tx->id,
             log_q(d->domain), log_q(k->selector), k->algo);
    return 0;
}

/* signed_header - what the signatures cover: the fields the checks add (a milter's
 * among them; they go on top of the stored header), then the header as stored */
static char *signed_header(struct session *s, size_t *len)
{
    const char *add = s->cl.add_headers ? s->cl.add_headers : "";
    size_t alen = strlen(add), hlen = s->tx->hdr_len;
    char *h = xmalloc(alen + hlen + 1);

    memcpy(h, add, alen);
    if (hlen)
        memcpy(h + alen, s->tx->hdr, hlen);
    h[alen + hlen] = '\0';
    *len = alen + hlen;
    return h;
}

/* sign_domain - the dkim_sign section for the header's From: domain, or NULL (logged) */
static const struct signconf_domain *sign_domain(struct session *s, const char *h, size_t hlen)
{
    const struct signconf_domain *d;
    char dom[FROM_DOMAIN_SIZE];
    enum from_status st = from_author_domain(h, hlen, dom);

    if (st != FROM_ONE) {
        log_info("event=dkim_sign status=skipped sid=%s id=%s reason=\"From: %s\"", s->sid,
                 s->tx->id, from_status_name(st));
        return NULL;
    }
    if (!(d = signconf_find(s->gen->sign, dom)))
        log_debug("event=dkim_sign status=skipped sid=%s id=%s from_domain=%s reason=\"no "
                  "dkim_sign section\"",
                  s->sid, s->tx->id, log_q(dom));
    return d;
}

char *session_sign_fields(struct session *s)
{
    struct smtp_tx *tx = s->tx;
    const struct signconf_domain *d;
    unsigned char bh[DKIM_HASH_LEN];
    char *out = NULL, *h;
    size_t len = 0, hlen;

    if (!tx->sign_body)
        return NULL;
    if (tx->hdr_truncated) {
        log_warn("event=dkim_sign status=skipped sid=%s id=%s reason=\"header section over %d "
                 "octets\"",
                 s->sid, tx->id, POLICY_HEADER_MAX);
        return NULL;
    }
    h = signed_header(s, &hlen);
    /* dkim_body_final fails only with l=, which we never set */
    if ((d = sign_domain(s, h, hlen)) && dkim_body_final(tx->sign_body, bh) == 0)
        for (size_t i = 0; i < d->nkeys; i++)
            sign_one(s, d, &d->key[i], h, hlen, bh, &out, &len);
    free(h);
    return out;
}

void session_sign_free(struct session *s)
{
    dkim_body_free(s->tx->sign_body);
    s->tx->sign_body = NULL;
}
