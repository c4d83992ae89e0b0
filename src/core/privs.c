/* privs.c - privilege drop, and the little that root does in the daemon's directories */
#include "core/privs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Why this is race-free.
 *
 * The daemon user owns the spool and the state directory, so a compromised
 * daemon account controls every name inside them, at any time, including
 * while root is starting the next instance. Root therefore never resolves a
 * path inside those trees and never walks them: it touches only the
 * configured top directories and their fixed subdirectories, and only
 * through descriptors.
 *
 * - A path is opened one component at a time with openat(O_NOFOLLOW |
 *   O_DIRECTORY) relative to the descriptor of the previous component, so
 *   every descriptor held is a directory that was not reached through a
 *   symbolic link the daemon could have planted; renaming or replacing a
 *   name afterwards does not change what the descriptor refers to.
 * - A symbolic link in the middle of a path is followed only when it sits
 *   in a directory that only root can write (owned by root, no group or
 *   other write bit): then only root can have made it or can change it
 *   (/var/run -> /run; with POSIX ACLs a write grant to anyone shows in
 *   the group bits as the mask). Anywhere else start-up stops, and so does
 *   ".." after a directory others can write (they could have moved it).
 *   The top directory itself and its subdirectories must be real
 *   directories, and "/" is never handed over.
 * - A missing directory is made with mkdirat() on the held descriptor and
 *   then opened like an existing one: if the daemon raced us to the name,
 *   what it put there goes through the same checks.
 * - The ownership change is fchown() on that descriptor: it changes the
 *   inode we checked, never whatever a name points to a moment later.
 * - Only directories are handed over. A directory cannot be hard-linked,
 *   and moving one into the tree needs write permission on it (its ".."
 *   changes), so the daemon can only have put there directories it could
 *   already write. The owner check (root or the daemon user, nothing
 *   else) refuses any other.
 * - Nothing deeper is opened, read, unlinked or chowned as root: the spool
 *   and the store are opened after setuid(), as the daemon user, with its
 *   rights only. Planted symlinks and hard links deeper in the trees are
 *   then the daemon's own business, never root's.
 */

#define PRIVS_MAXLINKS 40

struct privs_ctx {
    uid_t uid;
    gid_t gid;
    const char *user;
    char *err;
    size_t errlen;
};

/* privs_root_only - only root can add, remove or replace names in this directory */
static int privs_root_only(int dfd)
{
    struct stat st;

    return fstat(dfd, &st) == 0 && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* privs_is_symlink - name in dfd is a symbolic link */
static int privs_is_symlink(int dfd, const char *name)
{
    struct stat st;

    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* privs_open_sub - open (creating with mode if asked) directory name in dfd, never
 * following a symbolic link; fd, or -1 with errno (ELOOP: a symlink) */
static int privs_open_sub(int dfd, const char *name, mode_t mode, int create)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST)
            return -1;
        if (fsync(dfd) < 0)
            return -1;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0 && errno == ENOTDIR && privs_is_symlink(dfd, name))
        errno = ELOOP;
    return fd;
}

/* privs_splice - the walk's remaining path becomes link target + "/" + what followed the
 * link (after may point into rest); 0, or -1 with errno */
static int privs_splice(char rest[PATH_MAX], const char *target, const char *after)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s/%s", target, after);

    if (n < 0 || n >= (int)sizeof tmp)
        return errno = ENAMETOOLONG, -1;
    memcpy(rest, tmp, (size_t)n + 1);
    return 0;
}

/* privs_follow - name in *dfd is a symlink: follow it only where only root could have
 * made it; on success the walk goes on in rest (from "/" for an absolute target) */
static int privs_follow(int *dfd, const char *name, char rest[PATH_MAX], const char *after,
                        const char *path, struct privs_ctx *c)
{
    char target[PATH_MAX];
    ssize_t n;
    int root = -1;

    if (!privs_root_only(*dfd)) {
        snprintf(c->err, c->errlen,
                 "%s: %s is a symbolic link in a directory that others than root can write; "
                 "give the real path",
                 path, name);
        return -1;
    }
    n = readlinkat(*dfd, name, target, sizeof target - 1);
    if (n >= 0 && n < (ssize_t)sizeof target - 1) {
        target[n] = '\0';
        if (target[0] != '/' || (root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
            if (privs_splice(rest, target, after) == 0) { /* name and after are gone now */
                if (root >= 0) {
                    close(*dfd);
                    *dfd = root;
                }
                return 0;
            }
            if (root >= 0)
                close(root);
        }
    } else if (n >= 0) {
        errno = ENAMETOOLONG;
    }
    snprintf(c->err, c->errlen, "%s: cannot follow %s: %s", path, name, strerror(errno));
    return -1;
}

/* privs_not_root_dir - dfd itself, unless it is "/", which is never handed over; fd or -1 */
static int privs_not_root_dir(int dfd, const char *path, struct privs_ctx *c)
{
    struct stat st, root;

    if (fstat(dfd, &st) == 0 && stat("/", &root) == 0 &&
        (st.st_dev != root.st_dev || st.st_ino != root.st_ino))
        return dfd;
    snprintf(c->err, c->errlen, "%s: is the root directory", path);
    close(dfd);
    return -1;
}

/* privs_open_path - open the directory path one component at a time (see the top of
 * this file), creating missing ones (parents 0755, the last one 0700); fd or -1 */
static int privs_open_path(const char *path, struct privs_ctx *c)
{
    char rest[PATH_MAX], *p = rest, *name, *end;
    int dfd, fd, links = 0, last;

    if (path[0] != '/' || snprintf(rest, sizeof rest, "%s", path) >= (int)sizeof rest) {
        snprintf(c->err, c->errlen, "%s: not an absolute path of a sane length", path);
        return -1;
    }
    if ((dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return snprintf(c->err, c->errlen, "open /: %s", strerror(errno)), -1;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            return privs_not_root_dir(dfd, path, c);
        name = p;
        end = name + strcspn(name, "/");
        p = *end ? end + 1 : end;
        *end = '\0';
        last = p[strspn(p, "/")] == '\0';
        /* The daemon can move a directory it can write: its ".." is then elsewhere. */
        if (strcmp(name, "..") == 0 && !privs_root_only(dfd)) {
            snprintf(c->err, c->errlen, "%s: .. after a directory that others than root can write",
                     path);
            break;
        }
        fd = privs_open_sub(dfd, name, last ? 0700 : 0755, 1);
        if (fd < 0 && errno == ELOOP && !last && ++links <= PRIVS_MAXLINKS) {
            if (privs_follow(&dfd, name, rest, p, path, c) < 0)
                break;
            p = rest;
            continue;
        }
        if (fd < 0) {
            snprintf(c->err, c->errlen, "%s: %s %s", path, name,
                     errno == ELOOP ? "is a symbolic link; give the real path" : strerror(errno));
            break;
        }
        close(dfd);
        dfd = fd;
    }
    close(dfd);
    return -1;
}

/* privs_own - hand the directory fd (shown as path) to the daemon user: it must be
 * root's (new, or made at install) or already the user's */
static int privs_own(int fd, const char *path, struct privs_ctx *c)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return snprintf(c->err, c->errlen, "%s: %s", path, strerror(errno)), -1;
    if (st.st_uid != 0 && st.st_uid != c->uid) {
        snprintf(c->err, c->errlen, "%s is owned by uid %lu, neither root nor %s; refusing", path,
                 (unsigned long)st.st_uid, c->user);
        return -1;
    }
    if ((st.st_uid != c->uid || st.st_gid != c->gid) && fchown(fd, c->uid, c->gid) < 0)
        return snprintf(c->err, c->errlen, "chown %s: %s", path, strerror(errno)), -1;
    return 0;
}

/* privs_prepare_dir - create (if needed) and hand over one top directory and its
 * fixed subdirectories */
static int privs_prepare_dir(const struct privs_dir *d, struct privs_ctx *c)
{
    char sub[PATH_MAX];
    int top = privs_open_path(d->path, c), fd, rc = 0;

    if (top < 0)
        return -1;
    if (privs_own(top, d->path, c) < 0) {
        close(top);
        return -1;
    }
    for (const char *const *s = d->subdirs; s && *s && rc == 0; s++) {
        snprintf(sub, sizeof sub, "%s/%s", d->path, *s);
        if ((fd = privs_open_sub(top, *s, 0700, 1)) < 0) {
            snprintf(c->err, c->errlen, "%s %s", sub,
                     errno == ELOOP ? "is a symbolic link; refusing" : strerror(errno));
            rc = -1;
        } else {
            rc = privs_own(fd, sub, c);
            close(fd);
        }
    }
    close(top);
    return rc;
}

/* privs_drop - prepare the directories, then setgroups/setgid/setuid */
int privs_drop(const char *user, const struct privs_dir *dirs, char *err, size_t errlen)
{
    struct privs_ctx c = {.user = user, .err = err, .errlen = errlen};
    struct passwd *pw;

    if (!user)
        return 0;
    pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "user \"%s\" does not exist", user);
        return -1;
    }
    if (geteuid() != 0) {
        if (pw->pw_uid == geteuid())
            return 0;
        snprintf(err, errlen, "must be started as root to run as user \"%s\"", user);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "user %s is root: nothing to drop to", user);
        return -1;
    }
    c.uid = pw->pw_uid;
    c.gid = pw->pw_gid;
    for (; dirs->path; dirs++)
        if (privs_prepare_dir(dirs, &c) < 0)
            return -1;
    if (initgroups(user, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        snprintf(err, errlen, "cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) { /* must be impossible now */
        snprintf(err, errlen, "privileges could be regained");
        return -1;
    }
    return 0;
}

/* privs_user_check - what privs_drop needs first: the user exists */
int privs_user_check(const char *user, char *err, size_t errlen)
{
    if (user && !getpwnam(user)) {
        snprintf(err, errlen, "user \"%s\" does not exist", user);
        return -1;
    }
    return 0;
}
