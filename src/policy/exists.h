/*
 * exists.h - does a domain exist for mail: its MX, A and AAAA records,
 * asked in parallel on the daemon's resolver (dns/dns.h), for the sender
 * check (MAIL FROM domain, HELO name, header From: domain).
 *
 * A sender domain exists when it has an MX record other than a null MX
 * (RFC 7505: a single MX "."), or, with no MX, an A or AAAA record (the
 * implicit MX of RFC 5321 5.1). A host name (HELO) exists when it has an
 * address or a real MX; a null MX does not matter for it.
 */
#ifndef MX_POLICY_EXISTS_H
#define MX_POLICY_EXISTS_H

struct dns;
struct exists_query;

enum exists_result {
    EXISTS_YES,
    EXISTS_NXDOMAIN,  /* the name does not exist */
    EXISTS_NORECORDS, /* no MX, A or AAAA */
    EXISTS_NULLMX,    /* a null MX: the domain takes no mail (sender domains only) */
    EXISTS_TEMPFAIL,  /* could not decide: SERVFAIL, timeout, bad answer */
};

/* exists_cb - the decision; detail is the DNS status that made a TEMPFAIL
 * ("timeout", "servfail"...), otherwise "" */
typedef void (*exists_cb)(enum exists_result r, const char *detail, void *arg);

/* exists_start - ask for name (a valid ASCII host name) as a sender domain
 * (host 0) or a HELO host name (host 1). cb runs exactly once, later, from
 * the loop, unless exists_cancel comes first. NULL when nothing could be asked
 * (then cb never runs) */
struct exists_query *exists_start(struct dns *dns, const char *name, int host, exists_cb cb,
                                  void *arg);
/* exists_cancel - stop the lookups; cb will not run. NULL is ignored */
void exists_cancel(struct exists_query *q);

/* exists_result_name - "yes", "nxdomain", "no-records", "null-mx", "tempfail" */
const char *exists_result_name(enum exists_result r);

#endif
