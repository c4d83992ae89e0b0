/* dns.c - c-ares driven by libevent: one event per c-ares socket, one timer */
#include "dns/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define DNS_CLASS_IN 1
#define DNS_SERVER_TEXT (INET6_ADDRSTRLEN + 10) /* "[addr]:port," */

/* A c-ares socket and the event that watches it. */
struct dns_sock {
    struct dns_sock *next;
    ares_socket_t fd;
    struct event *ev;
};

struct dns {
    struct event_base *base;
    ares_channel channel;
    struct event *timer;   /* fires at ares_timeout() */
    struct event *deliver; /* runs finished queries' callbacks */
    struct dns_sock *socks;
    TAILQ_HEAD(, dns_query) all;   /* every live query, for dns_free() */
    TAILQ_HEAD(, dns_query) ready; /* finished, callback not yet run */
    int *freed_flag;               /* set when dns_free() runs inside delivery */
    int closing;
};

/* Where a query is: nowhere (an fcrdns parent), waiting in c-ares (which
 * still holds a pointer to it), finished and queued, or in its callback. */
enum dns_qstate { Q_IDLE, Q_ARES, Q_READY, Q_CALLING };

/* State of a forward-confirmed reverse lookup, owned by its parent query. */
struct dns_fcrdns {
    dns_fcrdns_cb cb;
    void *arg;
    struct dns_addr client;
    struct dns_query *ptrq;                        /* PTR lookup while pending */
    struct dns_query *child[DNS_FCRDNS_MAX_NAMES]; /* forward lookups pending */
    char *names[DNS_FCRDNS_MAX_NAMES];
    size_t nnames;
    size_t pending;
    enum dns_status fail; /* worst temporary failure of a forward lookup */
};

struct dns_query {
    struct dns *dns;
    TAILQ_ENTRY(dns_query) all_link;
    TAILQ_ENTRY(dns_query) ready_link;
    enum dns_qstate state;
    int linked;    /* on dns->all */
    int cancelled; /* waiting in c-ares, but nobody wants the answer */
    void (*done)(struct dns_query *q);
    dns_cb cb;
    void *arg;
    struct dns_result res;
    struct dns_fcrdns *fc;    /* set on an fcrdns parent */
    struct dns_query *parent; /* set on an fcrdns step */
    size_t slot;              /* index of a forward step in parent->fc->child */
};

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
/* addresses and reverse names                                             */

/* addr_from_sa - client address; an IPv4-mapped IPv6 address becomes IPv4 */
static int addr_from_sa(const struct sockaddr *sa, struct dns_addr *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const struct sockaddr_in6 *s6;

    memset(a, 0, sizeof(*a));
    if (sa != NULL && sa->sa_family == AF_INET) {
        a->family = AF_INET;
        a->u.v4 = ((const struct sockaddr_in *)sa)->sin_addr;
        return 0;
    }
    if (sa == NULL || sa->sa_family != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    s6 = (const struct sockaddr_in6 *)sa;
    if (memcmp(s6->sin6_addr.s6_addr, mapped, sizeof(mapped)) == 0) {
        a->family = AF_INET;
        memcpy(&a->u.v4, s6->sin6_addr.s6_addr + 12, 4);
    } else {
        a->family = AF_INET6;
        a->u.v6 = s6->sin6_addr;
    }
    return 0;
}

/* reverse_name - reversed octets or nibbles of a, then zone */
static int reverse_name(const struct dns_addr *a, const char *zone, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    char buf[80]; /* "255.255.255.255." or 32 nibbles with dots */
    size_t zlen = strlen(zone), n = 0;
    int i;

    if (zlen > 0 && zone[zlen - 1] == '.')
        zlen--;
    if (zlen == 0 || zone[0] == '.') {
        errno = EINVAL;
        return -1;
    }
    if (zlen > DNS_NAME_SIZE) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (a->family == AF_INET) {
        const unsigned char *b = (const unsigned char *)&a->u.v4;
        n = (size_t)snprintf(buf, sizeof(buf), "%u.%u.%u.%u.", b[3], b[2], b[1], b[0]);
    } else {
        for (i = 15; i >= 0; i--) {
            buf[n++] = hex[a->u.v6.s6_addr[i] & 0xf];
            buf[n++] = '.';
            buf[n++] = hex[a->u.v6.s6_addr[i] >> 4];
            buf[n++] = '.';
        }
    }
    if (n + zlen > 253 || n + zlen + 1 > outlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out, buf, n);
    memcpy(out + n, zone, zlen);
    out[n + zlen] = '\0';
    return 0;
}

/* dns_dnsbl_name - DNSBL query name of sa under zone */
int dns_dnsbl_name(const struct sockaddr *sa, const char *zone, char *out, size_t outlen)
{
    struct dns_addr a;

    if (zone == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (addr_from_sa(sa, &a) < 0)
        return -1;
    return reverse_name(&a, zone, out, outlen);
}

/* name_dup - copy of a DNS name, ASCII lower-cased, without trailing dot */
static char *name_dup(const char *s, size_t *lenp)
{
    size_t len = strlen(s), i;
    char *d;

    if (len > 0 && s[len - 1] == '.')
        len--;
    d = malloc(len + 1);
    if (d == NULL)
        return NULL;
    for (i = 0; i < len; i++)
        d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    d[len] = '\0';
    *lenp = len;
    return d;
}

/* ---------------------------------------------------------------------- */
/* query lifetime                                                          */

/* query_new - zeroed query registered on dns->all */
static struct dns_query *query_new(struct dns *dns)
{
    struct dns_query *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->dns = dns;
    q->state = Q_IDLE;
    q->linked = 1;
    TAILQ_INSERT_TAIL(&dns->all, q, all_link);
    return q;
}

/* query_unlink - take q off the resolver's lists */
static void query_unlink(struct dns_query *q)
{
    if (q->state == Q_READY)
        TAILQ_REMOVE(&q->dns->ready, q, ready_link);
    if (q->linked)
        TAILQ_REMOVE(&q->dns->all, q, all_link);
    q->linked = 0;
}

/* result_clear - free the strings of a result */
static void result_clear(struct dns_result *r)
{
    size_t i;

    for (i = 0; i < r->count; i++)
        free(r->str[i]);
    r->count = 0;
}

/* query_destroy - free an unlinked query's memory (never touches children) */
static void query_destroy(struct dns_query *q)
{
    size_t i;

    result_clear(&q->res);
    free((char *)q->res.qname);
    if (q->fc != NULL) {
        for (i = 0; i < q->fc->nnames; i++)
            free(q->fc->names[i]);
        free(q->fc);
    }
    free(q);
}

/* query_free - unlink and free */
static void query_free(struct dns_query *q)
{
    query_unlink(q);
    query_destroy(q);
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
        query_free(q);
    }
    dns->freed_flag = NULL;
}

/* user_done - hand a plain query's result to its owner */
static void user_done(struct dns_query *q)
{
    q->cb(&q->res, q->arg);
}

/* ---------------------------------------------------------------------- */
/* answer parsing                                                          */

/* map_status - c-ares status to ours */
static enum dns_status map_status(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return DNS_OK;
    case ARES_ENODATA:
        return DNS_NODATA;
    case ARES_ENOTFOUND:
        return DNS_NXDOMAIN;
    case ARES_ETIMEOUT:
        return DNS_TIMEOUT;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ECONNREFUSED: /* c-ares's verdict once every server failed */
        return DNS_SERVFAIL;
    default:
        return DNS_ERROR;
    }
}

/* add_name - append a name record; -1 when out of memory */
static int add_name(struct dns_result *r, const char *name)
{
    char *s = name_dup(name, &r->len[r->count]);

    if (s == NULL)
        return -1;
    r->str[r->count++] = s;
    return 0;
}

/* parse_ptr - PTR names in answer order */
static enum dns_status parse_ptr(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct hostent *he = NULL;
    enum dns_status st = DNS_OK;
    size_t i;
    int rc = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &he);

    if (rc != ARES_SUCCESS)
        return map_status(rc);
    for (i = 0; he->h_aliases[i] != NULL && r->count < DNS_MAX_RECORDS; i++) {
        if (add_name(r, he->h_aliases[i]) < 0) {
            st = DNS_ERROR;
            break;
        }
    }
    ares_free_hostent(he);
    return st;
}

/* parse_addrs - A or AAAA addresses */
static enum dns_status parse_addrs(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_addrttl a4[DNS_MAX_RECORDS];
    struct ares_addr6ttl a6[DNS_MAX_RECORDS];
    int n = DNS_MAX_RECORDS, rc, i;

    if (r->type == DNS_T_A)
        rc = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
    else
        rc = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
    if (rc != ARES_SUCCESS)
        return map_status(rc);
    for (i = 0; i < n && i < DNS_MAX_RECORDS; i++) {
        if (r->type == DNS_T_A) {
            r->addr[i].family = AF_INET;
            r->addr[i].u.v4 = a4[i].ipaddr;
        } else {
            r->addr[i].family = AF_INET6;
            memcpy(&r->addr[i].u.v6, &a6[i].ip6addr, sizeof(r->addr[i].u.v6));
        }
    }
    r->count = (size_t)i;
    return r->count > 0 ? DNS_OK : DNS_NODATA;
}

/* mx_insert - keep the DNS_MAX_RECORDS best exchanges, stable by preference */
static int mx_insert(struct dns_result *r, const struct ares_mx_reply *mx)
{
    size_t pos = r->count, len;
    char *s;

    while (pos > 0 && r->pref[pos - 1] > mx->priority)
        pos--;
    if (pos == DNS_MAX_RECORDS)
        return 0;
    s = name_dup(mx->host, &len);
    if (s == NULL)
        return -1;
    if (r->count == DNS_MAX_RECORDS)
        free(r->str[--r->count]);
    memmove(&r->str[pos + 1], &r->str[pos], (r->count - pos) * sizeof(r->str[0]));
    memmove(&r->len[pos + 1], &r->len[pos], (r->count - pos) * sizeof(r->len[0]));
    memmove(&r->pref[pos + 1], &r->pref[pos], (r->count - pos) * sizeof(r->pref[0]));
    r->str[pos] = s;
    r->len[pos] = len;
    r->pref[pos] = mx->priority;
    r->count++;
    return 0;
}

/* parse_mx - exchanges sorted by preference */
static enum dns_status parse_mx(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *mx = NULL, *m;
    enum dns_status st = DNS_OK;
    int rc = ares_parse_mx_reply(abuf, alen, &mx);

    if (rc != ARES_SUCCESS)
        return map_status(rc);
    for (m = mx; m != NULL; m = m->next) {
        if (mx_insert(r, m) < 0) {
            st = DNS_ERROR;
            break;
        }
    }
    ares_free_data(mx);
    if (st == DNS_OK && r->count == 0)
        st = DNS_NODATA;
    return st;
}

/* txt_append - add one character-string to the record being built */
static int txt_append(struct dns_result *r, const struct ares_txt_ext *t)
{
    size_t i = r->count - 1;
    char *s = realloc(r->str[i], r->len[i] + t->length + 1);

    if (s == NULL)
        return -1;
    memcpy(s + r->len[i], t->txt, t->length);
    r->len[i] += t->length;
    s[r->len[i]] = '\0';
    r->str[i] = s;
    return 0;
}

/* parse_txt - one string per TXT record: its strings concatenated */
static enum dns_status parse_txt(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *txt = NULL, *t;
    enum dns_status st = DNS_OK;
    int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);

    if (rc != ARES_SUCCESS)
        return map_status(rc);
    for (t = txt; t != NULL && st == DNS_OK; t = t->next) {
        if (t->record_start || r->count == 0) {
            if (r->count == DNS_MAX_RECORDS)
                break;
            r->str[r->count] = calloc(1, 1);
            if (r->str[r->count] == NULL) {
                st = DNS_ERROR;
                break;
            }
            r->len[r->count++] = 0;
        }
        if (txt_append(r, t) < 0)
            st = DNS_ERROR;
    }
    ares_free_data(txt);
    if (st == DNS_OK && r->count == 0)
        st = DNS_NODATA;
    return st;
}

/* parse_answer - fill q->res from a successful c-ares answer */
static enum dns_status parse_answer(struct dns_query *q, const unsigned char *abuf, int alen)
{
    switch (q->res.type) {
    case DNS_T_PTR:
        return parse_ptr(&q->res, abuf, alen);
    case DNS_T_A:
    case DNS_T_AAAA:
        return parse_addrs(&q->res, abuf, alen);
    case DNS_T_MX:
        return parse_mx(&q->res, abuf, alen);
    case DNS_T_TXT:
        return parse_txt(&q->res, abuf, alen);
    }
    return DNS_ERROR;
}

/* on_answer - c-ares query callback; may run inside ares_query() itself */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_query *q = arg;

    if (q->cancelled || q->dns->closing || status == ARES_EDESTRUCTION) {
        query_free(q);
        return;
    }
    q->res.status = status == ARES_SUCCESS ? parse_answer(q, abuf, alen) : map_status(status);
    if (q->res.status != DNS_OK)
        result_clear(&q->res);
    make_ready(q);
}

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
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return; /* unwatched: the query times out through the timer */
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
    int rc;

    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = dns;
    o.timeout = (int)(timeout_sec * 1000);
    o.tries = (int)tries;
    rc = ares_init_options(&dns->channel, &o,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
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
    dns = calloc(1, sizeof(*dns));
    if (dns == NULL) {
        snprintf(err, errlen, "dns: out of memory");
        ares_library_cleanup();
        return NULL;
    }
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
        query_free(q);
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

/* query_start - send one question; the answer comes back through done */
static struct dns_query *query_start(struct dns *dns, enum dns_type type, const char *name,
                                     void (*done)(struct dns_query *))
{
    struct dns_query *q = query_new(dns);

    if (q == NULL)
        return NULL;
    q->res.qname = strdup(name);
    if (q->res.qname == NULL) {
        query_free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->res.type = type;
    q->done = done;
    q->state = Q_ARES; /* before ares_query: it may answer at once */
    ares_query(dns->channel, name, DNS_CLASS_IN, (int)type, on_answer, q);
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
    q = query_start(dns, type, name, user_done);
    if (q != NULL) {
        q->cb = cb;
        q->arg = arg;
    }
    return q;
}

/* dns_ptr - reverse lookup of an address */
struct dns_query *dns_ptr(struct dns *dns, const struct sockaddr *sa, dns_cb cb, void *arg)
{
    char name[DNS_NAME_SIZE];
    struct dns_addr a;

    if (addr_from_sa(sa, &a) < 0)
        return NULL;
    if (reverse_name(&a, a.family == AF_INET ? "in-addr.arpa" : "ip6.arpa", name, sizeof(name)) < 0)
        return NULL;
    return dns_lookup(dns, DNS_T_PTR, name, cb, arg);
}

/* ---------------------------------------------------------------------- */
/* forward-confirmed reverse DNS                                           */

/* fcrdns_cancel_steps - stop the PTR and forward lookups still pending */
static void fcrdns_cancel_steps(struct dns_fcrdns *fc)
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

    fcrdns_cancel_steps(fc);
    query_unlink(p); /* the callback may call dns_free(): p is ours now */
    p->state = Q_CALLING;
    fc->cb(st, name, fc->nnames > 0 ? fc->names[0] : NULL, fc->arg);
    query_destroy(p);
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
        fc->names[fc->nnames] = strdup(c->res.str[i]);
        f = NULL;
        if (fc->names[fc->nnames] != NULL)
            f = query_start(p->dns, t, fc->names[fc->nnames], fcrdns_addr_done);
        if (f == NULL) {
            fc->fail = DNS_ERROR;
        } else {
            f->parent = p;
            f->slot = fc->nnames;
            fc->child[fc->nnames] = f;
            fc->pending++;
        }
        fc->nnames++;
    }
    if (fc->nnames == 0)
        fcrdns_finish(p, DNS_NXDOMAIN, NULL);
    else if (fc->pending == 0)
        fcrdns_finish(p, DNS_ERROR, NULL);
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
    if (addr_from_sa(sa, &a) < 0 ||
        reverse_name(&a, a.family == AF_INET ? "in-addr.arpa" : "ip6.arpa", name, sizeof(name)) < 0)
        return NULL;
    p = query_new(dns);
    if (p == NULL || (p->fc = calloc(1, sizeof(*p->fc))) == NULL)
        goto oom;
    p->fc->cb = cb;
    p->fc->arg = arg;
    p->fc->client = a;
    p->fc->ptrq = query_start(dns, DNS_T_PTR, name, fcrdns_ptr_done);
    if (p->fc->ptrq == NULL)
        goto oom;
    p->fc->ptrq->parent = p;
    return p;
oom:
    if (p != NULL)
        query_free(p);
    errno = ENOMEM;
    return NULL;
}

/* dns_cancel - forget a query; its callback will not run */
void dns_cancel(struct dns_query *q)
{
    if (q == NULL || q->state == Q_CALLING) /* too late: already reported */
        return;
    if (q->fc != NULL) {
        fcrdns_cancel_steps(q->fc);
        query_free(q);
    } else if (q->state == Q_ARES) {
        q->cancelled = 1; /* c-ares still holds it: on_answer() frees it */
    } else {
        query_free(q);
    }
}
