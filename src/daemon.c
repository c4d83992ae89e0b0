/* daemon.c - running as a service: detaching, the pidfile, the service manager's notices */
#include "daemon.h"

#include <ares.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef MXGATE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "core/fsutil.h"
#include "core/log.h"
#include "version.h"

#define DAEMON_READY 'R'

static int daemon_pipe = -1; /* the child's end: the parent waits for DAEMON_READY on it */
static int daemon_pidfd = -1;
static pid_t daemon_pidowner; /* only this process removes the pidfile (not a hook's child) */
static char daemon_pidpath[4096];

/* daemon_wait_child - the parent: exit 0 once the child is ready, else with its status */
static void daemon_wait_child(pid_t pid, int fd) __attribute__((noreturn));
static void daemon_wait_child(pid_t pid, int fd)
{
    char c = 0;
    ssize_t n;
    int st;

    while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n == 1 && c == DAEMON_READY)
        _exit(0);
    /* The child closed the pipe without being ready: it died, after printing why. */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        _exit(WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
    fprintf(stderr, "mxgated: the daemon died at start-up (signal %d)\n",
            WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    _exit(1);
}

int daemon_detach(char *err, size_t errlen)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid > 0) {
        close(fds[1]);
        daemon_wait_child(pid, fds[0]);
    }
    close(fds[0]);
    daemon_pipe = fds[1];
    if (setsid() < 0) /* cannot fail: the child of a fork leads no group */
        log_warn("event=setsid error=%s", log_q(strerror(errno)));
    log_echo_stderr(1); /* until ready, what goes wrong is also said on the terminal */
    return 0;
}

/* daemon_release - the terminal is no longer ours: stdio to /dev/null, the parent exits */
static void daemon_release(void)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    const char c = DAEMON_READY;

    log_echo_stderr(0);
    fflush(NULL);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    if (write(daemon_pipe, &c, 1) != 1)
        log_warn("event=detach error=%s", log_q(strerror(errno)));
    close(daemon_pipe);
    daemon_pipe = -1;
}

/* daemon_notify - one message to the service manager, when there is one */
static void daemon_notify(const char *msg)
{
#ifdef MXGATE_HAVE_SYSTEMD
    int rc = sd_notify(0, msg);

    if (rc < 0)
        log_warn("event=sd_notify error=%s", log_q(strerror(-rc)));
#else
    (void)msg;
#endif
}

void daemon_ready(void)
{
    char msg[128];

    snprintf(msg, sizeof msg, "READY=1\nMAINPID=%ld\nSTATUS=accepting mail", (long)getpid());
    daemon_notify(msg);
    if (daemon_pipe >= 0)
        daemon_release();
}

void daemon_reloading(void)
{
    struct timespec ts;
    char msg[128];

    /* MONOTONIC_USEC: what systemd 253 and later want with RELOADING=1 */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    daemon_notify(msg);
}

void daemon_reloaded(void)
{
    daemon_notify("READY=1\nSTATUS=accepting mail");
}

void daemon_stopping(void)
{
    daemon_notify("STOPPING=1\nSTATUS=stopping");
}

/* daemon_pidfile_remove - at exit, in the process that wrote it */
static void daemon_pidfile_remove(void)
{
    if (daemon_pidfd < 0 || getpid() != daemon_pidowner)
        return;
    /* After the privilege drop the directory may be root's: then say "nobody" by
     * emptying the file; the lock goes with the process either way. */
    if (unlink(daemon_pidpath) < 0 && ftruncate(daemon_pidfd, 0) < 0)
        log_warn("event=pidfile path=%s error=%s", log_q(daemon_pidpath), log_q(strerror(errno)));
    close(daemon_pidfd);
    daemon_pidfd = -1;
}

/* daemon_pidfile_held - an existing pidfile: 1 (and err filled) when a live process holds
 * it or it is no regular file, 0 when it was stale and is gone (or was never there) */
static int daemon_pidfile_held(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    char pid[32] = "";
    struct stat st, now;
    ssize_t n;

    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "pidfile %s: %s", path,
                 fd < 0 ? (errno == ELOOP ? "is a symbolic link" : strerror(errno))
                        : "not a regular file");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        n = read(fd, pid, sizeof pid - 1);
        pid[n > 0 ? strcspn(pid, "\n") : 0] = '\0';
        snprintf(err, errlen, "pidfile %s is held by a running mxgated (pid %s)", path,
                 pid[strspn(pid, "0123456789")] == '\0' && pid[0] ? pid : "unknown");
        close(fd);
        return 1;
    }
    /* Stale: whoever wrote it is gone. Remove that very file, not a newer one. */
    if (lstat(path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino)
        unlink(path);
    close(fd);
    return 0;
}

/* daemon_mkparent - the pidfile's directory, made when missing */
static int daemon_mkparent(const char *path, unsigned mode, char *err, size_t errlen)
{
    char dir[4096];
    char *slash;

    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (fs_mkdir_p(dir, (mode_t)mode) < 0) {
        snprintf(err, errlen, "pidfile directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int daemon_pidfile(const char *path, unsigned dirmode, char *err, size_t errlen)
{
    char line[32];
    int fd, n;

    if (snprintf(daemon_pidpath, sizeof daemon_pidpath, "%s", path) >= (int)sizeof daemon_pidpath)
        return snprintf(err, errlen, "pidfile %s: path too long", path), -1;
    if (daemon_mkparent(path, dirmode, err, errlen) < 0 || daemon_pidfile_held(path, err, errlen))
        return -1;
    /* O_EXCL: a fresh file of ours, never one planted under this name */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "pidfile %s: %s", path,
                 errno == EEXIST ? "another mxgated is starting" : strerror(errno));
        return -1;
    }
    n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 || write(fd, line, (size_t)n) != n) {
        snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        return -1;
    }
    daemon_pidfd = fd;
    daemon_pidowner = getpid();
    atexit(daemon_pidfile_remove); /* log_fatal's exit too */
    return 0;
}

const char *daemon_pidfile_path(const char *configured, const char *state_dir, int detach,
                                char *buf, size_t buflen, unsigned *dirmode)
{
    *dirmode = 0755;
    if (configured)
        return *configured ? configured : NULL;
    if (!detach)
        return NULL;
    if (geteuid() == 0) {
        snprintf(buf, buflen, "/run/mxgate/mxgated.pid");
    } else {
        snprintf(buf, buflen, "%s/mxgated.pid", state_dir);
        *dirmode = 0700; /* made here, the state directory is as the start would make it */
    }
    return buf;
}

void daemon_version(char *buf, size_t buflen)
{
    snprintf(buf, buflen, "mxgated %s (libevent %s, %s, c-ares %s, sd_notify %s)", MXGATE_VERSION,
             event_get_version(), OpenSSL_version(OPENSSL_VERSION), ares_version(NULL),
#ifdef MXGATE_HAVE_SYSTEMD
             "yes"
#else
             "no"
#endif
    );
}
