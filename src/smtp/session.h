/* session.h - one SMTP server session (RFC 5321 state machine) */
#ifndef MX_SMTP_SESSION_H
#define MX_SMTP_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

struct server;
struct serverconf_listen;

/* session_start - take over fd accepted on listener l; the session frees itself */
void session_start(struct server *srv, const struct serverconf_listen *l, evutil_socket_t fd,
                   const struct sockaddr *sa, socklen_t salen);

/* session_free_all - end every session now (shutdown) */
void session_free_all(struct server *srv);

#endif
