/* fsutil.h - durable directory creation, shared by the spool, Maildir delivery and start-up */
#ifndef MX_CORE_FSUTIL_H
#define MX_CORE_FSUTIL_H

#include <sys/types.h>

/* fs_fsync_parent - fsync the directory holding path, so that path's creation is durable */
int fs_fsync_parent(const char *path);

/* fs_mkdir_p - create path and its missing parents with mode, each creation made durable.
 * 0, or -1 with errno */
int fs_mkdir_p(const char *path, mode_t mode);

/* fs_abspath - p made absolute against the current directory (the daemon may chdir
 * later); malloc'd, NULL on error */
char *fs_abspath(const char *p);

#endif
