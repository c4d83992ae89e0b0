/*
 * www.h - the dashboard's files (src/admin/www/), compiled into the binary by
 * scripts/embed.cmake: nothing is read from disk or fetched from elsewhere.
 */
#ifndef MX_ADMIN_WWW_H
#define MX_ADMIN_WWW_H

#include <stddef.h>

struct www_file {
    const char *path; /* "/index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* www_files - NULL-path-terminated */
extern const struct www_file www_files[];

#endif
