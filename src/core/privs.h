/* privs.h - start as root to bind, then live as an unprivileged user */
#ifndef MX_CORE_PRIVS_H
#define MX_CORE_PRIVS_H

#include <stddef.h>

/*
 * privs_drop - when running as root: hand every file under each of dirs
 * (NULL-terminated) to user, then switch group list, gid and uid to that
 * user's, irrevocably. Not root and user NULL: nothing to do. Not root and
 * user set to someone else: an error. 0, or -1 with err filled.
 */
int privs_drop(const char *user, const char *const *dirs, char *err, size_t errlen);

/* privs_user_check - user (NULL: none) exists; 0, or -1 with err filled */
int privs_user_check(const char *user, char *err, size_t errlen);

#endif
