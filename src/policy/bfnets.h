/*
 * bfnets.h - the client networks the bounces of a window come from, for the
 * bounce_flood hook (MXGATE_NETWORKS): the sites whose resolvers a split DNS
 * answer may send to the secondary MX (contrib/hooks/mx-split). Bounded: a
 * fixed table kept by the "space-saving" rule (a new network takes the place
 * of the least counted one, inheriting its count), so the busiest networks
 * of a flood are always in it however many others send a few.
 */
#ifndef MX_POLICY_BFNETS_H
#define MX_POLICY_BFNETS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BFNETS_SLOTS 256
#define BFNETS_V4_PREFIX 24
#define BFNETS_V6_PREFIX 48
#define BFNETS_TOP 16 /* networks handed to the hook */

struct bfnets {
    struct {
        char net[48]; /* "192.0.2.0/24", "2001:db8:1::/48" */
        uint64_t n;
    } slot[BFNETS_SLOTS];
    size_t used;
};

/* bfnets_add - one bounce from sa (its /24 or /48) */
void bfnets_add(struct bfnets *b, const struct sockaddr *sa);
/* bfnets_clear - a new window */
void bfnets_clear(struct bfnets *b);
/* bfnets_top - the k busiest networks, busiest first, space-separated ("" when none) */
void bfnets_top(const struct bfnets *b, size_t k, char *dst, size_t len);

#endif
