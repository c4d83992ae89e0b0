/* exists.c - MX, A and AAAA of a name in parallel; the first answers that
 * decide end the others (see exists.h for what "exists" means) */
#include "policy/exists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "dns/dns.h"

enum { EX_MX, EX_A, EX_AAAA, EX_N };

/* what one lookup found */
enum ex_state { EX_PENDING, EX_FOUND, EX_NULL, EX_NX, EX_NODATA, EX_ERR };

struct exists_query;

struct ex_one {
    struct exists_query *q;
    struct dns_query *dq;
    enum ex_state st;
};

struct exists_query {
    int host;
    exists_cb cb;
    void *arg;
    struct ex_one one[EX_N];
    char detail[16]; /* the first DNS error's name */
};

static const char *const ex_names[] = {"yes", "nxdomain", "no-records", "null-mx", "tempfail"};

/* exists_result_name - for log reasons */
const char *exists_result_name(enum exists_result r)
{
    return (unsigned)r < sizeof(ex_names) / sizeof(ex_names[0]) ? ex_names[r] : "?";
}

/* ex_state_of - one answer in our terms; a single MX "." is the null MX (RFC 7505) */
static enum ex_state ex_state_of(const struct dns_result *res)
{
    switch (res->status) {
    case DNS_OK:
        if (res->type == DNS_T_MX && res->count == 1 &&
            (res->str[0][0] == '\0' || strcmp(res->str[0], ".") == 0))
            return EX_NULL;
        return EX_FOUND;
    case DNS_NXDOMAIN:
        return EX_NX;
    case DNS_NODATA:
        return EX_NODATA;
    default:
        return EX_ERR;
    }
}

/* ex_decide - the result once the answers so far decide, else -1 */
static int ex_decide(const struct exists_query *q)
{
    enum ex_state mx = q->one[EX_MX].st, a = q->one[EX_A].st, aaaa = q->one[EX_AAAA].st;
    int addr = a == EX_FOUND || aaaa == EX_FOUND;

    if (mx == EX_NX || a == EX_NX || aaaa == EX_NX)
        return EXISTS_NXDOMAIN; /* authoritative: no such name, whatever else is pending */
    if (mx == EX_FOUND)
        return EXISTS_YES;
    if (mx == EX_NULL && !q->host)
        return EXISTS_NULLMX; /* even with addresses: the domain says it takes no mail */
    if (addr && (q->host || mx != EX_PENDING))
        return EXISTS_YES; /* a sender domain's null MX could still come: wait for MX */
    if (mx == EX_PENDING || a == EX_PENDING || aaaa == EX_PENDING)
        return -1;
    if (mx == EX_ERR || a == EX_ERR || aaaa == EX_ERR)
        return EXISTS_TEMPFAIL;
    return EXISTS_NORECORDS;
}

/* ex_cancel_all - stop what is still pending */
static void ex_cancel_all(struct exists_query *q)
{
    for (int i = 0; i < EX_N; i++) {
        dns_cancel(q->one[i].dq);
        q->one[i].dq = NULL;
    }
}

/* ex_on_answer - one lookup answered: decide, or wait for the others */
static void ex_on_answer(const struct dns_result *res, void *arg)
{
    struct ex_one *one = arg;
    struct exists_query *q = one->q;
    exists_cb cb = q->cb;
    void *cb_arg = q->arg;
    char detail[sizeof(q->detail)];
    int r;

    one->dq = NULL;
    one->st = ex_state_of(res);
    if (one->st == EX_ERR && !q->detail[0])
        snprintf(q->detail, sizeof(q->detail), "%s", dns_status_str(res->status));
    r = ex_decide(q);
    if (r < 0)
        return;
    snprintf(detail, sizeof(detail), "%s", r == EXISTS_TEMPFAIL ? q->detail : "");
    ex_cancel_all(q);
    free(q); /* the query ends before cb: cb may free its owner or ask again */
    cb((enum exists_result)r, detail, cb_arg);
}

/* exists_start - the three lookups at once */
struct exists_query *exists_start(struct dns *dns, const char *name, int host, exists_cb cb,
                                  void *arg)
{
    static const enum dns_type types[EX_N] = {DNS_T_MX, DNS_T_A, DNS_T_AAAA};
    struct exists_query *q;

    if (!dns || !name || !cb)
        return NULL;
    q = xcalloc(1, sizeof(*q));
    q->host = host;
    q->cb = cb;
    q->arg = arg;
    for (int i = 0; i < EX_N; i++) {
        q->one[i].q = q;
        q->one[i].dq = dns_lookup(dns, types[i], name, ex_on_answer, &q->one[i]);
        if (!q->one[i].dq) {
            ex_cancel_all(q);
            free(q);
            return NULL;
        }
    }
    return q;
}

/* exists_cancel - the asker went away */
void exists_cancel(struct exists_query *q)
{
    if (!q)
        return;
    ex_cancel_all(q);
    free(q);
}
