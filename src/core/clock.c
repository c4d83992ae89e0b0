/* clock.c - the process's wall clock, injectable for tests (see clock.h) */
#include "core/clock.h"

static clock_fn clock_injected;

time_t clock_now(void)
{
    return clock_injected ? clock_injected() : time(NULL);
}

void clock_set(clock_fn fn)
{
    clock_injected = fn;
}

int clock_is_injected(void)
{
    return clock_injected != NULL;
}
