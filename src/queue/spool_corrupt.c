/* spool_corrupt.c - files that fail to load: kept in corrupt/ with why, for the operator */
#include "queue/spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

#define SPOOL_WHY_MAX 64 /* "<unix-time> <reason>\n" */

/* spool_on_corrupt - fn is told of every file that fails to load */
void spool_on_corrupt(struct spool *sp, spool_corrupt_fn fn, void *arg)
{
    sp->corrupt_fn = fn;
    sp->corrupt_arg = arg;
}

/* spool_keep_corrupt - leave files that fail to load where they are */
void spool_keep_corrupt(struct spool *sp)
{
    sp->keep_corrupt = 1;
}

/* write_why - corrupt/ID.why: when and why, so that a listing can say it later */
static void write_why(struct spool *sp, const char *id, const char *why)
{
    char name[SPOOL_ID_LEN + 5], line[SPOOL_WHY_MAX];
    int fd, len;

    snprintf(name, sizeof name, "%s.why", id);
    len = snprintf(line, sizeof line, "%lld %s\n", (long long)clock_now(), why);
    if (len <= 0 || (size_t)len >= sizeof line)
        return;
    fd = openat(sp->fds[SUB_CORRUPT], name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0)
        return;
    if (spool_write_all(fd, line, (size_t)len) == 0)
        (void)fsync(fd);
    close(fd);
}

/* quarantine - move queue/ID (and log/ID as ID.log) into corrupt/; 1 if queue/ID moved */
static int quarantine(struct spool *sp, const char *id, const char *why)
{
    char logname[SPOOL_ID_LEN + 5];
    int moved, logmoved;

    snprintf(logname, sizeof logname, "%s.log", id);
    /* log/ID first: loads run in the pool while the start's sweep (on the
     * loop) unlinks a log/ID whose queue/ID is gone as an orphan. Best
     * effort: the caller reports EBADMSG whether or not the move works,
     * and a file left in place is simply found corrupt again next time. */
    logmoved = renameat(sp->fds[SUB_LOG], id, sp->fds[SUB_CORRUPT], logname) == 0;
    moved = renameat(sp->fds[SUB_QUEUE], id, sp->fds[SUB_CORRUPT], id) == 0;
    if (moved) {
        write_why(sp, id, why);
        (void)fsync(sp->fds[SUB_QUEUE]);
    }
    if (logmoved)
        (void)fsync(sp->fds[SUB_LOG]);
    (void)fsync(sp->fds[SUB_CORRUPT]);
    return moved;
}

/* spool_corrupt_move - quarantine queue/ID unless keep_corrupt; 1 if it moved */
int spool_corrupt_move(struct spool *sp, const char *id, const char *why)
{
    return !sp->keep_corrupt && quarantine(sp, id, why);
}

/* spool_corrupt_tell - tell the owner (spool_on_corrupt) */
void spool_corrupt_tell(struct spool *sp, const char *id, const char *why, int moved)
{
    if (sp->corrupt_fn)
        sp->corrupt_fn(id, why, moved, sp->corrupt_arg);
}

/* spool_corrupt_found - quarantine queue/ID (unless keep_corrupt) and tell the owner */
void spool_corrupt_found(struct spool *sp, const char *id, const char *why)
{
    spool_corrupt_tell(sp, id, why, spool_corrupt_move(sp, id, why));
}

/* read_why - corrupt/ID.why into c; what is not "<digits> <[a-z-]+>\n" reads as unknown */
static void read_why(struct spool *sp, struct spool_corrupt *c)
{
    char name[SPOOL_ID_LEN + 5], buf[SPOOL_WHY_MAX];
    long long when;
    int fd, end = 0;
    ssize_t n;

    snprintf(c->reason, sizeof c->reason, "unknown");
    c->when = 0;
    snprintf(name, sizeof name, "%s.why", c->id);
    fd = openat(sp->fds[SUB_CORRUPT], name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    n = spool_pread_full(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* The file is ours, but whatever it says goes to a terminal: only a token passes. */
    if (sscanf(buf, "%lld %23[a-z-]%n", &when, c->reason, &end) != 2 || buf[end] != '\n' ||
        when < 0) {
        snprintf(c->reason, sizeof c->reason, "unknown");
        return;
    }
    c->when = (time_t)when;
}

/* spool_corrupt_get - the entry of corrupt/ID; 0, or -1 (ENOENT, EINVAL) */
int spool_corrupt_get(struct spool *sp, const char *id, struct spool_corrupt *c)
{
    char logname[SPOOL_ID_LEN + 5];
    struct stat st;

    memset(c, 0, sizeof *c);
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    if (fstatat(sp->fds[SUB_CORRUPT], id, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -1;
    memcpy(c->id, id, SPOOL_ID_LEN + 1);
    c->size = st.st_size;
    snprintf(logname, sizeof logname, "%s.log", id);
    c->has_log = fstatat(sp->fds[SUB_CORRUPT], logname, &st, AT_SYMLINK_NOFOLLOW) == 0;
    read_why(sp, c);
    return 0;
}

struct corrupt_walk {
    void (*fn)(const struct spool_corrupt *c, void *arg);
    void *arg;
    int count;
};

/* corrupt_one - spool_dir_walk callback over corrupt/ */
static int corrupt_one(struct spool *sp, const char *name, void *ctx)
{
    struct corrupt_walk *cw = ctx;
    struct spool_corrupt c;

    if (spool_corrupt_get(sp, name, &c) < 0)
        return errno == ENOENT ? 0 : -1; /* removed meanwhile */
    cw->fn(&c, cw->arg);
    cw->count++;
    return 0;
}

/* spool_list_corrupt - call fn for every file in corrupt/; the count or -1 */
int spool_list_corrupt(struct spool *sp, void (*fn)(const struct spool_corrupt *c, void *arg),
                       void *arg)
{
    struct corrupt_walk cw = {fn, arg, 0};

    return spool_dir_walk(sp, SUB_CORRUPT, corrupt_one, &cw) < 0 ? -1 : cw.count;
}

/* spool_open_corrupt - open corrupt/ID read-only; fd or -1 */
int spool_open_corrupt(struct spool *sp, const char *id)
{
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    return openat(sp->fds[SUB_CORRUPT], id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

/* spool_remove_corrupt - unlink corrupt/ID and its .log and .why. 0, or -1 (ENOENT: none) */
int spool_remove_corrupt(struct spool *sp, const char *id)
{
    static const char *const ext[] = {"", ".log", ".why"};
    char name[SPOOL_ID_LEN + 5];
    int removed = 0;

    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        snprintf(name, sizeof name, "%s%s", id, ext[i]);
        if (unlinkat(sp->fds[SUB_CORRUPT], name, 0) == 0)
            removed++;
        else if (errno != ENOENT)
            return -1;
    }
    return removed ? 0 : (errno = ENOENT, -1);
}
