/*
 * idset.h - a set of queue ids, for the start's listing of the spool: while it
 * runs in slices, mail accepted meanwhile is scheduled by the session, and the
 * listing may still meet its file; the set says "already scheduled" so that no
 * message gets two scheduler entries (and two deliveries).
 */
#ifndef MX_QUEUE_IDSET_H
#define MX_QUEUE_IDSET_H

#include <stddef.h>

struct idset;

struct idset *idset_new(void);
void idset_free(struct idset *s);
/* idset_add - remember id (a valid queue id); adding it twice is harmless */
void idset_add(struct idset *s, const char *id);
/* idset_has - was id added */
int idset_has(const struct idset *s, const char *id);
size_t idset_count(const struct idset *s);

#endif
