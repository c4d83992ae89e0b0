/* ts_dns.c - a fake DNS server answering from a table: the replies are built by
 * hand, so the resolver under test is the only DNS code involved */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"
#include "ts_dns.h"

/* put16 - big-endian 16 bits */
static size_t put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

/* put_name - a name as uncompressed labels */
static size_t put_name(unsigned char *p, const char *name)
{
    size_t n = 0, l;

    while (*name != '\0') {
        l = strcspn(name, ".");
        p[n++] = (unsigned char)l;
        memcpy(p + n, name, l);
        n += l;
        name += l;
        if (*name == '.')
            name++;
    }
    p[n++] = 0;
    return n;
}

/* put_txt - one TXT record: '|' separates its character-strings */
static size_t put_txt(unsigned char *p, const char *s)
{
    size_t n = 0, l;

    for (;;) {
        l = strcspn(s, "|");
        assert_true(l < 256); /* a longer string is a broken table, not a test */
        p[n++] = (unsigned char)l;
        memcpy(p + n, s, l);
        n += l;
        if (s[l] == '\0')
            return n;
        s += l + 1;
    }
}

/* put_rdata - the rdata of one record */
static size_t put_rdata(unsigned char *p, const struct ts_dns_rr *rr)
{
    switch (rr->type) {
    case 1:
        assert_int_equal(inet_pton(AF_INET, rr->data, p), 1);
        return 4;
    case 28:
        assert_int_equal(inet_pton(AF_INET6, rr->data, p), 1);
        return 16;
    case 15:
        put16(p, rr->pref);
        return 2 + put_name(p + 2, rr->data);
    case 16:
        return put_txt(p, rr->data);
    default:
        return put_name(p, rr->data);
    }
}

/* get_qname - the question name, dotted, and the offset past it */
static size_t get_qname(const unsigned char *q, size_t len, char *out, size_t outlen)
{
    size_t i = 12, o = 0;

    while (i < len && q[i] != 0) {
        size_t l = q[i++];
        assert_true(i + l <= len && o + l + 1 < outlen);
        if (o > 0)
            out[o++] = '.';
        memcpy(out + o, q + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return i + 1;
}

/* name_match - exact (any case), or "*.zone" for any name under zone */
static int name_match(const char *pat, const char *qname)
{
    size_t pl, ql = strlen(qname);

    if (strncmp(pat, "*.", 2) != 0)
        return strcasecmp(pat, qname) == 0;
    pl = strlen(pat + 1);
    return ql > pl && strcasecmp(qname + ql - pl, pat + 1) == 0;
}

/* find - the table entry for a question; *exists if the name has any */
static const struct ts_dns_entry *find(const struct ts_dns_fake *f, const char *qname,
                                       unsigned qtype, int *exists)
{
    *exists = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!name_match(f->table[i].qname, qname))
            continue;
        *exists = 1;
        if (f->table[i].qtype == qtype)
            return &f->table[i];
    }
    return NULL;
}

/* answer - build the reply to query q in r; 0 means do not answer */
static size_t answer(const struct ts_dns_fake *f, const unsigned char *q, size_t qlen,
                     unsigned char *r)
{
    char qname[256];
    size_t qend = get_qname(q, qlen, qname, sizeof(qname)) + 4, n, an = 0, i;
    unsigned qtype = (unsigned)(q[qend - 4] << 8 | q[qend - 3]);
    int exists, rcode;
    const struct ts_dns_entry *e = find(f, qname, qtype, &exists);

    if (e != NULL && e->drop)
        return 0;
    /* a name with records of other types only: NOERROR with no answer (NODATA) */
    rcode = e != NULL ? e->rcode : exists ? 0 : TS_RCODE_NXDOMAIN;
    memcpy(r, q, qend);
    r[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR AA, RD copied */
    r[3] = (unsigned char)(0x80 | rcode);         /* RA */
    n = qend;
    for (i = 0; e != NULL && rcode == 0 && i < TS_DNS_MAXANS && e->ans[i].data != NULL; i++, an++) {
        n += put16(r + n, 0xc00c); /* the question's name */
        n += put16(r + n, e->ans[i].type);
        n += put16(r + n, 1);
        n += put16(r + n, 0);
        n += put16(r + n, 300);
        n += 2;
        put16(r + n - 2, (unsigned)put_rdata(r + n, &e->ans[i]));
        n += (size_t)(r[n - 2] << 8 | r[n - 1]);
    }
    put16(r + 6, (unsigned)an);
    put16(r + 8, 0);
    put16(r + 10, 0);
    return n;
}

/* fake_read - one datagram in, at most one out */
static void fake_read(evutil_socket_t fd, short what, void *arg)
{
    struct ts_dns_fake *f = arg;
    unsigned char q[512], r[1024];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t len = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    size_t rlen;

    if (len < 17) /* a header and the shortest question */
        return;
    f->queries++;
    rlen = answer(f, q, (size_t)len, r);
    if (rlen > 0)
        assert_int_equal(sendto(fd, r, rlen, 0, (struct sockaddr *)&from, fl), (ssize_t)rlen);
}

evutil_socket_t ts_udp_socket(int *port)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    evutil_socket_t fd = socket(AF_INET, SOCK_DGRAM, 0);

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

void ts_dns_fake_start(struct ts_dns_fake *f, struct event_base *base,
                       const struct ts_dns_entry *table, size_t n)
{
    int port;

    memset(f, 0, sizeof(*f));
    f->table = table;
    f->n = n;
    f->fd = ts_udp_socket(&port);
    snprintf(f->server, sizeof(f->server), "127.0.0.1:%d", port);
    f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, fake_read, f);
    assert_non_null(f->ev);
    assert_int_equal(event_add(f->ev, NULL), 0);
}

void ts_dns_fake_stop(struct ts_dns_fake *f)
{
    if (f->ev)
        event_free(f->ev);
    if (f->fd >= 0)
        close(f->fd);
    f->ev = NULL;
    f->fd = -1;
}

/* ts_dns_resolver - see ts_dns.h */
struct dns *ts_dns_resolver(const struct ts_dns_fake *f, struct event_base *base, unsigned timeout)
{
    const char *servers[1] = {f->server};
    char err[256] = "";
    struct dns *d = dns_new(base, servers, 1, timeout, 1, err, sizeof(err));

    if (!d)
        fail_msg("dns_new: %s", err);
    return d;
}
