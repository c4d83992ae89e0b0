/* spool.c - the durable queue on disk: tmp/ -> queue/ with fsync and group commit */
#include "core/fsutil.h"
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#define SPOOL_BUF_SIZE 65536           /* writer buffer */
#define SPOOL_HDR_MAX (4u << 20)       /* largest envelope header we write or read */
#define SPOOL_BODY_MAX 999999999999ULL /* what 12 decimal digits can say */
#define SPOOL_MAGIC "MXQ2 "            /* with a CRC-32 of everything after the first line */
#define SPOOL_MAGIC_V1 "MXQ1 "         /* without: still read */
#define SPOOL_MAGIC_LEN 5
#define SPOOL_LEN_DIGITS 12
#define SPOOL_CRC_DIGITS 8
#define SPOOL_FIRST_LINE_V1 (SPOOL_MAGIC_LEN + SPOOL_LEN_DIGITS + 1)
#define SPOOL_FIRST_LINE (SPOOL_MAGIC_LEN + SPOOL_LEN_DIGITS + 1 + SPOOL_CRC_DIGITS + 1)
#define SPOOL_TEXT_MAX 400    /* octets of log text kept */
#define SPOOL_LOG_REC_MAX 512 /* longest log record we write (about 445) rounded up */
#define SPOOL_LOG_READ 8192

#define SPOOL_RECYCLE_SIZE_MAX (256 * 1024) /* larger files are unlinked, not kept */

enum spool_sub { SUB_TMP, SUB_QUEUE, SUB_LOG, SUB_CORRUPT, SUB_FREE, SUB_COUNT };
const char *const spool_subdirs[SUB_COUNT + 1] = {"tmp", "queue", "log", "corrupt", "free", NULL};

/* Files of delivered messages kept in free/ to be written over by new ones. */
struct spool_free {
    pthread_mutex_t mu;
    char (*name)[SPOOL_ID_LEN + 1];
    off_t *size;
    size_t n, max; /* max 0: recycling off (every file created and unlinked) */
};

struct spool {
    char *dir;
    int dirfd;
    int fds[SUB_COUNT];
    /* Group commit of the queue/ directory fsync: every rename (or unlink)
     * takes a generation number; one fsync started after generation g was
     * taken makes every generation <= g durable. */
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    uint64_t renamed_gen; /* last generation handed out */
    uint64_t synced_gen;  /* every generation <= this is durable */
    int syncing;          /* an fsync of queue/ is in flight */
    int sync_fs;          /* group commit by syncfs(2) instead of fsync per file */
    int sync_err;         /* sticky: after a failed directory fsync nothing is trusted */
    struct spool_free fr;
};

struct spool_writer {
    struct spool *sp;
    char id[SPOOL_ID_LEN + 1];
    int fd;
    int tmp_exists;         /* the file we write is ours to remove (or give back) */
    enum spool_sub tmp_sub; /* SUB_TMP (created) or SUB_FREE (recycled) */
    char tmp_name[SPOOL_ID_LEN + 1];
    off_t old_size; /* a recycled file's size before we wrote over it */
    int failed;     /* errno of the first failure, sticky */
    int committed;
    uint64_t body_len;
    size_t hdr_len;
    unsigned long crc; /* zlib crc32 of what follows the first line */
    size_t crc_skip;   /* octets of the first line not yet put */
    size_t buflen;
    char buf[SPOOL_BUF_SIZE];
};

/* Keys of the envelope header, in the order they are written. */
enum spool_key {
    K_ID,
    K_ARRIVAL,
    K_CLIENT_IP,
    K_CLIENT_NAME,
    K_HELO,
    K_SENDER,
    K_BODY,
    K_SMTPUTF8,
    K_IS_BOUNCE,
    K_DSN_RET,
    K_DSN_ENVID,
    K_RCPT,
    K_COUNT
};
static const char *const spool_keyname[K_COUNT] = {
    "id",   "arrival",  "client-ip", "client-name", "helo",      "sender",
    "body", "smtputf8", "is-bounce", "dsn-ret",     "dsn-envid", "rcpt"};
/* Keys every file we write carries; dsn-ret and dsn-envid are optional. */
#define SPOOL_REQUIRED_KEYS (((1u << K_COUNT) - 1) & ~(1u << K_DSN_RET) & ~(1u << K_DSN_ENVID))

typedef int (*spool_entry_fn)(struct spool *sp, const char *name, void *ctx);

static uint64_t spool_last_id; /* atomic: the numeric value of the last id handed out */

/* bad_msg - fail with EBADMSG (an inconsistent file) */
static int bad_msg(void)
{
    errno = EBADMSG;
    return -1;
}

/* set_err - format "what path: reason" into err */
static void set_err(char *err, size_t errlen, const char *what, const char *path, int errnum)
{
    char buf[128];

    if (err && errlen)
        snprintf(err, errlen, "spool: %s %s: %s", what, path, strerror_r(errnum, buf, sizeof buf));
}

/* write_all - write len octets, retrying short writes and EINTR */
static int write_all(int fd, const void *data, size_t len)
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

/* pread_full - read up to len octets at off; returns the count (short only at EOF) or -1 */
static ssize_t pread_full(int fd, void *data, size_t len, off_t off)
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
    struct spool *sp = calloc(1, sizeof *sp);
    int saved;

    if (!sp || !(sp->dir = strdup(dir))) {
        set_err(err, errlen, "open", dir, ENOMEM);
        free(sp);
        return NULL;
    }
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

/* ---- recycling ---- */

/* free_push - remember free/NAME of size; 0, or -1 when the list is full */
static int free_push(struct spool *sp, const char *name, off_t size)
{
    struct spool_free *fr = &sp->fr;
    int rc = -1;

    pthread_mutex_lock(&fr->mu);
    if (fr->n < fr->max) {
        memcpy(fr->name[fr->n], name, SPOOL_ID_LEN + 1);
        fr->size[fr->n++] = size;
        rc = 0;
    }
    pthread_mutex_unlock(&fr->mu);
    return rc;
}

/* free_pop - take a free/ file's name and size; 0, or -1 when there is none */
static int free_pop(struct spool *sp, char name[SPOOL_ID_LEN + 1], off_t *size)
{
    struct spool_free *fr = &sp->fr;
    int rc = -1;

    pthread_mutex_lock(&fr->mu);
    if (fr->n > 0) {
        fr->n--;
        memcpy(name, fr->name[fr->n], SPOOL_ID_LEN + 1);
        *size = fr->size[fr->n];
        rc = 0;
    }
    pthread_mutex_unlock(&fr->mu);
    return rc;
}

struct adopt_ctx {
    ino_t *ino; /* inodes of queue/, sorted */
    size_t n, cap;
};

/* note_queued - collect queue/NAME's inode */
static int note_queued(struct spool *sp, const char *name, void *arg)
{
    struct adopt_ctx *a = arg;
    struct stat st;

    if (fstatat(sp->fds[SUB_QUEUE], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        ino_t *ino = realloc(a->ino, cap * sizeof *ino);
        if (!ino)
            return -1;
        a->ino = ino;
        a->cap = cap;
    }
    a->ino[a->n++] = st.st_ino;
    return 0;
}

/* cmp_ino - qsort/bsearch order */
static int cmp_ino(const void *x, const void *y)
{
    ino_t a = *(const ino_t *)x, b = *(const ino_t *)y;

    return a < b ? -1 : a > b;
}

/*
 * adopt_free - spool_set_recycle's walk over free/: keep what fits, unlink
 * the rest. A crash between a rename free/ -> queue/ (or back) and the next
 * sync can leave both names on disk for one file; such a file is queued,
 * and writing over it would change a queued message: it is neither kept nor
 * unlinked (unlinking a name the file system may count once would free it).
 */
static int adopt_free(struct spool *sp, const char *name, void *arg)
{
    struct adopt_ctx *a = arg;
    struct stat st;

    if (fstatat(sp->fds[SUB_FREE], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        (a->n && bsearch(&st.st_ino, a->ino, a->n, sizeof *a->ino, cmp_ino)))
        return 0;
    if (st.st_size <= SPOOL_RECYCLE_SIZE_MAX && free_push(sp, name, st.st_size) == 0)
        return 0;
    return unlinkat(sp->fds[SUB_FREE], name, 0) < 0 && errno != ENOENT ? -1 : 0;
}

static int dir_walk(struct spool *sp, enum spool_sub sub, spool_entry_fn cb, void *ctx);

/* spool_set_recycle - keep up to max delivered files for reuse (0: off); adopts free/. 0 or -1 */
int spool_set_recycle(struct spool *sp, size_t max)
{
    struct spool_free *fr = &sp->fr;
    char(*name)[SPOOL_ID_LEN + 1] = NULL;
    struct adopt_ctx a = {0};
    off_t *size = NULL;
    int rc;

    if (max && (!(name = calloc(max, sizeof *name)) || !(size = calloc(max, sizeof *size)))) {
        free(name);
        return -1;
    }
    pthread_mutex_lock(&fr->mu);
    free(fr->name);
    free(fr->size);
    fr->name = name;
    fr->size = size;
    fr->n = 0;
    fr->max = max;
    pthread_mutex_unlock(&fr->mu);
    /* With max 0 this empties free/ (recycling was turned off). */
    if (dir_walk(sp, SUB_QUEUE, note_queued, &a) < 0) {
        free(a.ino);
        return -1;
    }
    if (a.n)
        qsort(a.ino, a.n, sizeof *a.ino, cmp_ino);
    rc = dir_walk(sp, SUB_FREE, adopt_free, &a);
    free(a.ino);
    return rc;
}

/* recycle - dequeue queue/ID by moving it to free/ for a later message; 0 or -1 */
static int recycle(struct spool *sp, const char *id)
{
    struct stat st;

    if (__atomic_load_n(&sp->fr.n, __ATOMIC_RELAXED) >= sp->fr.max)
        return -1;
    if (fstatat(sp->fds[SUB_QUEUE], id, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > SPOOL_RECYCLE_SIZE_MAX)
        return -1;
    if (renameat(sp->fds[SUB_QUEUE], id, sp->fds[SUB_FREE], id) < 0)
        return -1;
    /* Lost the race for the last slot: the file was already dequeued. */
    if (free_push(sp, id, st.st_size) < 0)
        unlinkat(sp->fds[SUB_FREE], id, 0);
    return 0;
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

/* ---- writer ---- */

/* wbuf_flush - write out the buffer */
static int wbuf_flush(struct spool_writer *w)
{
    if (w->failed)
        return -1;
    if (w->buflen && write_all(w->fd, w->buf, w->buflen) < 0) {
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
        if (write_all(w->fd, data, len) < 0)
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
    wbuf_put(w, SPOOL_MAGIC "000000000000 00000000\n", SPOOL_FIRST_LINE);
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

    while (free_pop(sp, w->tmp_name, &w->old_size) == 0) {
        fd = openat(sp->fds[SUB_FREE], w->tmp_name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
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
    fd = openat(sp->fds[SUB_TMP], w->id, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
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
    w = malloc(sizeof *w);
    if (!w)
        return NULL;
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
    if (w->committed || w->fd < 0)
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

/* spool_writer_size - body octets written so far */
uint64_t spool_writer_size(const struct spool_writer *w)
{
    return w->body_len;
}

/* writer_finish_file - flush, put the body length and checksum into the first line, fsync */
static int writer_finish_file(struct spool_writer *w)
{
    char num[SPOOL_FIRST_LINE];
    size_t len = SPOOL_LEN_DIGITS + 1 + SPOOL_CRC_DIGITS;
    ssize_t n;

    if (wbuf_flush(w) < 0)
        return errno = w->failed, -1;
    snprintf(num, sizeof num, "%012" PRIu64 " %08lx", w->body_len, w->crc & 0xffffffffUL);
    n = pwrite(w->fd, num, len, SPOOL_MAGIC_LEN);
    if (n != (ssize_t)len) {
        if (n >= 0)
            errno = EIO;
        return -1;
    }
    /* A recycled file may be longer than this message: cut the old tail. */
    if (w->old_size > (off_t)(w->hdr_len + w->body_len) &&
        ftruncate(w->fd, (off_t)(w->hdr_len + w->body_len)) < 0)
        return -1;
    /* With syncfs group commit the data is flushed with the rename below. A
     * crash before that leaves at most a torn, never acknowledged queue file,
     * which spool_load moves to corrupt/ (the length check). */
    return w->sp->sync_fs ? 0 : fsync(w->fd);
}

/* writer_rename - move the file to queue/ID, never replacing an existing queue/ID */
static int writer_rename(struct spool_writer *w)
{
    int tfd = w->sp->fds[w->tmp_sub], qfd = w->sp->fds[SUB_QUEUE];

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

/* spool_sync_queue - fsync queue/ so that every rename/unlink so far is durable (group commit) */
static int spool_sync_queue(struct spool *sp)
{
    uint64_t gen, snap;
    int rc = 0;

    pthread_mutex_lock(&sp->gc_mu);
    gen = ++sp->renamed_gen;
    while (sp->synced_gen < gen && !sp->sync_err) {
        if (sp->syncing) {
            pthread_cond_wait(&sp->gc_cv, &sp->gc_mu);
            continue;
        }
        snap = sp->renamed_gen;
        sp->syncing = 1;
        pthread_mutex_unlock(&sp->gc_mu);
        /* syncfs flushes every file's data and every rename of the file
         * system in one go: one device flush for all the waiting commits. */
        rc = sp->sync_fs ? syncfs(sp->fds[SUB_QUEUE]) : fsync(sp->fds[SUB_QUEUE]);
        pthread_mutex_lock(&sp->gc_mu);
        sp->syncing = 0;
        /* After a failed fsync the kernel may report success next time for
         * entries it never wrote: refuse every later commit instead. */
        if (rc < 0)
            sp->sync_err = errno ? errno : EIO;
        else if (snap > sp->synced_gen)
            sp->synced_gen = snap;
        pthread_cond_broadcast(&sp->gc_cv);
    }
    rc = sp->synced_gen >= gen ? 0 : sp->sync_err;
    pthread_mutex_unlock(&sp->gc_mu);
    return rc ? (errno = rc, -1) : 0;
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
        free_push(w->sp, w->tmp_name, st.st_size) == 0) {
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

/* writer_prepare - everything but the sync: length, rename into queue/, close. 0 or -1 */
static int writer_prepare(struct spool_writer *w)
{
    /* The rename happens before close so that the flock keeps spool_list
     * away from tmp/ID until the name is gone. */
    if (w->committed || w->fd < 0) {
        if (!w->failed)
            w->failed = EINVAL;
        return errno = EINVAL, -1;
    }
    if (writer_finish_file(w) < 0 || writer_rename(w) < 0)
        return writer_abort(w);
    if (close(w->fd) < 0) {
        w->fd = -1;
        w->failed = errno;
        unlinkat(w->sp->fds[SUB_QUEUE], w->id, 0);
        return errno = w->failed, -1;
    }
    w->fd = -1;
    return 0;
}

/* spool_commit_batch - BLOCKING: make every writer durable with one sync; the count that are */
size_t spool_commit_batch(struct spool_writer *const *ws, size_t n)
{
    size_t ok = 0;
    int rc = 0, saved = 0;

    for (size_t i = 0; i < n; i++)
        if (writer_prepare(ws[i]) == 0)
            ok++;
    if (ok && spool_sync_queue(ws[0]->sp) < 0) {
        rc = -1;
        saved = errno;
    }
    for (size_t i = 0; i < n; i++) {
        struct spool_writer *w = ws[i];
        if (w->failed)
            continue;
        if (rc < 0) {
            /* Not durable: take it back, the client will be told 4xx and retry. */
            unlinkat(w->sp->fds[SUB_QUEUE], w->id, 0);
            w->failed = saved;
        } else {
            w->committed = 1;
        }
    }
    return rc < 0 ? 0 : ok;
}

/* spool_writer_commit - BLOCKING: make the message durable in queue/ (0) or remove it (-1) */
int spool_writer_commit(struct spool_writer *w)
{
    int err;

    spool_commit_batch(&w, 1);
    return spool_writer_status(w, &err) == 0 ? 0 : (errno = err, -1);
}

/* spool_writer_status - after a commit: 0 if durable, else -1 with *err the reason */
int spool_writer_status(const struct spool_writer *w, int *err)
{
    *err = w->committed ? 0 : w->failed ? w->failed : EINVAL;
    return w->committed ? 0 : -1;
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
    free(w);
    errno = saved;
}

/* ---- loader ---- */

/* read_header - read queue file octets until the empty line; *hlen counts through
 * it, *have is how much was read (the whole file when it is small) */
static int read_header(int fd, off_t size, char **out, size_t *hlen, size_t *have_out)
{
    size_t cap = 65536, have = 0;
    char *buf = NULL, *end;

    for (;;) {
        char *nb = realloc(buf, cap + 1);
        size_t want = (uint64_t)size < cap ? (size_t)size : cap;
        ssize_t n;

        if (!nb)
            return free(buf), -1;
        buf = nb;
        n = pread_full(fd, buf + have, want - have, (off_t)have);
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
            return free(buf), bad_msg();
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

/* dup_into - strdup value into *dst; ENOMEM is an error of its own, not EBADMSG */
static int dup_into(char **dst, const char *value)
{
    *dst = strdup(value);
    return *dst ? 0 : -1;
}

/* parse_flag - "0" or "1" */
static int parse_flag(const char *v, int *out)
{
    if ((v[0] != '0' && v[0] != '1') || v[1] != '\0')
        return bad_msg();
    *out = v[0] == '1';
    return 0;
}

/* add_rcpt - append a recipient to env */
static int add_rcpt(struct spool_envelope *env, const char *addr)
{
    struct spool_rcpt *r;

    if (!*addr)
        return bad_msg();
    r = realloc(env->rcpt, (env->nrcpt + 1) * sizeof *r);
    if (!r)
        return -1;
    env->rcpt = r;
    memset(&r[env->nrcpt], 0, sizeof *r);
    if (dup_into(&r[env->nrcpt].addr, addr) < 0)
        return -1;
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
            return bad_msg();
        memcpy(env->id, id, SPOOL_ID_LEN + 1);
        return 0;
    case K_ARRIVAL:
        if (parse_u64(v, strlen(v), INT64_MAX, &t) < 0)
            return bad_msg();
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
            return bad_msg();
        env->body_8bit = v[0] == '8';
        return 0;
    case K_SMTPUTF8:
        return parse_flag(v, &env->smtputf8);
    case K_IS_BOUNCE:
        return parse_flag(v, &env->is_bounce);
    case K_DSN_RET:
        if (strcmp(v, "FULL") != 0 && strcmp(v, "HDRS") != 0)
            return bad_msg();
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
        return bad_msg();
    *sp = '\0';
    for (k = 0; k < K_COUNT; k++)
        if (strcmp(line, spool_keyname[k]) == 0)
            break;
    if (k == K_COUNT || (k != K_RCPT && (*seen & (1u << k))))
        return bad_msg();
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

/* parse_first_line - "MXQ2 <length> <crc>\n" or the older "MXQ1 <length>\n";
 * returns the line's length, *has_crc says which */
static size_t parse_first_line(const char *buf, size_t hlen, uint64_t *body_len, int *has_crc,
                               uint32_t *crc)
{
    size_t first = SPOOL_FIRST_LINE;

    *has_crc = memcmp(buf, SPOOL_MAGIC, SPOOL_MAGIC_LEN) == 0;
    if (!*has_crc) {
        if (memcmp(buf, SPOOL_MAGIC_V1, SPOOL_MAGIC_LEN) != 0)
            return 0;
        first = SPOOL_FIRST_LINE_V1;
    }
    if (hlen <= first || buf[first - 1] != '\n' ||
        parse_u64(buf + SPOOL_MAGIC_LEN, SPOOL_LEN_DIGITS, SPOOL_BODY_MAX, body_len) < 0)
        return 0;
    if (*has_crc && (buf[SPOOL_MAGIC_LEN + SPOOL_LEN_DIGITS] != ' ' ||
                     parse_hex8(buf + SPOOL_MAGIC_LEN + SPOOL_LEN_DIGITS + 1, crc) < 0))
        return 0;
    return first;
}

/* parse_header - parse every key of a header of hlen octets after its first line */
static int parse_header(char *buf, size_t hlen, size_t first, const char *id,
                        struct spool_envelope *env)
{
    char *p = buf + first, *end = buf + hlen - 1, *nl;
    unsigned seen = 0;

    /* Values never hold NUL or CR; finding one means the file is damaged. */
    if (memchr(buf, '\0', hlen) || memchr(buf, '\r', hlen))
        return bad_msg();
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        *nl = '\0';
        if (parse_line(p, env, id, &seen) < 0)
            return -1;
        p = nl + 1;
    }
    return (seen & SPOOL_REQUIRED_KEYS) == SPOOL_REQUIRED_KEYS ? 0 : bad_msg();
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
        ssize_t got = pread_full(fd, chunk, n, off);
        if (got < 0)
            return -1;
        if ((size_t)got != n)
            return bad_msg(); /* shrank while we read */
        crc = crc32_z(crc, (const unsigned char *)chunk, n);
        off += (off_t)n;
    }
    return (crc & 0xffffffffUL) == want ? 0 : bad_msg();
}

/* check_file - the first line against the file: its length, then (verify) its checksum */
static int check_file(int fd, const char *hdr, size_t hlen, size_t have, off_t size,
                      uint64_t *body_len, size_t *first, int verify)
{
    uint32_t crc = 0;
    int has_crc;

    if (hlen <= SPOOL_FIRST_LINE_V1 ||
        !(*first = parse_first_line(hdr, hlen, body_len, &has_crc, &crc)) ||
        (uint64_t)size - hlen != *body_len)
        return bad_msg();
    return has_crc && verify ? check_crc(fd, hdr, have, size, *first, crc) : 0;
}

/* load_queue_file - check queue/ID (length, checksum if verify), then parse its envelope */
static int load_queue_file(int fd, const char *id, struct spool_envelope *env, off_t *body_off,
                           uint64_t *body_len, int verify)
{
    struct stat st;
    char *hdr = NULL;
    size_t hlen = 0, have = 0, first = 0;
    int rc;

    if (fstat(fd, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode))
        return bad_msg();
    if (read_header(fd, st.st_size, &hdr, &hlen, &have) < 0)
        return -1;
    rc = check_file(fd, hdr, hlen, have, st.st_size, body_len, &first, verify);
    if (rc == 0)
        rc = parse_header(hdr, hlen, first, id, env);
    free(hdr);
    *body_off = (off_t)hlen;
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
            return bad_msg();
    if (take_number(&p, INT64_MAX, &t) < 0 || take_number(&p, UINT_MAX, &idx) < 0 ||
        idx >= env->nrcpt || !(sp = strchr(p, ' ')))
        return bad_msg();
    *sp = '\0';
    r = &env->rcpt[idx];
    if (strcmp(p, "delivered") == 0)
        r->state = SPOOL_RCPT_DELIVERED;
    else if (strcmp(p, "bounced") == 0)
        r->state = SPOOL_RCPT_BOUNCED;
    else if (strcmp(p, "deferred") == 0)
        r->attempts++;
    else
        return bad_msg();
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
            return bad_msg(); /* far longer than any record we write */
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

/* spool_quarantine - move queue/ID (and log/ID as ID.log) into corrupt/ for the operator */
static void spool_quarantine(struct spool *sp, const char *id)
{
    char logname[SPOOL_ID_LEN + 5];

    snprintf(logname, sizeof logname, "%s.log", id);
    /* Best effort: the caller reports EBADMSG whether or not the move works,
     * and a file left in place is simply found corrupt again next time. */
    if (renameat(sp->fds[SUB_QUEUE], id, sp->fds[SUB_CORRUPT], id) == 0)
        (void)fsync(sp->fds[SUB_QUEUE]);
    if (renameat(sp->fds[SUB_LOG], id, sp->fds[SUB_CORRUPT], logname) == 0)
        (void)fsync(sp->fds[SUB_LOG]);
    (void)fsync(sp->fds[SUB_CORRUPT]);
}

/* spool_load_open - spool_load that also hands over queue/ID's descriptor (for the body) */
int spool_load_open(struct spool *sp, const char *id, struct spool_envelope *env, off_t *body_off,
                    uint64_t *body_len, int *fd_out, int verify)
{
    int fd, rc, saved;

    memset(env, 0, sizeof *env);
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    fd = openat(sp->fds[SUB_QUEUE], id, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = load_queue_file(fd, id, env, body_off, body_len, verify);
    if (rc == 0)
        rc = load_log(sp, id, env);
    saved = errno;
    if (rc == 0 && fd_out)
        *fd_out = fd;
    else
        close(fd);
    if (rc < 0) {
        /* Only inconsistency quarantines: EIO or ENOMEM may pass. */
        spool_envelope_free(env);
        if (saved == EBADMSG)
            spool_quarantine(sp, id);
    }
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
    memset(env, 0, sizeof *env);
}

/* spool_open_body - open queue/ID read-only (for sending the body); fd or -1 */
int spool_open_body(struct spool *sp, const char *id)
{
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    return openat(sp->fds[SUB_QUEUE], id, O_RDONLY | O_CLOEXEC);
}

/* ---- delivery log ---- */

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
    len = snprintf(rec, reclen, "%lld %u %s %s\n", (long long)time(NULL), idx, status, clean);
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
    got = pread_full(fd, tail, n, off);
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
        return bad_msg(); /* a "record" longer than any we write: not a torn append */
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
        rc = write_all(fd, rec, len);
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
    if (recycle(sp, id) < 0 && unlinkat(sp->fds[SUB_QUEUE], id, 0) < 0) {
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

/* ---- listing ---- */

/* dir_walk - call cb for every queue-id-shaped name in subdirectory sub */
static int dir_walk(struct spool *sp, enum spool_sub sub, spool_entry_fn cb, void *ctx)
{
    int fd = openat(sp->fds[sub], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0, saved;
    struct dirent *de;
    DIR *d;

    if (fd < 0)
        return -1;
    d = fdopendir(fd);
    if (!d) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            rc = errno ? -1 : 0;
            break;
        }
        if (spool_valid_id(de->d_name) && cb(sp, de->d_name, ctx) < 0) {
            rc = -1;
            break;
        }
    }
    saved = errno;
    closedir(d);
    errno = saved;
    return rc;
}

/* sweep_tmp - remove tmp/NAME unless a live writer holds its lock */
static int sweep_tmp(struct spool *sp, const char *name, void *ctx)
{
    int fd = openat(sp->fds[SUB_TMP], name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT || errno == ELOOP ? 0 : -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(sp->fds[SUB_TMP], name, 0) < 0 &&
        errno != ENOENT) {
        int saved = errno;
        close(fd);
        return errno = saved, -1;
    }
    close(fd);
    return 0;
}

/* sweep_log - remove log/NAME when queue/NAME does not exist */
static int sweep_log(struct spool *sp, const char *name, void *ctx)
{
    struct stat st;

    if (fstatat(sp->fds[SUB_QUEUE], name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    return unlinkat(sp->fds[SUB_LOG], name, 0) < 0 && errno != ENOENT ? -1 : 0;
}

struct list_ctx {
    void (*fn)(const char *id, void *arg);
    void *arg;
    int count;
};

/* list_one - report one queued id */
static int list_one(struct spool *sp, const char *name, void *ctx)
{
    struct list_ctx *lc = ctx;

    if (lc->count == INT_MAX)
        return errno = EOVERFLOW, -1;
    lc->fn(name, lc->arg);
    lc->count++;
    return 0;
}

/* spool_list - call fn for every id in queue/; removes stale tmp/ and orphaned log/ files */
int spool_list(struct spool *sp, void (*fn)(const char *id, void *arg), void *arg)
{
    struct list_ctx lc = {fn, arg, 0};

    if (dir_walk(sp, SUB_TMP, sweep_tmp, NULL) < 0 || dir_walk(sp, SUB_QUEUE, list_one, &lc) < 0 ||
        dir_walk(sp, SUB_LOG, sweep_log, NULL) < 0)
        return -1;
    return lc.count;
}
