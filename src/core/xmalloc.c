/* xmalloc.c - allocation that aborts instead of returning NULL (see xmalloc.h) */
#include "core/xmalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* xmalloc_fail - no stdio, no allocation: the heap may be what is broken */
static void xmalloc_fail(const char *what)
{
    static const char prefix[] = "mxgate: out of memory in ";

    if (write(STDERR_FILENO, prefix, sizeof(prefix) - 1) > 0 &&
        write(STDERR_FILENO, what, strlen(what)) > 0)
        (void)!write(STDERR_FILENO, "\n", 1);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        xmalloc_fail("xmalloc");
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        xmalloc_fail("xcalloc");
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q)
        xmalloc_fail("xrealloc");
    return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        xmalloc_fail("xreallocarray (size overflow)");
    return xrealloc(p, n * size);
}

char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (!d)
        xmalloc_fail("xstrdup");
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);

    if (!d)
        xmalloc_fail("xstrndup");
    return d;
}
