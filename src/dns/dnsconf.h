/* dnsconf.h - the dns section (servers, timeout, tries, on_timeout) and the resolver made of it */
#ifndef MX_DNS_DNSCONF_H
#define MX_DNS_DNSCONF_H

#include <stddef.h>

struct config;
struct config_section;
struct dns;
struct event_base;

extern const struct config_section dnsconf_section;

/* dnsconf_has_servers - does the dns section name servers (otherwise /etc/resolv.conf) */
int dnsconf_has_servers(const struct config *cfg);

/* dnsconf_open - a resolver as the dns section says; NULL with err */
struct dns *dnsconf_open(const struct config *cfg, struct event_base *base, char *err,
                         size_t errlen);

#endif
