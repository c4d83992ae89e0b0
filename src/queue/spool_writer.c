/* spool_writer.c - writing one message: header, body, checksum, rename into queue/ */
#include "queue/spool_internal.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* wbuf_flush - write out the buffer */
static int wbuf_flush(struct spool_writer *w)
{
    if (w->failed)
        return -1;
    if (w->buflen && spool_write_all(w->fd, w->buf, w->buflen) < 0) {
        w->failed = errno;
        return -1;
    }
    w->buflen = 0;
    return 0;
}

/* wbuf_crc - the checksum covers everything but the first line, which holds it */
static void wbuf_crc(struct spool_writer *w, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t skip = len < w->crc_skip ? len : w->crc_skip;

    w->crc_skip -= skip;
    if (len > skip)
        w->crc = crc32_z(w->crc, p + skip, len - skip);
}

/* wbuf_put - buffered append; large pieces are written straight through */
static void wbuf_put(struct spool_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return;
    wbuf_crc(w, data, len);
    if (w->buflen + len > sizeof w->buf && wbuf_flush(w) < 0)
        return;
    if (len >= sizeof w->buf) {
        if (spool_write_all(w->fd, data, len) < 0)
            w->failed = errno;
        return;
    }
    memcpy(w->buf + w->buflen, data, len);
    w->buflen += len;
}

/* wbuf_kv - append one "key value\n" header line */
static void wbuf_kv(struct spool_writer *w, enum spool_key k, const char *value)
{
    const char *key = spool_keyname[k];

    wbuf_put(w, key, strlen(key));
    wbuf_put(w, " ", 1);
    wbuf_put(w, value, strlen(value));
    wbuf_put(w, "\n", 1);
    w->hdr_len += strlen(key) + strlen(value) + 2;
}

/* str_or_empty - NULL reads as "" for the optional text fields */
static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* value_ok - a header value must not contain CR or LF (NUL cannot occur in a C string) */
static int value_ok(const char *s)
{
    return !s || strpbrk(s, "\r\n") == NULL;
}

/* envelope_ok - everything begin writes must be loadable again */
static int envelope_ok(const struct spool_envelope *env)
{
    if (!spool_valid_id(env->id) || env->arrival < 0 || env->nrcpt == 0 || !env->rcpt)
        return 0;
    if (!value_ok(env->client_ip) || !value_ok(env->client_name) || !value_ok(env->helo) ||
        !value_ok(env->sender) || !value_ok(env->dsn_envid))
        return 0;
    if (env->dsn_ret && strcmp(env->dsn_ret, "FULL") != 0 && strcmp(env->dsn_ret, "HDRS") != 0)
        return 0;
    for (size_t i = 0; i < env->nrcpt; i++)
        if (!env->rcpt[i].addr || !*env->rcpt[i].addr || !value_ok(env->rcpt[i].addr))
            return 0;
    return 1;
}

/* writer_header - write the magic line, the keys and the empty line */
static int writer_header(struct spool_writer *w, const struct spool_envelope *env)
{
    char num[24];

    w->crc = crc32_z(0, NULL, 0);
    w->crc_skip = SPOOL_FIRST_LINE;
    wbuf_put(w, SPOOL_MAGIC "000000000000 00000000 00000\n", SPOOL_FIRST_LINE);
    w->hdr_len = SPOOL_FIRST_LINE;
    wbuf_kv(w, K_ID, env->id);
    snprintf(num, sizeof num, "%lld", (long long)env->arrival);
    wbuf_kv(w, K_ARRIVAL, num);
    wbuf_kv(w, K_CLIENT_IP, str_or_empty(env->client_ip));
    wbuf_kv(w, K_CLIENT_NAME, str_or_empty(env->client_name));
    wbuf_kv(w, K_HELO, str_or_empty(env->helo));
    wbuf_kv(w, K_SENDER, str_or_empty(env->sender));
    wbuf_kv(w, K_BODY, env->body_8bit ? "8bit" : "7bit");
    wbuf_kv(w, K_SMTPUTF8, env->smtputf8 ? "1" : "0");
    wbuf_kv(w, K_IS_BOUNCE, env->is_bounce ? "1" : "0");
    if (env->dsn_ret)
        wbuf_kv(w, K_DSN_RET, env->dsn_ret);
    if (env->dsn_envid)
        wbuf_kv(w, K_DSN_ENVID, env->dsn_envid);
    for (size_t i = 0; i < env->nrcpt && w->hdr_len <= SPOOL_HDR_MAX; i++)
        wbuf_kv(w, K_RCPT, env->rcpt[i].addr);
    wbuf_put(w, "\n", 1);
    w->hdr_len++;
    if (!w->failed && w->hdr_len > SPOOL_HDR_MAX)
        w->failed = E2BIG;
    if (w->failed)
        return errno = w->failed, -1;
    return 0;
}

/* writer_open - write over a recycled free/ file, or create tmp/ID; fd or -1 */
static int writer_open(struct spool_writer *w)
{
    struct spool *sp = w->sp;
    int fd;

    while (spool_free_pop(sp, w->tmp_name, &w->old_size) == 0) {
        fd = openat(sp->fds[SUB_FREE], w->tmp_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            w->tmp_sub = SUB_FREE;
            return fd;
        }
        /* Gone (an operator cleaned free/): try the next, or create. */
        unlinkat(sp->fds[SUB_FREE], w->tmp_name, 0);
    }
    w->tmp_sub = SUB_TMP;
    w->old_size = 0;
    memcpy(w->tmp_name, w->id, sizeof w->tmp_name);
    fd = openat(sp->fds[SUB_TMP], w->id, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    /* The lock tells spool_list this tmp file is alive, not a crash leftover. */
    if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
        int saved = errno;
        close(fd);
        unlinkat(sp->fds[SUB_TMP], w->id, 0);
        return errno = saved, -1;
    }
    return fd;
}

/* spool_writer_begin - open a file for env and write its header; NULL with errno (EINVAL: bad env)
 */
struct spool_writer *spool_writer_begin(struct spool *sp, const struct spool_envelope *env)
{
    struct spool_writer *w;
    int saved;

    if (!envelope_ok(env))
        return errno = EINVAL, NULL;
    w = xmalloc(sizeof *w);
    memset(w, 0, offsetof(struct spool_writer, buf));
    w->sp = sp;
    memcpy(w->id, env->id, sizeof w->id);
    w->fd = writer_open(w);
    if (w->fd < 0) {
        saved = errno;
        free(w);
        return errno = saved, NULL;
    }
    w->tmp_exists = 1;
    if (writer_header(w, env) == 0)
        return w;
    saved = errno;
    spool_writer_free(w);
    return errno = saved, NULL;
}

/* spool_writer_write - append body octets (buffered; writes through past 64 KiB). 0 or -1 */
int spool_writer_write(struct spool_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return errno = w->failed, -1;
    if (w->committed || w->fd < 0 || w->prepend_len)
        return errno = EINVAL, -1;
    if (len > SPOOL_BODY_MAX - w->body_len) {
        w->failed = EFBIG;
        return errno = EFBIG, -1;
    }
    wbuf_put(w, data, len);
    if (w->failed)
        return errno = w->failed, -1;
    w->body_len += len;
    return 0;
}

/* spool_writer_prepend - fields for the top, written after the body */
int spool_writer_prepend(struct spool_writer *w, const void *data, size_t len)
{
    if (w->failed)
        return errno = w->failed, -1;
    if (w->committed || w->fd < 0)
        return errno = EINVAL, -1;
    if (len > SPOOL_PREPEND_MAX - w->prepend_len)
        return errno = E2BIG, -1;
    if (len == 0)
        return 0;
    wbuf_put(w, data, len);
    if (w->failed)
        return errno = w->failed, -1;
    w->prepend_len += len;
    return 0;
}

/* splice_tail - a copy of the file from off on, in an unnamed file of tmp/; fd or -1 */
static int splice_tail(struct spool_writer *w, off_t off, uint64_t n)
{
    char buf[SPOOL_BUF_SIZE];
    int t = openat(w->sp->fds[SUB_TMP], ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    for (uint64_t done = 0; t >= 0 && done < n;) {
        size_t want = n - done < sizeof buf ? (size_t)(n - done) : sizeof buf;
        ssize_t got = spool_pread_full(w->fd, buf, want, off + (off_t)done);
        if (got <= 0 || spool_write_all(t, buf, (size_t)got) < 0) {
            close(t);
            return errno = got == 0 ? EIO : errno, -1;
        }
        done += (uint64_t)got;
    }
    return t;
}

/* splice_crc - the checksum of the file's first off octets (after its first line) */
static int splice_crc(struct spool_writer *w, off_t off)
{
    char buf[SPOOL_BUF_SIZE];

    w->crc = crc32_z(0, NULL, 0);
    w->crc_skip = 0;
    for (off_t at = SPOOL_FIRST_LINE; at < off;) {
        size_t want = off - at < (off_t)sizeof buf ? (size_t)(off - at) : sizeof buf;
        ssize_t got = spool_pread_full(w->fd, buf, want, at);
        if (got <= 0)
            return errno = got == 0 ? EIO : errno, -1;
        w->crc = crc32_z(w->crc, (const unsigned char *)buf, (size_t)got);
        at += got;
    }
    return 0;
}

/* splice_back - the saved tail after the new octets */
static void splice_back(struct spool_writer *w, int t, uint64_t n)
{
    char buf[SPOOL_BUF_SIZE];

    for (uint64_t done = 0; done < n && !w->failed;) {
        size_t want = n - done < sizeof buf ? (size_t)(n - done) : sizeof buf;
        ssize_t got = spool_pread_full(t, buf, want, (off_t)done);
        if (got <= 0) {
            w->failed = got == 0 ? EIO : errno;
            return;
        }
        wbuf_put(w, buf, (size_t)got);
        done += (uint64_t)got;
    }
}

/* spool_writer_splice - see spool.h: the tail is saved aside, the file cut at off,
 * the new octets and the tail written again (the checksum recomputed) */
int spool_writer_splice(struct spool_writer *w, uint64_t off, uint64_t len, const void *data,
                        size_t dlen)
{
    off_t cut = (off_t)(w->hdr_len + off);
    uint64_t tail;
    int t = -1;

    if (w->failed)
        return errno = w->failed, -1;
    if (w->committed || w->fd < 0 || w->prepend_len || off > w->body_len ||
        len > w->body_len - off || dlen > SPOOL_BODY_MAX - (w->body_len - len))
        return errno = EINVAL, -1;
    if (wbuf_flush(w) < 0)
        return errno = w->failed, -1;
    tail = w->body_len - off - len;
    if ((tail && (t = splice_tail(w, cut + (off_t)len, tail)) < 0) || ftruncate(w->fd, cut) < 0 ||
        lseek(w->fd, 0, SEEK_END) < 0 || splice_crc(w, cut) < 0) {
        w->failed = errno;
        if (t >= 0)
            close(t);
        return -1;
    }
    w->body_len = off + dlen + tail;
    wbuf_put(w, data, dlen);
    if (t >= 0) {
        splice_back(w, t, tail);
        close(t);
    }
    return w->failed ? (errno = w->failed, -1) : 0;
}

/* spool_writer_size - body octets written so far */
uint64_t spool_writer_size(const struct spool_writer *w)
{
    return w->body_len;
}

/* writer_finish_file - flush, put the body length and checksum into the first line, fsync */
static int writer_finish_file(struct spool_writer *w)
{
    char num[SPOOL_FIRST_LINE];
    size_t len = SPOOL_LEN_DIGITS + 1 + SPOOL_CRC_DIGITS + 1 + SPOOL_PREPEND_DIGITS;
    uint64_t total = w->hdr_len + w->body_len + w->prepend_len;
    ssize_t n;

    if (wbuf_flush(w) < 0)
        return errno = w->failed, -1;
    snprintf(num, sizeof num, "%012" PRIu64 " %08lx %05zu", w->body_len, w->crc & 0xffffffffUL,
             w->prepend_len);
    n = pwrite(w->fd, num, len, SPOOL_MAGIC_LEN);
    if (n != (ssize_t)len) {
        if (n >= 0)
            errno = EIO;
        return -1;
    }
    /* A recycled file may be longer than this message: cut the old tail. */
    if (w->old_size > (off_t)total && ftruncate(w->fd, (off_t)total) < 0)
        return -1;
    /* With syncfs group commit the data is flushed with the rename below. A
     * crash before that leaves at most a torn, never acknowledged queue file,
     * which spool_load moves to corrupt/ (the length check). */
    return w->sp->sync_fs ? 0 : fsync(w->fd);
}

/* writer_rename - move the file to queue/ID, never replacing an existing queue/ID */
static int writer_rename(struct spool_writer *w)
{
    int tfd = w->sp->fds[w->tmp_sub], qfd = spool_writer_dest(w);

    if (renameat2(tfd, w->tmp_name, qfd, w->id, RENAME_NOREPLACE) == 0) {
        w->tmp_exists = 0;
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* File systems without RENAME_NOREPLACE: link(2) refuses to replace too. */
    if (linkat(tfd, w->tmp_name, qfd, w->id, 0) < 0)
        return -1;
    /* The message is queued now; a failed unlink only leaves a second name
     * that spool_writer_free or spool_list removes later. */
    if (unlinkat(tfd, w->tmp_name, 0) == 0)
        w->tmp_exists = 0;
    return 0;
}

/* writer_release - the file never became a message: back to free/, or unlinked */
static void writer_release(struct spool_writer *w)
{
    int dfd = w->sp->fds[w->tmp_sub];
    struct stat st;

    if (!w->tmp_exists)
        return;
    /* A recycled file stays in free/; its length is whatever we left. */
    if (w->tmp_sub == SUB_FREE && fstatat(dfd, w->tmp_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        spool_free_push(w->sp, w->tmp_name, st.st_size) == 0) {
        w->tmp_exists = 0;
        return;
    }
    if (unlinkat(dfd, w->tmp_name, 0) == 0)
        w->tmp_exists = 0;
}

/* writer_abort - close and release the file after a failed commit; returns -1 with errno kept */
static int writer_abort(struct spool_writer *w)
{
    int saved = errno;

    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    writer_release(w);
    if (!w->failed)
        w->failed = saved;
    errno = saved;
    return -1;
}

/* spool_writer_prepare - everything but the sync: length, rename into queue/, close. 0 or -1 */
int spool_writer_prepare(struct spool_writer *w)
{
    /* The rename happens before close so that the flock keeps spool_list
     * away from tmp/ID until the name is gone. */
    if (w->committed || w->fd < 0) {
        if (!w->failed)
            w->failed = EINVAL;
        return errno = EINVAL, -1;
    }
    if (writer_finish_file(w) < 0 || (w->quarantine && quarantine_note(w) < 0) ||
        writer_rename(w) < 0)
        return writer_abort(w);
    /* quarantine/ is rare and not group-committed: its name is synced here */
    if (close(w->fd) < 0 || (w->quarantine && fsync(spool_writer_dest(w)) < 0)) {
        w->fd = -1;
        w->failed = errno;
        unlinkat(spool_writer_dest(w), w->id, 0);
        return errno = w->failed, -1;
    }
    w->fd = -1;
    return 0;
}

/* spool_writer_free - free w; releases its file if it was not committed */
void spool_writer_free(struct spool_writer *w)
{
    int saved = errno;

    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    writer_release(w);
    free(w->quarantine);
    free(w);
    errno = saved;
}
