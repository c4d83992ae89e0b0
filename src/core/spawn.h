/*
 * spawn.h - starting an operator's hook program (bounce_flood, quota): no
 * shell, so nothing from outside is ever parsed as a command; stdin from
 * /dev/null, no inherited descriptors beyond 0-2, default signal handling,
 * a process group of its own (so a time-out can stop it and its children),
 * and the daemon's environment without any MXGATE_* variable, then the
 * hook's own MXGATE_* variables.
 */
#ifndef MX_CORE_SPAWN_H
#define MX_CORE_SPAWN_H

#include <sys/types.h>

/* spawn_hook - start path with argv (argv[0] included, NULL-terminated) and the
 * "NAME=value" strings of vars (NULL-terminated); does not wait. 0 with *pid
 * set, or an errno value */
int spawn_hook(pid_t *pid, const char *path, char *const argv[], char *const vars[]);

#endif
