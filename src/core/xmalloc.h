/*
 * xmalloc.h - the one allocator: allocation never fails to the caller.
 *
 * A daemon that half-handles out-of-memory is worse than one that stops:
 * an unchecked NULL is a crash at a random place later, a checked one is an
 * error path that no test ever runs, and a lost job leaves a client waiting
 * forever. So every allocation in mxgate goes through these, which write one
 * line to stderr and abort() when the system has no memory left; the service
 * manager restarts the daemon and the durable queue loses nothing acknowledged.
 * Sizes that come from outside are bounded before they get here.
 */
#ifndef MX_CORE_XMALLOC_H
#define MX_CORE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
/* xcalloc - zeroed; n * size overflow is refused like a failed allocation */
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* xreallocarray - realloc(p, n * size) with the multiplication checked */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
