/* spool_load.c - the queue file format: reading, checking and parsing queue/ID */
#include "queue/spool_internal.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const char *const spool_keyname[K_COUNT] = {"id",        "arrival", "client-ip", "client-name",
                                            "helo",      "sender",  "body",      "smtputf8",
                                            "is-bounce", "dsn-ret", "dsn-envid", "rcpt"};

/* read_header - read queue file octets until the empty line; *hlen counts through
 * it, *have is how much was read (the whole file when it is small) */
static int read_header(int fd, off_t size, char **out, size_t *hlen, size_t *have_out)
{
    size_t cap = 65536, have = 0;
    char *buf = NULL, *end;

    for (;;) {
        size_t want = (uint64_t)size < cap ? (size_t)size : cap;
        ssize_t n;

        buf = xrealloc(buf, cap + 1);
        n = spool_pread_full(fd, buf + have, want - have, (off_t)have);
        if (n < 0)
            return free(buf), -1;
        have += (size_t)n;
        buf[have] = '\0';
        end = memmem(buf, have, "\n\n", 2);
        if (end) {
            *out = buf;
            *hlen = (size_t)(end - buf) + 2;
            *have_out = have;
            return 0;
        }
        if (have < cap || cap >= SPOOL_HDR_MAX)
            return free(buf), spool_bad_msg();
        cap *= 2;
    }
}

/* parse_u64 - strict decimal: digits only, no sign, no overflow past max */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (max - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* dup_into - strdup value into *dst; 0, for the parsers that return it */
static int dup_into(char **dst, const char *value)
{
    *dst = xstrdup(value);
    return 0;
}

/* parse_flag - "0" or "1" */
static int parse_flag(const char *v, int *out)
{
    if ((v[0] != '0' && v[0] != '1') || v[1] != '\0')
        return spool_bad_msg();
    *out = v[0] == '1';
    return 0;
}

/* add_rcpt - append a recipient to env */
static int add_rcpt(struct spool_envelope *env, const char *addr)
{
    struct spool_rcpt *r;

    if (!*addr)
        return spool_bad_msg();
    r = xrealloc(env->rcpt, (env->nrcpt + 1) * sizeof *r);
    env->rcpt = r;
    memset(&r[env->nrcpt], 0, sizeof *r);
    r[env->nrcpt].addr = xstrdup(addr);
    env->nrcpt++;
    return 0;
}

/* set_field - store one key's value into env */
static int set_field(struct spool_envelope *env, enum spool_key k, const char *v, const char *id)
{
    uint64_t t;

    switch (k) {
    case K_ID:
        if (strcmp(v, id) != 0)
            return spool_bad_msg();
        memcpy(env->id, id, SPOOL_ID_LEN + 1);
        return 0;
    case K_ARRIVAL:
        if (parse_u64(v, strlen(v), INT64_MAX, &t) < 0)
            return spool_bad_msg();
        env->arrival = (time_t)t;
        return 0;
    case K_CLIENT_IP:
        return dup_into(&env->client_ip, v);
    case K_CLIENT_NAME:
        return dup_into(&env->client_name, v);
    case K_HELO:
        return dup_into(&env->helo, v);
    case K_SENDER:
        return dup_into(&env->sender, v);
    case K_BODY:
        if (strcmp(v, "8bit") != 0 && strcmp(v, "7bit") != 0)
            return spool_bad_msg();
        env->body_8bit = v[0] == '8';
        return 0;
    case K_SMTPUTF8:
        return parse_flag(v, &env->smtputf8);
    case K_IS_BOUNCE:
        return parse_flag(v, &env->is_bounce);
    case K_DSN_RET:
        if (strcmp(v, "FULL") != 0 && strcmp(v, "HDRS") != 0)
            return spool_bad_msg();
        return dup_into(&env->dsn_ret, v);
    case K_DSN_ENVID:
        return dup_into(&env->dsn_envid, v);
    default:
        return add_rcpt(env, v);
    }
}

/* parse_line - one "key value" line; *seen collects keys to catch repeats and omissions */
static int parse_line(char *line, struct spool_envelope *env, const char *id, unsigned *seen)
{
    char *sp = strchr(line, ' ');
    int k;

    if (!sp)
        return spool_bad_msg();
    *sp = '\0';
    for (k = 0; k < K_COUNT; k++)
        if (strcmp(line, spool_keyname[k]) == 0)
            break;
    if (k == K_COUNT || (k != K_RCPT && (*seen & (1u << k))))
        return spool_bad_msg();
    *seen |= 1u << k;
    return set_field(env, (enum spool_key)k, sp + 1, id);
}

/* parse_hex8 - exactly 8 lowercase hex digits */
static int parse_hex8(const char *s, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < SPOOL_CRC_DIGITS; i++) {
        int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                             : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* The numbers of a queue file's first line. */
struct spool_first {
    size_t len; /* of the line */
    uint64_t body_len;
    uint64_t prepend_len;
    int has_crc;
    uint32_t crc;
};

/* parse_first_line - "MXQ3 <length> <crc> <prepend>\n", or the older "MXQ2
 * <length> <crc>\n" and "MXQ1 <length>\n"; f->len 0 when it is none of them */
static void parse_first_line(const char *buf, size_t hlen, struct spool_first *f)
{
    const char *n = buf + SPOOL_MAGIC_LEN;

    memset(f, 0, sizeof(*f));
    if (memcmp(buf, SPOOL_MAGIC, SPOOL_MAGIC_LEN) == 0)
        f->len = SPOOL_FIRST_LINE;
    else if (memcmp(buf, SPOOL_MAGIC_V2, SPOOL_MAGIC_LEN) == 0)
        f->len = SPOOL_FIRST_LINE_V2;
    else if (memcmp(buf, SPOOL_MAGIC_V1, SPOOL_MAGIC_LEN) == 0)
        f->len = SPOOL_FIRST_LINE_V1;
    f->has_crc = f->len > SPOOL_FIRST_LINE_V1;
    if (f->len == 0 || hlen <= f->len || buf[f->len - 1] != '\n' ||
        parse_u64(n, SPOOL_LEN_DIGITS, SPOOL_BODY_MAX, &f->body_len) < 0)
        f->len = 0;
    else if (f->has_crc &&
             (n[SPOOL_LEN_DIGITS] != ' ' || parse_hex8(n + SPOOL_LEN_DIGITS + 1, &f->crc) < 0))
        f->len = 0;
    else if (f->len == SPOOL_FIRST_LINE &&
             (n[SPOOL_LEN_DIGITS + 1 + SPOOL_CRC_DIGITS] != ' ' ||
              parse_u64(n + SPOOL_LEN_DIGITS + 1 + SPOOL_CRC_DIGITS + 1, SPOOL_PREPEND_DIGITS,
                        SPOOL_PREPEND_MAX, &f->prepend_len) < 0))
        f->len = 0;
}

/* parse_header - parse every key of a header of hlen octets after its first line */
static int parse_header(char *buf, size_t hlen, size_t first, const char *id,
                        struct spool_envelope *env)
{
    char *p = buf + first, *end = buf + hlen - 1, *nl;
    unsigned seen = 0;

    /* Values never hold NUL or CR; finding one means the file is damaged. */
    if (memchr(buf, '\0', hlen) || memchr(buf, '\r', hlen))
        return spool_bad_msg();
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        *nl = '\0';
        if (parse_line(p, env, id, &seen) < 0)
            return -1;
        p = nl + 1;
    }
    return (seen & SPOOL_REQUIRED_KEYS) == SPOOL_REQUIRED_KEYS ? 0 : spool_bad_msg();
}

/*
 * check_crc - the checksum over everything after the first line. A crash
 * before a commit's sync can leave a queue file whose name is on disk but
 * part of whose octets are not (or, for a recycled file, are a delivered
 * message's): such a file was never acknowledged, and must not be delivered.
 * Small files are already in memory (buf holds have octets); the rest is read.
 */
static int check_crc(int fd, const char *buf, size_t have, off_t size, size_t first, uint32_t want)
{
    unsigned long crc = crc32_z(0, NULL, 0);
    char chunk[65536];
    off_t off = (off_t)have;

    crc = crc32_z(crc, (const unsigned char *)buf + first, have - first);
    while (off < size) {
        size_t n = size - off < (off_t)sizeof chunk ? (size_t)(size - off) : sizeof chunk;
        ssize_t got = spool_pread_full(fd, chunk, n, off);
        if (got < 0)
            return -1;
        if ((size_t)got != n)
            return spool_bad_msg(); /* shrank while we read */
        crc = crc32_z(crc, (const unsigned char *)chunk, n);
        off += (off_t)n;
    }
    return (crc & 0xffffffffUL) == want ? 0 : spool_bad_msg();
}

/* check_file - the first line against the file: its length, then (verify) its
 * checksum; *why names what failed (for the operator) */
static int check_file(int fd, const char *hdr, size_t hlen, size_t have, off_t size,
                      struct spool_first *f, int verify, const char **why)
{
    *why = "first-line";
    if (hlen <= SPOOL_FIRST_LINE_V1)
        return spool_bad_msg();
    parse_first_line(hdr, hlen, f);
    if (!f->len)
        return spool_bad_msg();
    *why = "length";
    if ((uint64_t)size - hlen != f->body_len + f->prepend_len)
        return spool_bad_msg();
    *why = "checksum";
    return f->has_crc && verify ? check_crc(fd, hdr, have, size, f->len, f->crc) : 0;
}

/* load_prepend - the fields stored after the body, into env */
static int load_prepend(int fd, off_t off, size_t len, struct spool_envelope *env)
{
    ssize_t n;

    if (len == 0)
        return 0;
    env->prepend = xmalloc(len + 1);
    n = spool_pread_full(fd, env->prepend, len, off);
    if (n < 0)
        return -1;
    if ((size_t)n != len)
        return spool_bad_msg();
    env->prepend[len] = '\0';
    env->prepend_len = len;
    return 0;
}

/* spool_load_fd - check queue/ID (length, checksum if verify), then parse its
 * envelope; on EBADMSG *why names the check that failed */
int spool_load_fd(int fd, const char *id, struct spool_envelope *env, off_t *body_off,
                  uint64_t *body_len, int verify, const char **why)
{
    struct stat st;
    struct spool_first f;
    char *hdr = NULL;
    size_t hlen = 0, have = 0;
    int rc;

    *why = "not-a-file";
    if (fstat(fd, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode))
        return spool_bad_msg();
    *why = "no-header-end"; /* cut short, or a header larger than any we write */
    if (read_header(fd, st.st_size, &hdr, &hlen, &have) < 0)
        return -1;
    rc = check_file(fd, hdr, hlen, have, st.st_size, &f, verify, why);
    if (rc == 0) {
        *why = "header";
        rc = parse_header(hdr, hlen, f.len, id, env);
    }
    free(hdr);
    if (rc == 0) {
        *why = "length";
        rc = load_prepend(fd, (off_t)(hlen + f.body_len), (size_t)f.prepend_len, env);
    }
    *body_off = (off_t)hlen;
    *body_len = f.body_len;
    return rc;
}

/* take_number - parse "<digits> " at *p and advance past the space */
static int take_number(char **p, uint64_t max, uint64_t *out)
{
    char *sp = strchr(*p, ' ');

    if (!sp || parse_u64(*p, (size_t)(sp - *p), max, out) < 0)
        return -1;
    *p = sp + 1;
    return 0;
}

/* apply_record - one complete log line "<time> <idx> <status> <text>" */
static int apply_record(char *line, size_t len, struct spool_envelope *env)
{
    uint64_t t, idx;
    struct spool_rcpt *r;
    char *p = line, *sp;

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return spool_bad_msg();
    if (take_number(&p, INT64_MAX, &t) < 0 || take_number(&p, UINT_MAX, &idx) < 0 ||
        idx >= env->nrcpt || !(sp = strchr(p, ' ')))
        return spool_bad_msg();
    *sp = '\0';
    r = &env->rcpt[idx];
    if (strcmp(p, "delivered") == 0)
        r->state = SPOOL_RCPT_DELIVERED;
    else if (strcmp(p, "bounced") == 0)
        r->state = SPOOL_RCPT_BOUNCED;
    else if (strcmp(p, "deferred") == 0)
        r->attempts++;
    else
        return spool_bad_msg();
    free(r->last_text);
    return dup_into(&r->last_text, sp + 1);
}

/* read_records - apply every complete line of the log; a final line without LF is torn */
static int read_records(int fd, struct spool_envelope *env)
{
    char buf[SPOOL_LOG_READ];
    size_t have = 0;

    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        char *start = buf, *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -1 : 0; /* at EOF, what is left (if anything) is torn */
        have += (size_t)n;
        while ((nl = memchr(start, '\n', (size_t)(buf + have - start))) != NULL) {
            *nl = '\0';
            if (apply_record(start, (size_t)(nl - start), env) < 0)
                return -1;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof buf)
            return spool_bad_msg(); /* far longer than any record we write */
    }
}

/* load_log - apply log/ID (if any) to env's recipients */
static int load_log(struct spool *sp, const char *id, struct spool_envelope *env)
{
    int fd = openat(sp->fds[SUB_LOG], id, O_RDONLY | O_CLOEXEC), rc, saved;

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* Shared lock: never read a record that spool_log is half way through. */
    rc = flock(fd, LOCK_SH);
    if (rc == 0)
        rc = read_records(fd, env);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* spool_load_quiet - see spool.h: spool_load_open without the corrupt callback */
int spool_load_quiet(struct spool *sp, const char *id, struct spool_envelope *env, off_t *body_off,
                     uint64_t *body_len, int *fd_out, int verify, const char **why, int *moved)
{
    int fd, rc, saved;

    *why = "";
    *moved = 0;
    memset(env, 0, sizeof *env);
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    fd = openat(sp->fds[SUB_QUEUE], id, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = spool_load_fd(fd, id, env, body_off, body_len, verify, why);
    if (rc == 0) {
        *why = "log";
        rc = load_log(sp, id, env);
    }
    saved = errno;
    if (rc == 0 && fd_out)
        *fd_out = fd;
    else
        close(fd);
    if (rc < 0) {
        /* Only inconsistency quarantines: EIO may pass. */
        spool_envelope_free(env);
        if (saved == EBADMSG)
            *moved = spool_corrupt_move(sp, id, *why);
    }
    errno = saved;
    return rc;
}

/* spool_load_open - spool_load that also hands over queue/ID's descriptor (for the body) */
int spool_load_open(struct spool *sp, const char *id, struct spool_envelope *env, off_t *body_off,
                    uint64_t *body_len, int *fd_out, int verify)
{
    const char *why;
    int moved, rc = spool_load_quiet(sp, id, env, body_off, body_len, fd_out, verify, &why, &moved);
    int saved = errno;

    if (rc < 0 && saved == EBADMSG)
        spool_corrupt_tell(sp, id, why, moved);
    errno = saved;
    return rc;
}

/* spool_load - read queue/ID and log/ID; corrupt files go to corrupt/ (EBADMSG) */
int spool_load(struct spool *sp, const char *id, struct spool_envelope *env, off_t *body_off,
               uint64_t *body_len)
{
    return spool_load_open(sp, id, env, body_off, body_len, NULL, 1);
}

/* spool_envelope_free - free everything spool_load allocated and zero env */
void spool_envelope_free(struct spool_envelope *env)
{
    if (!env)
        return;
    free(env->client_ip);
    free(env->client_name);
    free(env->helo);
    free(env->sender);
    free(env->dsn_ret);
    free(env->dsn_envid);
    for (size_t i = 0; i < env->nrcpt; i++) {
        free(env->rcpt[i].addr);
        free(env->rcpt[i].last_text);
    }
    free(env->rcpt);
    free(env->prepend);
    memset(env, 0, sizeof *env);
}

/* spool_open_body - open queue/ID read-only (for sending the body); fd or -1 */
int spool_open_body(struct spool *sp, const char *id)
{
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    return openat(sp->fds[SUB_QUEUE], id, O_RDONLY | O_CLOEXEC);
}
