/*
 * dovecot.h - password checks through Dovecot's authentication protocol
 * (auth-client socket: VERSION/CPID handshake, AUTH PLAIN, OK/FAIL), for
 * sites whose users Dovecot already knows. Blocking: call it from the pool.
 */
#ifndef MXGATE_AUTH_DOVECOT_H
#define MXGATE_AUTH_DOVECOT_H

#include "auth/auth.h"

#define DOVECOT_TIMEOUT 15 /* seconds for the whole exchange (Dovecot delays failures) */

/* dovecot_auth - AUTH PLAIN for login/password over the socket at path */
enum auth_result dovecot_auth(const char *path, const char *login, const char *password);

#endif
