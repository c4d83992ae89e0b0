/* idset.c - an open-addressing hash set of queue ids (see idset.h) */
#include "queue/idset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "queue/spool.h"

struct idset {
    char (*slot)[SPOOL_ID_LEN + 1]; /* "" = free */
    size_t cap;                     /* a power of two */
    size_t count;
};

/* idset_hash - FNV-1a: ids are random already, any spread will do */
static size_t idset_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)h;
}

/* idset_slot - where id is, or the free slot where it would go */
static size_t idset_slot(const struct idset *s, const char *id)
{
    size_t i = idset_hash(id) & (s->cap - 1);

    while (s->slot[i][0] && strcmp(s->slot[i], id) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

struct idset *idset_new(void)
{
    struct idset *s = xcalloc(1, sizeof(*s));

    s->cap = 64;
    s->slot = xcalloc(s->cap, sizeof(*s->slot));
    return s;
}

void idset_free(struct idset *s)
{
    if (s) {
        free(s->slot);
        free(s);
    }
}

/* idset_grow - twice the slots, every id placed again (kept at most half full) */
static void idset_grow(struct idset *s)
{
    struct idset old = *s;

    s->cap *= 2;
    s->slot = xcalloc(s->cap, sizeof(*s->slot));
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i][0])
            memcpy(s->slot[idset_slot(s, old.slot[i])], old.slot[i], sizeof(old.slot[i]));
    free(old.slot);
}

void idset_add(struct idset *s, const char *id)
{
    size_t i;

    if (strlen(id) > SPOOL_ID_LEN || !id[0])
        return; /* not a queue id: the listing cannot meet it */
    if ((s->count + 1) * 2 > s->cap)
        idset_grow(s);
    i = idset_slot(s, id);
    if (!s->slot[i][0]) {
        memcpy(s->slot[i], id, strlen(id) + 1);
        s->count++;
    }
}

int idset_has(const struct idset *s, const char *id)
{
    return s && strlen(id) <= SPOOL_ID_LEN && id[0] && s->slot[idset_slot(s, id)][0];
}

size_t idset_count(const struct idset *s)
{
    return s ? s->count : 0;
}
