/* clock.c - the process's wall clock, injectable for tests (see clock.h) */
#include "core/clock.h"

static clock_fn clock_injected;

time_t clock_now(void)
{
    return clock_injected ? clock_injected() : time(NULL);
}

double clock_now_precise(void)
{
    struct timespec ts;

    if (clock_injected || clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return (double)clock_now();
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void clock_set(clock_fn fn)
{
    clock_injected = fn;
}

int clock_is_injected(void)
{
    return clock_injected != NULL;
}
