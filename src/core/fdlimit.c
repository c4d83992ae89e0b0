/* fdlimit.c - raising RLIMIT_NOFILE towards what the configuration needs */
#include "core/fdlimit.h"

#include <limits.h>
#include <sys/resource.h>

long fdlimit_raise(long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < want) {
        struct rlimit up = {(rlim_t)want, (rlim_t)want};

        /* Only a privileged process (CAP_SYS_RESOURCE) may raise the hard limit. */
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return want;
    }
    /* The whole hard limit: a reload may raise max_connections later, after the
     * privileges are gone, and an unused descriptor costs nothing. */
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit all = {rl.rlim_max, rl.rlim_max};

        if (setrlimit(RLIMIT_NOFILE, &all) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
}
