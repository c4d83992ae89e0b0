/* privs.c - privilege drop and directory creation */
#include "core/privs.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uid_t privs_uid;
static gid_t privs_gid;

/* privs_chown_one - nftw callback: give one file to the target user */
static int privs_chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (lchown(path, privs_uid, privs_gid) < 0)
        return -1;
    return 0;
}

/* privs_drop - chown the trees, then setgroups/setgid/setuid */
int privs_drop(const char *user, const char *const *dirs, char *err, size_t errlen)
{
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
    privs_uid = pw->pw_uid;
    privs_gid = pw->pw_gid;
    for (; *dirs; dirs++) {
        if (nftw(*dirs, privs_chown_one, 16, FTW_PHYS) < 0) {
            snprintf(err, errlen, "chown %s: %s", *dirs, strerror(errno));
            return -1;
        }
    }
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
