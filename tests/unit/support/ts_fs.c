/* ts_fs.c - scratch directories and whole files, for the unit tests */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_fs.h"

int ts_tmpdir_make(char *dir, size_t len, const char *name)
{
    if ((size_t)snprintf(dir, len, "/tmp/%s.XXXXXX", name) >= len)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

/* rm_entry - nftw callback: with FTW_DEPTH a directory comes after its entries */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int ts_tmpdir_remove(const char *dir)
{
    /* FTW_PHYS: a test may leave a symlink behind; remove it, never follow it */
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ts_write_file(const char *dir, const char *name, const char *text, char *path, size_t pathlen)
{
    char buf[256];
    FILE *fp;

    if (!path) {
        path = buf;
        pathlen = sizeof(buf);
    }
    assert_true((size_t)snprintf(path, pathlen, "%s/%s", dir, name) < pathlen);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

char *ts_read_file(const char *path, size_t *len)
{
    struct stat st;
    char *buf;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    buf[st.st_size] = '\0';
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}
