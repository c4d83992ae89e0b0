/*
 * clock.h - the wall clock every time-based mechanism reads (greylist delays,
 * rate windows, BATV days, bounce-flood intervals, store TTLs).
 *
 * One clock for the whole process so that a unit test moves time for all of
 * them at once (clock_set(ts_clock)) instead of each module keeping its own
 * injectable clock that a test can forget to set.
 */
#ifndef MX_CORE_CLOCK_H
#define MX_CORE_CLOCK_H

#include <time.h>

typedef time_t (*clock_fn)(void);

/* clock_now - seconds since the epoch: time(NULL), or the injected clock */
time_t clock_now(void);

/* clock_now_precise - clock_now with its fraction of a second (the injected clock's
 * whole seconds under a test): for durations in logs (delay=) */
double clock_now_precise(void);

/* clock_is_injected - a test moves time: timers that wait for the next
 * second of the real clock poll the injected one instead */
int clock_is_injected(void);

/* clock_set - tests only: read now from fn; NULL restores the real clock */
void clock_set(clock_fn fn);

#endif
