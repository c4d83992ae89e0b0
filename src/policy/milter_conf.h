/*
 * milter_conf.h - the milter sections, run in the order configured:
 *
 *   milter "rspamd" { socket = "inet:127.0.0.1:11332"  on_error = "tempfail"  timeout = 30 }
 *
 * socket: "inet:IP:PORT" (an IPv4 or IPv6 literal, "inet:[::1]:PORT" too) or
 * "unix:/path" ("local:" is the same). on_error: what a dead, slow or
 * misbehaving milter means for the mail: "tempfail" (451 4.7.0, the default),
 * "accept" (go on without it) or "reject" (550 5.7.0). timeout: seconds for
 * the connection and for each answer. max_size: longer messages are not shown
 * to this milter (logged). spam_header / score: a milter that adds spam_header
 * with a value starting "yes" gives score points to the score check.
 */
#ifndef MX_POLICY_MILTER_CONF_H
#define MX_POLICY_MILTER_CONF_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

enum milter_on_error { MILTER_ON_TEMPFAIL, MILTER_ON_ACCEPT, MILTER_ON_REJECT };

struct milter_conf {
    char *name;
    char *socket;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum milter_on_error on_error;
    unsigned timeout; /* seconds */
    uint64_t max_size;
    char *spam_header;
    int score;
};

extern const struct config_section milter_conf_section;

/* milter_conf_socket - parse "inet:IP:PORT" or "unix:/path" into ss; 0 or -1 */
int milter_conf_socket(const char *spec, struct sockaddr_storage *ss, socklen_t *len);

/* milter_conf_load - every milter section of root in order; 0, or -1 with err */
int milter_conf_load(cfg_t *root, struct milter_conf **out, size_t *n, char *err, size_t errlen);
void milter_conf_free(struct milter_conf *m, size_t n);

#endif
