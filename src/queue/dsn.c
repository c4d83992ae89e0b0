/* dsn.c - RFC 3464 delivery status notifications (bounces) */
#include "core/utf8.h"
#include "queue/dsn.h"
#include "core/xmalloc.h"
#include "queue/spool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DSN_HEADER_MAX (64 * 1024)     /* original header section copied into part 3 */
#define DSN_OUT_MAX (64 * 1024 * 1024) /* hard cap on one report */
#define FIELD_MAX 1024                 /* any single value (address, host, diagnostic) */
#define LINE_SOFT 78                   /* preferred width, RFC 5322 2.1.1 */
#define LINE_HARD 998                  /* absolute width, RFC 5322 2.1.1 */
#define BOUNDARY_MAX 64
#define BOUNDARY_TRIES 8

/* A growing output buffer whose first failure sticks (checked once at the end). */
struct obuf {
    char *p;
    size_t len, cap;
    int err;
};

/* ob_put - append n octets, failing (EMSGSIZE) rather than growing without bound */
static void ob_put(struct obuf *b, const void *d, size_t n)
{
    if (b->err != 0 || n == 0)
        return;
    if (n > DSN_OUT_MAX - b->len) {
        b->err = EMSGSIZE;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* safe_char - controls (TAB aside) can never reach the output: no bare CR/LF injection */
static char safe_char(char c)
{
    unsigned char u = (unsigned char)c;

    return ((u < 0x20 && u != '\t') || u == 0x7f) ? ' ' : c;
}

/*
 * ob_line - emit one generated line s1 + s2: controls blanked, a leading '.'
 * stuffed, cut at 998 octets, CRLF-terminated. Every generated line goes
 * through here, which is what makes the output safe to send as DATA.
 */
static void ob_line(struct obuf *b, const char *s1, size_t n1, const char *s2, size_t n2)
{
    char line[LINE_HARD + 2];
    size_t n = 0, i;

    if ((n1 > 0 && s1[0] == '.') || (n1 == 0 && n2 > 0 && s2[0] == '.'))
        line[n++] = '.';
    for (i = 0; i < n1 && n < LINE_HARD; i++)
        line[n++] = safe_char(s1[i]);
    for (i = 0; i < n2 && n < LINE_HARD; i++)
        line[n++] = safe_char(s2[i]);
    line[n++] = '\r';
    line[n++] = '\n';
    ob_put(b, line, n);
}

/* ob_str - emit a short fixed line */
static void ob_str(struct obuf *b, const char *s)
{
    ob_line(b, s, strlen(s), "", 0);
}

/*
 * break_at - where to end the next line of s (n octets, n > soft): before the
 * last space within soft octets, else before the first space within hard,
 * else hard. Never 0, and never right after a space (no blank-only lines).
 */
static size_t break_at(const char *s, size_t n, size_t soft, size_t hard)
{
    size_t k;

    for (k = soft; k > 0; k--)
        if (s[k] == ' ' && s[k - 1] != ' ')
            return k;
    for (k = soft + 1; k < n && k <= hard; k++)
        if (s[k] == ' ' && s[k - 1] != ' ')
            return k;
    return n < hard ? n : hard;
}

/*
 * ob_fold - emit s over as many lines as needed. header: RFC 5322 folding
 * (the space stays, as the continuation's leading white space; a forced cut
 * gets a leading space). Otherwise: body text wrapping (the space goes).
 */
static void ob_fold(struct obuf *b, const char *s, int header)
{
    size_t len = strlen(s), pos = 0, pl = 0;

    while (len - pos + pl > LINE_SOFT) {
        size_t k = break_at(s + pos, len - pos, LINE_SOFT - pl, LINE_HARD - 1 - pl);
        ob_line(b, " ", pl, s + pos, k);
        pos += k;
        pl = 0;
        if (s[pos] == ' ' && !header)
            pos++;
        else if (s[pos] != ' ' && header)
            pl = 1;
        if (pos == len)
            return;
    }
    ob_line(b, " ", pl, s + pos, len - pos);
}

/* ob_textf - format, then fold (header != 0) or wrap one logical line */
__attribute__((format(printf, 3, 4))) static void ob_textf(struct obuf *b, int header,
                                                           const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0) {
        if (b->err == 0)
            b->err = ENOMEM;
        return;
    }
    ob_fold(b, s, header);
    free(s);
}

/* has_8bit - any octet >= 0x80 in the buffer (decides Content-Transfer-Encoding) */
static int has_8bit(const struct obuf *b)
{
    size_t i;

    for (i = 0; i < b->len; i++)
        if ((unsigned char)b->p[i] >= 0x80)
            return 1;
    return 0;
}

/*
 * clean - copy at most FIELD_MAX octets of src for display: white space and
 * controls become single spaces (so folding never makes blank lines), and
 * non-ASCII survives only as well-formed UTF-8 when utf8ok, else '?'.
 * Remote diagnostics are never trusted to be anything.
 */
static void clean(char dst[FIELD_MAX + 1], const char *src, int utf8ok)
{
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    size_t i = 0, n = 0, k;

    while (s[i] != '\0' && n < FIELD_MAX) {
        if (s[i] < 0x20 || s[i] == ' ' || s[i] == 0x7f) {
            if (n > 0 && dst[n - 1] != ' ')
                dst[n++] = ' ';
            i++;
        } else if (s[i] < 0x80) {
            dst[n++] = (char)s[i++];
        } else if (utf8ok && (k = utf8_seq_len(s + i)) > 0 && n + k <= FIELD_MAX) {
            memcpy(dst + n, s + i, k);
            n += k;
            i += k;
        } else {
            dst[n++] = '?';
            i++;
        }
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

/* is_ascii - only octets below 0x80 */
static int is_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* rfc5322_date - "Tue, 02 Jan 2024 03:04:05 +0000", in English whatever the locale */
static void rfc5322_date(time_t t, char *out, size_t outlen)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        /* out of range for struct tm: the epoch (a Thursday) rather than garbage */
        memset(&tm, 0, sizeof tm);
        tm.tm_year = 70;
        tm.tm_mday = 1;
        tm.tm_wday = 4;
    }
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* digits - 1..3 decimal digits at s; their count or 0 */
static size_t digits(const char *s)
{
    size_t n = 0;

    while (n < 3 && s[n] >= '0' && s[n] <= '9')
        n++;
    return (n > 0 && !(s[n] >= '0' && s[n] <= '9')) ? n : 0;
}

/* enhanced_status - RFC 3463 "4.x.y" or "5.x.y" at the start of t, ended by SP or end */
static int enhanced_status(const char *t, char *out, size_t outlen)
{
    size_t a, c;

    if (t == NULL || (t[0] != '4' && t[0] != '5') || t[1] != '.')
        return 0;
    a = digits(t + 2);
    if (a == 0 || t[2 + a] != '.')
        return 0;
    c = digits(t + 3 + a);
    if (c == 0 || (t[3 + a + c] != ' ' && t[3 + a + c] != '\0'))
        return 0;
    snprintf(out, outlen, "%.*s", (int)(3 + a + c), t);
    return 1;
}

/* dsn_status - the Status: of one failure: the reply's own code, else derived from the reply */
static void dsn_status(const struct dsn_failure *f, char *out, size_t outlen)
{
    if (enhanced_status(f->text, out, outlen))
        return;
    if (f->code == 0 || (f->code >= 400 && f->code <= 499))
        snprintf(out, outlen, "5.4.7"); /* never got a final answer: delivery time expired */
    else
        snprintf(out, outlen, "5.0.0");
}

/* notice_rcpt - one human-readable line (wrapped) for a failed recipient */
static void notice_rcpt(struct obuf *b, const struct dsn_failure *f, int utf8ok)
{
    char rcpt[FIELD_MAX + 1], text[FIELD_MAX + 1], mta[FIELD_MAX + 1];

    clean(rcpt, f->rcpt, utf8ok);
    clean(text, f->text, 0);
    clean(mta, f->remote_mta, 0);
    ob_str(b, "");
    if (f->code != 0 && mta[0] != '\0')
        ob_textf(b, 0, "<%s>: host %s said: %d%s%s", rcpt, mta, f->code, text[0] ? " " : "", text);
    else if (f->code != 0)
        ob_textf(b, 0, "<%s>: %d%s%s", rcpt, f->code, text[0] ? " " : "", text);
    else
        ob_textf(b, 0, "<%s>: %s", rcpt, text[0] ? text : "delivery time expired");
}

/* build_notice - part 1: the polite explanation for a human */
static void build_notice(struct obuf *b, const char *mta, const struct spool_envelope *env,
                         const struct dsn_failure *f, size_t nf)
{
    char date[64];
    size_t i;

    rfc5322_date(env->arrival, date, sizeof date);
    ob_textf(b, 0, "This is the mail system at host %s.", mta);
    ob_str(b, "");
    ob_textf(b, 0,
             "I'm sorry to have to inform you that your message could not be "
             "delivered to one or more recipients. The reasons are given below; the "
             "header of your message is attached.");
    ob_str(b, "");
    ob_textf(b, 0, "Your message was received on %s and has queue ID %.*s.", date, SPOOL_ID_LEN,
             env->id);
    ob_str(b, "");
    ob_str(b, "                   The mail system");
    for (i = 0; i < nf; i++)
        notice_rcpt(b, &f[i], env->smtputf8);
}

/* report_rcpt - one per-recipient block of the delivery-status part (RFC 3464 2.3) */
static void report_rcpt(struct obuf *b, const struct dsn_failure *f, int global)
{
    char rcpt[FIELD_MAX + 1], text[FIELD_MAX + 1], mta[FIELD_MAX + 1], status[16];
    const char *type;

    clean(rcpt, f->rcpt, global);
    clean(text, f->text, 0);
    clean(mta, f->remote_mta, 0);
    type = is_ascii(rcpt) ? "rfc822" : "utf-8"; /* RFC 6533 address type */
    dsn_status(f, status, sizeof status);
    ob_str(b, "");
    ob_textf(b, 1, "Final-Recipient: %s; %s", type, rcpt);
    ob_str(b, "Action: failed");
    ob_textf(b, 1, "Status: %s", status);
    if (mta[0] != '\0')
        ob_textf(b, 1, "Remote-MTA: dns; %s", mta);
    if (f->code != 0)
        ob_textf(b, 1, "Diagnostic-Code: smtp; %d%s%s", f->code, text[0] ? " " : "", text);
}

/* build_report - part 2: per-message fields, then one block per recipient */
static void build_report(struct obuf *b, const char *mta, const struct spool_envelope *env,
                         const struct dsn_failure *f, size_t nf)
{
    char date[64], envid[FIELD_MAX + 1];
    size_t i;

    rfc5322_date(env->arrival, date, sizeof date);
    ob_textf(b, 1, "Reporting-MTA: dns; %s", mta);
    if (env->dsn_envid != NULL && env->dsn_envid[0] != '\0') {
        clean(envid, env->dsn_envid, 0);
        ob_textf(b, 1, "Original-Envelope-Id: %s", envid);
    }
    ob_textf(b, 1, "X-Mxgate-Queue-ID: %.*s", SPOOL_ID_LEN, env->id);
    ob_textf(b, 1, "Arrival-Date: %s", date);
    for (i = 0; i < nf; i++)
        report_rcpt(b, &f[i], env->smtputf8);
}

/* read_original - pread up to DSN_HEADER_MAX octets of the stored body; -1 on read error */
static ssize_t read_original(int fd, off_t off, uint64_t len, char *buf)
{
    size_t want = len < DSN_HEADER_MAX ? (size_t)len : DSN_HEADER_MAX, got = 0;

    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break; /* shorter than announced: use what is there */
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/*
 * raw_line - emit one copied header line. It is already dot-stuffed, so no
 * stuffing here; stray CR/NUL octets become spaces and long lines are cut.
 * A lone "." (impossible in a sane spool) is still made harmless.
 */
static void raw_line(struct obuf *b, const char *s, size_t n)
{
    char line[LINE_HARD + 2];
    size_t i;

    if (n > LINE_HARD)
        n = LINE_HARD;
    for (i = 0; i < n; i++)
        line[i] = (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') ? ' ' : s[i];
    if (n == 1 && line[0] == '.')
        line[n++] = '.';
    line[n++] = '\r';
    line[n++] = '\n';
    ob_put(b, line, n);
}

/*
 * copy_header - split buf (got octets) on CRLF and copy lines up to the
 * first empty one. cut: buf stops before the end of the body, so a final
 * unterminated line is incomplete and is dropped.
 */
static void copy_header(struct obuf *b, const char *buf, size_t got, int cut)
{
    size_t pos = 0;

    while (pos < got) {
        const char *crlf = memmem(buf + pos, got - pos, "\r\n", 2);
        size_t end = crlf ? (size_t)(crlf - buf) : got;
        if (end == pos || (crlf == NULL && cut))
            return;
        raw_line(b, buf + pos, end - pos);
        pos = end + 2;
    }
}

/* build_headers - part 3: the original header section; -1 with errno on read error */
static int build_headers(struct obuf *b, int fd, off_t off, uint64_t len)
{
    char *buf = xmalloc(DSN_HEADER_MAX);
    ssize_t got;
    int saved;

    if (off < 0 || (uint64_t)off > (uint64_t)INT64_MAX - DSN_HEADER_MAX) {
        free(buf);
        errno = EINVAL;
        return -1;
    }
    got = read_original(fd, off, len, buf);
    saved = errno;
    if (got >= 0)
        copy_header(b, buf, (size_t)got, len > (uint64_t)got);
    free(buf);
    errno = saved;
    return got < 0 ? -1 : 0;
}

/* rand64 - 64 unpredictable bits; if the kernel pool is not ready, a mix of clocks and ids */
static uint64_t rand64(time_t now, unsigned counter)
{
    uint64_t r;
    struct timespec ts;

    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        ts.tv_nsec = 0;
    r = (uint64_t)now ^ ((uint64_t)counter << 32) ^ (uint64_t)ts.tv_nsec ^
        ((uint64_t)getpid() << 16);
    r ^= r >> 33; /* splitmix64 finaliser: spread the bits */
    r *= 0xff51afd7ed558ccdULL;
    r ^= r >> 33;
    return r;
}

/* in_part - does the boundary occur in a part? (it then cannot delimit it) */
static int in_part(const struct obuf *b, const char *bd)
{
    return b->len > 0 && memmem(b->p, b->len, bd, strlen(bd)) != NULL;
}

/* safe_id - the queue id reduced to [0-9A-Z] ("0" if nothing is left), for tokens */
static void safe_id(const char *id, char out[SPOOL_ID_LEN + 1])
{
    size_t i, n = 0;

    for (i = 0; id[i] != '\0' && i < SPOOL_ID_LEN; i++)
        if ((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'Z'))
            out[n++] = id[i];
    if (n == 0)
        out[n++] = '0';
    out[n] = '\0';
}

/* make_boundary - "=_mxgate_<id>_<random>" that none of the parts contains */
static int make_boundary(char *bd, size_t bdlen, const char *id, time_t now, unsigned counter,
                         const struct obuf *parts, size_t nparts)
{
    char sid[SPOOL_ID_LEN + 1];
    size_t t, p;

    safe_id(id, sid);
    for (t = 0; t < BOUNDARY_TRIES; t++) {
        snprintf(bd, bdlen, "=_mxgate_%s_%016llx", sid,
                 (unsigned long long)rand64(now, counter + (unsigned)t));
        for (p = 0; p < nparts && !in_part(&parts[p], bd); p++)
            ;
        if (p == nparts)
            return 0;
    }
    errno = EAGAIN;
    return -1;
}

/* put_part - "--boundary", the part's MIME header, a blank line, then its body */
static void put_part(struct obuf *out, const char *bd, const char *desc, const char *type,
                     const struct obuf *body)
{
    ob_str(out, "");
    ob_line(out, "--", 2, bd, strlen(bd));
    ob_textf(out, 1, "Content-Description: %s", desc);
    ob_textf(out, 1, "Content-Type: %s", type);
    if (has_8bit(body))
        ob_str(out, "Content-Transfer-Encoding: 8bit");
    ob_str(out, "");
    ob_put(out, body->p, body->len);
}

/* put_top - the report's own header section */
static void put_top(struct obuf *out, const char *mta, const struct spool_envelope *env, time_t now,
                    unsigned counter, const char *bd, int eight)
{
    char date[64], sender[FIELD_MAX + 1], sid[SPOOL_ID_LEN + 1];

    rfc5322_date(now, date, sizeof date);
    safe_id(env->id, sid);
    clean(sender, env->sender, env->smtputf8);
    ob_textf(out, 1, "From: Mail Delivery System <MAILER-DAEMON@%s>", mta);
    ob_textf(out, 1, "To: <%s>", sender);
    ob_str(out, "Subject: Undelivered Mail Returned to Sender");
    ob_textf(out, 1, "Date: %s", date);
    ob_textf(out, 1, "Message-ID: <%lld.%s.%u@%s>", (long long)now, sid, counter, mta);
    ob_str(out, "Auto-Submitted: auto-replied");
    ob_str(out, "MIME-Version: 1.0");
    ob_textf(out, 1, "Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"",
             bd);
    if (eight)
        ob_str(out, "Content-Transfer-Encoding: 8bit");
    ob_str(out, "");
    ob_str(out, "This is a MIME-encapsulated message.");
}

/* assemble - top header, the three parts and the closing delimiter */
static void assemble(struct obuf *out, const char *mta, const struct spool_envelope *env,
                     time_t now, unsigned counter, const char *bd, const struct obuf *parts)
{
    int global = env->smtputf8;
    int eight = has_8bit(&parts[0]) || has_8bit(&parts[1]) || has_8bit(&parts[2]);

    put_top(out, mta, env, now, counter, bd, eight);
    put_part(out, bd, "Notification",
             global ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii", &parts[0]);
    put_part(out, bd, "Delivery report",
             global ? "message/global-delivery-status" : "message/delivery-status", &parts[1]);
    put_part(out, bd, "Undelivered Message Headers",
             global ? "message/global-headers" : "text/rfc822-headers", &parts[2]);
    ob_str(out, "");
    ob_textf(out, 0, "--%s--", bd);
}

/* args_ok - everything dsn_build dereferences is there */
static int args_ok(const char *mta, const struct spool_envelope *env, const struct dsn_failure *f,
                   size_t nf, size_t *outlen)
{
    size_t i;

    if (mta == NULL || mta[0] == '\0' || env == NULL || f == NULL || nf == 0 || outlen == NULL)
        return 0;
    for (i = 0; i < nf; i++)
        if (f[i].rcpt == NULL)
            return 0;
    return 1;
}

/* dsn_build - build the three parts, pick a boundary none contains, then assemble */
char *dsn_build(const char *reporting_mta, const struct spool_envelope *env, int body_fd,
                off_t body_off, uint64_t body_len, const struct dsn_failure *f, size_t nf,
                time_t now, size_t *outlen)
{
    static unsigned counter;
    struct obuf parts[3] = {{0}}, out = {0};
    char bd[BOUNDARY_MAX], mta[FIELD_MAX + 1];
    unsigned seq = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    int err = 0, i;

    if (!args_ok(reporting_mta, env, f, nf, outlen)) {
        errno = EINVAL;
        return NULL;
    }
    clean(mta, reporting_mta, 0);
    build_notice(&parts[0], mta, env, f, nf);
    build_report(&parts[1], mta, env, f, nf);
    if (build_headers(&parts[2], body_fd, body_off, body_len) < 0 ||
        make_boundary(bd, sizeof bd, env->id, now, seq, parts, 3) < 0)
        err = errno;
    else
        assemble(&out, mta, env, now, seq, bd, parts);
    ob_put(&out, "", 1); /* a NUL past the end, so callers may treat it as a string */
    for (i = 0; i < 3; i++) {
        err = err ? err : parts[i].err;
        free(parts[i].p);
    }
    err = err ? err : out.err;
    if (err != 0) {
        free(out.p);
        errno = err;
        return NULL;
    }
    *outlen = out.len - 1;
    return out.p;
}
