/* session.h - one SMTP server session (RFC 5321 state machine) */
#ifndef MX_SMTP_SESSION_H
#define MX_SMTP_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

struct server;
struct serverconf_listen;

/* session_release_fn - the session from peer ended: give back what its start took */
typedef void (*session_release_fn)(void *arg, const struct sockaddr *peer);

/*
 * session_start - take over fd accepted on listener l; the session frees
 * itself, and calls release(release_arg, sa) once when it does (also when it
 * cannot start). The server counts connections; the session does not know how.
 */
void session_start(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                   const struct sockaddr *sa, socklen_t salen, session_release_fn release,
                   void *release_arg);

/* session_flush_queued - write the replies of every session on srv->flushq (end of a loop turn) */
void session_flush_queued(struct server *srv);

/* session_free_all - end every session now (shutdown) */
void session_free_all(struct server *srv);

#endif
