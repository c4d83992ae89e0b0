/*
 * looptime.h - how long the event loop works between two waits ("a loop
 * turn"): every callback of one turn delays every other connection, so the
 * longest turn is the latency a stall (an expiry sweep, a flush, a burst)
 * adds to every client.
 *
 * A turn is measured from the moment the loop's wait for events returns to
 * the moment it waits again. Only the thread that called looptime_watch()
 * is measured (the worker pool's threads never wait in the event loop).
 * Durations (wall clock) also go to the METRICS_LOOP_TURN_SECONDS histogram.
 */
#ifndef MX_CORE_LOOPTIME_H
#define MX_CORE_LOOPTIME_H

#include <stdint.h>

/* looptime_watch - measure the event loop run by the calling thread from now on */
void looptime_watch(void);

/* looptime_max_usec - the longest turn since looptime_watch(), in microseconds */
uint64_t looptime_max_usec(void);

/* looptime_max_cpu_usec - the most CPU time one turn used (the loop's thread):
 * far below looptime_max_usec() when the longest turn waited for a CPU (a
 * loaded machine) or for the disk, not for its own work */
uint64_t looptime_max_cpu_usec(void);

/* looptime_turns - how many turns were measured */
uint64_t looptime_turns(void);

/* looptime_reset_max - start the longest-turn figure over (benchmarks: one phase at a time) */
void looptime_reset_max(void);

#endif
