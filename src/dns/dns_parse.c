/* dns_parse.c - c-ares answers into struct dns_result: PTR, A/AAAA, MX, TXT */
#include "dns/dns_internal.h"
#include "core/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* dns_map_status - c-ares status to ours */
enum dns_status dns_map_status(int st)
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

/* add_name - append a name record */
static void add_name(struct dns_result *r, const char *name)
{
    r->str[r->count] = dns_name_dup(name, &r->len[r->count]);
    r->count++;
}

/* mx_insert - keep the DNS_MAX_RECORDS best exchanges, stable by preference */
static void mx_insert(struct dns_result *r, unsigned short priority, const char *host)
{
    size_t pos = r->count, len;
    char *s;

    while (pos > 0 && r->pref[pos - 1] > priority)
        pos--;
    if (pos == DNS_MAX_RECORDS)
        return;
    s = dns_name_dup(host, &len);
    if (r->count == DNS_MAX_RECORDS)
        free(r->str[--r->count]);
    memmove(&r->str[pos + 1], &r->str[pos], (r->count - pos) * sizeof(r->str[0]));
    memmove(&r->len[pos + 1], &r->len[pos], (r->count - pos) * sizeof(r->len[0]));
    memmove(&r->pref[pos + 1], &r->pref[pos], (r->count - pos) * sizeof(r->pref[0]));
    r->str[pos] = s;
    r->len[pos] = len;
    r->pref[pos] = priority;
    r->count++;
}

#if !DNS_ARES_DNSREC
/* parse_ptr - PTR names in answer order */
static enum dns_status parse_ptr(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct hostent *he = NULL;
    size_t i;
    int rc = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &he);

    if (rc != ARES_SUCCESS)
        return dns_map_status(rc);
    for (i = 0; he->h_aliases[i] != NULL && r->count < DNS_MAX_RECORDS; i++)
        add_name(r, he->h_aliases[i]);
    ares_free_hostent(he);
    return DNS_OK;
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
        return dns_map_status(rc);
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

/* parse_mx - exchanges sorted by preference */
static enum dns_status parse_mx(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *mx = NULL, *m;
    int rc = ares_parse_mx_reply(abuf, alen, &mx);

    if (rc != ARES_SUCCESS)
        return dns_map_status(rc);
    for (m = mx; m != NULL; m = m->next)
        mx_insert(r, m->priority, m->host);
    ares_free_data(mx);
    return r->count == 0 ? DNS_NODATA : DNS_OK;
}

/* txt_append - add one character-string to the record being built */
static void txt_append(struct dns_result *r, const struct ares_txt_ext *t)
{
    size_t i = r->count - 1;
    char *s = xrealloc(r->str[i], r->len[i] + t->length + 1);

    memcpy(s + r->len[i], t->txt, t->length);
    r->len[i] += t->length;
    s[r->len[i]] = '\0';
    r->str[i] = s;
}

/* parse_txt - one string per TXT record: its strings concatenated */
static enum dns_status parse_txt(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *txt = NULL, *t;
    int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);

    if (rc != ARES_SUCCESS)
        return dns_map_status(rc);
    for (t = txt; t != NULL; t = t->next) {
        if (t->record_start || r->count == 0) {
            if (r->count == DNS_MAX_RECORDS)
                break;
            r->str[r->count] = xcalloc(1, 1);
            r->len[r->count++] = 0;
        }
        txt_append(r, t);
    }
    ares_free_data(txt);
    return r->count == 0 ? DNS_NODATA : DNS_OK;
}

/* dns_parse_answer - fill q->res from a successful c-ares answer */
enum dns_status dns_parse_answer(struct dns_query *q, const unsigned char *abuf, int alen)
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
#else /* DNS_ARES_DNSREC */

/* same_name - DNS names equal, case-insensitively, with or without the final dot */
static int same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    la -= la > 0 && a[la - 1] == '.';
    lb -= lb > 0 && b[lb - 1] == '.';
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* rec_take - one answer record of the type asked for into r (room checked by the caller) */
static void rec_take(struct dns_result *r, const ares_dns_rr_t *rr)
{
    const unsigned char *txt;
    size_t len = 0;
    char *s;

    switch (r->type) {
    case DNS_T_PTR:
        add_name(r, ares_dns_rr_get_str(rr, ARES_RR_PTR_DNAME));
        return;
    case DNS_T_A:
        r->addr[r->count].family = AF_INET;
        r->addr[r->count++].u.v4 = *ares_dns_rr_get_addr(rr, ARES_RR_A_ADDR);
        return;
    case DNS_T_AAAA:
        r->addr[r->count].family = AF_INET6;
        memcpy(&r->addr[r->count++].u.v6, ares_dns_rr_get_addr6(rr, ARES_RR_AAAA_ADDR),
               sizeof(r->addr[0].u.v6));
        return;
    case DNS_T_TXT: /* one string per record: its character-strings concatenated */
        txt = ares_dns_rr_get_bin(rr, ARES_RR_TXT_DATA, &len);
        s = xmalloc(len + 1);
        if (txt && len)
            memcpy(s, txt, len);
        s[len] = '\0';
        r->str[r->count] = s;
        r->len[r->count++] = txt ? len : 0;
        return;
    case DNS_T_MX:
        break;
    }
}

/* dns_parse_record - fill q->res from a successful answer: the records of the type
 * asked for, owned by the name asked for or by the end of its CNAME chain (as the
 * ares_parse_*_reply() functions did); MX sorted by preference */
enum dns_status dns_parse_record(struct dns_query *q, const ares_dns_record_t *rec)
{
    struct dns_result *r = &q->res;
    size_t n = ares_dns_record_rr_cnt(rec, ARES_SECTION_ANSWER);
    const char *owner = r->qname;

    for (size_t i = 0; i < n; i++) {
        const ares_dns_rr_t *rr = ares_dns_record_rr_get_const(rec, ARES_SECTION_ANSWER, i);
        ares_dns_rec_type_t t = ares_dns_rr_get_type(rr);

        if (!same_name(ares_dns_rr_get_name(rr), owner))
            continue;
        if (t == ARES_REC_TYPE_CNAME) { /* also RFC 2317 classless reverse delegation */
            const char *target = ares_dns_rr_get_str(rr, ARES_RR_CNAME_CNAME);
            owner = target ? target : owner;
        } else if ((int)t != (int)r->type) {
            continue;
        } else if (r->type == DNS_T_MX) {
            mx_insert(r, ares_dns_rr_get_u16(rr, ARES_RR_MX_PREFERENCE),
                      ares_dns_rr_get_str(rr, ARES_RR_MX_EXCHANGE));
        } else if (r->count < DNS_MAX_RECORDS) {
            rec_take(r, rr);
        }
    }
    return r->count > 0 ? DNS_OK : DNS_NODATA;
}

#endif
