/*
 * fuzz_dsn.c - libFuzzer harness for the header parser of dsn_build: the
 * input is a stored message (after a spool-like envelope prefix, read
 * through a memfd), and a DSN is built about it twice: once with a plain
 * envelope, once with every envelope and diagnostic field taken from the
 * input too (remote MTAs' reply texts are peer input). Properties of every
 * report: CRLF lines only, no bare CR/LF, no NUL, no line over 998
 * octets, no line that is exactly "." (the result is dot-stuffed), the
 * MIME boundary delimits exactly its parts, and the clean lines of the
 * original header section appear in the headers part, in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "queue/dsn.h"
#include "queue/spool.h"

#define PREFIX "MXQ1 000000000000\nid 0123456789ABCDEF\n\n" /* what precedes a spooled body */
#define FIELD_INPUT_MAX 2048 /* longest envelope field taken from the input */
#define LINE_HARD 998
#define NOW ((time_t)1700000000)

/* stored_fd - one memfd holding PREFIX then the input, rewritten for every input */
static int stored_fd(const uint8_t *data, size_t size)
{
    static int fd = -1;

    if (fd < 0 && (fd = memfd_create("fuzz_dsn", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || pwrite(fd, PREFIX, strlen(PREFIX), 0) != (ssize_t)strlen(PREFIX))
        abort();
    if (size > 0 && pwrite(fd, data, size, (off_t)strlen(PREFIX)) != (ssize_t)size)
        abort();
    return fd;
}

/* check_lines - CRLF only, no NUL, each line at most 998 octets and never a lone "." */
static void check_lines(const char *out, size_t len)
{
    size_t start = 0;

    FUZZ_ASSERT(out[len] == '\0');
    FUZZ_ASSERT(len >= 2 && out[len - 2] == '\r' && out[len - 1] == '\n');
    for (size_t i = 0; i < len; i++) {
        FUZZ_ASSERT(out[i] != '\0' && out[i] != '\n');
        if (out[i] != '\r')
            continue;
        FUZZ_ASSERT(i + 1 < len && out[i + 1] == '\n');
        FUZZ_ASSERT(i - start <= LINE_HARD);
        FUZZ_ASSERT(!(i - start == 1 && out[start] == '.'));
        start = i + 2;
        i++;
    }
}

/* count - occurrences of needle in hay[0..len] */
static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    const char *p = hay, *end = hay + len;

    while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
        n++;
        p += nl;
    }
    return n;
}

/*
 * check_boundary - the boundary opens the first part right after the
 * preamble (the top header cannot hold an empty line, so this is its first
 * place), is named once in the header, and delimits three parts and the end.
 */
static void check_boundary(const char *out, size_t len)
{
    static const char pre[] = "\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n";
    const char *b = strstr(out, pre), *e;
    char bd[128];

    FUZZ_ASSERT(b != NULL);
    b += strlen(pre);
    e = strstr(b, "\r\n");
    FUZZ_ASSERT(e != NULL && e - b > 2 && (size_t)(e - b) < sizeof(bd));
    memcpy(bd, b, (size_t)(e - b));
    bd[e - b] = '\0';
    FUZZ_ASSERT(bd[0] == '-' && bd[1] == '-');
    FUZZ_ASSERT(count(out, len, bd) == 4);
    FUZZ_ASSERT(count(out, len, bd + 2) == 5);
}

/* clean_line - a header line that must come through unchanged */
static int clean_line(const char *s, size_t n)
{
    return n <= LINE_HARD && !(n == 1 && s[0] == '.') && memchr(s, '\r', n) == NULL &&
           memchr(s, '\n', n) == NULL && memchr(s, '\0', n) == NULL;
}

/* find_line - "\r\n" line "\r\n" at or after *cur in out; moves *cur past it */
static int find_line(const char *out, size_t len, size_t *cur, const char *s, size_t n)
{
    const char *p = out + *cur;

    while ((p = memmem(p, (size_t)(out + len - p), s, n)) != NULL) {
        if (p - out >= 2 && p[-2] == '\r' && p[-1] == '\n' && (size_t)(p - out) + n + 2 <= len &&
            p[n] == '\r' && p[n + 1] == '\n') {
            *cur = (size_t)(p - out) + n;
            return 1;
        }
        p++;
    }
    return 0;
}

/*
 * check_headers - the original header section (up to the first empty line;
 * an unterminated last line only when the whole body was read) reappears,
 * line by line and in order, after the part's description.
 */
static void check_headers(const char *out, size_t len, const uint8_t *data, size_t size, int whole)
{
    const char *part = strstr(out, "Undelivered Message Headers");
    const char *in = (const char *)data;
    size_t pos = 0, cur;

    FUZZ_ASSERT(part != NULL);
    cur = (size_t)(part - out);
    while (pos < size) {
        const char *crlf = memmem(in + pos, size - pos, "\r\n", 2);
        size_t end = crlf ? (size_t)(crlf - in) : size;
        if (end == pos || (crlf == NULL && !whole))
            return;
        if (clean_line(in + pos, end - pos))
            FUZZ_ASSERT(find_line(out, len, &cur, in + pos, end - pos));
        pos = end + 2;
    }
}

/* check_report - every property of one built report */
static void check_report(char *out, size_t len)
{
    FUZZ_ASSERT(out != NULL);
    check_lines(out, len);
    check_boundary(out, len);
}

/* build_plain - a well-formed envelope; the input is only the stored message */
static void build_plain(int fd, const uint8_t *data, size_t size)
{
    struct spool_envelope env = {.id = "0123456789ABCDEF",
                                 .arrival = NOW - 3600,
                                 .client_ip = "192.0.2.1",
                                 .client_name = "unknown",
                                 .helo = "client.example",
                                 .sender = "sender@example.test"};
    struct dsn_failure f = {"user@example.test", 550, "5.1.1 <user@example.test>: unknown user",
                            "mx.example.test"};
    size_t len = 0;
    char *out =
        dsn_build("mx.example.test", &env, fd, (off_t)strlen(PREFIX), size, &f, 1, NOW, &len);

    check_report(out, len);
    check_headers(out, len, data, size, 1);
    free(out);
}

/*
 * build_hostile - every text field is the input (as a string), SMTPUTF8 on,
 * and the body announced one octet longer than stored (a torn read).
 */
static void build_hostile(int fd, const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size < FIELD_INPUT_MAX ? size : FIELD_INPUT_MAX);
    struct spool_envelope env = {.id = "0123456789ABCDEF", .arrival = NOW, .smtputf8 = 1};
    struct dsn_failure f[2];
    size_t len = 0;
    char *out;

    if (s == NULL)
        abort();
    env.client_ip = env.client_name = env.helo = env.sender = env.dsn_envid = s;
    f[0] = (struct dsn_failure){s, 451, s, s};
    f[1] = (struct dsn_failure){s, 0, s, NULL};
    out = dsn_build(s[0] ? s : "x", &env, fd, (off_t)strlen(PREFIX), (uint64_t)size + 1, f, 2, NOW,
                    &len);
    check_report(out, len);
    check_headers(out, len, data, size, 0);
    free(out);
    free(s);
}

/* LLVMFuzzerTestOneInput - one input: run it, check the properties */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd;

    if (size > 60000)
        return -1; /* stay below the 64 KiB that dsn_build reads of a header */
    fd = stored_fd(data, size);
    build_plain(fd, data, size);
    build_hostile(fd, data, size);
    return 0;
}
