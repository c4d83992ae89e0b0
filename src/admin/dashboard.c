/* dashboard.c - the dashboard's fixed files: "/" is index.html, nothing else is looked up */
#include <string.h>

#include "admin/http_internal.h"
#include "admin/www.h"

int http_dashboard(struct http_req *r, const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const struct www_file *f = www_files; f->path; f++)
        if (strcmp(f->path, path) == 0) {
            http_reply(r, 200, f->type, (const char *)f->data, f->len);
            return 0;
        }
    return -1;
}
