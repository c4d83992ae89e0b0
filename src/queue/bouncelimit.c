/* bouncelimit.c - a bounded table of per-address DSN counters */
#include "queue/bouncelimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BOUNCELIMIT_BUCKETS 1024
#define BOUNCELIMIT_MAX_ENTRIES 65536

struct bl_entry {
    struct bl_entry *next;
    time_t start; /* start of this address's current window */
    unsigned count;
    char addr[];
};

struct bouncelimit {
    unsigned limit;
    unsigned window;
    unsigned nentries;
    struct bl_entry *bucket[BOUNCELIMIT_BUCKETS];
};

/* bouncelimit_new - empty table */
struct bouncelimit *bouncelimit_new(unsigned limit, unsigned window)
{
    struct bouncelimit *bl = calloc(1, sizeof(*bl));

    if (bl) {
        bl->limit = limit;
        bl->window = window;
    }
    return bl;
}

/* bouncelimit_free - release every entry */
void bouncelimit_free(struct bouncelimit *bl)
{
    if (!bl)
        return;
    for (unsigned b = 0; b < BOUNCELIMIT_BUCKETS; b++) {
        while (bl->bucket[b]) {
            struct bl_entry *e = bl->bucket[b];
            bl->bucket[b] = e->next;
            free(e);
        }
    }
    free(bl);
}

/* bouncelimit_hash - FNV-1a over the lower-cased address */
static unsigned bouncelimit_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 16777619u;
    }
    return h % BOUNCELIMIT_BUCKETS;
}

/* bouncelimit_purge - drop entries whose window has passed */
static void bouncelimit_purge(struct bouncelimit *bl, time_t now)
{
    for (unsigned b = 0; b < BOUNCELIMIT_BUCKETS; b++) {
        struct bl_entry **pp = &bl->bucket[b], *e;
        while ((e = *pp) != NULL) {
            if (now - e->start >= (time_t)bl->window) {
                *pp = e->next;
                free(e);
                bl->nentries--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* bouncelimit_allow - count one DSN to addr if the window has room */
int bouncelimit_allow(struct bouncelimit *bl, const char *addr, time_t now)
{
    unsigned b = bouncelimit_hash(addr);
    struct bl_entry *e;
    size_t len = strlen(addr);

    for (e = bl->bucket[b]; e; e = e->next)
        if (strcasecmp(e->addr, addr) == 0)
            break;
    if (!e) {
        if (bl->nentries >= BOUNCELIMIT_MAX_ENTRIES)
            bouncelimit_purge(bl, now);
        if (bl->nentries >= BOUNCELIMIT_MAX_ENTRIES || !(e = calloc(1, sizeof(*e) + len + 1)))
            return 0;
        memcpy(e->addr, addr, len + 1);
        e->start = now;
        e->next = bl->bucket[b];
        bl->bucket[b] = e;
        bl->nentries++;
    }
    if (now - e->start >= (time_t)bl->window) {
        e->start = now;
        e->count = 0;
    }
    if (e->count >= bl->limit)
        return 0;
    e->count++;
    return 1;
}
