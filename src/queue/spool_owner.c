/* spool_owner.c - files in the spool that the daemon user does not own */
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* foreign_in - count entries of dirfd (shown as sub) not owned by uid; -1 with errno */
static int foreign_in(int dirfd, const char *sub, uid_t uid, char *first, size_t firstlen,
                      int *count)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *de;
    struct stat st;
    int rc = 0;

    if (!d) {
        close(dirfd);
        return -1;
    }
    while ((errno = 0, de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            rc = -1;
            break;
        }
        if (st.st_uid != uid && (*count)++ == 0)
            snprintf(first, firstlen, "%s/%s", sub, de->d_name);
    }
    if (!de && errno)
        rc = -1;
    closedir(d);
    return rc;
}

/* spool_foreign - a start-up check: the daemon user cannot take over such files */
int spool_foreign(const char *dir, uid_t uid, char *first, size_t firstlen)
{
    static const char *const subs[] = {"queue", "log"};
    int top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd, count = 0;

    if (top < 0)
        return -1;
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        fd = openat(top, subs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || foreign_in(fd, subs[i], uid, first, firstlen, &count) < 0) {
            count = -1;
            break;
        }
    }
    close(top);
    return count;
}
