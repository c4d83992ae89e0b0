/* fsutil.c - durable directory creation */
#include "core/fsutil.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fs_fsync_parent - make the creation of path's last component durable */
int fs_fsync_parent(const char *path)
{
    char parent[PATH_MAX];
    char *slash;
    int fd, rc;

    if (snprintf(parent, sizeof parent, "%s", path) >= (int)sizeof parent)
        return errno = ENAMETOOLONG, -1;
    slash = strrchr(parent, '/');
    if (!slash)
        strcpy(parent, ".");
    else if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* fs_mkdir_one - mkdir path (EEXIST is fine), fsyncing the parent when it was created */
static int fs_mkdir_one(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0)
        return fs_fsync_parent(path);
    return errno == EEXIST ? 0 : -1;
}

/* fs_mkdir_p - create path and its missing parents */
int fs_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];

    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return errno = ENAMETOOLONG, -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (fs_mkdir_one(buf, mode) < 0)
            return -1;
        *p = '/';
    }
    return fs_mkdir_one(buf, mode);
}

/* fs_abspath - relative paths are taken from the directory we were started in */
char *fs_abspath(const char *p)
{
    char cwd[PATH_MAX], *out;

    if (*p == '/')
        return xstrdup(p);
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    if (asprintf(&out, "%s/%s", cwd, p) < 0)
        return NULL;
    return out;
}
