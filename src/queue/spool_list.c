/* spool_list.c - walking the spool's directories: listing queue/, sweeping crash leftovers */
#include "queue/spool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/xmalloc.h"

/* spool_dir_walk - call cb for every queue-id-shaped name in subdirectory sub */
int spool_dir_walk(struct spool *sp, enum spool_sub sub, spool_entry_fn cb, void *ctx)
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

    if (spool_dir_walk(sp, SUB_TMP, sweep_tmp, NULL) < 0 ||
        spool_dir_walk(sp, SUB_QUEUE, list_one, &lc) < 0 ||
        spool_dir_walk(sp, SUB_LOG, sweep_log, NULL) < 0)
        return -1;
    return lc.count;
}

struct spool_scan {
    struct spool *sp;
    DIR *d;
};

/* spool_scan_open - see spool.h */
struct spool_scan *spool_scan_open(struct spool *sp)
{
    struct spool_scan *s;
    int fd, saved;

    if (spool_dir_walk(sp, SUB_TMP, sweep_tmp, NULL) < 0)
        return NULL;
    fd = openat(sp->fds[SUB_QUEUE], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->sp = sp;
    if (!(s->d = fdopendir(fd))) {
        saved = errno;
        close(fd);
        free(s);
        errno = saved;
        return NULL;
    }
    return s;
}

/* spool_scan_next - see spool.h */
int spool_scan_next(struct spool_scan *s, unsigned max, void (*fn)(const char *id, void *arg),
                    void *arg)
{
    struct dirent *de;
    int n = 0;

    while ((unsigned)n < max) {
        errno = 0;
        if (!(de = readdir(s->d)))
            return errno ? -1 : n;
        if (spool_valid_id(de->d_name)) {
            fn(de->d_name, arg);
            n++;
        }
    }
    return n;
}

/* spool_scan_close - see spool.h */
void spool_scan_close(struct spool_scan *s, int sweep)
{
    if (!s)
        return;
    closedir(s->d);
    if (sweep)
        spool_dir_walk(s->sp, SUB_LOG, sweep_log, NULL);
    free(s);
}
