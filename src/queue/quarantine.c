/* quarantine.c - quarantine/: kept messages, their reasons, release and delete */
#include "queue/quarantine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/xmalloc.h"
#include "queue/spool_internal.h"

int spool_writer_quarantine(struct spool_writer *w, const char *why)
{
    free(w->quarantine);
    w->quarantine = xstrdup(why && *why ? why : "unknown");
    return 0;
}

int spool_writer_dest(const struct spool_writer *w)
{
    return w->sp->fds[w->quarantine ? SUB_QUARANTINE : SUB_QUEUE];
}

/* why_name - "ID.why" */
static void why_name(const char *id, char *dst, size_t len)
{
    snprintf(dst, len, "%s.why", id);
}

int quarantine_note(struct spool_writer *w)
{
    char name[SPOOL_ID_LEN + 5], line[QUARANTINE_WHY_MAX + 32];
    int fd, len, rc;

    why_name(w->id, name, sizeof(name));
    len = snprintf(line, sizeof(line), "%lld %.*s\n", (long long)clock_now(),
                   QUARANTINE_WHY_MAX - 1, w->quarantine);
    for (int i = 0; i < len - 1; i++) /* one line, whatever the check wrote */
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = ' ';
    fd = openat(w->sp->fds[SUB_QUARANTINE], name,
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    rc = spool_write_all(fd, line, (size_t)len);
    if (rc == 0)
        rc = fsync(fd);
    close(fd);
    return rc;
}

/* read_why - ID.why into m (when and why), or "unknown" */
static void read_why(struct spool *sp, const char *id, struct quarantine_msg *m)
{
    char name[SPOOL_ID_LEN + 5], buf[QUARANTINE_WHY_MAX + 32], *sp_, *end;
    ssize_t n;
    int fd;

    snprintf(m->why, sizeof(m->why), "unknown");
    m->when = 0;
    why_name(id, name, sizeof(name));
    fd = openat(sp->fds[SUB_QUARANTINE], name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    n = spool_pread_full(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    m->when = (time_t)strtoll(buf, &end, 10);
    sp_ = strchr(buf, ' ');
    if (sp_ && sp_[1])
        snprintf(m->why, sizeof(m->why), "%s", sp_ + 1);
}

/* load - open quarantine/ID and parse its envelope */
static int load(struct spool *sp, const char *id, struct quarantine_msg *m, off_t *off, int *fd_out)
{
    const char *why = "";
    off_t body_off;
    int fd, rc, saved;

    memset(m, 0, sizeof(*m));
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    fd = openat(sp->fds[SUB_QUARANTINE], id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = spool_load_fd(fd, id, &m->env, &body_off, &m->size, 1, &why);
    saved = errno;
    if (rc == 0 && fd_out) {
        *fd_out = fd;
        *off = body_off;
    } else {
        close(fd);
    }
    if (rc < 0) {
        spool_envelope_free(&m->env);
        return errno = saved, -1;
    }
    read_why(sp, id, m);
    return 0;
}

int quarantine_get(struct spool *sp, const char *id, struct quarantine_msg *m)
{
    return load(sp, id, m, NULL, NULL);
}

void quarantine_msg_free(struct quarantine_msg *m)
{
    spool_envelope_free(&m->env);
}

int quarantine_open(struct spool *sp, const char *id, off_t *body_off, uint64_t *body_len)
{
    struct quarantine_msg m;
    int fd = -1;

    if (load(sp, id, &m, body_off, &fd) < 0)
        return -1;
    *body_len = m.size;
    quarantine_msg_free(&m);
    return fd;
}

struct list_ctx {
    void (*fn)(const struct quarantine_msg *m, void *arg);
    void *arg;
    int n;
};

static int list_one(struct spool *sp, const char *id, void *ctx)
{
    struct list_ctx *lc = ctx;
    struct quarantine_msg m;

    if (load(sp, id, &m, NULL, NULL) < 0)
        return 0; /* released or deleted meanwhile, or unreadable: not listed */
    lc->fn(&m, lc->arg);
    quarantine_msg_free(&m);
    lc->n++;
    return 0;
}

int quarantine_list(struct spool *sp, void (*fn)(const struct quarantine_msg *m, void *arg),
                    void *arg)
{
    struct list_ctx lc = {fn, arg, 0};

    return spool_dir_walk(sp, SUB_QUARANTINE, list_one, &lc) < 0 ? -1 : lc.n;
}

/* drop_why - ID.why goes with its message (best effort: an orphan means nothing) */
static void drop_why(struct spool *sp, const char *id)
{
    char name[SPOOL_ID_LEN + 5];

    why_name(id, name, sizeof(name));
    unlinkat(sp->fds[SUB_QUARANTINE], name, 0);
}

int quarantine_release(struct spool *sp, const char *id)
{
    int qfd = sp->fds[SUB_QUARANTINE], dfd = sp->fds[SUB_QUEUE];

    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    if (renameat2(qfd, id, dfd, id, RENAME_NOREPLACE) < 0) {
        if (errno != EINVAL && errno != ENOSYS)
            return -1;
        if (linkat(qfd, id, dfd, id, 0) < 0) /* refuses to replace, as NOREPLACE */
            return -1;
        unlinkat(qfd, id, 0);
    }
    if (fsync(dfd) < 0 || fsync(qfd) < 0)
        return -1; /* in queue/ anyway: the next start delivers it */
    drop_why(sp, id);
    return 0;
}

int quarantine_delete(struct spool *sp, const char *id)
{
    if (!spool_valid_id(id))
        return errno = EINVAL, -1;
    if (unlinkat(sp->fds[SUB_QUARANTINE], id, 0) < 0)
        return -1;
    drop_why(sp, id);
    (void)fsync(sp->fds[SUB_QUARANTINE]);
    return 0;
}

struct expire_ctx {
    time_t before;
    int n;
};

static int expire_one(struct spool *sp, const char *id, void *ctx)
{
    struct expire_ctx *ec = ctx;
    struct stat st;

    if (fstatat(sp->fds[SUB_QUARANTINE], id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_mtime < ec->before && quarantine_delete(sp, id) == 0)
        ec->n++;
    return 0;
}

int quarantine_expire(struct spool *sp, time_t max_age, time_t now)
{
    struct expire_ctx ec = {now - max_age, 0};

    return spool_dir_walk(sp, SUB_QUARANTINE, expire_one, &ec) < 0 ? -1 : ec.n;
}
