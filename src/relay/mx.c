/* mx.c - a domain's mail servers on the c-ares resolver (RFC 5321 5.1, RFC 7505) */
#include "relay/mx.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "dns/dns.h"

/* One address query (AAAA or A) of one host. */
struct mx_aq {
    struct mx_lookup *q;
    struct dns_query *dq;
    size_t host;
    int v6;
    enum dns_status status;
    size_t n;
    struct dns_addr addr[DNS_MAX_RECORDS];
};

struct mx_lookup {
    struct dns *dns;
    char domain[256];
    int port;
    mx_fn done;
    void *arg;
    struct dns_query *mxq;
    struct mx_host host[MX_MAX_HOSTS];
    size_t nhost;
    struct mx_aq aq[2 * MX_MAX_HOSTS];
    size_t outstanding;
    int implicit; /* no MX: the domain's own addresses */
};

/* mx_rnd - a uniform index below n */
static size_t mx_rnd(size_t n)
{
    return n ? (size_t)arc4random_uniform((uint32_t)n) : 0;
}

/* mx_order - see mx.h: a stable insertion sort, then Fisher-Yates per run */
void mx_order(struct mx_host *h, size_t n, size_t (*rnd)(size_t n))
{
    for (size_t i = 1; i < n; i++) {
        struct mx_host t = h[i];
        size_t j = i;
        for (; j > 0 && h[j - 1].pref > t.pref; j--)
            h[j] = h[j - 1];
        h[j] = t;
    }
    for (size_t s = 0, e; s < n; s = e) {
        for (e = s + 1; e < n && h[e].pref == h[s].pref; e++)
            ;
        for (size_t k = e - s; k > 1; k--) {
            size_t r = rnd(k);
            struct mx_host t = h[s + k - 1];
            h[s + k - 1] = h[s + r];
            h[s + r] = t;
        }
    }
}

/* mx_is_null - see mx.h */
int mx_is_null(const char *const *names, size_t n)
{
    return n == 1 && (names[0][0] == '\0' || strcmp(names[0], ".") == 0);
}

/* mx_finish - report and free */
static void mx_finish(struct mx_lookup *q, struct mx_result *res)
{
    q->done(q->arg, res);
    free(q);
}

/* mx_fail - a result without addresses */
static void mx_fail(struct mx_lookup *q, enum mx_status st, const char *text)
{
    struct mx_result *res = xcalloc(1, sizeof(*res));

    res->status = st;
    snprintf(res->text, sizeof(res->text), "%s", text);
    mx_finish(q, res);
    free(res);
}

/* mx_add - one address of a host into the result, port set */
static void mx_add(struct mx_result *res, const struct mx_lookup *q, size_t host,
                   const struct dns_addr *a)
{
    struct mx_addr *m = &res->addr[res->naddr];

    if (res->naddr >= MX_MAX_ADDRS)
        return;
    memset(m, 0, sizeof(*m));
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m->addr;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)q->port);
        s6->sin6_addr = a->u.v6;
        m->addrlen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&m->addr;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)q->port);
        s4->sin_addr = a->u.v4;
        m->addrlen = sizeof(*s4);
    }
    snprintf(m->host, sizeof(m->host), "%s", q->host[host].name);
    m->pref = q->host[host].pref;
    res->naddr++;
}

/* mx_collect - every host's addresses in MX order (IPv6 before IPv4 for each) */
static void mx_collect(struct mx_lookup *q)
{
    struct mx_result *res = xcalloc(1, sizeof(*res));
    int temp = 0;

    for (size_t h = 0; h < q->nhost; h++)
        for (int v6 = 1; v6 >= 0; v6--) {
            const struct mx_aq *a = &q->aq[2 * h + (v6 ? 0 : 1)];
            for (size_t i = 0; i < a->n; i++)
                mx_add(res, q, h, &a->addr[i]);
            temp |= a->status != DNS_OK && a->status != DNS_NXDOMAIN && a->status != DNS_NODATA;
        }
    if (res->naddr)
        res->status = MX_OK;
    else if (q->implicit && !temp) { /* the domain exists (MX said NODATA) but has no address */
        res->status = MX_NODOMAIN;
        snprintf(res->text, sizeof(res->text),
                 "5.1.10 domain %s has no mail server (no MX, A or AAAA)", q->domain);
    } else {
        res->status = MX_TEMP;
        snprintf(res->text, sizeof(res->text), "4.4.%d no address for the mail servers of %s%s",
                 temp ? 3 : 4, q->domain, temp ? " (DNS error)" : "");
    }
    mx_finish(q, res);
    free(res);
}

/* mx_addr_done - one A/AAAA answer; the last one reports */
static void mx_addr_done(const struct dns_result *r, void *arg)
{
    struct mx_aq *a = arg;

    a->dq = NULL;
    a->status = r->status;
    for (size_t i = 0; r->status == DNS_OK && i < r->count && i < DNS_MAX_RECORDS; i++)
        if (r->addr[i].family == (a->v6 ? AF_INET6 : AF_INET))
            a->addr[a->n++] = r->addr[i];
    if (--a->q->outstanding == 0)
        mx_collect(a->q);
}

/* mx_addresses - AAAA and A of every host at once */
static void mx_addresses(struct mx_lookup *q)
{
    q->outstanding = 2 * q->nhost + 1; /* +1: no report while starting */
    for (size_t h = 0; h < q->nhost; h++)
        for (int k = 0; k < 2; k++) {
            struct mx_aq *a = &q->aq[2 * h + k];
            a->q = q;
            a->host = h;
            a->v6 = k == 0;
            a->dq =
                dns_lookup(q->dns, a->v6 ? DNS_T_AAAA : DNS_T_A, q->host[h].name, mx_addr_done, a);
            if (!a->dq) {
                a->status = DNS_ERROR;
                q->outstanding--;
            }
        }
    if (--q->outstanding == 0)
        mx_collect(q);
}

/* mx_answer - the MX records: hosts in order, the domain itself, or a failure */
static void mx_answer(const struct dns_result *r, void *arg)
{
    struct mx_lookup *q = arg;
    char text[300];

    q->mxq = NULL;
    if (r->status == DNS_NXDOMAIN) {
        snprintf(text, sizeof(text), "5.1.10 domain %s does not exist", q->domain);
        mx_fail(q, MX_NODOMAIN, text);
        return;
    }
    if (r->status == DNS_OK && mx_is_null((const char *const *)r->str, r->count)) {
        snprintf(text, sizeof(text), "5.1.10 domain %s accepts no mail (null MX)", q->domain);
        mx_fail(q, MX_NULLMX, text);
        return;
    }
    if (r->status != DNS_OK && r->status != DNS_NODATA) {
        snprintf(text, sizeof(text), "4.4.3 MX lookup of %s failed: %s", q->domain,
                 dns_status_str(r->status));
        mx_fail(q, MX_TEMP, text);
        return;
    }
    if (r->status == DNS_NODATA) { /* RFC 5321 5.1: the domain is its own mail server */
        q->implicit = 1;
        q->nhost = 1;
        snprintf(q->host[0].name, sizeof(q->host[0].name), "%s", q->domain);
    } else {
        for (size_t i = 0; i < r->count && q->nhost < MX_MAX_HOSTS; i++) {
            if (r->str[i][0] == '\0' || strlen(r->str[i]) >= sizeof(q->host[0].name))
                continue; /* a "." among real hosts, or too long: not a host */
            snprintf(q->host[q->nhost].name, sizeof(q->host[0].name), "%s", r->str[i]);
            q->host[q->nhost++].pref = r->pref[i];
        }
        mx_order(q->host, q->nhost, mx_rnd);
    }
    mx_addresses(q);
}

/* mx_lookup - see mx.h */
struct mx_lookup *mx_lookup(struct dns *dns, const char *domain, int port, mx_fn done, void *arg)
{
    struct mx_lookup *q;

    if (!dns || strlen(domain) >= sizeof(q->domain))
        return NULL;
    q = xcalloc(1, sizeof(*q));
    q->dns = dns;
    snprintf(q->domain, sizeof(q->domain), "%s", domain);
    q->port = port;
    q->done = done;
    q->arg = arg;
    if (!(q->mxq = dns_lookup(dns, DNS_T_MX, q->domain, mx_answer, q))) {
        free(q);
        return NULL;
    }
    return q;
}

/* mx_cancel - see mx.h */
void mx_cancel(struct mx_lookup *q)
{
    if (!q)
        return;
    dns_cancel(q->mxq);
    for (size_t i = 0; i < 2 * MX_MAX_HOSTS; i++)
        dns_cancel(q->aq[i].dq);
    free(q);
}

/* mx_local - a is one of this host's own addresses (a wildcard listener takes those):
 * loopback, or an interface's (getifaddrs asks the kernel; no DNS, no file) */
static int mx_local(const struct sockaddr_storage *a)
{
    struct ifaddrs *ifs, *i;
    int found = 0;

    if (a->ss_family == AF_INET &&
        (ntohl(((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr) >> 24) == 127)
        return 1;
    if (a->ss_family == AF_INET6 &&
        IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr))
        return 1;
    if (getifaddrs(&ifs) < 0)
        return 0;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != a->ss_family)
            continue;
        if (a->ss_family == AF_INET)
            found = ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr;
        else
            found = memcmp(&((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr,
                           &((const struct sockaddr_in6 *)(const void *)a)->sin6_addr, 16) == 0;
    }
    freeifaddrs(ifs);
    return found;
}

/* mx_same_addr - a listener's address la takes a: same port, and the same address, or a
 * wildcard listener and one of our own addresses */
static int mx_same_addr(const struct sockaddr_storage *la, const struct sockaddr_storage *a)
{
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

    if (la->ss_family != a->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *l = (const void *)la, *x = (const void *)a;
        return l->sin_port == x->sin_port && (l->sin_addr.s_addr == x->sin_addr.s_addr ||
                                              (l->sin_addr.s_addr == INADDR_ANY && mx_local(a)));
    }
    const struct sockaddr_in6 *l = (const void *)la, *x = (const void *)a;
    return l->sin6_port == x->sin6_port && (memcmp(&l->sin6_addr, &x->sin6_addr, 16) == 0 ||
                                            (memcmp(&l->sin6_addr, &any6, 16) == 0 && mx_local(a)));
}

/* mx_is_self - see mx.h */
int mx_is_self(const struct config *cfg, const struct sockaddr_storage *a)
{
    for (unsigned i = 0; cfg && cfg->raw && i < cfg_size(cfg->raw, "listen"); i++) {
        const char *s = cfg_getstr(cfg_getnsec(cfg->raw, "listen", i), "address");
        struct sockaddr_storage la;
        socklen_t len;
        if (s && sockaddr_parse(s, 25, &la, &len) == 0 && mx_same_addr(&la, a))
            return 1;
    }
    return 0;
}
