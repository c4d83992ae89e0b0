/* ts_fs.h - scratch directories and whole files, for the unit tests */
#ifndef TS_FS_H
#define TS_FS_H

#include <stddef.h>

/* ts_tmpdir_make - a private directory "/tmp/<name>.XXXXXX" into dir; 0, or -1 */
int ts_tmpdir_make(char *dir, size_t len, const char *name);
/* ts_tmpdir_remove - the whole tree below dir, dir included; 0, or -1 */
int ts_tmpdir_remove(const char *dir);
/* ts_write_file - dir/name holds exactly text (asserted); its path into path unless NULL */
void ts_write_file(const char *dir, const char *name, const char *text, char *path, size_t pathlen);
/* ts_read_file - the whole of path, NUL-terminated, malloc'd; its length into *len */
char *ts_read_file(const char *path, size_t *len);

#endif
