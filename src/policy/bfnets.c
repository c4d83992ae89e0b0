/* bfnets.c - the busiest client networks of a window's bounces */
#include "policy/bfnets.h"

#include <stdio.h>
#include <string.h>

#include "core/cidr.h"

/* bfnets_add - see bfnets.h */
void bfnets_add(struct bfnets *b, const struct sockaddr *sa)
{
    char net[48];
    size_t min = 0;

    if (sockaddr_network(sa, BFNETS_V4_PREFIX, BFNETS_V6_PREFIX, net, sizeof(net)) < 0)
        return;
    for (size_t i = 0; i < b->used; i++) {
        if (strcmp(b->slot[i].net, net) == 0) {
            b->slot[i].n++;
            return;
        }
        if (b->slot[i].n < b->slot[min].n)
            min = i;
    }
    if (b->used < BFNETS_SLOTS) {
        min = b->used++;
        b->slot[min].n = 0;
    }
    snprintf(b->slot[min].net, sizeof(b->slot[min].net), "%s", net);
    b->slot[min].n++; /* full: the least counted one's count plus this one */
}

/* bfnets_clear - see bfnets.h */
void bfnets_clear(struct bfnets *b)
{
    b->used = 0;
}

/* bfnets_top - see bfnets.h; a selection by repeated maximum (k and the table are small) */
void bfnets_top(const struct bfnets *b, size_t k, char *dst, size_t len)
{
    unsigned char taken[BFNETS_SLOTS] = {0};
    size_t o = 0;

    if (len == 0)
        return;
    dst[0] = '\0';
    for (size_t j = 0; j < k && j < b->used; j++) {
        size_t best = BFNETS_SLOTS;
        for (size_t i = 0; i < b->used; i++)
            if (!taken[i] && (best == BFNETS_SLOTS || b->slot[i].n > b->slot[best].n))
                best = i;
        int n = snprintf(dst + o, len - o, "%s%s", o ? " " : "", b->slot[best].net);
        if (n < 0 || (size_t)n >= len - o) {
            dst[o] = '\0'; /* no half network */
            return;
        }
        o += (size_t)n;
        taken[best] = 1;
    }
}
