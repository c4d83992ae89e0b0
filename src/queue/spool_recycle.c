/* spool_recycle.c - the free list: files of delivered messages kept in free/ and
 * written over by new ones, sparing the file system an inode freed and another allocated */
#include "queue/spool_internal.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* spool_free_push - remember free/NAME of size; 0, or -1 when the list is full */
int spool_free_push(struct spool *sp, const char *name, off_t size)
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

/* spool_free_pop - take a free/ file's name and size; 0, or -1 when there is none */
int spool_free_pop(struct spool *sp, char name[SPOOL_ID_LEN + 1], off_t *size)
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
        a->cap = a->cap ? a->cap * 2 : 256;
        a->ino = xrealloc(a->ino, a->cap * sizeof *a->ino);
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
    if (st.st_size <= SPOOL_RECYCLE_SIZE_MAX && spool_free_push(sp, name, st.st_size) == 0)
        return 0;
    return unlinkat(sp->fds[SUB_FREE], name, 0) < 0 && errno != ENOENT ? -1 : 0;
}

/* any_free - stop the walk at free/'s first file */
static int any_free(struct spool *sp, const char *name, void *arg)
{
    *(int *)arg = 1;
    return -1;
}

/* spool_set_recycle - keep up to max delivered files for reuse (0: off); adopts free/. 0 or -1 */
int spool_set_recycle(struct spool *sp, size_t max)
{
    struct spool_free *fr = &sp->fr;
    char(*name)[SPOOL_ID_LEN + 1] = NULL;
    struct adopt_ctx a = {0};
    off_t *size = NULL;
    int rc, found = 0;

    if (max) {
        name = xcalloc(max, sizeof *name);
        size = xcalloc(max, sizeof *size);
    }
    pthread_mutex_lock(&fr->mu);
    free(fr->name);
    free(fr->size);
    fr->name = name;
    fr->size = size;
    fr->n = 0;
    fr->max = max;
    pthread_mutex_unlock(&fr->mu);
    /* An empty free/ (a queue that grew while its next hop was down took its
     * files) needs no look at the queue's files: a stat each, a million of them. */
    if (spool_dir_walk(sp, SUB_FREE, any_free, &found) < 0 && !found)
        return -1;
    if (!found)
        return 0;
    /* With max 0 this empties free/ (recycling was turned off). */
    if (spool_dir_walk(sp, SUB_QUEUE, note_queued, &a) < 0) {
        free(a.ino);
        return -1;
    }
    if (a.n)
        qsort(a.ino, a.n, sizeof *a.ino, cmp_ino);
    rc = spool_dir_walk(sp, SUB_FREE, adopt_free, &a);
    free(a.ino);
    return rc;
}

/* spool_recycle - dequeue queue/ID by moving it to free/ for a later message; 0 or -1 */
int spool_recycle(struct spool *sp, const char *id)
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
    if (spool_free_push(sp, id, st.st_size) < 0)
        unlinkat(sp->fds[SUB_FREE], id, 0);
    return 0;
}
