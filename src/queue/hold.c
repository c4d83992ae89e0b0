/* hold.c - hold markers: spool/hold/ID */
#include "queue/hold.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/spool.h"

/* hold_path - "<spool>/hold[/ID]" into dst; -1 for a bad id */
static int hold_path(struct spool *sp, const char *id, char *dst, size_t len)
{
    int n;

    if (id && !spool_valid_id(id))
        return errno = EINVAL, -1;
    n = id ? snprintf(dst, len, "%s/hold/%s", spool_dir(sp), id)
           : snprintf(dst, len, "%s/hold", spool_dir(sp));
    return n > 0 && (size_t)n < len ? 0 : (errno = ENAMETOOLONG, -1);
}

/* hold_sync_dir - the marker's name is durable once its directory is synced */
static int hold_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int hold_set(struct spool *sp, const char *id)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int fd;

    if (hold_path(sp, NULL, dir, sizeof(dir)) < 0 || hold_path(sp, id, path, sizeof(path)) < 0)
        return -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return hold_sync_dir(dir);
}

int hold_clear(struct spool *sp, const char *id)
{
    char path[PATH_MAX];

    if (hold_path(sp, id, path, sizeof(path)) < 0)
        return -1;
    if (unlink(path) < 0)
        return errno == ENOENT ? 0 : -1;
    return 0;
}

int hold_is(struct spool *sp, const char *id)
{
    char path[PATH_MAX];
    struct stat st;

    return hold_path(sp, id, path, sizeof(path)) == 0 && lstat(path, &st) == 0 &&
           S_ISREG(st.st_mode);
}
