/* daemon.h - running as a service: detaching, the pidfile, the service manager's notices */
#ifndef MX_DAEMON_H
#define MX_DAEMON_H

#include <stddef.h>

/*
 * daemon_detach - go to the background the safe way: fork at once, the parent
 * waits. The child (the daemon) starts up with the terminal still as stderr,
 * so that every start-up failure (port in use, certificate, store, spool) is
 * printed there, and tells the parent with daemon_ready() once it serves; the
 * parent then exits 0, or, when the child died first, with the child's status.
 * Called before any thread or event base exists. Returns in the child only;
 * 0, or -1 with err filled (nothing forked).
 */
int daemon_detach(char *err, size_t errlen);

/*
 * daemon_pidfile - write this process's id into path and hold it (an
 * exclusive lock on the open file) until exit, when it is removed (emptied
 * when the daemon, after dropping privileges, may not remove it). A pidfile
 * that another live process holds is refused; one left by a dead process is
 * replaced. A missing directory is made (mode dirmode). Run before dropping
 * privileges. 0, or -1 with err filled.
 */
int daemon_pidfile(const char *path, unsigned dirmode, char *err, size_t errlen);

/*
 * daemon_pidfile_path - the pidfile to use: the configured one (NULL: not
 * set; "": none), else, when detaching, /run/mxgate/mxgated.pid for root and
 * <state_dir>/mxgated.pid for anyone else. NULL: no pidfile (a foreground
 * process has a supervisor that knows its id). *dirmode: the mode for its
 * directory if that is missing.
 */
const char *daemon_pidfile_path(const char *configured, const char *state_dir, int detach,
                                char *buf, size_t buflen, unsigned *dirmode);

/* daemon_ready - every listener is bound and the spool and store are open:
 * tell the service manager (READY=1) and the waiting parent, and let go of the
 * terminal */
void daemon_ready(void);
/* daemon_reloading, daemon_reloaded - around a SIGHUP reload (RELOADING=1, READY=1) */
void daemon_reloading(void);
void daemon_reloaded(void);
/* daemon_stopping - shutdown has begun (STOPPING=1) */
void daemon_stopping(void);

/* daemon_version - "mxgated VERSION (libraries...)" for -V */
void daemon_version(char *buf, size_t buflen);

#endif
