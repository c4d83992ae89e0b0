/* spf_dns.c - spf_resolver over dns_lookup(): c-ares statuses become the
 * seam's four (SERVFAIL, timeout and errors are all temperror for SPF) */
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "core/xmalloc.h"
#include "policy/spf_dns.h"

struct spf_dns_query {
    struct dns_query *q;
    spf_answer_cb cb;
    void *arg;
};

static enum spf_dns_status status_of(enum dns_status st)
{
    switch (st) {
    case DNS_OK:
        return SPF_DNS_OK;
    case DNS_NXDOMAIN:
        return SPF_DNS_NXDOMAIN;
    case DNS_NODATA:
        return SPF_DNS_NODATA;
    default: /* SERVFAIL, timeout, a malformed answer: try again later */
        return SPF_DNS_TEMPFAIL;
    }
}

static void on_result(const struct dns_result *res, void *arg)
{
    struct spf_dns_query *sq = arg;
    struct spf_rr rr[DNS_MAX_RECORDS];
    struct spf_answer a = {status_of(res->status), 0, rr};
    spf_answer_cb cb = sq->cb;
    void *cb_arg = sq->arg;

    free(sq); /* the handle ends here: the evaluator forgets it in cb */
    memset(rr, 0, sizeof rr);
    for (size_t i = 0; a.status == SPF_DNS_OK && i < res->count && i < DNS_MAX_RECORDS; i++) {
        if (res->type == DNS_T_A || res->type == DNS_T_AAAA) {
            rr[i].family = res->addr[i].family;
            if (rr[i].family == AF_INET)
                memcpy(rr[i].addr, &res->addr[i].u.v4, 4);
            else
                memcpy(rr[i].addr, &res->addr[i].u.v6, 16);
        } else {
            rr[i].str = res->str[i];
            rr[i].len = res->len[i];
        }
        a.count = i + 1;
    }
    if (a.status == SPF_DNS_OK && a.count == 0)
        a.status = SPF_DNS_NODATA;
    cb(&a, cb_arg);
}

static void *query(void *ctx, enum spf_qtype type, const char *name, spf_answer_cb cb, void *arg)
{
    static const enum dns_type types[] = {[SPF_Q_A] = DNS_T_A,
                                          [SPF_Q_AAAA] = DNS_T_AAAA,
                                          [SPF_Q_MX] = DNS_T_MX,
                                          [SPF_Q_TXT] = DNS_T_TXT,
                                          [SPF_Q_PTR] = DNS_T_PTR};
    struct spf_dns_query *sq = xmalloc(sizeof *sq);

    sq->cb = cb;
    sq->arg = arg;
    sq->q = dns_lookup(ctx, types[type], name, on_result, sq);
    if (sq->q == NULL) {
        free(sq);
        return NULL;
    }
    return sq;
}

static void cancel(void *ctx, void *handle)
{
    struct spf_dns_query *sq = handle;

    dns_cancel(sq->q);
    free(sq);
}

void spf_dns_resolver(struct spf_resolver *r, struct dns *dns)
{
    r->query = query;
    r->cancel = cancel;
    r->ctx = dns;
}
