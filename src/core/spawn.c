/* spawn.c - starting an operator's hook program (see spawn.h) */
#include "core/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define SPAWN_ENV_MAX 4096 /* environment entries passed on */

/* spawn_env - the daemon's environment without MXGATE_*, then vars */
static char **spawn_env(char *const vars[])
{
    extern char **environ;
    size_t n = 0, nv = 0, k = 0;
    char **env;

    while (environ && environ[n] && n < SPAWN_ENV_MAX)
        n++;
    while (vars[nv])
        nv++;
    env = xcalloc(n + nv + 1, sizeof(*env));
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "MXGATE_", 7) != 0)
            env[k++] = environ[i];
    for (size_t i = 0; i < nv; i++)
        env[k++] = vars[i];
    return env;
}

/* spawn_setup - stdin from /dev/null, no inherited descriptors, default signals, own group */
static int spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at)
{
    sigset_t none, all;
    int rc;

    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (rc = posix_spawn_file_actions_addclosefrom_np(fa, 3)) != 0 ||
        (rc = posix_spawnattr_setsigmask(at, &none)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(at, &all)) != 0 ||
        (rc = posix_spawnattr_setpgroup(at, 0)) != 0)
        return rc;
    return posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETPGROUP);
}

int spawn_hook(pid_t *pid, const char *path, char *const argv[], char *const vars[])
{
    char **env = spawn_env(vars);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        free(env);
        return rc;
    }
    if ((rc = posix_spawnattr_init(&at)) == 0) {
        if ((rc = spawn_setup(&fa, &at)) == 0)
            rc = posix_spawn(pid, path, &fa, &at, argv, env);
        posix_spawnattr_destroy(&at);
    }
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    return rc;
}
