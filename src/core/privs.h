/* privs.h - start as root to bind, then live as an unprivileged user */
#ifndef MX_CORE_PRIVS_H
#define MX_CORE_PRIVS_H

#include <stddef.h>

/* One directory the daemon user must own: an absolute path, and the fixed
 * subdirectories under it (NULL-terminated, or NULL for none). */
struct privs_dir {
    const char *path;
    const char *const *subdirs;
};

/*
 * privs_drop - when running as root with user set: create each directory of
 * dirs (ended by one whose path is NULL) and its subdirectories if missing,
 * give exactly those directories to user -- never anything inside them, never
 * through a symbolic link, and only if they are root's or user's already (see
 * privs.c for why this cannot be turned against root) -- then switch group
 * list, gid and uid to that user's, irrevocably. User NULL: nothing to do.
 * Not root and user set to someone else: an error. 0, or -1 with err filled.
 */
int privs_drop(const char *user, const struct privs_dir *dirs, char *err, size_t errlen);

/* privs_user_check - user (NULL: none) exists; 0, or -1 with err filled */
int privs_user_check(const char *user, char *err, size_t errlen);

#endif
