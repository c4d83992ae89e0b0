/*
 * adminconf.h - the admin section: the HTTP admin listener.
 *   admin {
 *       address    = "127.0.0.1:8025"    # none: no listener (the default)
 *       token_file = "/etc/mxgate/admin.token"  # Bearer token for POST actions
 *       timeout    = 10                   # seconds a request may take
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

#endif
