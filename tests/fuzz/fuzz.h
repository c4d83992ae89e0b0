/* fuzz.h - what every libFuzzer harness of mxgate shares: the entry points and a real assert */
#ifndef MX_TESTS_FUZZ_H
#define MX_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The libFuzzer entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * fuzz_fail - a property was violated: say which, then abort so that
 * libFuzzer records the input as a crash. Unlike assert(), NDEBUG cannot
 * turn it off. Written to fd 2 itself: a harness may silence the stderr stream.
 */
static inline void __attribute__((noreturn)) fuzz_fail(const char *file, int line, const char *what)
{
    dprintf(STDERR_FILENO, "%s:%d: property violated: %s\n", file, line, what);
    abort();
}

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

#endif
