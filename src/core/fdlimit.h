/*
 * fdlimit.h - the descriptor limit the daemon needs for its connections.
 *
 * Every SMTP session, delivery, spool file in flight and log costs a
 * descriptor, and systems start daemons with a soft RLIMIT_NOFILE of 1024
 * (or a few thousand): far below limits { max_connections }. The daemon
 * raises its own soft limit at start, before it drops privileges (root may
 * also raise the hard limit), and says so when it cannot reach what the
 * configuration asks for.
 */
#ifndef MX_CORE_FDLIMIT_H
#define MX_CORE_FDLIMIT_H

/*
 * fdlimit_raise - take RLIMIT_NOFILE's soft limit up to want (the hard limit
 * too where the process may: root). Returns the soft limit now in force
 * (which may be below want; then the hard limit and errno's reason are why),
 * or -1 when the limit cannot be read.
 */
long fdlimit_raise(long want);

#endif
