/* spf_dns.h - the SPF evaluator's resolver seam over the daemon's resolver
 * (dns.h: c-ares on the event loop) */
#ifndef MXGATE_SPF_DNS_H
#define MXGATE_SPF_DNS_H

#include "policy/spf_eval.h"

struct dns;

/* Fill r so that SPF checks ask dns. r stays usable as long as dns lives;
 * free every spf_check that uses it before dns_free(). Answers hold at most
 * DNS_MAX_RECORDS records (enough: SPF looks at 10 MX or PTR names; more
 * than 10 MX is a permerror anyway). */
void spf_dns_resolver(struct spf_resolver *r, struct dns *dns);

#endif
