/* bouncelimit.h - at most N delivery status notifications per address per window */
#ifndef MX_QUEUE_BOUNCELIMIT_H
#define MX_QUEUE_BOUNCELIMIT_H

#include <time.h>

struct bouncelimit;

/* bouncelimit_new - limit DSNs to `limit` per address per `window` seconds */
struct bouncelimit *bouncelimit_new(unsigned limit, unsigned window);
void bouncelimit_free(struct bouncelimit *bl);

/*
 * bouncelimit_allow - may one more DSN go to addr at now? Counts it when
 * yes. The table is bounded; when it is full of live entries, the answer
 * is no: under a flood we would rather send fewer bounces than more.
 */
int bouncelimit_allow(struct bouncelimit *bl, const char *addr, time_t now);

#endif
