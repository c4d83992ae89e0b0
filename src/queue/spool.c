/* spool.c - the spool directory: set-up and close, queue ids, shared I/O helpers */
#include "queue/spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/xmalloc.h"

const char *const spool_subdirs[SUB_COUNT + 1] = {"tmp",  "queue",      "log", "corrupt",
                                                  "free", "quarantine", NULL};

static uint64_t spool_last_id; /* atomic: the numeric value of the last id handed out */

/* spool_bad_msg - fail with EBADMSG (an inconsistent file) */
int spool_bad_msg(void)
{
    errno = EBADMSG;
    return -1;
}

/* spool_write_all - write len octets, retrying short writes and EINTR */
int spool_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* spool_pread_full - read up to len octets at off; returns the count (short only at EOF) or -1 */
ssize_t spool_pread_full(int fd, void *data, size_t len, off_t off)
{
    char *p = data;
    size_t got = 0;

    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* set_err - format "what path: reason" into err */
static void set_err(char *err, size_t errlen, const char *what, const char *path, int errnum)
{
    char buf[128];

    if (err && errlen)
        snprintf(err, errlen, "spool: %s %s: %s", what, path, strerror_r(errnum, buf, sizeof buf));
}

/* spool_open_subdirs - create and open tmp/ queue/ log/ corrupt/ under dirfd */
static int spool_open_subdirs(struct spool *sp, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int created = 0;

    for (int i = 0; i < SUB_COUNT; i++) {
        if (snprintf(path, sizeof path, "%s/%s", sp->dir, spool_subdirs[i]) >= (int)sizeof path) {
            set_err(err, errlen, "path too long:", sp->dir, ENAMETOOLONG);
            return errno = ENAMETOOLONG, -1;
        }
        if (mkdirat(sp->dirfd, spool_subdirs[i], 0700) == 0)
            created = 1;
        else if (errno != EEXIST)
            return set_err(err, errlen, "mkdir", path, errno), -1;
        sp->fds[i] =
            openat(sp->dirfd, spool_subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sp->fds[i] < 0)
            return set_err(err, errlen, "open", path, errno), -1;
    }
    if (created && fsync(sp->dirfd) < 0)
        return set_err(err, errlen, "fsync", sp->dir, errno), -1;
    return 0;
}

/* spool_open - create (if needed) and open the spool; NULL with err filled on failure */
struct spool *spool_open(const char *dir, char *err, size_t errlen)
{
    struct spool *sp = xcalloc(1, sizeof *sp);
    int saved;

    sp->dir = xstrdup(dir);
    sp->dirfd = -1;
    for (int i = 0; i < SUB_COUNT; i++)
        sp->fds[i] = -1;
    pthread_mutex_init(&sp->gc_mu, NULL);
    pthread_cond_init(&sp->gc_cv, NULL);
    pthread_mutex_init(&sp->fr.mu, NULL);
    if (fs_mkdir_p(dir, 0700) < 0) {
        set_err(err, errlen, "mkdir", dir, errno);
    } else if ((sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        set_err(err, errlen, "open", dir, errno);
    } else if (spool_open_subdirs(sp, err, errlen) == 0) {
        return sp;
    }
    saved = errno;
    spool_close(sp);
    errno = saved;
    return NULL;
}

/* spool_set_sync - choose how commits are made durable */
void spool_set_sync(struct spool *sp, enum spool_sync mode)
{
    sp->sync_fs = mode == SPOOL_SYNC_FILESYSTEM;
}

/* spool_close - release the directory descriptors */
void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    for (int i = 0; i < SUB_COUNT; i++)
        if (sp->fds[i] >= 0)
            close(sp->fds[i]);
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    pthread_cond_destroy(&sp->gc_cv);
    pthread_mutex_destroy(&sp->gc_mu);
    pthread_mutex_destroy(&sp->fr.mu);
    free(sp->fr.name);
    free(sp->fr.size);
    free(sp->dir);
    free(sp);
}

/* spool_dir - the directory the spool was opened on */
const char *spool_dir(const struct spool *sp)
{
    return sp->dir;
}

/* spool_pid - getpid() once: ids are made for every message, and mxgated
 * forks (daemon(3)) before it makes any */
static pid_t spool_pid(void)
{
    static pid_t pid;
    pid_t p = __atomic_load_n(&pid, __ATOMIC_RELAXED);

    if (!p) {
        p = getpid();
        __atomic_store_n(&pid, p, __ATOMIC_RELAXED);
    }
    return p;
}

/* spool_new_id - a fresh, time-ordered queue id, unique in this process (thread-safe) */
void spool_new_id(char out[SPOOL_ID_LEN + 1])
{
    struct timeval tv;
    uint64_t mix, now, last, next;

    /* 8 hex digits of seconds, 5 of microseconds, 3 of a pid-derived value.
     * The 64-bit number is kept strictly increasing in the process (a repeat
     * in the same microsecond, or a clock stepped back, takes the last value
     * + 1), so ids never repeat here and sort by age as text. */
    gettimeofday(&tv, NULL);
    /* Different processes starting in the same microsecond differ here. */
    mix = (((uint64_t)spool_pid() * 2654435761u) >> 16) & 0xfff;
    now = ((uint64_t)(uint32_t)tv.tv_sec << 32) | ((uint64_t)tv.tv_usec << 12) | mix;
    last = __atomic_load_n(&spool_last_id, __ATOMIC_RELAXED);
    do {
        next = now > last ? now : last + 1;
    } while (!__atomic_compare_exchange_n(&spool_last_id, &last, next, 0, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    snprintf(out, SPOOL_ID_LEN + 1, "%016" PRIX64, next);
}

/* spool_valid_id - 1 if s has the shape of a queue id (guards path building) */
int spool_valid_id(const char *s)
{
    size_t i;

    if (!s)
        return 0;
    for (i = 0; i < SPOOL_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return s[i] == '\0';
}
