/* dns_fcrdns.c - forward-confirmed reverse DNS: PTR, then A/AAAA of each name */
#include "dns/dns_internal.h"
#include "core/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* forward-confirmed reverse DNS                                           */

/* dns_fcrdns_cancel_steps - stop the PTR and forward lookups still pending */
void dns_fcrdns_cancel_steps(struct dns_fcrdns *fc)
{
    size_t i;

    dns_cancel(fc->ptrq);
    fc->ptrq = NULL;
    for (i = 0; i < DNS_FCRDNS_MAX_NAMES; i++) {
        dns_cancel(fc->child[i]);
        fc->child[i] = NULL;
    }
    fc->pending = 0;
}

/* fcrdns_finish - report the verdict and free the parent */
static void fcrdns_finish(struct dns_query *p, enum dns_status st, const char *name)
{
    struct dns_fcrdns *fc = p->fc;

    dns_fcrdns_cancel_steps(fc);
    dns_query_unlink(p); /* the callback may call dns_free(): p is ours now */
    p->state = Q_CALLING;
    fc->cb(st, name, fc->nnames > 0 ? fc->names[0] : NULL, fc->arg);
    dns_query_destroy(p);
}

/* fail_rank - which temporary failure to report when nothing confirmed */
static int fail_rank(enum dns_status st)
{
    return st == DNS_TIMEOUT ? 3 : st == DNS_SERVFAIL ? 2 : st == DNS_ERROR ? 1 : 0;
}

/* addr_eq - same family and address */
static int addr_eq(const struct dns_addr *a, const struct dns_addr *b)
{
    if (a->family != b->family)
        return 0;
    if (a->family == AF_INET)
        return a->u.v4.s_addr == b->u.v4.s_addr;
    return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

/* fcrdns_addr_done - a forward lookup of one PTR name ended */
static void fcrdns_addr_done(struct dns_query *c)
{
    struct dns_query *p = c->parent;
    struct dns_fcrdns *fc = p->fc;
    size_t i;

    fc->child[c->slot] = NULL;
    fc->pending--;
    for (i = 0; c->res.status == DNS_OK && i < c->res.count; i++) {
        if (addr_eq(&c->res.addr[i], &fc->client)) {
            fcrdns_finish(p, DNS_OK, fc->names[c->slot]);
            return;
        }
    }
    if (fail_rank(c->res.status) > fail_rank(fc->fail))
        fc->fail = c->res.status;
    if (fc->pending == 0)
        fcrdns_finish(p, fc->fail != DNS_OK ? fc->fail : DNS_NODATA, NULL);
}

/* fcrdns_ptr_done - the PTR answer arrived: look each name up forward */
static void fcrdns_ptr_done(struct dns_query *c)
{
    struct dns_query *p = c->parent, *f;
    struct dns_fcrdns *fc = p->fc;
    enum dns_type t = fc->client.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
    size_t i;

    fc->ptrq = NULL;
    if (c->res.status != DNS_OK) {
        fcrdns_finish(p, c->res.status == DNS_NODATA ? DNS_NXDOMAIN : c->res.status, NULL);
        return;
    }
    for (i = 0; i < c->res.count && fc->nnames < DNS_FCRDNS_MAX_NAMES; i++) {
        if (c->res.str[i][0] == '\0')
            continue; /* a PTR to the root names no host */
        fc->names[fc->nnames] = xstrdup(c->res.str[i]);
        f = dns_query_start(p->dns, t, fc->names[fc->nnames], fcrdns_addr_done);
        f->parent = p;
        f->slot = fc->nnames;
        fc->child[fc->nnames] = f;
        fc->pending++;
        fc->nnames++;
    }
    if (fc->nnames == 0)
        fcrdns_finish(p, DNS_NXDOMAIN, NULL);
}

/* dns_fcrdns - forward-confirmed reverse DNS of sa */
struct dns_query *dns_fcrdns(struct dns *dns, const struct sockaddr *sa, dns_fcrdns_cb cb,
                             void *arg)
{
    char name[DNS_NAME_SIZE];
    struct dns_query *p;
    struct dns_addr a;

    if (dns == NULL || cb == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (dns_addr_from_sa(sa, &a) < 0 ||
        dns_reverse_name(&a, a.family == AF_INET ? "in-addr.arpa" : "ip6.arpa", name,
                         sizeof(name)) < 0)
        return NULL;
    p = dns_query_new(dns);
    p->fc = xcalloc(1, sizeof(*p->fc));
    p->fc->cb = cb;
    p->fc->arg = arg;
    p->fc->client = a;
    p->fc->ptrq = dns_query_start(dns, DNS_T_PTR, name, fcrdns_ptr_done);
    p->fc->ptrq->parent = p;
    return p;
}
