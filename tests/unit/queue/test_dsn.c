/* test_dsn.c - unit tests for RFC 3464 bounce generation */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "queue/dsn.h"
#include "queue/spool.h"

#define MTA "mx.example.test"
#define ARRIVAL ((time_t)1700000000) /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define NOW ((time_t)1700086400)     /* Wed, 15 Nov 2023 22:13:20 +0000 */

/* A stored message: a spool-like text prefix, then the body (dot-stuffed CRLF). */
static const char prefix[] = "MXQ1 000000000000\nid 0123456789ABCDEF\n\n";
static const char sample[] = "Received: from client.example (client.example [192.0.2.7])\r\n"
                             "\tby mx.example.test; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                             "From: Alice <alice@sender.example>\r\n"
                             "To: bob@example.test\r\n"
                             "Subject: original subject\r\n"
                             "Message-ID: <orig-1@sender.example>\r\n"
                             "\r\n"
                             "BODY-SECRET first line\r\n"
                             "..a stuffed body line\r\n";

/* A report split into its pieces. */
struct report {
    char *buf;
    size_t len;
    char bd[128];
    char *part[3]; /* NUL-terminated copies of each part's content (header + body) */
    char *top;     /* NUL-terminated copy of the top-level header section */
};

/* tmpfile_with - a temp file holding prefix + body; returns the fd, sets offset and length */
static int tmpfile_with(const char *body, size_t blen, off_t *off, uint64_t *len)
{
    char path[] = "/tmp/test_dsn_XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(write(fd, prefix, sizeof prefix - 1), (ssize_t)(sizeof prefix - 1));
    assert_int_equal(write(fd, body, blen), (ssize_t)blen);
    *off = (off_t)(sizeof prefix - 1);
    *len = blen;
    return fd;
}

/* envelope - a plain envelope for tests */
static void envelope(struct spool_envelope *env, int smtputf8)
{
    memset(env, 0, sizeof *env);
    strcpy(env->id, "0123456789ABCDEF");
    env->arrival = ARRIVAL;
    env->client_ip = "192.0.2.7";
    env->sender = "alice@sender.example";
    env->smtputf8 = smtputf8;
}

/* check_wire - CRLF only, no NUL, no line over 998, no line that is just "." */
static void check_wire(const char *buf, size_t len)
{
    size_t i, linelen = 0;

    assert_true(len >= 2);
    assert_memory_equal(buf + len - 2, "\r\n", 2);
    for (i = 0; i < len; i++) {
        assert_int_not_equal(buf[i], '\0');
        if (buf[i] == '\r') {
            assert_true(i + 1 < len && buf[i + 1] == '\n');
        } else if (buf[i] == '\n') {
            assert_true(i > 0 && buf[i - 1] == '\r');
            linelen = 0;
            continue;
        }
        if (buf[i] != '\r')
            linelen++;
        assert_true(linelen <= 998);
        if (buf[i] == '.' && (i == 0 || buf[i - 1] == '\n'))
            assert_false(i + 2 < len && buf[i + 1] == '\r');
    }
}

/* dupn - NUL-terminated copy of n octets */
static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* unfolded - a copy of s with every CRLF followed by white space removed (RFC 5322 3.2.2) */
static char *unfolded(const char *s)
{
    char *d = dupn(s, strlen(s)), *w = d;

    for (; *s != '\0'; s++) {
        if (s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')) {
            s++;
            continue;
        }
        *w++ = *s;
    }
    *w = '\0';
    return d;
}

/* find_boundary - the boundary parameter of the (unfolded) top Content-Type */
static void find_boundary(struct report *r)
{
    char *u = unfolded(r->top), *p, *q;

    p = strstr(u, "\r\nContent-Type: multipart/report; report-type=delivery-status;");
    assert_non_null(p);
    p = strstr(p, "boundary=\"");
    assert_non_null(p);
    p += strlen("boundary=\"");
    q = strchr(p, '"');
    assert_non_null(q);
    assert_true(q > p && (size_t)(q - p) < sizeof r->bd && q - p <= 70);
    memcpy(r->bd, p, (size_t)(q - p));
    r->bd[q - p] = '\0';
    free(u);
}

/* split - locate the top header, the three parts and the closing delimiter */
static void split(struct report *r)
{
    char delim[160], close[160];
    const char *p, *start, *end;
    int i;

    end = strstr(r->buf, "\r\n\r\n");
    assert_non_null(end);
    r->top = dupn(r->buf, (size_t)(end - r->buf) + 2);
    find_boundary(r);
    snprintf(delim, sizeof delim, "\r\n--%s\r\n", r->bd);
    snprintf(close, sizeof close, "\r\n--%s--\r\n", r->bd);
    p = strstr(r->buf, delim);
    for (i = 0; i < 3; i++) {
        assert_non_null(p);
        start = p + strlen(delim);
        p = strstr(start, delim);
        end = (i < 2) ? p : strstr(start, close);
        assert_non_null(end);
        r->part[i] = dupn(start, (size_t)(end - start));
        assert_null(strstr(r->part[i], r->bd));
    }
    assert_null(p);
    assert_int_equal(strlen(close), (size_t)(r->buf + r->len - end));
    assert_string_equal(end, close);
}

/* build - run dsn_build on the sample and split the result */
static void build(struct report *r, const struct spool_envelope *env, const char *body,
                  const struct dsn_failure *f, size_t nf)
{
    off_t off;
    uint64_t len;
    int fd = tmpfile_with(body, strlen(body), &off, &len);

    memset(r, 0, sizeof *r);
    r->buf = dsn_build(MTA, env, fd, off, len, f, nf, NOW, &r->len);
    assert_int_equal(close(fd), 0);
    assert_non_null(r->buf);
    assert_int_equal(strlen(r->buf), r->len); /* NUL right after the report, none inside */
    check_wire(r->buf, r->len);
    split(r);
}

/* free_report - release a report */
static void free_report(struct report *r)
{
    int i;

    for (i = 0; i < 3; i++)
        free(r->part[i]);
    free(r->top);
    free(r->buf);
}

/* has_line - the text contains this exact line */
static int has_line(const char *text, const char *line)
{
    char *needle;
    int found;

    assert_true(asprintf(&needle, "\r\n%s\r\n", line) > 0);
    found = strstr(text, needle) != NULL || (strncmp(text, line, strlen(line)) == 0 &&
                                             strncmp(text + strlen(line), "\r\n", 2) == 0);
    free(needle);
    return found;
}

/* block_of - the per-recipient block of the delivery-status part for rcpt (unfolded copy) */
static char *block_of(const struct report *r, const char *rcpt)
{
    char *u = unfolded(r->part[1]), *needle, *p, *e, *blk;

    assert_true(asprintf(&needle, "\r\nFinal-Recipient: rfc822; %s\r\n", rcpt) > 0);
    p = strstr(u, needle);
    assert_non_null(p);
    e = strstr(p + 2, "\r\n\r\n");
    blk = dupn(p + 2, e ? (size_t)(e - p) : strlen(p + 2));
    free(needle);
    free(u);
    return blk;
}

/* test_structure - top headers, three typed parts, required per-message fields */
static void test_structure(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 unknown user", "in.example.test"};
    struct report r;

    envelope(&env, 0);
    env.dsn_envid = "QQ+2B123";
    build(&r, &env, sample, &f, 1);
    assert_true(has_line(r.top, "From: Mail Delivery System <MAILER-DAEMON@" MTA ">"));
    assert_true(has_line(r.top, "To: <alice@sender.example>"));
    assert_true(has_line(r.top, "Subject: Undelivered Mail Returned to Sender"));
    assert_true(has_line(r.top, "Date: Wed, 15 Nov 2023 22:13:20 +0000"));
    assert_true(has_line(r.top, "MIME-Version: 1.0"));
    assert_true(has_line(r.top, "Auto-Submitted: auto-replied"));
    assert_non_null(strstr(r.top, "\r\nMessage-ID: <1700086400.0123456789ABCDEF."));
    assert_non_null(strstr(r.top, "@" MTA ">\r\n"));
    assert_non_null(strstr(r.bd, "0123456789ABCDEF"));
    assert_null(strstr(r.top, "Content-Transfer-Encoding"));
    assert_true(has_line(r.part[0], "Content-Type: text/plain; charset=us-ascii"));
    assert_true(has_line(r.part[1], "Content-Type: message/delivery-status"));
    assert_true(has_line(r.part[2], "Content-Type: text/rfc822-headers"));
    assert_true(has_line(r.part[1], "Reporting-MTA: dns; " MTA));
    assert_true(has_line(r.part[1], "Original-Envelope-Id: QQ+2B123"));
    assert_true(has_line(r.part[1], "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000"));
    /* per-message fields, blank line, then the recipient block */
    assert_non_null(strstr(r.part[1], "+0000\r\n\r\nFinal-Recipient: rfc822; bob@example.test\r\n"
                                      "Action: failed\r\nStatus: 5.1.1\r\n"
                                      "Remote-MTA: dns; in.example.test\r\n"
                                      "Diagnostic-Code: smtp; 550 5.1.1 unknown user\r\n"));
    free_report(&r);
}

/* test_human_part - the explanation names each recipient and its diagnostic */
static void test_human_part(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f[2] = {{"bob@example.test", 550, "5.1.1 unknown user", "in.example.test"},
                               {"carol@example.test", 0, "lifetime expired", NULL}};
    struct report r;

    envelope(&env, 0);
    build(&r, &env, sample, f, 2);
    assert_non_null(strstr(r.part[0], "This is the mail system at host " MTA "."));
    assert_true(has_line(r.part[0],
                         "<bob@example.test>: host in.example.test said: 550 5.1.1 unknown user"));
    assert_true(has_line(r.part[0], "<carol@example.test>: lifetime expired"));
    assert_non_null(strstr(r.part[0], "0123456789ABCDEF"));
    free_report(&r);
}

/* assert_status - build a report for one failure and check its Status: and Diagnostic-Code */
static void assert_status(int code, const char *text, const char *want, int has_diag)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", code, text, NULL};
    struct report r;
    char *blk, *line;

    envelope(&env, 0);
    build(&r, &env, sample, &f, 1);
    blk = block_of(&r, "bob@example.test");
    assert_true(asprintf(&line, "\r\nStatus: %s\r\n", want) > 0);
    assert_non_null(strstr(blk, line));
    assert_true(has_line(blk, "Action: failed"));
    assert_int_equal(strstr(blk, "Diagnostic-Code: smtp; ") != NULL, has_diag);
    assert_null(strstr(blk, "Remote-MTA:"));
    free(line);
    free(blk);
    free_report(&r);
}

/* test_status - enhanced code from the text, else 5.0.0 for 5xx, 5.4.7 for 4xx and 0 */
static void test_status(void **state)
{
    assert_status(550, "5.1.1 unknown user", "5.1.1", 1);
    assert_status(552, "5.3.4", "5.3.4", 1);
    assert_status(550, "no such user", "5.0.0", 1);
    assert_status(554, "", "5.0.0", 1);
    assert_status(554, NULL, "5.0.0", 1);
    assert_status(452, "4.2.2 mailbox full", "4.2.2", 1);
    assert_status(451, "try again later", "5.4.7", 1);
    assert_status(0, "lifetime expired", "5.4.7", 0);
    assert_status(0, NULL, "5.4.7", 0);
    assert_status(550, "5.1.1x bad", "5.0.0", 1);
    assert_status(550, "2.0.0 ok", "5.0.0", 1);
    assert_status(550, "5.1234.1 long", "5.0.0", 1);
    assert_status(550, "5..1 empty", "5.0.0", 1);
    assert_status(550, "5.7.123 detail", "5.7.123", 1);
    assert_status(421, "5.7.1 said 5 but 4xx code", "5.7.1", 1);
}

/* test_header_part - only the header section of the original, still dot-stuffed CRLF */
static void test_header_part(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 unknown user", NULL};
    struct report r;
    static const char stuffed[] = "Subject: x\r\n..starts with a dot: kept stuffed\r\n"
                                  "X-Bare: a\rb\nc\r\n\r\nbody\r\n";

    envelope(&env, 0);
    build(&r, &env, sample, &f, 1);
    assert_non_null(strstr(r.part[2], "\r\n\r\nReceived: from client.example"));
    assert_true(has_line(r.part[2], "\tby mx.example.test; Tue, 14 Nov 2023 22:13:20 +0000"));
    assert_true(has_line(r.part[2], "Subject: original subject"));
    assert_true(has_line(r.part[2], "Message-ID: <orig-1@sender.example>"));
    assert_null(strstr(r.part[2], "BODY-SECRET"));
    assert_null(strstr(r.part[2], "stuffed body"));
    free_report(&r);

    build(&r, &env, stuffed, &f, 1);
    assert_true(has_line(r.part[2], "..starts with a dot: kept stuffed"));
    assert_true(has_line(r.part[2], "X-Bare: a b c"));
    assert_null(strstr(r.part[2], "body"));
    free_report(&r);

    build(&r, &env, "\r\nno header at all\r\n", &f, 1);
    assert_null(strstr(r.part[2], "no header"));
    free_report(&r);

    build(&r, &env, "Subject: only a header, no CRLF at the end", &f, 1);
    assert_true(has_line(r.part[2], "Subject: only a header, no CRLF at the end"));
    free_report(&r);
}

/* test_header_limits - 64 KiB of header at most, no partial line, long lines cut at 998 */
static void test_header_limits(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 unknown user", NULL};
    struct report r;
    size_t cap = 200 * 1024, n = 0, i;
    char *big = malloc(cap);

    assert_non_null(big);
    n += (size_t)sprintf(big + n, "X-Long: ");
    memset(big + n, 'L', 3000);
    n += 3000;
    n += (size_t)sprintf(big + n, "\r\n");
    for (i = 0; n < 150 * 1024; i++)
        n += (size_t)sprintf(big + n, "X-Filler-%06zu: %s\r\n", i,
                             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
    n += (size_t)sprintf(big + n, "\r\nbody\r\n");
    envelope(&env, 0);
    build(&r, &env, big, &f, 1);
    assert_true(strlen(r.part[2]) < 64 * 1024 + 200);
    assert_non_null(strstr(r.part[2], "\r\nX-Filler-000000: abc"));
    assert_null(strstr(r.part[2], "\r\nX-Filler-002000:"));
    assert_true(strlen(r.part[2]) > 60 * 1024);
    /* ends with a whole filler line */
    assert_string_equal(r.part[2] + strlen(r.part[2]) - 8, "uvwxyz\r\n");
    free_report(&r);
    free(big);
}

/* test_long_diagnostic - folded at spaces, cut when there is none, all lines <= 998 */
static void test_long_diagnostic(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, NULL, "in.example.test"};
    struct report r;
    char *text = malloc(6000), *blk;
    size_t n = 0;

    assert_non_null(text);
    n += (size_t)sprintf(text, "5.7.1 ");
    while (n < 2000)
        n += (size_t)sprintf(text + n, "word%zu ", n);
    f.text = text;
    envelope(&env, 0);
    build(&r, &env, sample, &f, 1);
    blk = block_of(&r, "bob@example.test");
    assert_non_null(strstr(blk, "\r\nDiagnostic-Code: smtp; 550 5.7.1 word6 word12 word19 "));
    assert_true(has_line(blk, "Status: 5.7.1"));
    /* folded: continuation lines start with a space and stay near 78 columns */
    assert_non_null(strstr(r.part[1], "\r\n word"));
    assert_null(strstr(blk, "\r\n\r\n"));
    free(blk);
    free_report(&r);

    /* no space for 2000 octets: hard cuts, still every line <= 998 (check_wire) */
    n = (size_t)sprintf(text, "5.7.1 ");
    memset(text + n, 'W', 2000);
    text[n + 2000] = '\0';
    build(&r, &env, sample, &f, 1);
    assert_non_null(strstr(r.part[1], "\r\nDiagnostic-Code: smtp; 550 5.7.1\r\n WWW"));
    assert_non_null(strstr(r.part[0], "said: 550 5.7.1\r\nWWW"));
    free_report(&r);
    free(text);
}

/* test_injection - CR/LF/NUL-free output even when the diagnostic carries them */
static void test_injection(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 no\r\n.\r\nMAIL FROM:<x@y>\r\nZ",
                            "evil\r\nX-Injected: 1"};
    struct report r;

    envelope(&env, 0);
    build(&r, &env, sample, &f, 1);
    assert_null(strstr(r.buf, "\r\nMAIL FROM"));
    assert_null(strstr(r.buf, "\r\nX-Injected"));
    assert_null(strstr(r.buf, "\r\n.\r\n"));
    assert_non_null(strstr(r.part[1], "Diagnostic-Code: smtp; 550 5.1.1 no . MAIL FROM:<x@y> Z"));
    free_report(&r);
}

/* test_dot_stuffing - generated lines starting with '.' get a second '.' */
static void test_dot_stuffing(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 0, NULL, NULL};
    struct report r;
    char text[400];
    const char *p;
    int stuffed = 0;
    size_t i;

    for (i = 0; i + 2 < 300; i += 2)
        memcpy(text + i, ". ", 2);
    text[i] = '\0';
    f.text = text;
    envelope(&env, 0);
    build(&r, &env, sample, &f, 1);
    for (p = r.part[0]; (p = strstr(p, "\r\n.")) != NULL; p += 3) {
        assert_int_equal(p[3], '.');
        stuffed++;
    }
    assert_true(stuffed >= 2);
    free_report(&r);
}

/* test_smtputf8 - global types, utf-8 address type and 8bit transfer encoding */
static void test_smtputf8(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"j\xc3\xb6rg@example.test", 550, "5.1.1 unknown \xc3\xb6", NULL};
    struct report r;

    envelope(&env, 1);
    env.sender = "\xe7\x94\xb0\xe4\xb8\xad@sender.example";
    build(&r, &env, sample, &f, 1);
    assert_true(has_line(r.top, "To: <\xe7\x94\xb0\xe4\xb8\xad@sender.example>"));
    assert_true(has_line(r.top, "Content-Transfer-Encoding: 8bit"));
    assert_true(has_line(r.part[0], "Content-Type: text/plain; charset=utf-8"));
    assert_true(has_line(r.part[1], "Content-Type: message/global-delivery-status"));
    assert_true(has_line(r.part[1], "Content-Transfer-Encoding: 8bit"));
    assert_true(has_line(r.part[2], "Content-Type: message/global-headers"));
    assert_true(has_line(r.part[1], "Final-Recipient: utf-8; j\xc3\xb6rg@example.test"));
    assert_true(has_line(r.part[1], "Diagnostic-Code: smtp; 550 5.1.1 unknown ??"));
    free_report(&r);
}

/* test_eight_bit_masked - without SMTPUTF8 nothing generated is 8-bit */
static void test_eight_bit_masked(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"j\xc3\xb6rg@example.test", 550, "5.1.1 unknown \xff", NULL};
    struct report r;

    envelope(&env, 0);
    build(&r, &env, sample, &f, 1);
    assert_true(has_line(r.part[1], "Final-Recipient: rfc822; j??rg@example.test"));
    assert_true(has_line(r.part[1], "Diagnostic-Code: smtp; 550 5.1.1 unknown ?"));
    assert_null(strstr(r.buf, "Content-Transfer-Encoding"));
    free_report(&r);
}

/* test_unique - boundaries and Message-IDs differ between two reports */
static void test_unique(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 unknown user", NULL};
    struct report a, b;
    const char *ma, *mb;

    envelope(&env, 0);
    build(&a, &env, sample, &f, 1);
    build(&b, &env, sample, &f, 1);
    assert_string_not_equal(a.bd, b.bd);
    ma = strstr(a.top, "Message-ID:");
    mb = strstr(b.top, "Message-ID:");
    assert_non_null(ma);
    assert_non_null(mb);
    assert_false(strncmp(ma, mb, (size_t)(strchr(ma, '>') - ma)) == 0);
    free_report(&a);
    free_report(&b);
}

/* test_errors - bad arguments and unreadable bodies give NULL with errno */
static void test_errors(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 unknown user", NULL};
    struct dsn_failure nor = {NULL, 550, "x", NULL};
    size_t len = 12345;
    off_t off;
    uint64_t blen;
    int fd;

    envelope(&env, 0);
    fd = tmpfile_with(sample, strlen(sample), &off, &blen);
    errno = 0;
    assert_null(dsn_build(NULL, &env, fd, off, blen, &f, 1, NOW, &len));
    assert_int_equal(errno, EINVAL);
    assert_null(dsn_build(MTA, NULL, fd, off, blen, &f, 1, NOW, &len));
    assert_null(dsn_build(MTA, &env, fd, off, blen, NULL, 1, NOW, &len));
    assert_null(dsn_build(MTA, &env, fd, off, blen, &f, 0, NOW, &len));
    assert_null(dsn_build(MTA, &env, fd, off, blen, &nor, 1, NOW, &len));
    assert_null(dsn_build(MTA, &env, fd, off, blen, &f, 1, NOW, NULL));
    errno = 0;
    assert_null(dsn_build(MTA, &env, fd, -1, blen, &f, 1, NOW, &len));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(len, 12345);
    assert_int_equal(close(fd), 0);
    errno = 0;
    assert_null(dsn_build(MTA, &env, fd, off, blen, &f, 1, NOW, &len));
    assert_int_equal(errno, EBADF);
}

/* test_short_file - a body shorter than announced is used as far as it goes */
static void test_short_file(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f = {"bob@example.test", 550, "5.1.1 unknown user", NULL};
    off_t off;
    uint64_t blen;
    size_t len;
    char *out;
    int fd;

    envelope(&env, 0);
    fd = tmpfile_with("Subject: a\r\nX-Cut: incomple", 27, &off, &blen);
    out = dsn_build(MTA, &env, fd, off, blen + 1000, &f, 1, NOW, &len);
    assert_non_null(out);
    check_wire(out, len);
    assert_non_null(strstr(out, "\r\nSubject: a\r\n"));
    assert_null(strstr(out, "X-Cut"));
    free(out);
    out = dsn_build(MTA, &env, fd, off, 0, &f, 1, NOW, &len);
    assert_non_null(out);
    assert_null(strstr(out, "Subject: a"));
    free(out);
    assert_int_equal(close(fd), 0);
}

/* test_many_recipients - one block per recipient, each separated by a blank line */
static void test_many_recipients(void **state)
{
    struct spool_envelope env;
    struct dsn_failure f[50];
    char names[50][32];
    struct report r;
    const char *p;
    int i, count = 0;

    for (i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "user%d@example.test", i);
        f[i].rcpt = names[i];
        f[i].code = 550;
        f[i].text = "5.1.1 unknown user";
        f[i].remote_mta = "in.example.test";
    }
    envelope(&env, 0);
    build(&r, &env, sample, f, 50);
    for (p = r.part[1]; (p = strstr(p, "\r\n\r\nFinal-Recipient: rfc822; user")) != NULL; p++)
        count++;
    assert_int_equal(count, 50);
    free(block_of(&r, "user49@example.test"));
    free_report(&r);
}

/* main - run the DSN tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),     cmocka_unit_test(test_human_part),
        cmocka_unit_test(test_status),        cmocka_unit_test(test_header_part),
        cmocka_unit_test(test_header_limits), cmocka_unit_test(test_long_diagnostic),
        cmocka_unit_test(test_injection),     cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_smtputf8),      cmocka_unit_test(test_eight_bit_masked),
        cmocka_unit_test(test_unique),        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_short_file),    cmocka_unit_test(test_many_recipients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
