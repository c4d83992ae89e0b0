/* dns.c - c-ares driven by libevent: one event per c-ares socket, one timer */
#include "dns/dns_internal.h"
#include "core/xmalloc.h"
#include "core/metrics.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* dns_status_str - constant text of a status for logs */
const char *dns_status_str(enum dns_status status)
{
    switch (status) {
    case DNS_OK:
        return "ok";
    case DNS_NXDOMAIN:
        return "nxdomain";
    case DNS_NODATA:
        return "nodata";
    case DNS_SERVFAIL:
        return "servfail";
    case DNS_TIMEOUT:
        return "timeout";
    case DNS_ERROR:
        break;
    }
    return "error";
}

/* ---------------------------------------------------------------------- */
/* query lifetime                                                          */

/* dns_query_new - zeroed query registered on dns->all */
struct dns_query *dns_query_new(struct dns *dns)
{
    struct dns_query *q = xcalloc(1, sizeof(*q));

    q->dns = dns;
    q->state = Q_IDLE;
    q->linked = 1;
    TAILQ_INSERT_TAIL(&dns->all, q, all_link);
    return q;
}

/* dns_query_unlink - take q off the resolver's lists */
void dns_query_unlink(struct dns_query *q)
{
    if (q->state == Q_READY)
        TAILQ_REMOVE(&q->dns->ready, q, ready_link);
    if (q->linked)
        TAILQ_REMOVE(&q->dns->all, q, all_link);
    q->linked = 0;
}

/* dns_result_clear - free the strings of a result */
void dns_result_clear(struct dns_result *r)
{
    size_t i;

    for (i = 0; i < r->count; i++)
        free(r->str[i]);
    r->count = 0;
}

/* dns_query_destroy - free an unlinked query's memory (never touches children) */
void dns_query_destroy(struct dns_query *q)
{
    size_t i;

    dns_result_clear(&q->res);
    free((char *)q->res.qname);
    if (q->fc != NULL) {
        for (i = 0; i < q->fc->nnames; i++)
            free(q->fc->names[i]);
        free(q->fc);
    }
    free(q);
}

/* dns_query_free - unlink and free */
void dns_query_free(struct dns_query *q)
{
    dns_query_unlink(q);
    dns_query_destroy(q);
}

/* make_ready - queue a finished query for delivery from the event loop */
static void make_ready(struct dns_query *q)
{
    q->state = Q_READY;
    TAILQ_INSERT_TAIL(&q->dns->ready, q, ready_link);
    event_active(q->dns->deliver, EV_TIMEOUT, 0);
}

/* deliver_cb - run the callbacks of finished queries, one at a time */
static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    struct dns_query *q;
    int freed = 0;

    dns->freed_flag = &freed;
    while ((q = TAILQ_FIRST(&dns->ready)) != NULL) {
        TAILQ_REMOVE(&dns->ready, q, ready_link);
        q->state = Q_CALLING;
        q->done(q);
        if (freed) /* dns_free() ran in the callback and freed q too */
            return;
        dns_query_free(q);
    }
    dns->freed_flag = NULL;
}

/* user_done - hand a plain query's result to its owner */
static void user_done(struct dns_query *q)
{
    q->cb(&q->res, q->arg);
}

/* answer_wanted - 0 (and q freed) when nobody wants q's answer any more */
static int answer_wanted(struct dns_query *q, int status)
{
    if (q->cancelled || q->dns->closing || status == ARES_EDESTRUCTION) {
        dns_query_free(q);
        return 0;
    }
    return 1;
}

/* answer_done - the result is in q->res: queue the callback */
static void answer_done(struct dns_query *q)
{
    if (q->res.status == DNS_TIMEOUT)
        metrics_inc(METRICS_DNS_TIMEOUTS);
    if (q->res.status != DNS_OK)
        dns_result_clear(&q->res);
    make_ready(q);
}

#if DNS_ARES_DNSREC
/* on_answer - c-ares query callback; may run inside ares_query_dnsrec() itself */
static void on_answer(void *arg, ares_status_t status, size_t timeouts,
                      const ares_dns_record_t *rec)
{
    struct dns_query *q = arg;

    if (!answer_wanted(q, (int)status))
        return;
    q->res.status =
        status == ARES_SUCCESS && rec ? dns_parse_record(q, rec) : dns_map_status((int)status);
    answer_done(q);
}
#else
/* on_answer - c-ares query callback; may run inside ares_query() itself */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_query *q = arg;

    if (!answer_wanted(q, status))
        return;
    q->res.status =
        status == ARES_SUCCESS ? dns_parse_answer(q, abuf, alen) : dns_map_status(status);
    answer_done(q);
}
#endif

/* ---------------------------------------------------------------------- */
/* event loop glue                                                         */

/* timer_update - rearm the timer for c-ares's next timeout, if any */
static void timer_update(struct dns *dns)
{
    struct timeval tvbuf, *tv = ares_timeout(dns->channel, NULL, &tvbuf);

    if (tv != NULL)
        evtimer_add(dns->timer, tv);
    else
        evtimer_del(dns->timer);
}

/* timer_cb - let c-ares expire queries and retry on other servers */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;

    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    timer_update(dns);
}

/* sock_cb - a c-ares socket is readable or writable */
static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;

    ares_process_fd(dns->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    timer_update(dns);
}

/* sock_state_cb - c-ares opens, closes or changes interest in a socket */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *dns = data;
    struct dns_sock **pp, *s;
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

    for (pp = &dns->socks; *pp != NULL && (*pp)->fd != fd; pp = &(*pp)->next)
        ;
    s = *pp;
    if (s == NULL && !readable && !writable)
        return;
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->next = dns->socks;
        dns->socks = s;
    }
    if (s->ev != NULL) /* safe even from inside s->ev's own callback */
        event_free(s->ev);
    s->ev = NULL;
    if (readable || writable) {
        s->ev = event_new(dns->base, fd, what, sock_cb, dns);
        if (s->ev != NULL && event_add(s->ev, NULL) == 0)
            return;
    }
    for (pp = &dns->socks; *pp != s; pp = &(*pp)->next)
        ;
    *pp = s->next;
    if (s->ev != NULL)
        event_free(s->ev);
    free(s);
}

/* ---------------------------------------------------------------------- */
/* set-up                                                                  */

/* server_text - validate one server string and append it as "addr:port," */
static int server_text(const char *in, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN + 2], *end;
    unsigned char bin[sizeof(struct in6_addr)];
    const char *colon = strrchr(in, ':'), *port = NULL, *close;
    size_t hlen = strlen(in);
    long p = 53;
    int v6;

    if (in[0] == '[') {
        close = strchr(in, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return -1;
        in++;
        hlen = (size_t)(close - in);
        port = close[1] == ':' ? close + 2 : NULL;
    } else if (colon != NULL && strchr(in, ':') == colon) { /* one colon: IPv4:port */
        hlen = (size_t)(colon - in);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, in, hlen);
    host[hlen] = '\0';
    v6 = strchr(host, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1)
        return -1;
    if (port != NULL) {
        errno = 0;
        p = strtol(port, &end, 10);
        if (*port < '0' || *port > '9' || *end != '\0' || errno != 0 || p < 1 || p > 65535)
            return -1;
    }
    if ((size_t)snprintf(out, outlen, v6 ? "[%s]:%ld," : "%s:%ld,", host, p) >= outlen)
        return -1;
    return 0;
}

/* set_servers - give c-ares the configured servers */
static int set_servers(struct dns *dns, const char *const *servers, size_t n, char *err,
                       size_t errlen)
{
    char csv[DNS_MAX_SERVERS * DNS_SERVER_TEXT + 1];
    size_t i, used = 0;
    int rc;

    if (servers == NULL || n > DNS_MAX_SERVERS) {
        snprintf(err, errlen, "dns: bad server list (%zu entries, at most %d)", n, DNS_MAX_SERVERS);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (servers[i] == NULL || server_text(servers[i], csv + used, sizeof(csv) - used) < 0) {
            snprintf(err, errlen,
                     "dns: bad server address \"%s\" (want IP, IP:PORT or [IPv6]:PORT)",
                     servers[i] ? servers[i] : "(null)");
            return -1;
        }
        used += strlen(csv + used);
    }
    csv[used > 0 ? used - 1 : 0] = '\0'; /* drop the last comma */
    rc = ares_set_servers_ports_csv(dns->channel, csv);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: cannot set servers: %s", ares_strerror(rc));
        return -1;
    }
    return 0;
}

/* channel_init - the c-ares channel with our socket callback and timeouts */
static int channel_init(struct dns *dns, unsigned timeout_sec, unsigned tries, char *err,
                        size_t errlen)
{
    struct ares_options o;
    int rc, mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;

    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = dns;
    o.timeout = (int)(timeout_sec * 1000);
    o.tries = (int)tries;
#ifdef ARES_OPT_QUERY_CACHE
    /* c-ares 1.23 and newer cache answers by default: every lookup goes to the
     * servers, as with older ones (a DNSBL delisting, a test zone's update count
     * at once; the servers cache) */
    o.qcache_max_ttl = 0;
    mask |= ARES_OPT_QUERY_CACHE;
#endif
#ifdef ARES_OPT_MAXTIMEOUTMS
    /* newer ones may stretch a retry's timeout: never past the configured one */
    o.maxtimeout = (int)(timeout_sec * 1000);
    mask |= ARES_OPT_MAXTIMEOUTMS;
#endif
    rc = ares_init_options(&dns->channel, &o, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: cannot initialise c-ares: %s", ares_strerror(rc));
        return -1;
    }
    return 0;
}

/* dns_new - resolver on base */
struct dns *dns_new(struct event_base *base, const char *const *servers, size_t nservers,
                    unsigned timeout_sec, unsigned tries, char *err, size_t errlen)
{
    struct dns *dns;
    int rc;

    if (timeout_sec == 0 || timeout_sec > 300 || tries == 0 || tries > 10) {
        snprintf(err, errlen, "dns: timeout must be 1..300 s and tries 1..10");
        return NULL;
    }
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: c-ares library: %s", ares_strerror(rc));
        return NULL;
    }
    dns = xcalloc(1, sizeof(*dns));
    dns->base = base;
    TAILQ_INIT(&dns->all);
    TAILQ_INIT(&dns->ready);
    dns->timer = evtimer_new(base, timer_cb, dns);
    dns->deliver = event_new(base, -1, 0, deliver_cb, dns);
    if (dns->timer == NULL || dns->deliver == NULL) {
        snprintf(err, errlen, "dns: cannot create events");
    } else if (channel_init(dns, timeout_sec, tries, err, errlen) == 0) {
        if (nservers == 0 || set_servers(dns, servers, nservers, err, errlen) == 0)
            return dns;
        ares_destroy(dns->channel);
    }
    if (dns->timer != NULL)
        event_free(dns->timer);
    if (dns->deliver != NULL)
        event_free(dns->deliver);
    free(dns);
    ares_library_cleanup();
    return NULL;
}

/* dns_free - drop every query silently and release the resolver */
void dns_free(struct dns *dns)
{
    struct dns_query *q;
    struct dns_sock *s;

    if (dns == NULL)
        return;
    dns->closing = 1;
    if (dns->freed_flag != NULL)
        *dns->freed_flag = 1;
    ares_destroy(dns->channel); /* on_answer() frees each query c-ares held */
    while ((q = TAILQ_FIRST(&dns->all)) != NULL)
        dns_query_free(q);
    while ((s = dns->socks) != NULL) {
        dns->socks = s->next;
        if (s->ev != NULL)
            event_free(s->ev);
        free(s);
    }
    event_free(dns->timer);
    event_free(dns->deliver);
    free(dns);
    ares_library_cleanup();
}

/* ---------------------------------------------------------------------- */
/* queries                                                                 */

/* dns_query_start - send one question; the answer comes back through done */
struct dns_query *dns_query_start(struct dns *dns, enum dns_type type, const char *name,
                                  void (*done)(struct dns_query *))
{
    struct dns_query *q = dns_query_new(dns);

    q->res.qname = xstrdup(name);
    q->res.type = type;
    q->done = done;
    q->state = Q_ARES; /* before ares_query: it may answer at once */
    metrics_inc(METRICS_DNS_LOOKUPS);
#if DNS_ARES_DNSREC
    ares_query_dnsrec(dns->channel, name, ARES_CLASS_IN, (ares_dns_rec_type_t)type, on_answer, q,
                      NULL); /* failures come through on_answer too */
#else
    ares_query(dns->channel, name, DNS_CLASS_IN, (int)type, on_answer, q);
#endif
    timer_update(dns);
    return q;
}

/* dns_lookup - records of one type for name */
struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_cb cb,
                             void *arg)
{
    struct dns_query *q;

    if (dns == NULL || name == NULL || cb == NULL) {
        errno = EINVAL;
        return NULL;
    }
    q = dns_query_start(dns, type, name, user_done);
    q->cb = cb;
    q->arg = arg;
    return q;
}

/* dns_ptr - reverse lookup of an address */
struct dns_query *dns_ptr(struct dns *dns, const struct sockaddr *sa, dns_cb cb, void *arg)
{
    char name[DNS_NAME_SIZE];
    struct dns_addr a;

    if (dns_addr_from_sa(sa, &a) < 0)
        return NULL;
    if (dns_reverse_name(&a, a.family == AF_INET ? "in-addr.arpa" : "ip6.arpa", name,
                         sizeof(name)) < 0)
        return NULL;
    return dns_lookup(dns, DNS_T_PTR, name, cb, arg);
}

/* dns_cancel - forget a query; its callback will not run */
void dns_cancel(struct dns_query *q)
{
    if (q == NULL || q->state == Q_CALLING) /* too late: already reported */
        return;
    if (q->fc != NULL) {
        dns_fcrdns_cancel_steps(q->fc);
        dns_query_free(q);
    } else if (q->state == Q_ARES) {
        q->cancelled = 1; /* c-ares still holds it: on_answer() frees it */
    } else {
        dns_query_free(q);
    }
}
