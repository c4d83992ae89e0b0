/*
 * senders.h - which envelope senders a login may use (AUTH id = MAIL FROM).
 *
 * The senders file has one login per line, then the addresses it may use:
 *
 *   login  address|@domain ...
 *
 * "@domain" allows every address at exactly that domain (for administrators).
 * Without a line, a login may use only its own address: the login itself
 * when it has a domain, else login@default_domain. A login's own address is
 * always allowed. Addresses compare in the canonical form of mail/address.h,
 * the local part case-insensitively. Blank lines and '#' lines are ignored; a
 * malformed line is "FILE:LINE: message".
 */
#ifndef MXGATE_AUTH_SENDERS_H
#define MXGATE_AUTH_SENDERS_H

#include <stddef.h>

struct senders;

/* senders_load - parse path; NULL with err set */
struct senders *senders_load(const char *path, char *err, size_t errlen);
struct senders *senders_parse(const char *name, const char *buf, size_t len, char *err,
                              size_t errlen);
void senders_free(struct senders *s);

/* senders_allowed - may login send as addr ("" is the null sender: always allowed)?
 * s may be NULL (no senders file); default_domain may be NULL */
int senders_allowed(const struct senders *s, const char *login, const char *default_domain,
                    const char *addr);

#endif
