/*
 * adminconf.h - the admin section: the HTTP admin listener.
 *   admin {
 *       address    = "127.0.0.1:8025"    # none: no listener (the default)
 *       token_file = "/etc/mxgate/admin.token"  # Bearer token for POST actions
 *       timeout    = 10                   # seconds a request may take
 *       hosts      = {"mx1.example.org"}  # Host: names accepted besides addresses
 *   }
 */
#ifndef MX_ADMIN_ADMINCONF_H
#define MX_ADMIN_ADMINCONF_H

#include <stddef.h>

struct config;
struct config_section;

extern const struct config_section adminconf_section;

/* adminconf_address - the listener's address into dst; NULL when there is none */
const char *adminconf_address(const struct config *cfg, char *dst, size_t len);
/* adminconf_token_file - NULL when none: state-changing requests are refused */
const char *adminconf_token_file(const struct config *cfg);
unsigned adminconf_timeout(const struct config *cfg);

#define ADMINCONF_TOKEN_MIN 16 /* shorter is guessable */
#define ADMINCONF_TOKEN_MAX 1024
/* adminconf_read_token - the first line of token_file, blanks trimmed, into tok (len >
 * ADMINCONF_TOKEN_MAX + 1); its length, or -1 with err (unreadable, too short or long) */
int adminconf_read_token(const struct config *cfg, char *tok, size_t len, char *err, size_t errlen);

/* adminconf_host_ok - may a request name host (its Host header) - an IP address,
 * localhost, or one of the section's hosts - so that a web page whose name is made
 * to resolve to the listener (DNS rebinding) cannot read it */
int adminconf_host_ok(const struct config *cfg, const char *host);

struct config_diag;
/* adminconf_validate - for mxgated -n: the token file reads as the start reads it */
void adminconf_validate(const struct config *cfg, struct config_diag *d);

#endif
