/* spool_log.c - the per-recipient delivery log log/ID, and dequeueing */
#include "queue/spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

/* format_record - "<time> <idx> <status> <text>\n" with text cleaned and capped */
static size_t format_record(char *rec, size_t reclen, unsigned idx, const char *status,
                            const char *text)
{
    char clean[SPOOL_TEXT_MAX + 1];
    size_t n = 0;
    int len;

    for (; text && text[n] && n < SPOOL_TEXT_MAX; n++) {
        unsigned char c = (unsigned char)text[n];
        clean[n] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    clean[n] = '\0';
    len = snprintf(rec, reclen, "%lld %u %s %s\n", (long long)clock_now(), idx, status, clean);
    return len > 0 && (size_t)len < reclen ? (size_t)len : 0;
}

/* log_open - open log/ID for appending; *created tells whether this call made it */
static int log_open(struct spool *sp, const char *id, int *created)
{
    int fd;

    for (int tries = 0; tries < 2; tries++) {
        fd = openat(sp->fds[SUB_LOG], id, O_RDWR | O_APPEND | O_CLOEXEC);
        *created = 0;
        if (fd >= 0 || errno != ENOENT)
            return fd;
        fd = openat(sp->fds[SUB_LOG], id, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        *created = 1;
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* log_repair_tail - cut a torn last record; *empty tells whether the file is empty */
static int log_repair_tail(int fd, int *empty)
{
    char tail[SPOOL_LOG_REC_MAX];
    struct stat st;
    ssize_t got;
    size_t n;
    off_t off;
    char *nl;

    if (fstat(fd, &st) < 0)
        return -1;
    *empty = st.st_size == 0;
    if (st.st_size == 0)
        return 0;
    n = (uint64_t)st.st_size < sizeof tail ? (size_t)st.st_size : sizeof tail;
    off = st.st_size - (off_t)n;
    got = spool_pread_full(fd, tail, n, off);
    if (got != (ssize_t)n) {
        if (got >= 0)
            errno = EIO; /* the file shrank under the lock: someone else writes it */
        return -1;
    }
    /* A crash mid-append leaves a record without its LF; cutting it (under
     * the exclusive lock) lets the next record start on a line of its own
     * instead of gluing onto the fragment. */
    if (tail[n - 1] == '\n')
        return 0;
    nl = memrchr(tail, '\n', n);
    if (!nl && off > 0)
        return spool_bad_msg(); /* a "record" longer than any we write: not a torn append */
    return ftruncate(fd, nl ? off + (nl - tail) + 1 : 0);
}

/* log_append - append one record to log/ID in one write and fsync it */
static int log_append(struct spool *sp, const char *id, unsigned idx, const char *status,
                      const char *text)
{
    char rec[SPOOL_LOG_REC_MAX];
    size_t len = format_record(rec, sizeof rec, idx, status, text);
    int fd, created, empty = 0, rc, saved;

    if (!spool_valid_id(id) || len == 0)
        return errno = EINVAL, -1;
    fd = log_open(sp, id, &created);
    if (fd < 0)
        return -1;
    rc = flock(fd, LOCK_EX);
    if (rc == 0)
        rc = log_repair_tail(fd, &empty);
    if (rc == 0)
        rc = spool_write_all(fd, rec, len);
    if (rc == 0)
        rc = fsync(fd);
    /* An empty file may have been left by a creator that failed before its
     * directory fsync: make the name durable in that case too. */
    if (rc == 0 && (created || empty))
        rc = fsync(sp->fds[SUB_LOG]);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* spool_log - BLOCKING: append an fsynced delivered/bounced record to log/ID. 0 or -1 */
int spool_log(struct spool *sp, const char *id, unsigned rcpt_index, enum spool_rcpt_state st,
              const char *text)
{
    if (st == SPOOL_RCPT_DELIVERED)
        return log_append(sp, id, rcpt_index, "delivered", text);
    if (st == SPOOL_RCPT_BOUNCED)
        return log_append(sp, id, rcpt_index, "bounced", text);
    return errno = EINVAL, -1;
}

/* spool_log_deferred - BLOCKING: like spool_log with status "deferred" */
int spool_log_deferred(struct spool *sp, const char *id, unsigned rcpt_index, const char *text)
{
    return log_append(sp, id, rcpt_index, "deferred", text);
}

/* spool_remove - BLOCKING: unlink queue/ID (durably) then log/ID. 0 or -1 */
int spool_remove(struct spool *sp, const char *id)
{
    int missing = 0;

    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    /* No sync here: if a crash loses this unlink, the message is delivered
     * once more after the restart (the one duplicate every MTA allows), and
     * the next commit's sync makes the removal durable anyway. Moving the
     * file to free/ instead spares the file system an inode freed now and
     * another allocated for the next message. */
    if (spool_recycle(sp, id) < 0 && unlinkat(sp->fds[SUB_QUEUE], id, 0) < 0) {
        if (errno != ENOENT)
            return -1;
        missing = 1;
    }
    /* The log goes second: a log left behind by a crash here is an orphan
     * that spool_list removes, never a queued message without its log. */
    if (unlinkat(sp->fds[SUB_LOG], id, 0) < 0 && errno != ENOENT)
        return -1;
    return missing ? (errno = ENOENT, -1) : 0;
}
