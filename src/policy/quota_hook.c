/*
 * quota_hook.c - the operator's program for an account that keeps hitting its
 * quota (likely compromised): `HOOK LOGIN REFUSALS`, as bounce_flood runs its
 * hook. Spawned, never through a shell (the login is one argv element and
 * MXGATE_LOGIN, whatever octets it holds), stdin /dev/null, no inherited
 * descriptors, its own process group, the daemon's environment plus
 * MXGATE_EVENT=quota, MXGATE_LOGIN, MXGATE_COUNT. One runs at a time; up to
 * QH_WAIT_MAX logins wait their turn, more are logged and dropped. A hook
 * still running after QH_TIMEOUT seconds is killed; only its own pid is waited
 * for. A typical hook suspends the account (`mxgatectl user suspend "$1"`)
 * and tells the abuse desk.
 */
#include "policy/quota.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/spawn.h"
#include "core/xmalloc.h"

#define QH_TIMEOUT 60
#define QH_REAP_MS 100
#define QH_WAIT_MAX 16

struct qh_job {
    char login[QUOTA_LOGIN_MAX + 1];
    long long count;
};

struct quota_hook {
    char *path;
    struct event *reap;
    pid_t pid;
    int killed;
    struct timespec begun;
    struct qh_job running, wait[QH_WAIT_MAX];
    size_t nwait;
};

/* qh_spawn - start the hook for the running job; 0 or an errno value */
static int qh_spawn(struct quota_hook *h)
{
    char count[32], ev[] = "MXGATE_EVENT=quota", lvar[QUOTA_LOGIN_MAX + 16], cvar[48];
    char *argv[] = {h->path, h->running.login, count, NULL};
    char *vars[] = {ev, lvar, cvar, NULL};

    snprintf(count, sizeof(count), "%lld", h->running.count);
    snprintf(lvar, sizeof(lvar), "MXGATE_LOGIN=%s", h->running.login);
    snprintf(cvar, sizeof(cvar), "MXGATE_COUNT=%s", count);
    return spawn_hook(&h->pid, h->path, argv, vars);
}

/* qh_start - spawn for job now and watch it */
static void qh_start(struct quota_hook *h, const struct qh_job *job)
{
    struct timeval tv = {0, QH_REAP_MS * 1000};
    int rc;

    h->running = *job;
    if ((rc = qh_spawn(h)) != 0) {
        h->pid = 0;
        log_err("event=hook check=quota login=%s status=error path=%s error=%s", log_q(job->login),
                log_q(h->path), log_q(strerror(rc)));
        return;
    }
    h->killed = 0;
    clock_gettime(CLOCK_MONOTONIC, &h->begun);
    event_add(h->reap, &tv);
    log_info("event=hook check=quota login=%s refusals=%lld pid=%ld status=started path=%s",
             log_q(job->login), job->count, (long)h->pid, log_q(h->path));
}

/* qh_overrun - kill a hook that ran too long (its whole process group) */
static void qh_overrun(struct quota_hook *h)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (h->killed || now.tv_sec - h->begun.tv_sec < QH_TIMEOUT)
        return;
    log_warn("event=hook check=quota login=%s pid=%ld status=timeout seconds=%d",
             log_q(h->running.login), (long)h->pid, QH_TIMEOUT);
    if (kill(-h->pid, SIGKILL) < 0)
        kill(h->pid, SIGKILL);
    h->killed = 1;
}

/* qh_reap - is our hook done? waitpid on its pid only; then the next one waiting */
static void qh_reap(evutil_socket_t fd, short what, void *arg)
{
    struct quota_hook *h = arg;
    struct timeval tv = {0, QH_REAP_MS * 1000};
    int status = 0;
    pid_t r = waitpid(h->pid, &status, WNOHANG);
    const char *login = log_q(h->running.login);

    if (r == 0 || (r < 0 && errno == EINTR)) {
        qh_overrun(h);
        event_add(h->reap, &tv);
        return;
    }
    if (r < 0)
        log_warn("event=hook check=quota login=%s pid=%ld status=unknown error=%s", login,
                 (long)h->pid, log_q(strerror(errno)));
    else if (WIFEXITED(status))
        log_msg(WEXITSTATUS(status) ? LOG_LVL_WARN : LOG_LVL_INFO,
                "event=hook check=quota login=%s pid=%ld status=exited code=%d", login,
                (long)h->pid, WEXITSTATUS(status));
    else
        log_warn("event=hook check=quota login=%s pid=%ld status=killed signal=%d", login,
                 (long)h->pid, WTERMSIG(status));
    h->pid = 0;
    if (h->nwait > 0) {
        struct qh_job next = h->wait[0];
        memmove(h->wait, h->wait + 1, (h->nwait - 1) * sizeof(h->wait[0]));
        h->nwait--;
        qh_start(h, &next);
    }
}

void quota_hook_run(struct quota_hook *h, const char *login, long long refusals)
{
    struct qh_job job;

    if (!h)
        return;
    snprintf(job.login, sizeof(job.login), "%s", login);
    job.count = refusals;
    if (h->pid == 0) {
        qh_start(h, &job);
    } else if (h->nwait < QH_WAIT_MAX) {
        h->wait[h->nwait++] = job;
    } else {
        log_warn("event=hook check=quota login=%s status=dropped waiting=%d", log_q(login),
                 QH_WAIT_MAX);
    }
}

struct quota_hook *quota_hook_new(struct event_base *base, const char *path, char *err,
                                  size_t errlen)
{
    struct quota_hook *h = xcalloc(1, sizeof(*h));
    const char *why = NULL;
    struct stat sb;

    if (!*path || !(h->path = fs_abspath(path)))
        why = *path ? strerror(errno) : "empty path";
    else if (stat(h->path, &sb) < 0 || (S_ISREG(sb.st_mode) && access(h->path, X_OK) < 0))
        why = strerror(errno);
    else if (!S_ISREG(sb.st_mode))
        why = "not a regular file";
    else if (base && !(h->reap = evtimer_new(base, qh_reap, h)))
        why = "out of memory";
    if (why) {
        snprintf(err, errlen, "quota: hook \"%s\": %s", path, why);
        quota_hook_free(h);
        return NULL;
    }
    return h;
}

void quota_hook_free(struct quota_hook *h)
{
    if (!h)
        return;
    if (h->pid > 0)
        log_warn("event=hook check=quota login=%s pid=%ld status=abandoned",
                 log_q(h->running.login), (long)h->pid);
    if (h->reap)
        event_free(h->reap);
    free(h->path);
    free(h);
}
