/* spool_commit.c - group commit: concurrent writers share one directory sync */
#include "queue/spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

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

/* spool_commit_batch - BLOCKING: make every writer durable with one sync; the count that are */
size_t spool_commit_batch(struct spool_writer *const *ws, size_t n)
{
    size_t ok = 0;
    int rc = 0, saved = 0;

    for (size_t i = 0; i < n; i++)
        if (spool_writer_prepare(ws[i]) == 0)
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
            unlinkat(spool_writer_dest(w), w->id, 0);
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
