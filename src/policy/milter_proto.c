/* milter_proto.c - encoding the MTA's milter packets, decoding and validating the replies */
#include "policy/milter_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

void milter_proto_free(struct milter_pkt *k)
{
    free(k->p);
    k->p = NULL;
    k->len = k->cap = 0;
}

static void pkt_grow(struct milter_pkt *k, size_t n)
{
    if (k->len + n <= k->cap)
        return;
    k->cap = k->cap ? k->cap : 256;
    while (k->cap < k->len + n)
        k->cap *= 2;
    k->p = xrealloc(k->p, k->cap);
}

void milter_proto_bytes(struct milter_pkt *k, const void *data, size_t len)
{
    pkt_grow(k, len);
    if (len)
        memcpy(k->p + k->len, data, len);
    k->len += len;
}

void milter_proto_begin(struct milter_pkt *k, char cmd)
{
    static const unsigned char zero[4];

    k->len = 0;
    milter_proto_bytes(k, zero, 4);
    milter_proto_bytes(k, &cmd, 1);
}

void milter_proto_str(struct milter_pkt *k, const char *s)
{
    milter_proto_bytes(k, s, strlen(s) + 1);
}

void milter_proto_u32(struct milter_pkt *k, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    milter_proto_bytes(k, b, 4);
}

void milter_proto_u16(struct milter_pkt *k, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    milter_proto_bytes(k, b, 2);
}

void milter_proto_end(struct milter_pkt *k)
{
    uint32_t n = (uint32_t)(k->len - 4);

    k->p[0] = (unsigned char)(n >> 24);
    k->p[1] = (unsigned char)(n >> 16);
    k->p[2] = (unsigned char)(n >> 8);
    k->p[3] = (unsigned char)n;
}

void milter_proto_optneg(struct milter_pkt *k, uint32_t actions, uint32_t protocol)
{
    milter_proto_begin(k, SMFIC_OPTNEG);
    milter_proto_u32(k, MILTER_PROTO_VERSION);
    milter_proto_u32(k, actions);
    milter_proto_u32(k, protocol);
    milter_proto_end(k);
}

void milter_proto_connect(struct milter_pkt *k, const char *host, char family, uint16_t port,
                          const char *addr)
{
    milter_proto_begin(k, SMFIC_CONNECT);
    milter_proto_str(k, host);
    milter_proto_bytes(k, &family, 1);
    milter_proto_u16(k, port);
    milter_proto_str(k, addr);
    milter_proto_end(k);
}

void milter_proto_macros(struct milter_pkt *k, char cmd, const char *const *kv, size_t n)
{
    milter_proto_begin(k, SMFIC_MACRO);
    milter_proto_bytes(k, &cmd, 1);
    for (size_t i = 0; i < n; i++) {
        if (!kv[2 * i + 1])
            continue;
        milter_proto_str(k, kv[2 * i]);
        milter_proto_str(k, kv[2 * i + 1]);
    }
    milter_proto_end(k);
}

void milter_proto_header(struct milter_pkt *k, const char *name, const char *value, size_t vlen)
{
    milter_proto_begin(k, SMFIC_HEADER);
    milter_proto_str(k, name);
    for (size_t i = 0; i < vlen; i++) /* CRLF folds as LF, as Sendmail and Postfix send them */
        if (!(value[i] == '\r' && i + 1 < vlen && value[i + 1] == '\n') && value[i] != '\0')
            milter_proto_bytes(k, value + i, 1);
    milter_proto_bytes(k, "", 1);
    milter_proto_end(k);
}

void milter_proto_simple(struct milter_pkt *k, char cmd, const char *str)
{
    milter_proto_begin(k, cmd);
    if (str && (cmd == SMFIC_MAIL || cmd == SMFIC_RCPT)) {
        milter_proto_bytes(k, "<", 1);
        milter_proto_bytes(k, str, strlen(str));
        milter_proto_bytes(k, ">", 2); /* with the NUL */
    } else if (str) {
        milter_proto_str(k, str);
    }
    milter_proto_end(k);
}

long milter_proto_frame(const unsigned char *p, size_t avail)
{
    uint32_t n;

    if (avail < 4)
        return 0;
    n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (n == 0 || n > MILTER_PROTO_REPLY_MAX)
        return -1;
    return (long)n;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* cstr - the NUL-terminated string at p (at most len octets), its length, or -1 */
static long cstr(const unsigned char *p, size_t len)
{
    const unsigned char *nul = memchr(p, '\0', len);

    return nul ? (long)(nul - p) : -1;
}

/* printable_copy - a bounded printable copy of an argument; controls become '?' */
static void printable_copy(char *dst, size_t dstlen, const unsigned char *p, size_t n)
{
    size_t j = 0;

    for (size_t i = 0; i < n && j + 1 < dstlen; i++)
        dst[j++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    dst[j] = '\0';
}

/* parse_status - "d.ddd.ddd" of class c at p; its length, or 0 */
static size_t parse_status(const char *p, char c)
{
    size_t i = 0, digits;

    if (p[i++] != c || p[i++] != '.')
        return 0;
    for (int part = 0; part < 2; part++) {
        for (digits = 0; p[i] >= '0' && p[i] <= '9' && digits < 3; digits++)
            i++;
        if (digits == 0 || (part == 0 && p[i++] != '.'))
            return 0;
    }
    return p[i] == ' ' || p[i] == '\0' || p[i] == '\r' || p[i] == '\n' ? i : 0;
}

/* parse_replycode - "4xx/5xx[ -][x.y.z ]text": the first line decides, every line
 * must be printable ASCII */
static int parse_replycode(const char *s, size_t n, struct milter_reply *r, const char **why)
{
    size_t st, eol, tl;

    for (size_t i = 0; i < n; i++)
        if ((s[i] < 0x20 || s[i] >= 0x7f) && s[i] != '\r' && s[i] != '\n')
            return *why = "reply-not-printable", -1;
    if (n < 3 || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
        s[2] > '9' || (n > 3 && s[3] != ' ' && s[3] != '-' && s[3] != '\r' && s[3] != '\n'))
        return *why = "reply-code", -1;
    r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    s += n > 3 && (s[3] == ' ' || s[3] == '-') ? 4 : 3;
    eol = strcspn(s, "\r\n");
    st = parse_status(s, (char)('0' + r->code / 100));
    if (st) {
        snprintf(r->status, sizeof(r->status), "%.*s", (int)st, s);
        s += st;
        eol -= st;
    } else {
        snprintf(r->status, sizeof(r->status), "%c.7.1", '0' + r->code / 100);
    }
    while (eol > 0 && *s == ' ')
        s++, eol--;
    tl = eol < MILTER_PROTO_TEXT_MAX ? eol : MILTER_PROTO_TEXT_MAX;
    snprintf(r->text, sizeof(r->text), "%.*s", (int)tl, tl ? s : "Command rejected");
    return 0;
}

/* header_value - copy a milter's header value: LF or CRLF folds (followed by white
 * space) become CRLF, any other control or line break is refused */
static int header_value(const unsigned char *p, size_t n, struct milter_reply *r, const char **why)
{
    char *out;
    size_t j = 0;

    if (n > MILTER_PROTO_VALUE_MAX)
        return *why = "header-value-length", -1;
    out = xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\r' && i + 1 < n && p[i + 1] == '\n')
            c = p[++i];
        if (c == '\n') {
            if (i + 1 >= n || (p[i + 1] != ' ' && p[i + 1] != '\t')) {
                free(out);
                return *why = "header-value-break", -1;
            }
            out[j++] = '\r';
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            free(out);
            return *why = "header-value-control", -1;
        }
        out[j++] = (char)c;
    }
    out[j] = '\0';
    r->value = out;
    return 0;
}

/* parse_header - [index] name NUL value NUL */
static int parse_header(const unsigned char *p, size_t len, int indexed, struct milter_reply *r,
                        const char **why)
{
    long nl, vl;

    if (indexed) {
        if (len < 4)
            return *why = "short", -1;
        r->index = get_u32(p);
        p += 4, len -= 4;
    }
    nl = cstr(p, len);
    if (nl <= 0 || nl > MILTER_PROTO_NAME_MAX)
        return *why = "header-name", -1;
    for (long i = 0; i < nl; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == ':')
            return *why = "header-name", -1;
    memcpy(r->name, p, (size_t)nl);
    r->name[nl] = '\0';
    p += nl + 1, len -= (size_t)nl + 1;
    vl = cstr(p, len);
    if (vl < 0 || (size_t)vl + 1 != len)
        return *why = "header-value-nul", -1;
    return header_value(p, (size_t)vl, r, why);
}

/* parse_arg - one NUL-terminated string argument, kept printable */
static int parse_arg(const unsigned char *p, size_t len, struct milter_reply *r, const char **why)
{
    long n = cstr(p, len);

    if (n < 0)
        return *why = "no-nul", -1;
    (void)len; /* ESMTP arguments may follow (ADDRCPT_PAR, CHGFROM): the first string decides */
    printable_copy(r->arg, sizeof(r->arg), p, (size_t)n);
    return 0;
}

int milter_proto_parse(const unsigned char *p, size_t len, struct milter_reply *r, const char **why)
{
    long n;

    *why = "";
    if (len < 1)
        return *why = "empty", -1;
    r->cmd = (char)p[0];
    p++, len--;
    switch (r->cmd) {
    case SMFIC_OPTNEG:
        if (len < 12)
            return *why = "short", -1;
        r->version = get_u32(p), r->actions = get_u32(p + 4), r->protocol = get_u32(p + 8);
        return 0;
    case SMFIR_ACCEPT:
    case SMFIR_CONTINUE:
    case SMFIR_DISCARD:
    case SMFIR_PROGRESS:
    case SMFIR_SKIP:
    case SMFIR_CONN_FAIL:
    case SMFIR_SHUTDOWN:
        return 0;
    case SMFIR_REJECT:
        r->code = 550;
        snprintf(r->status, sizeof(r->status), "5.7.1");
        snprintf(r->text, sizeof(r->text), "Command rejected");
        return 0;
    case SMFIR_TEMPFAIL:
        r->code = 451;
        snprintf(r->status, sizeof(r->status), "4.7.1");
        snprintf(r->text, sizeof(r->text), "Service unavailable - try again later");
        return 0;
    case SMFIR_REPLYCODE:
        n = cstr(p, len);
        if (n >= 0 && (size_t)n + 1 != len)
            return *why = "data-after-nul", -1;
        if (n < 0 || n > 1024)
            return *why = n < 0 ? "no-nul" : "reply-length", -1;
        return parse_replycode((const char *)p, (size_t)n, r, why);
    case SMFIR_ADDHEADER:
        return parse_header(p, len, 0, r, why);
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        return parse_header(p, len, 1, r, why);
    case SMFIR_REPLBODY:
        r->data = p, r->len = len;
        return 0;
    case SMFIR_QUARANTINE:
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
        return parse_arg(p, len, r, why);
    default:
        return *why = "unknown-reply", -1;
    }
}

void milter_reply_clear(struct milter_reply *r)
{
    free(r->value);
    memset(r, 0, sizeof(*r));
}
